// The WebSocket client against python3-websockets (tests/support/ws_test_server.py).
#include "connectors/http/websocket.h"

#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "engine/process.h"
#include "tests/support/temp_dir.h"

namespace vmlift::http {
namespace {

using testing_support::read_all;

using testing_support::TempDir;

class WebSocketTest : public ::testing::Test {
  protected:
    void SetUp() override {
        PosixProcessRunner probe;
        ProcessSpec check;
        check.argv = {"/usr/bin/python3", "-c", "import websockets"};
        check.env = default_tool_env();
        auto r = run_captured(probe, check);
        if (!r.ok() || r->exit.code != 0) {
            GTEST_SKIP() << "needs /usr/bin/python3 with python3-websockets (apt install "
                            "python3-websockets)";
        }
        ProcessSpec spec;
        spec.argv = {"/usr/bin/python3", VMLIFT_SOURCE_DIR "/tests/support/ws_test_server.py",
                     m_dir.path()};
        spec.env = default_tool_env();
        spec.stderr_redirect = Redirect::truncate_to(m_dir.file("server.log"));
        auto p = m_runner.start(spec);
        ASSERT_TRUE(p.ok());
        m_server = std::move(*p);
        for (int i = 0; i < 300 && read_all(m_dir.file("ports")).empty(); ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        std::istringstream ports(read_all(m_dir.file("ports")));
        ports >> m_wss >> m_ws >> m_bad;
        ASSERT_GT(m_wss, 0) << read_all(m_dir.file("server.log"));
        std::string fp = read_all(m_dir.file("fingerprint"));
        m_fingerprint = fp.substr(0, fp.find('\n'));
    }
    void TearDown() override {
        if (m_server) {
            m_server->terminate(std::chrono::milliseconds(1000));
        }
    }

    WsOptions wss(const std::string& path, size_t max = 64u << 20) const {
        WsOptions o;
        o.url = "wss://127.0.0.1:" + std::to_string(m_wss) + path;
        o.tls.mode = TlsMode::pinned;
        o.tls.fingerprint = m_fingerprint;
        o.max_message = max;
        return o;
    }

    TempDir m_dir;
    PosixProcessRunner m_runner;
    std::unique_ptr<Process> m_server;
    int m_wss = 0, m_ws = 0, m_bad = 0;
    std::string m_fingerprint;
};

constexpr auto k_wait = std::chrono::milliseconds(10000);

TEST_F(WebSocketTest, EchoesTextAndBinaryOfEverySizeOverTls) {
    auto ws = WebSocket::connect(wss("/echo"));
    ASSERT_TRUE(ws.ok()) << ws.status().message();
    // Sizes that exercise the 7-bit, 16-bit and 64-bit length forms.
    for (size_t n : {0u, 1u, 125u, 126u, 65535u, 65536u, 700000u}) {
        std::string text(n, 'a');
        for (size_t i = 0; i < n; ++i) {
            text[i] = static_cast<char>('a' + i % 26);
        }
        ASSERT_TRUE((*ws)->send_text(text).ok());
        auto m = (*ws)->receive(k_wait);
        ASSERT_TRUE(m.ok()) << m.status().message();
        EXPECT_EQ(m->kind, WsKind::text);
        EXPECT_EQ(m->data, text) << n;
    }
    std::string bin("\x00\xff\x10 binary", 10);
    ASSERT_TRUE((*ws)->send_binary(bin).ok());
    auto m = (*ws)->receive(k_wait);
    ASSERT_TRUE(m.ok());
    EXPECT_EQ(m->kind, WsKind::binary);
    EXPECT_EQ(m->data, bin);
    EXPECT_TRUE((*ws)->close().ok());
    EXPECT_FALSE((*ws)->is_open());
}

TEST_F(WebSocketTest, JoinsFragmentsBothWays) {
    auto ws = WebSocket::connect(wss("/fragments"));
    ASSERT_TRUE(ws.ok()) << ws.status().message();
    auto m = (*ws)->receive(k_wait);
    ASSERT_TRUE(m.ok()) << m.status().message();
    EXPECT_EQ(m->data, "Hello w\xc3\xb6rld");
    // Our own fragmented message, with a ping between the fragments.
    ASSERT_TRUE((*ws)->send_frame(false, 0x1, "frag").ok());
    ASSERT_TRUE((*ws)->send_frame(true, 0x9, "mid").ok());
    ASSERT_TRUE((*ws)->send_frame(false, 0x0, "ment").ok());
    ASSERT_TRUE((*ws)->send_frame(true, 0x0, "ed").ok());
    m = (*ws)->receive(k_wait);
    ASSERT_TRUE(m.ok()) << m.status().message();
    EXPECT_EQ(m->data, "fragmented");
}

TEST_F(WebSocketTest, AnswersPings) {
    auto ws = WebSocket::connect(wss("/ping"));
    ASSERT_TRUE(ws.ok());
    auto m = (*ws)->receive(k_wait);  // the server only says this after our pong
    ASSERT_TRUE(m.ok()) << m.status().message();
    EXPECT_EQ(m->data, "pong-received");
}

TEST_F(WebSocketTest, ReportsTheServersCloseCodeAndReason) {
    auto ws = WebSocket::connect(wss("/close"));
    ASSERT_TRUE(ws.ok());
    auto m = (*ws)->receive(k_wait);
    EXPECT_EQ(m.status().code(), Code::connection_lost);
    EXPECT_NE(m.status().message().find("closed by the server: 4001 bye"), std::string::npos)
        << m.status().message();
    EXPECT_FALSE((*ws)->is_open());
    EXPECT_EQ((*ws)->send_text("late").code(), Code::connection_lost);
}

TEST_F(WebSocketTest, OversizeMessagesFailWith1009BothWays) {
    auto ws = WebSocket::connect(wss("/big", 1u << 20));
    ASSERT_TRUE(ws.ok());
    auto m = (*ws)->receive(k_wait);
    EXPECT_FALSE(m.ok());
    EXPECT_NE(m.status().message().find("1009"), std::string::npos) << m.status().message();
    // The server's own limit is 1 MiB: it closes with 1009 ("message too big").
    auto echo = WebSocket::connect(wss("/echo"));
    ASSERT_TRUE(echo.ok());
    // The close can arrive while we are still sending or after: either way
    // the error carries the server's code.
    Status sent = (*echo)->send_text(std::string(2u << 20, 'y'));
    Status st = sent.ok() ? (*echo)->receive(k_wait).status() : sent;
    EXPECT_EQ(st.code(), Code::connection_lost);
    EXPECT_NE(st.message().find("1009"), std::string::npos) << st.message();
}

TEST_F(WebSocketTest, InvalidUtf8TextFailsWith1007) {
    auto ws = WebSocket::connect(wss("/badutf8"));
    ASSERT_TRUE(ws.ok());
    auto m = (*ws)->receive(k_wait);
    EXPECT_FALSE(m.ok());
    EXPECT_NE(m.status().message().find("1007"), std::string::npos) << m.status().message();
}

TEST_F(WebSocketTest, HandshakeFailuresAreClear) {
    auto refused = WebSocket::connect(wss("/refuse"));
    EXPECT_EQ(refused.status().code(), Code::remote_failed);
    EXPECT_NE(refused.status().message().find("403"), std::string::npos)
        << refused.status().message();
    WsOptions bad;
    bad.url = "ws://127.0.0.1:" + std::to_string(m_bad) + "/";
    auto wrong = WebSocket::connect(bad);
    EXPECT_EQ(wrong.status().code(), Code::remote_failed);
    EXPECT_NE(wrong.status().message().find("Sec-WebSocket-Accept"), std::string::npos);
    auto pin = wss("/echo");
    pin.tls.fingerprint = "00:" + m_fingerprint.substr(3);
    auto mismatch = WebSocket::connect(pin);
    EXPECT_EQ(mismatch.status().code(), Code::host_key);
    EXPECT_NE(mismatch.status().message().find(m_fingerprint), std::string::npos);
    auto untrusted = wss("/echo");
    untrusted.tls.mode = TlsMode::system;
    EXPECT_EQ(WebSocket::connect(untrusted).status().code(), Code::host_key);
    auto ca = wss("/echo");
    ca.tls.mode = TlsMode::ca_file;
    ca.tls.ca_file = m_dir.file("cert.pem");
    EXPECT_TRUE(WebSocket::connect(ca).ok());
    WsOptions plain;
    plain.url = "ws://127.0.0.1:" + std::to_string(m_ws) + "/echo";
    auto p = WebSocket::connect(plain);
    ASSERT_TRUE(p.ok()) << p.status().message();
    ASSERT_TRUE((*p)->send_text("plain").ok());
    EXPECT_EQ((*p)->receive(k_wait)->data, "plain");
}

TEST_F(WebSocketTest, ReceiveTimesOutAndTheConnectionStaysUsable) {
    auto ws = WebSocket::connect(wss("/echo"));
    ASSERT_TRUE(ws.ok());
    auto m = (*ws)->receive(std::chrono::milliseconds(200));
    EXPECT_EQ(m.status().code(), Code::timeout);
    ASSERT_TRUE((*ws)->send_text("still here").ok());
    EXPECT_EQ((*ws)->receive(k_wait)->data, "still here");
}

TEST(WebSocketUnits, AcceptKeyAndUrlsAndLoopback) {
    // The example of RFC 6455 section 1.3.
    EXPECT_EQ(websocket_accept("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    auto u = parse_ws_url("wss://nas.lan/api/v25.10.0");
    ASSERT_TRUE(u.ok());
    EXPECT_TRUE(u->tls);
    EXPECT_EQ(u->port, 443);
    EXPECT_EQ(u->path, "/api/v25.10.0");
    EXPECT_EQ(parse_ws_url("ws://[::1]:8080/websocket")->host, "[::1]");
    EXPECT_FALSE(parse_ws_url("https://nas/api").ok());
    EXPECT_TRUE(is_loopback_host("127.0.0.1"));
    EXPECT_TRUE(is_loopback_host("[::1]"));
    EXPECT_TRUE(is_loopback_host("LOCALHOST"));
    EXPECT_FALSE(is_loopback_host("198.18.0.10"));
    EXPECT_FALSE(is_loopback_host("127.example.com"));
}

}  // namespace
}  // namespace vmlift::http

// One suite, both SSH backends, real sshd in lab hosts.
#include <signal.h>

#include <chrono>
#include <fstream>
#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "connectors/ssh/ssh_factory.h"
#include "engine/pattern.h"
#include "engine/quote.h"
#include "engine/upload.h"
#include "tests/integration/lab.h"
#include "tests/support/temp_dir.h"

namespace vmlift {
namespace {

using namespace std::chrono_literals;
using testing_support::Lab;
using testing_support::read_file_or_empty;
using testing_support::TempDir;

}  // namespace

// Readable parameter names in test listings ("GetParam() = openssh").
void PrintTo(SshBackend backend, std::ostream* os) {
    *os << ssh_backend_name(backend);
}

namespace {

class SshTransportTest : public ::testing::TestWithParam<SshBackend> {
  protected:
    static void SetUpTestSuite() {
        s_skip = Lab::skip_reason();
        if (!s_skip.empty()) {
            return;
        }
        auto lab = Lab::create({"alpha", "beta"});
        if (!lab.ok()) {
            s_skip = "";
            s_error = lab.status().to_string();
            return;
        }
        s_lab = std::move(*lab);
    }
    static void TearDownTestSuite() { s_lab.reset(); }

    void SetUp() override {
        if (!s_skip.empty()) {
            GTEST_SKIP() << s_skip;
        }
        ASSERT_TRUE(s_lab) << "lab creation failed: " << s_error;
    }

    std::unique_ptr<SshTransport> make(const SshOptions& options) {
        return make_ssh_transport(GetParam(), options, m_runner);
    }
    std::unique_ptr<SshTransport> connected(const std::string& host = "alpha") {
        auto t = make(s_lab->ssh_options(host));
        Status st = t->connect();
        EXPECT_TRUE(st.ok()) << st.to_string();
        return t;
    }

    static inline std::unique_ptr<Lab> s_lab;
    static inline std::string s_skip;
    static inline std::string s_error;
    PosixProcessRunner m_runner;
};

TEST_P(SshTransportTest, ExecReportsExitCodeStdoutAndStderr) {
    auto t = connected();
    auto r = exec_captured(*t, {"sh", "-c", "echo out; echo err >&2; exit 7"});
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_EQ(r->exit.kind, ExitStatus::Kind::exited);
    EXPECT_EQ(r->exit.code, 7);
    EXPECT_EQ(r->out, "out\n");
    EXPECT_EQ(r->err, "err\n");
    auto ok = exec_captured(*t, {"true"});
    ASSERT_TRUE(ok.ok());
    EXPECT_TRUE(ok->exit.success());
}

TEST_P(SshTransportTest, StdinReachesTheRemoteCommand) {
    auto t = connected();
    auto r = exec_captured(*t, {"tr", "a-z", "A-Z"}, "hello lab\n");
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_EQ(r->out, "HELLO LAB\n");
}

TEST_P(SshTransportTest, NastyArgvArrivesByteIdenticalOnTheRemoteHost) {
    auto t = connected();
    std::mt19937 rng(42);
    static const std::string k_nasty = "'\"\\$`!*?[]{}()<>|&;#~= \t\n-";
    for (int round = 0; round < 100; ++round) {
        std::vector<std::string> argv = {VMLIFT_ARGV_DUMP};
        for (int i = 0; i < 4; ++i) {
            std::string w;
            for (int j = 0; j < 12; ++j) {
                int kind = static_cast<int>(rng() % 3);
                w.push_back(kind == 0   ? k_nasty[rng() % k_nasty.size()]
                            : kind == 1 ? static_cast<char>(1 + rng() % 255)
                                        : static_cast<char>('a' + rng() % 26));
            }
            argv.push_back(round % 10 == 0 && i == 0 ? std::string() : w);
        }
        auto r = exec_captured(*t, argv);
        ASSERT_TRUE(r.ok()) << r.status().to_string();
        std::string expected = "4";
        expected.push_back('\0');
        for (size_t i = 1; i < argv.size(); ++i) {
            expected += argv[i];
            expected.push_back('\0');
        }
        ASSERT_EQ(r->out, expected) << "round " << round;
    }
}

TEST_P(SshTransportTest, Streams1GiBThroughRemoteCatWithMatchingChecksum) {
    auto t = connected();
    constexpr uint64_t k_size = 1ULL << 30;
    PatternSource source(k_size, 2026);
    HashingSink sink;
    LimitedStringSink err(4096);
    auto t0 = std::chrono::steady_clock::now();
    auto exit = t->exec({"cat"}, RunIo{&source, &sink, &err});
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ASSERT_TRUE(exit.ok()) << exit.status().to_string();
    EXPECT_TRUE(exit->success()) << exit->describe() << " " << err.str();
    EXPECT_EQ(source.produced(), k_size);
    EXPECT_EQ(sink.bytes(), k_size);
    EXPECT_EQ(sink.digest(), source.digest());
    RecordProperty("mb_per_sec", std::to_string(static_cast<int>(k_size / secs / 1e6)));
}

TEST_P(SshTransportTest, UploadsAFileAtomicallyWithItsMode) {
    auto t = connected();
    TempDir dir;
    std::string data(3 << 20, '\0');
    std::mt19937 rng(1);
    for (auto& c : data) {
        c = static_cast<char>(rng());
    }
    testing_support::write_all(dir.file("blob"), data);
    std::string remote = s_lab->disks("alpha") + "/uploaded blob";
    auto sent = upload_file(*t, dir.file("blob"), remote, 0750);
    ASSERT_TRUE(sent.ok()) << sent.status().to_string();
    EXPECT_EQ(*sent, data.size());
    EXPECT_EQ(read_file_or_empty(remote), data);
    auto mode = exec_checked(*t, {"stat", "-c", "%a", remote});
    ASSERT_TRUE(mode.ok());
    EXPECT_EQ(*mode, "750\n");
}

TEST_P(SshTransportTest, ManyCommandsShareOneConnection) {
    auto t = connected();
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 20; ++i) {
        auto r = exec_checked(*t, {"echo", std::to_string(i)});
        ASSERT_TRUE(r.ok()) << r.status().to_string();
        ASSERT_EQ(*r, std::to_string(i) + "\n");
    }
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 20s);
}

TEST_P(SshTransportTest, ChangedHostKeyIsRefusedUnderEveryVerifyingPolicy) {
    TempDir dir;
    // known_hosts claims beta's key for alpha's address.
    std::string beta_key =
        read_file_or_empty(s_lab->dir() + "/hosts/beta/ssh_host_ed25519_key.pub");
    std::string kh = dir.file("known_hosts");
    std::ofstream(kh) << s_lab->ip("alpha") << " " << beta_key.substr(0, beta_key.rfind(' '))
                      << "\n";
    for (auto policy : {HostKeyPolicy::strict, HostKeyPolicy::accept_new}) {
        SshOptions o = s_lab->ssh_options("alpha");
        o.known_hosts_file = kh;
        o.host_key_policy = policy;
        auto t = make(o);
        Status st = t->connect();
        ASSERT_FALSE(st.ok()) << host_key_policy_name(policy);
        EXPECT_EQ(st.code(), Code::host_key) << st.to_string();
        EXPECT_NE(st.message().find(s_lab->ip("alpha")), std::string::npos) << st.message();
        EXPECT_NE(st.message().find(kh), std::string::npos) << st.message();
        EXPECT_NE(st.message().find("does not match"), std::string::npos) << st.message();
        EXPECT_EQ(st.message().find('\n'), std::string::npos) << "one line";
    }
}

TEST_P(SshTransportTest, UnknownHostIsRefusedWhenStrictAndRecordedWithAcceptNew) {
    TempDir dir;
    SshOptions o = s_lab->ssh_options("alpha");
    o.known_hosts_file = dir.file("known_hosts");
    auto strict = make(o);
    Status st = strict->connect();
    EXPECT_EQ(st.code(), Code::host_key) << st.to_string();
    EXPECT_NE(st.message().find("no host key for " + s_lab->ip("alpha")), std::string::npos)
        << st.message();

    o.host_key_policy = HostKeyPolicy::accept_new;
    auto lenient = make(o);
    ASSERT_TRUE(lenient->connect().ok());
    std::string recorded = read_file_or_empty(o.known_hosts_file);
    EXPECT_NE(recorded.find(s_lab->ip("alpha")), std::string::npos) << recorded;
    EXPECT_NE(recorded.find("ssh-ed25519"), std::string::npos) << recorded;
    lenient->close();

    // The recorded key is now trusted strictly.
    o.host_key_policy = HostKeyPolicy::strict;
    auto again = make(o);
    EXPECT_TRUE(again->connect().ok());
}

TEST_P(SshTransportTest, WrongKeyIsAClearAuthenticationError) {
    SshOptions o = s_lab->ssh_options("alpha");
    o.auth.identity_file = s_lab->wrong_key();
    auto t = make(o);
    Status st = t->connect();
    EXPECT_EQ(st.code(), Code::auth_failed) << st.to_string();
    EXPECT_NE(st.message().find("root@" + s_lab->ip("alpha") + ":22"), std::string::npos)
        << st.message();
    EXPECT_EQ(st.message().find('\n'), std::string::npos);
}

TEST_P(SshTransportTest, PassphraseProtectedKeyNeedsItsPassphrase) {
    SshOptions o = s_lab->ssh_options("alpha");
    o.auth.identity_file = s_lab->passphrase_key();
    o.auth.passphrase = s_lab->passphrase();
    auto good = make(o);
    Status st = good->connect();
    ASSERT_TRUE(st.ok()) << st.to_string();
    EXPECT_TRUE(exec_checked(*good, {"true"}).ok());

    o.auth.passphrase = "not-the-passphrase";
    auto bad = make(o);
    st = bad->connect();
    EXPECT_EQ(st.code(), Code::auth_failed) << st.to_string();
    EXPECT_EQ(st.message().find("not-the-passphrase"), std::string::npos);
}

TEST_P(SshTransportTest, PasswordFromAFileAuthenticates) {
    SshOptions o = s_lab->ssh_options("beta");
    o.auth.identity_file.clear();
    o.auth.password = s_lab->password();
    auto t = make(o);
    Status st = t->connect();
    ASSERT_TRUE(st.ok()) << st.to_string();
    auto who = exec_checked(*t, {"id", "-un"});
    ASSERT_TRUE(who.ok());
    EXPECT_EQ(*who, "root\n");

    o.auth.password = "wrong password";
    auto bad = make(o);
    EXPECT_EQ(bad->connect().code(), Code::auth_failed);
}

TEST_P(SshTransportTest, SshAgentAuthenticates) {
    TempDir dir;
    std::string sock = dir.file("agent.sock");
    ProcessSpec agent_spec;
    agent_spec.argv = {"ssh-agent", "-D", "-a", sock};
    agent_spec.env = default_tool_env();
    auto agent = m_runner.start(agent_spec);
    ASSERT_TRUE(agent.ok());
    for (int i = 0; i < 200 && ::access(sock.c_str(), F_OK) != 0; ++i) {
        std::this_thread::sleep_for(10ms);
    }
    ProcessSpec add;
    add.argv = {"ssh-add", s_lab->client_key()};
    add.env = default_tool_env();
    add.env.push_back("SSH_AUTH_SOCK=" + sock);
    auto added = run_captured(m_runner, add);
    ASSERT_TRUE(added.ok() && added->exit.success()) << (added.ok() ? added->err : "");

    SshOptions o = s_lab->ssh_options("alpha");
    o.auth.identity_file.clear();
    o.auth.agent_socket = sock;
    auto t = make(o);
    Status st = t->connect();
    ASSERT_TRUE(st.ok()) << st.to_string();
    EXPECT_TRUE(exec_checked(*t, {"true"}).ok());
}

TEST_P(SshTransportTest, SilentHostFailsWithinTheConnectTimeout) {
    ASSERT_TRUE(s_lab->mute("beta").ok());
    SshOptions o = s_lab->ssh_options("beta");
    o.connect_timeout = 2s;
    auto t = make(o);
    auto t0 = std::chrono::steady_clock::now();
    Status st = t->connect();
    auto elapsed = std::chrono::steady_clock::now() - t0;
    ASSERT_TRUE(s_lab->unmute("beta").ok());
    EXPECT_EQ(st.code(), Code::timeout) << st.to_string();
    EXPECT_NE(st.message().find("within 2 s"), std::string::npos) << st.message();
    EXPECT_GE(elapsed, 1900ms);
    EXPECT_LT(elapsed, 4500ms);
}

TEST_P(SshTransportTest, ClosedPortIsUnreachableAtOnce) {
    SshOptions o = s_lab->ssh_options("alpha");
    o.target.port = 2;
    auto t = make(o);
    auto t0 = std::chrono::steady_clock::now();
    Status st = t->connect();
    EXPECT_EQ(st.code(), Code::unreachable) << st.to_string();
    EXPECT_NE(st.message().find("refused"), std::string::npos) << st.message();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
}

TEST_P(SshTransportTest, TaskTimeoutStopsALongCommand) {
    auto t = connected();
    auto t0 = std::chrono::steady_clock::now();
    auto r = t->exec({"sleep", "30"}, RunIo{}, ExecOptions{1500ms});
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Code::timeout) << r.status().to_string();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
}

TEST_P(SshTransportTest, DroppedLinkMidStreamIsReportedAsConnectionLost) {
    SshOptions o = s_lab->ssh_options("beta");
    o.keepalive_interval = 1s;
    o.keepalive_count_max = 3;
    auto t = make(o);
    ASSERT_TRUE(t->connect().ok());
    // An endless stream; the link dies under it after a second.
    PatternSource source(UINT64_MAX, 3);
    std::thread cutter([&] {
        std::this_thread::sleep_for(1s);
        (void)s_lab->mute("beta");
    });
    auto t0 = std::chrono::steady_clock::now();
    auto r = t->exec({"sh", "-c", "cat > /dev/null"}, RunIo{&source, nullptr, nullptr});
    auto elapsed = std::chrono::steady_clock::now() - t0;
    cutter.join();
    ASSERT_TRUE(s_lab->unmute("beta").ok());
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Code::connection_lost) << r.status().to_string();
    EXPECT_NE(r.status().message().find(s_lab->ip("beta")), std::string::npos);
    EXPECT_LT(elapsed, 30s);
    // The transport stays honest afterwards: still lost, not "not connected".
    auto after = t->exec({"true"}, RunIo{});
    ASSERT_FALSE(after.ok());
    EXPECT_EQ(after.status().code(), Code::connection_lost) << after.status().to_string();
}

INSTANTIATE_TEST_SUITE_P(Backends, SshTransportTest,
                         ::testing::Values(SshBackend::openssh, SshBackend::libssh2),
                         [](const auto& param_info) {
                             return std::string(ssh_backend_name(param_info.param));
                         });

}  // namespace
}  // namespace vmlift

#include "connectors/http/websocket.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <poll.h>

#include <algorithm>
#include <cctype>
#include <mutex>
#include <regex>

#include "connectors/http/curl_tls.h"

namespace vmlift::http {
namespace {

constexpr uint8_t k_cont = 0x0, k_text = 0x1, k_binary = 0x2, k_close = 0x8, k_ping = 0x9,
                  k_pong = 0xA;

std::string base64(const unsigned char* data, size_t n) {
    std::string out(4 * ((n + 2) / 3), '\0');
    int len =
        EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(n));
    out.resize(static_cast<size_t>(len));
    return out;
}

std::string lower(std::string s) {
    for (auto& c : s) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return s;
}

// RFC 3629 UTF-8, no overlongs, no surrogates.
bool valid_utf8(std::string_view s) {
    size_t i = 0;
    while (i < s.size()) {
        auto c = static_cast<unsigned char>(s[i]);
        size_t n = 0;
        uint32_t cp = 0;
        if (c < 0x80) {
            ++i;
            continue;
        }
        if ((c >> 5) == 6) {
            n = 1;
            cp = c & 0x1F;
        } else if ((c >> 4) == 14) {
            n = 2;
            cp = c & 0x0F;
        } else if ((c >> 3) == 30) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + n >= s.size()) {
            return false;
        }
        for (size_t k = 1; k <= n; ++k) {
            auto d = static_cast<unsigned char>(s[i + k]);
            if ((d & 0xC0) != 0x80) {
                return false;
            }
            cp = (cp << 6) | (d & 0x3F);
        }
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            return false;
        }
        i += n + 1;
    }
    return true;
}

}  // namespace

std::string websocket_accept(const std::string& key) {
    std::string in = key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    unsigned char md[SHA_DIGEST_LENGTH];
    SHA1(reinterpret_cast<const unsigned char*>(in.data()), in.size(), md);
    return base64(md, sizeof md);
}

bool is_loopback_host(const std::string& host) {
    std::string h = lower(host);
    if (!h.empty() && h.front() == '[' && h.back() == ']') {
        h = h.substr(1, h.size() - 2);
    }
    if (h == "localhost" || h == "::1") {
        return true;
    }
    return h.rfind("127.", 0) == 0 &&
           std::all_of(h.begin(), h.end(), [](char c) { return c == '.' || std::isdigit(c); });
}

Result<WsUrl> parse_ws_url(const std::string& url) {
    static const std::regex re(R"(^(wss?)://(\[[0-9a-fA-F:]+\]|[^:/\[\]]+)(?::(\d+))?(/.*)?$)");
    std::smatch m;
    if (!std::regex_match(url, m, re)) {
        return Status(Code::invalid_input, "'" + url + "' is not a ws:// or wss:// URL");
    }
    WsUrl u;
    u.tls = m[1].str() == "wss";
    u.host = m[2].str();
    u.port = m[3].matched ? std::stoi(m[3].str()) : (u.tls ? 443 : 80);
    u.path = m[4].matched ? m[4].str() : "/";
    return u;
}

struct WebSocket::Impl {
    CURL* curl = nullptr;
    PinState pin;
    WsOptions options;
    std::string where;
    std::string inbox;  // received bytes not yet parsed
    bool open = false;

    ~Impl() {
        if (curl) {
            curl_easy_cleanup(curl);
        }
    }

    Status fail(Code code, const std::string& what) {
        open = false;
        return Status(code, where + ": " + what);
    }

    // Waits until the socket is readable/writable or the deadline passes.
    Status wait(bool for_read, std::chrono::steady_clock::time_point deadline) {
        curl_socket_t fd = CURL_SOCKET_BAD;
        curl_easy_getinfo(curl, CURLINFO_ACTIVESOCKET, &fd);
        if (fd == CURL_SOCKET_BAD) {
            return fail(Code::connection_lost, "the connection is closed");
        }
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            return Status(Code::timeout, where + ": timed out");
        }
        pollfd p{fd, static_cast<short>(for_read ? POLLIN : POLLOUT), 0};
        int r = ::poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 1 << 30)));
        if (r == 0) {
            return Status(Code::timeout, where + ": timed out");
        }
        return {};
    }

    Status send_all(std::string_view data) {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        while (!data.empty()) {
            size_t sent = 0;
            CURLcode rc = curl_easy_send(curl, data.data(), data.size(), &sent);
            if (rc == CURLE_AGAIN) {
                VMLIFT_RETURN_IF_ERROR(wait(false, deadline));
                continue;
            }
            if (rc != CURLE_OK) {
                Status why = close_reason();
                return why.ok() ? fail(Code::connection_lost,
                                       std::string("send failed: ") + curl_easy_strerror(rc))
                                : why;
            }
            data.remove_prefix(sent);
        }
        return {};
    }

    // After a failed send: the close frame the server sent before it hung
    // up, if it is still readable (e.g. 1009 for a message over its limit).
    Status close_reason() {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
        for (;;) {
            size_t at = 0;
            while (inbox.size() - at >= 2) {
                auto b0 = static_cast<uint8_t>(inbox[at]);
                uint64_t n = static_cast<uint8_t>(inbox[at + 1]) & 0x7F;
                size_t header = n == 126 ? 4 : n == 127 ? 10 : 2;
                if (n >= 126 || inbox.size() - at < header + n) {
                    break;  // only small frames matter here (a close is <= 125)
                }
                if ((b0 & 0x0F) == k_close && n >= 2) {
                    std::string p = inbox.substr(at + header, n);
                    int code = (static_cast<uint8_t>(p[0]) << 8) | static_cast<uint8_t>(p[1]);
                    return fail(Code::connection_lost,
                                "closed by the server: " + std::to_string(code) +
                                    (n > 2 ? " " + p.substr(2) : ""));
                }
                at += header + n;
            }
            char buf[4096];
            size_t got = 0;
            CURLcode rc = curl_easy_recv(curl, buf, sizeof buf, &got);
            if (rc == CURLE_AGAIN && std::chrono::steady_clock::now() < deadline) {
                if (!wait(true, deadline).ok()) {
                    return {};
                }
                continue;
            }
            if (rc != CURLE_OK || got == 0) {
                return {};
            }
            inbox.append(buf, got);
        }
    }

    // Appends at least one byte to inbox, or fails.
    Status fill(std::chrono::steady_clock::time_point deadline) {
        for (;;) {
            char buf[65536];
            size_t got = 0;
            CURLcode rc = curl_easy_recv(curl, buf, sizeof buf, &got);
            if (rc == CURLE_AGAIN) {
                VMLIFT_RETURN_IF_ERROR(wait(true, deadline));
                continue;
            }
            if (rc != CURLE_OK) {
                return fail(Code::connection_lost,
                            std::string("receive failed: ") + curl_easy_strerror(rc));
            }
            if (got == 0) {
                return fail(Code::connection_lost, "the server closed the connection");
            }
            inbox.append(buf, got);
            return {};
        }
    }

    Status send_frame(bool fin, uint8_t opcode, std::string_view payload) {
        std::string f;
        f += static_cast<char>((fin ? 0x80 : 0) | opcode);
        uint64_t n = payload.size();
        if (n < 126) {
            f += static_cast<char>(0x80 | n);
        } else if (n < 65536) {
            f += static_cast<char>(0x80 | 126);
            f += static_cast<char>(n >> 8);
            f += static_cast<char>(n & 0xff);
        } else {
            f += static_cast<char>(0x80 | 127);
            for (int b = 7; b >= 0; --b) {
                f += static_cast<char>((n >> (8 * b)) & 0xff);
            }
        }
        unsigned char mask[4];
        RAND_bytes(mask, 4);
        f.append(reinterpret_cast<char*>(mask), 4);
        size_t at = f.size();
        f.append(payload);
        for (size_t i = 0; i < payload.size(); ++i) {
            f[at + i] = static_cast<char>(f[at + i] ^ static_cast<char>(mask[i % 4]));
        }
        return send_all(f);
    }

    // Fails the connection with a close code (RFC 6455 7.4.1).
    Status protocol_error(uint16_t code, const std::string& what) {
        std::string payload;
        payload += static_cast<char>(code >> 8);
        payload += static_cast<char>(code & 0xff);
        payload += what.substr(0, 100);
        (void)send_frame(true, k_close, payload);
        return fail(code == 1009 ? Code::invalid_input : Code::remote_failed,
                    what + " (closed with " + std::to_string(code) + ")");
    }

    struct Frame {
        bool fin = false;
        uint8_t opcode = 0;
        std::string payload;
    };

    Result<Frame> read_frame(std::chrono::steady_clock::time_point deadline, size_t limit) {
        while (inbox.size() < 2) {
            VMLIFT_RETURN_IF_ERROR(fill(deadline));
        }
        auto b0 = static_cast<uint8_t>(inbox[0]);
        auto b1 = static_cast<uint8_t>(inbox[1]);
        Frame f;
        f.fin = (b0 & 0x80) != 0;
        f.opcode = b0 & 0x0F;
        if ((b0 & 0x70) != 0) {
            return protocol_error(1002, "reserved bits set by the server");
        }
        if ((b1 & 0x80) != 0) {
            return protocol_error(1002, "the server masked a frame");
        }
        uint64_t n = b1 & 0x7F;
        size_t header = 2;
        if (n == 126) {
            header = 4;
        } else if (n == 127) {
            header = 10;
        }
        while (inbox.size() < header) {
            VMLIFT_RETURN_IF_ERROR(fill(deadline));
        }
        if (n == 126) {
            n = (static_cast<uint64_t>(static_cast<uint8_t>(inbox[2])) << 8) |
                static_cast<uint8_t>(inbox[3]);
        } else if (n == 127) {
            n = 0;
            for (int i = 2; i < 10; ++i) {
                n = (n << 8) | static_cast<uint8_t>(inbox[static_cast<size_t>(i)]);
            }
        }
        const bool control = (f.opcode & 0x8) != 0;
        if (control && (n > 125 || !f.fin)) {
            return protocol_error(1002, "fragmented or oversized control frame");
        }
        if (n > limit) {
            return protocol_error(1009, "message larger than the limit of " +
                                            std::to_string(options.max_message) + " bytes");
        }
        while (inbox.size() < header + n) {
            VMLIFT_RETURN_IF_ERROR(fill(deadline));
        }
        f.payload = inbox.substr(header, n);
        inbox.erase(0, header + n);
        return f;
    }
};

WebSocket::WebSocket() : m_impl(std::make_unique<Impl>()) {}
WebSocket::~WebSocket() {
    if (m_impl->open) {
        (void)m_impl->send_frame(true, k_close, std::string("\x03\xe9", 2));  // 1001 going away
    }
}

bool WebSocket::is_open() const {
    return m_impl->open;
}

Result<std::unique_ptr<WebSocket>> WebSocket::connect(const WsOptions& options) {
    curl_init_once();
    auto url = parse_ws_url(options.url);
    if (!url.ok()) {
        return url.status();
    }
    std::unique_ptr<WebSocket> ws(new WebSocket());
    Impl& s = *ws->m_impl;
    s.options = options;
    s.where = options.url;
    s.pin.expected = normalize_fingerprint(options.tls.fingerprint);
    if (options.tls.mode == TlsMode::pinned && s.pin.expected.empty()) {
        return Status(Code::invalid_input, "the pinned fingerprint '" + options.tls.fingerprint +
                                               "' is not a SHA-256 fingerprint");
    }
    s.curl = curl_easy_init();
    if (!s.curl) {
        return Status(Code::internal, "libcurl could not be initialised");
    }
    const std::string http_url = std::string(url->tls ? "https" : "http") + "://" + url->host +
                                 ":" + std::to_string(url->port) + url->path;
    curl_easy_setopt(s.curl, CURLOPT_URL, http_url.c_str());
    curl_easy_setopt(s.curl, CURLOPT_CONNECT_ONLY, 1L);
    curl_easy_setopt(s.curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(s.curl, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(options.connect_timeout.count() * 1000));
    if (url->tls) {
        apply_tls(s.curl, options.tls, &s.pin);
    }
    CURLcode rc = curl_easy_perform(s.curl);
    if (rc != CURLE_OK) {
        return curl_error(rc, options.url, options.tls, s.pin);
    }
    s.open = true;
    unsigned char nonce[16];
    RAND_bytes(nonce, sizeof nonce);
    const std::string key = base64(nonce, sizeof nonce);
    const bool default_port = url->port == (url->tls ? 443 : 80);
    std::string request = "GET " + url->path +
                          " HTTP/1.1\r\n"
                          "Host: " +
                          url->host + (default_port ? "" : ":" + std::to_string(url->port)) +
                          "\r\n"
                          "Upgrade: websocket\r\n"
                          "Connection: Upgrade\r\n"
                          "Sec-WebSocket-Key: " +
                          key +
                          "\r\n"
                          "Sec-WebSocket-Version: 13\r\n"
                          "User-Agent: vmlift\r\n\r\n";
    VMLIFT_RETURN_IF_ERROR(s.send_all(request));
    auto deadline = std::chrono::steady_clock::now() + options.connect_timeout;
    size_t end = std::string::npos;
    while ((end = s.inbox.find("\r\n\r\n")) == std::string::npos) {
        if (s.inbox.size() > 16384) {
            return s.fail(Code::remote_failed, "the upgrade answer's headers are too long");
        }
        Status st = s.fill(deadline);
        if (!st.ok()) {
            return Status(st.code(), st.message() + " (during the WebSocket upgrade)");
        }
    }
    std::string head = s.inbox.substr(0, end);
    s.inbox.erase(0, end + 4);
    std::string status_line = head.substr(0, head.find("\r\n"));
    std::string accept, upgrade, connection;
    size_t pos = head.find("\r\n");
    while (pos != std::string::npos && pos < head.size()) {
        size_t next = head.find("\r\n", pos + 2);
        std::string line =
            head.substr(pos + 2, next == std::string::npos ? std::string::npos : next - pos - 2);
        size_t colon = line.find(':');
        if (colon != std::string::npos) {
            std::string name = lower(line.substr(0, colon));
            std::string value = line.substr(colon + 1);
            value.erase(0, value.find_first_not_of(' '));
            while (!value.empty() && value.back() == ' ') {
                value.pop_back();
            }
            if (name == "sec-websocket-accept") {
                accept = value;
            } else if (name == "upgrade") {
                upgrade = lower(value);
            } else if (name == "connection") {
                connection = lower(value);
            }
        }
        pos = next;
    }
    if (status_line.find(" 101") == std::string::npos) {
        return s.fail(Code::remote_failed,
                      "the server refused the WebSocket upgrade: " + status_line);
    }
    if (upgrade != "websocket" || connection.find("upgrade") == std::string::npos) {
        return s.fail(Code::remote_failed, "the upgrade answer lacks Upgrade/Connection headers");
    }
    if (accept != websocket_accept(key)) {
        return s.fail(Code::remote_failed,
                      "the server's Sec-WebSocket-Accept does not match our key (not a WebSocket "
                      "server, or a proxy in the way)");
    }
    return ws;
}

Status WebSocket::send_text(std::string_view text) {
    if (!m_impl->open) {
        return Status(Code::connection_lost, m_impl->where + ": the connection is closed");
    }
    return m_impl->send_frame(true, k_text, text);
}

Status WebSocket::send_binary(std::string_view data) {
    if (!m_impl->open) {
        return Status(Code::connection_lost, m_impl->where + ": the connection is closed");
    }
    return m_impl->send_frame(true, k_binary, data);
}

Status WebSocket::send_frame(bool fin, uint8_t opcode, std::string_view payload) {
    return m_impl->send_frame(fin, opcode, payload);
}

Status WebSocket::ping(std::string_view payload) {
    return m_impl->send_frame(true, k_ping, payload.substr(0, 125));
}

Result<WsMessage> WebSocket::receive(std::chrono::milliseconds timeout) {
    Impl& s = *m_impl;
    if (!s.open) {
        return Status(Code::connection_lost, s.where + ": the connection is closed");
    }
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    WsMessage message;
    bool in_message = false;
    for (;;) {
        size_t room = s.options.max_message - (in_message ? message.data.size() : 0);
        auto frame = s.read_frame(deadline, std::max<size_t>(room, 125));
        if (!frame.ok()) {
            return frame.status();
        }
        switch (frame->opcode) {
            case k_ping:
                VMLIFT_RETURN_IF_ERROR(s.send_frame(true, k_pong, frame->payload));
                continue;
            case k_pong:
                continue;
            case k_close: {
                uint16_t code = 1005;
                std::string reason;
                if (frame->payload.size() >= 2) {
                    code = static_cast<uint16_t>((static_cast<uint8_t>(frame->payload[0]) << 8) |
                                                 static_cast<uint8_t>(frame->payload[1]));
                    reason = frame->payload.substr(2);
                }
                (void)s.send_frame(true, k_close, frame->payload.substr(0, 2));
                return s.fail(Code::connection_lost,
                              "closed by the server: " + std::to_string(code) +
                                  (reason.empty() ? "" : " " + reason));
            }
            case k_text:
            case k_binary:
                if (in_message) {
                    return s.protocol_error(1002, "a new message started inside a fragmented one");
                }
                in_message = true;
                message.kind = frame->opcode == k_text ? WsKind::text : WsKind::binary;
                message.data = std::move(frame->payload);
                break;
            case k_cont:
                if (!in_message) {
                    return s.protocol_error(1002, "a continuation frame without a message");
                }
                message.data += frame->payload;
                break;
            default:
                return s.protocol_error(1002, "unknown opcode " + std::to_string(frame->opcode));
        }
        if (message.data.size() > s.options.max_message) {
            return s.protocol_error(1009, "message larger than the limit of " +
                                              std::to_string(s.options.max_message) + " bytes");
        }
        if (frame->fin) {
            if (message.kind == WsKind::text && !valid_utf8(message.data)) {
                return s.protocol_error(1007, "a text message is not valid UTF-8");
            }
            return message;
        }
    }
}

Status WebSocket::close(uint16_t code, const std::string& reason) {
    Impl& s = *m_impl;
    if (!s.open) {
        return {};
    }
    std::string payload;
    payload += static_cast<char>(code >> 8);
    payload += static_cast<char>(code & 0xff);
    payload += reason.substr(0, 123);
    VMLIFT_RETURN_IF_ERROR(s.send_frame(true, k_close, payload));
    // Wait briefly for the server's close frame.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    for (;;) {
        auto frame = s.read_frame(deadline, s.options.max_message);
        if (!frame.ok() || frame->opcode == k_close) {
            break;
        }
    }
    s.open = false;
    return {};
}

}  // namespace vmlift::http

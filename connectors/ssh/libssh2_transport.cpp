#include "connectors/ssh/libssh2_transport.h"

#include <fcntl.h>
#include <libssh2.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>

#include "connectors/ssh/known_hosts.h"
#include "engine/quote.h"

namespace vmlift {
namespace {

using SteadyClock = std::chrono::steady_clock;

void init_library_once() {
    static std::once_flag once;
    std::call_once(once, [] { libssh2_init(0); });
}

int signal_number(const char* name) {
    if (!name) {
        return 0;
    }
    for (int sig = 1; sig < 65; ++sig) {
        const char* abbrev = sigabbrev_np(sig);
        if (abbrev && std::strcmp(abbrev, name) == 0) {
            return sig;
        }
    }
    return 0;
}

int remaining_ms(SteadyClock::time_point deadline) {
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
    return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

// libssh2 1.10's method_pref corrupts memory (overlapping memcpy) when it
// drops a method it does not support, so only supported ones are offered.
void prefer_methods(LIBSSH2_SESSION* session, int method_type, const std::string& wanted) {
    const char** algs = nullptr;
    int count = libssh2_session_supported_algs(session, method_type, &algs);
    if (count <= 0 || !algs) {
        return;
    }
    std::string supported_list;
    size_t start = 0;
    while (start < wanted.size()) {
        size_t end = wanted.find(',', start);
        if (end == std::string::npos) {
            end = wanted.size();
        }
        std::string name = wanted.substr(start, end - start);
        for (int i = 0; i < count; ++i) {
            if (name == algs[i]) {
                supported_list += (supported_list.empty() ? "" : ",") + name;
                break;
            }
        }
        start = end + 1;
    }
    libssh2_free(session, static_cast<void*>(algs));
    if (!supported_list.empty()) {
        libssh2_session_method_pref(session, method_type, supported_list.c_str());
    }
}

struct PasswordContext {
    const std::string* password;
};

void kbd_callback(const char*, int, const char*, int, int num_prompts,
                  const LIBSSH2_USERAUTH_KBDINT_PROMPT*,
                  LIBSSH2_USERAUTH_KBDINT_RESPONSE* responses, void** abstract) {
    auto* ctx = static_cast<PasswordContext*>(*abstract);
    for (int i = 0; i < num_prompts; ++i) {
        // libssh2 frees the responses with its allocator (free by default).
        responses[i].text = strdup(ctx->password->c_str());
        responses[i].length = static_cast<unsigned int>(ctx->password->size());
    }
}

}  // namespace

Libssh2Transport::Libssh2Transport(SshOptions options) : m_options(std::move(options)) {
    init_library_once();
}

Libssh2Transport::~Libssh2Transport() {
    close();
}

Status Libssh2Transport::session_error(const std::string& what) {
    char* msg = nullptr;
    int rc = libssh2_session_last_error(m_session, &msg, nullptr, 0);
    std::string text = msg ? msg : "unknown error";
    if (rc == LIBSSH2_ERROR_SOCKET_RECV || rc == LIBSSH2_ERROR_SOCKET_SEND ||
        rc == LIBSSH2_ERROR_SOCKET_DISCONNECT || rc == LIBSSH2_ERROR_TIMEOUT ||
        rc == LIBSSH2_ERROR_SOCKET_TIMEOUT) {
        return connection_lost_error(m_options.target, what + ": " + text);
    }
    return Status(Code::remote_failed, what + " on " + m_options.target.describe() + ": " + text);
}

Status Libssh2Transport::connect_socket() {
    const SshTarget& t = m_options.target;
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* list = nullptr;
    std::string port = std::to_string(t.port);
    int gai = ::getaddrinfo(t.host.c_str(), port.c_str(), &hints, &list);
    if (gai != 0) {
        return unreachable_error(t, std::string("cannot resolve host name: ") + gai_strerror(gai));
    }
    const auto deadline = SteadyClock::now() + m_options.connect_timeout;
    std::string last_reason = "no address to try";
    bool timed_out = false;
    for (addrinfo* ai = list; ai; ai = ai->ai_next) {
        int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                          ai->ai_protocol);
        if (fd < 0) {
            last_reason = std::strerror(errno);
            continue;
        }
        int rc = ::connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (rc != 0 && errno == EINPROGRESS) {
            pollfd pfd{fd, POLLOUT, 0};
            int pr = 0;
            do {
                pr = ::poll(&pfd, 1, remaining_ms(deadline));
            } while (pr < 0 && errno == EINTR);
            if (pr == 0) {
                timed_out = true;
                ::close(fd);
                break;
            }
            int err = 0;
            socklen_t len = sizeof err;
            ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
            rc = err == 0 ? 0 : -1;
            errno = err;
        }
        if (rc != 0) {
            last_reason = std::strerror(errno);
            ::close(fd);
            continue;
        }
        m_socket = fd;
        break;
    }
    ::freeaddrinfo(list);
    if (m_socket < 0) {
        return timed_out ? connect_timeout_error(t, m_options.connect_timeout)
                         : unreachable_error(t, last_reason);
    }
    int one = 1;
    int idle = static_cast<int>(m_options.keepalive_interval.count());
    int count = m_options.keepalive_count_max;
    unsigned user_timeout = static_cast<unsigned>(idle * count * 1000);
    ::setsockopt(m_socket, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ::setsockopt(m_socket, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    ::setsockopt(m_socket, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    ::setsockopt(m_socket, IPPROTO_TCP, TCP_KEEPINTVL, &idle, sizeof idle);
    ::setsockopt(m_socket, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
    ::setsockopt(m_socket, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof user_timeout);
    int buf = 4 << 20;
    ::setsockopt(m_socket, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
    ::setsockopt(m_socket, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
    return {};
}

Status Libssh2Transport::handshake() {
    m_session = libssh2_session_init();
    if (!m_session) {
        return Status(Code::internal, "libssh2_session_init failed");
    }
    libssh2_session_set_blocking(m_session, 1);
    libssh2_session_set_timeout(m_session,
                                static_cast<long>(m_options.connect_timeout.count() * 1000));
    // The fastest supported methods come first.
    prefer_methods(m_session, LIBSSH2_METHOD_HOSTKEY,
                   "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,"
                   "rsa-sha2-512,rsa-sha2-256,ssh-rsa");
    prefer_methods(m_session, LIBSSH2_METHOD_CRYPT_CS, "aes128-ctr,aes192-ctr,aes256-ctr");
    prefer_methods(m_session, LIBSSH2_METHOD_CRYPT_SC, "aes128-ctr,aes192-ctr,aes256-ctr");
    prefer_methods(m_session, LIBSSH2_METHOD_MAC_CS, "hmac-sha2-256,hmac-sha2-512");
    prefer_methods(m_session, LIBSSH2_METHOD_MAC_SC, "hmac-sha2-256,hmac-sha2-512");
    int rc = libssh2_session_handshake(m_session, m_socket);
    if (rc == LIBSSH2_ERROR_TIMEOUT) {
        return connect_timeout_error(m_options.target, m_options.connect_timeout);
    }
    if (rc != 0) {
        char* msg = nullptr;
        libssh2_session_last_error(m_session, &msg, nullptr, 0);
        return unreachable_error(m_options.target,
                                 std::string("SSH handshake failed: ") + (msg ? msg : "?"));
    }
    VMLIFT_RETURN_IF_ERROR(check_host_key(m_session, m_options.target, m_options.known_hosts_file,
                                          m_options.host_key_policy));
    libssh2_keepalive_config(m_session, 1,
                             static_cast<unsigned>(m_options.keepalive_interval.count()));
    return {};
}

Status Libssh2Transport::authenticate() {
    const SshAuth& auth = m_options.auth;
    const std::string& user = m_options.target.user;
    const auto ulen = static_cast<unsigned int>(user.size());
    const char* methods = libssh2_userauth_list(m_session, user.c_str(), ulen);
    if (!methods) {
        if (libssh2_userauth_authenticated(m_session)) {
            return {};
        }
        return session_error("cannot list authentication methods");
    }
    std::string offered = methods;
    std::string tried;
    auto has = [&](const char* m) { return offered.find(m) != std::string::npos; };

    if (!auth.agent_socket.empty() && has("publickey")) {
        tried += "ssh-agent ";
        LIBSSH2_AGENT* agent = libssh2_agent_init(m_session);
        if (agent) {
            libssh2_agent_set_identity_path(agent, auth.agent_socket.c_str());
            bool ok = false;
            if (libssh2_agent_connect(agent) == 0 && libssh2_agent_list_identities(agent) == 0) {
                libssh2_agent_publickey* prev = nullptr;
                libssh2_agent_publickey* identity = nullptr;
                while (!ok && libssh2_agent_get_identity(agent, &identity, prev) == 0) {
                    ok = libssh2_agent_userauth(agent, user.c_str(), identity) == 0;
                    prev = identity;
                }
                libssh2_agent_disconnect(agent);
            }
            libssh2_agent_free(agent);
            if (ok) {
                return {};
            }
        }
    }
    std::string key_problem;
    if (!auth.identity_file.empty() && has("publickey")) {
        tried += "key " + auth.identity_file + " ";
        const char* pass = auth.passphrase ? auth.passphrase->c_str() : nullptr;
        int rc = libssh2_userauth_publickey_fromfile_ex(m_session, user.c_str(), ulen, nullptr,
                                                        auth.identity_file.c_str(), pass);
        if (rc == 0) {
            return {};
        }
        if (rc == LIBSSH2_ERROR_FILE) {
            key_problem = "cannot load private key " + auth.identity_file +
                          " (wrong passphrase, unreadable, or an unsupported format)";
        }
    }
    if (auth.password && has("password")) {
        tried += "password ";
        if (libssh2_userauth_password_ex(m_session, user.c_str(), ulen, auth.password->c_str(),
                                         static_cast<unsigned int>(auth.password->size()),
                                         nullptr) == 0) {
            return {};
        }
    }
    if (auth.password && has("keyboard-interactive")) {
        tried += "keyboard-interactive ";
        PasswordContext ctx{&*auth.password};
        *libssh2_session_abstract(m_session) = &ctx;
        int rc =
            libssh2_userauth_keyboard_interactive_ex(m_session, user.c_str(), ulen, kbd_callback);
        *libssh2_session_abstract(m_session) = nullptr;
        if (rc == 0) {
            return {};
        }
    }
    if (!key_problem.empty()) {
        return auth_failed_error(m_options.target, key_problem);
    }
    if (tried.empty()) {
        return auth_failed_error(m_options.target,
                                 "no usable credentials for the methods the "
                                 "server offers (" +
                                     offered + ")");
    }
    tried.pop_back();
    return auth_failed_error(m_options.target, "server offers " + offered + "; tried " + tried);
}

Status Libssh2Transport::connect() {
    std::lock_guard lock(m_mutex);
    if (m_session) {
        return {};
    }
    Status st = connect_socket();
    if (st.ok()) {
        st = handshake();
    }
    if (st.ok()) {
        st = authenticate();
    }
    if (!st.ok()) {
        if (m_session) {
            libssh2_session_free(m_session);
            m_session = nullptr;
        }
        if (m_socket >= 0) {
            ::close(m_socket);
            m_socket = -1;
        }
    }
    return st;
}

void Libssh2Transport::wait_socket(int timeout_ms) {
    int dirs = libssh2_session_block_directions(m_session);
    pollfd pfd{m_socket, POLLIN, 0};
    if (dirs & LIBSSH2_SESSION_BLOCK_OUTBOUND) {
        pfd.events |= POLLOUT;
    }
    ::poll(&pfd, 1, timeout_ms);
}

namespace {

// Pumps one channel until the remote side has closed it.
class ChannelPump {
  public:
    ChannelPump(LIBSSH2_SESSION* session, LIBSSH2_CHANNEL* channel, RunIo io)
        : m_session(session), m_channel(channel), m_io(io) {
        m_buffer.resize(k_buffer);
        m_stdin_done = io.in == nullptr;
    }

    bool finished() const { return m_out_eof && m_err_eof && m_stdin_done && m_eof_sent; }

    // Returns whether any progress was made; an error Status on failure.
    Result<bool> step() {
        bool progress = false;
        auto r = pump_stdin();
        if (!r.ok()) {
            return r.status();
        }
        progress |= *r;
        r = pump_out(0, m_io.out, m_out_eof);
        if (!r.ok()) {
            return r.status();
        }
        progress |= *r;
        r = pump_out(SSH_EXTENDED_DATA_STDERR, m_io.err, m_err_eof);
        if (!r.ok()) {
            return r.status();
        }
        progress |= *r;
        return progress;
    }

    int last_rc() const { return m_last_rc; }

  private:
    static constexpr size_t k_buffer = 256 * 1024;

    Result<bool> pump_stdin() {
        bool progress = false;
        if (!m_stdin_done) {
            if (m_pending_pos >= m_pending.size()) {
                m_pending.resize(k_buffer);
                auto n = m_io.in->read(m_pending.data(), m_pending.size());
                if (!n.ok()) {
                    return n.status();
                }
                m_pending.resize(*n);
                m_pending_pos = 0;
                if (*n == 0) {
                    m_stdin_done = true;
                }
            }
            while (m_pending_pos < m_pending.size()) {
                ssize_t w = libssh2_channel_write(m_channel, m_pending.data() + m_pending_pos,
                                                  m_pending.size() - m_pending_pos);
                if (w == LIBSSH2_ERROR_EAGAIN) {
                    break;
                }
                if (w == LIBSSH2_ERROR_CHANNEL_EOF_SENT || w == LIBSSH2_ERROR_CHANNEL_CLOSED ||
                    w == LIBSSH2_ERROR_CHANNEL_FAILURE) {
                    // The remote command is gone; its exit status says why.
                    m_stdin_done = true;
                    m_pending.clear();
                    m_pending_pos = 0;
                    break;
                }
                if (w < 0) {
                    m_last_rc = static_cast<int>(w);
                    return Status(Code::connection_lost, "write to the channel failed");
                }
                m_pending_pos += static_cast<size_t>(w);
                progress = true;
            }
        }
        if (m_stdin_done && !m_eof_sent && m_pending_pos >= m_pending.size()) {
            int rc = libssh2_channel_send_eof(m_channel);
            if (rc == 0 || rc == LIBSSH2_ERROR_CHANNEL_CLOSED ||
                rc == LIBSSH2_ERROR_CHANNEL_EOF_SENT) {
                m_eof_sent = true;
                progress = true;
            } else if (rc != LIBSSH2_ERROR_EAGAIN) {
                m_last_rc = rc;
                return Status(Code::connection_lost, "sending EOF failed");
            }
        }
        if (!m_stdin_done && libssh2_channel_eof(m_channel) && m_out_eof && m_err_eof) {
            // The remote closed its side without reading everything.
            m_stdin_done = true;
            m_pending.clear();
            m_pending_pos = 0;
        }
        return progress;
    }

    Result<bool> pump_out(int stream, ByteSink* sink, bool& eof) {
        bool progress = false;
        while (!eof) {
            ssize_t r =
                libssh2_channel_read_ex(m_channel, stream, m_buffer.data(), m_buffer.size());
            if (r > 0) {
                progress = true;
                if (sink) {
                    VMLIFT_RETURN_IF_ERROR(
                        sink->write(std::string_view(m_buffer.data(), static_cast<size_t>(r))));
                }
                continue;
            }
            if (r == LIBSSH2_ERROR_EAGAIN) {
                break;
            }
            if (r == 0) {
                if (libssh2_channel_eof(m_channel)) {
                    eof = true;
                    progress = true;
                }
                break;
            }
            m_last_rc = static_cast<int>(r);
            return Status(Code::connection_lost, "read from the channel failed");
        }
        return progress;
    }

    LIBSSH2_SESSION* m_session;
    LIBSSH2_CHANNEL* m_channel;
    RunIo m_io;
    std::string m_buffer;
    std::string m_pending;
    size_t m_pending_pos = 0;
    bool m_stdin_done = false;
    bool m_eof_sent = false;
    bool m_out_eof = false;
    bool m_err_eof = false;
    int m_last_rc = 0;
};

}  // namespace

Result<ExitStatus> Libssh2Transport::exec(const std::vector<std::string>& argv, RunIo io,
                                          ExecOptions options) {
    std::lock_guard lock(m_mutex);
    if (!m_session) {
        return Status(Code::internal,
                      "exec on " + m_options.target.describe() + " before connect()");
    }
    auto line = shell_join(argv);
    if (!line.ok()) {
        return line.status();
    }
    const bool has_deadline = options.timeout.count() > 0;
    const auto deadline = SteadyClock::now() + options.timeout;
    libssh2_session_set_blocking(m_session, 0);
    struct RestoreBlocking {
        LIBSSH2_SESSION* s;
        ~RestoreBlocking() { libssh2_session_set_blocking(s, 1); }
    } restore{m_session};

    auto wait_or_fail = [&](int rc, const char* what) -> Status {
        if (rc != LIBSSH2_ERROR_EAGAIN) {
            return session_error(what);
        }
        if (has_deadline && SteadyClock::now() >= deadline) {
            return Status(Code::timeout,
                          std::string(what) + " on " + m_options.target.describe() + " timed out");
        }
        wait_socket(200);
        return {};
    };

    LIBSSH2_CHANNEL* channel = nullptr;
    while (!(channel = libssh2_channel_open_ex(m_session, "session", sizeof("session") - 1,
                                               16 * 1024 * 1024, LIBSSH2_CHANNEL_PACKET_DEFAULT,
                                               nullptr, 0))) {
        VMLIFT_RETURN_IF_ERROR(
            wait_or_fail(libssh2_session_last_errno(m_session), "opening a channel"));
    }
    struct FreeChannel {
        LIBSSH2_CHANNEL* c;
        ~FreeChannel() { libssh2_channel_free(c); }
    } free_channel{channel};

    int rc = 0;
    while ((rc = libssh2_channel_process_startup(channel, "exec", sizeof("exec") - 1, line->c_str(),
                                                 static_cast<unsigned int>(line->size()))) != 0) {
        VMLIFT_RETURN_IF_ERROR(wait_or_fail(rc, "starting the remote command"));
    }

    ChannelPump pump(m_session, channel, io);
    while (!pump.finished()) {
        if (has_deadline && SteadyClock::now() >= deadline) {
            libssh2_channel_close(channel);
            return Status(Code::timeout,
                          "`" + argv.front() + "` on " + m_options.target.describe() +
                              " did not finish within " +
                              std::to_string(options.timeout.count() / 1000) +
                              " s; raise --task-timeout-sec if the work is that long");
        }
        auto progress = pump.step();
        if (!progress.ok()) {
            if (progress.status().code() == Code::connection_lost) {
                return session_error("running `" + argv.front() + "`");
            }
            return progress.status();
        }
        int next_keepalive = 0;
        if (libssh2_keepalive_send(m_session, &next_keepalive) != 0 &&
            libssh2_session_last_errno(m_session) != LIBSSH2_ERROR_EAGAIN) {
            return session_error("sending a keepalive");
        }
        if (!*progress) {
            int wait = 200;
            if (has_deadline) {
                wait = std::min(wait, remaining_ms(deadline) + 1);
            }
            wait_socket(wait);
        }
    }
    while ((rc = libssh2_channel_close(channel)) == LIBSSH2_ERROR_EAGAIN) {
        wait_socket(200);
    }
    while ((rc = libssh2_channel_wait_closed(channel)) == LIBSSH2_ERROR_EAGAIN) {
        VMLIFT_RETURN_IF_ERROR(wait_or_fail(rc, "closing the channel"));
    }
    ExitStatus exit;
    char* signal_name = nullptr;
    libssh2_channel_get_exit_signal(channel, &signal_name, nullptr, nullptr, nullptr, nullptr,
                                    nullptr);
    if (signal_name) {
        exit.kind = ExitStatus::Kind::signaled;
        exit.signal = signal_number(signal_name);
        libssh2_free(m_session, signal_name);
    } else {
        exit.code = libssh2_channel_get_exit_status(channel);
    }
    return exit;
}

void Libssh2Transport::close() {
    std::lock_guard lock(m_mutex);
    if (m_session) {
        libssh2_session_set_blocking(m_session, 1);
        libssh2_session_set_timeout(m_session, 2000);
        libssh2_session_disconnect(m_session, "vmlift done");
        libssh2_session_free(m_session);
        m_session = nullptr;
    }
    if (m_socket >= 0) {
        ::close(m_socket);
        m_socket = -1;
    }
}

}  // namespace vmlift

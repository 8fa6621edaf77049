// libssh2 backend of SshTransport: the SSH protocol in-process.
//
// Lifecycle
//   connect(): non-blocking TCP connect bounded by connect_timeout (every
//   address getaddrinfo returns is tried), TCP keepalive and
//   TCP_USER_TIMEOUT = keepalive_interval * keepalive_count_max so a dead
//   link fails even while data is in flight, SSH handshake (bounded by the
//   same timeout), host key check (known_hosts.h), then authentication in
//   order: ssh-agent (options.auth.agent_socket), identity file (with
//   passphrase), password, keyboard-interactive with the password.
//   exec(): one session channel per call, pumped non-blocking from this
//   thread: stdin from the source, stdout/stderr into the sinks, SSH
//   keepalives on schedule; exit status and exit signal are returned.
//   close(): disconnects and frees; safe to call twice.
// Limits
//   libssh2 1.10 (Debian 12) has no AES-GCM or chacha20; aes-ctr with
//   hmac-sha2 is preferred. One session is not thread-safe: one exec at a
//   time per object (guarded by a mutex).
#pragma once

#include <mutex>

#include "engine/transport.h"

typedef struct _LIBSSH2_SESSION LIBSSH2_SESSION;
typedef struct _LIBSSH2_CHANNEL LIBSSH2_CHANNEL;

namespace vmlift {

class Libssh2Transport : public SshTransport {
  public:
    explicit Libssh2Transport(SshOptions options);
    ~Libssh2Transport() override;

    Status connect() override;
    Result<ExitStatus> exec(const std::vector<std::string>& argv, RunIo io,
                            ExecOptions options = {}) override;
    void close() override;
    const SshTarget& target() const override { return m_options.target; }
    SshBackend backend() const override { return SshBackend::libssh2; }

  private:
    Status connect_socket();
    Status handshake();
    Status authenticate();
    Status session_error(const std::string& what);
    // Blocks (bounded) until the socket is ready in the direction libssh2 wants.
    void wait_socket(int timeout_ms);

    SshOptions m_options;
    int m_socket = -1;
    LIBSSH2_SESSION* m_session = nullptr;
    std::mutex m_mutex;
};

}  // namespace vmlift

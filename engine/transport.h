// SSH transport: the engine's one way to run programs on another host.
//
// Contract
//   A transport is bound to one target (user@host:port). Lifecycle:
//   connect() once, then any number of exec() calls (one at a time), then
//   close() (also done by the destructor). connect() verifies the host key
//   against options.known_hosts_file under options.host_key_policy and
//   authenticates; it fails within connect_timeout when the host does not
//   answer.
//   exec(argv) builds the remote command line from argv with shell_join()
//   (the one quoting function), streams io.in to the remote stdin (EOF when
//   the source ends) and the remote stdout/stderr into io.out/io.err (null:
//   discarded), and returns the remote exit. A remote non-zero exit is a
//   value, not an error. Errors: connection_lost when the link drops,
//   timeout when options.timeout passes (the channel is closed; the remote
//   process then sees its pipes close), any error from a source or sink.
//   Keepalives run every keepalive_interval; keepalive_count_max unanswered
//   probes mean the link is lost.
//   Both backends (libssh2 in-process, OpenSSH client spawned from argv)
//   pass the same test suite and produce the same error texts, built by the
//   helpers below.
// Thread safety: one transport object per thread; use one transport per
//   host and per concurrent stream.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/io.h"
#include "engine/process.h"
#include "engine/status.h"

namespace vmlift {

enum class HostKeyPolicy {
    strict,             // the key must already be in known_hosts (default)
    accept_new,         // unknown hosts are added; a changed key is refused
    insecure_no_check,  // no verification at all; only on explicit request
};

enum class SshBackend { openssh, libssh2 };

const char* host_key_policy_name(HostKeyPolicy policy);
Result<HostKeyPolicy> parse_host_key_policy(const std::string& text);
const char* ssh_backend_name(SshBackend backend);
Result<SshBackend> parse_ssh_backend(const std::string& text);

struct SshTarget {
    std::string host;
    int port = 22;
    std::string user = "root";
    // "root@198.18.1.10:22"
    std::string describe() const;
    // known_hosts spelling: "host" for port 22, "[host]:port" otherwise.
    std::string known_hosts_name() const;
};

struct SshAuth {
    std::string identity_file;              // private key path; empty: none
    std::optional<std::string> passphrase;  // secret value (read from a file/env by the front end)
    std::optional<std::string> password;    // secret value
    std::string agent_socket;               // ssh-agent socket; empty: no agent
    bool forward_agent = false;             // OpenSSH -A, for direct host-to-host copies
};

struct SshOptions {
    SshTarget target;
    SshAuth auth;
    std::string known_hosts_file;
    HostKeyPolicy host_key_policy = HostKeyPolicy::strict;
    std::chrono::seconds connect_timeout{15};
    std::chrono::seconds keepalive_interval{15};
    int keepalive_count_max = 4;
    // OpenSSH backend only.
    std::string ssh_program = "ssh";
    std::string ssh_config_file;   // empty: no config file is read (-F /dev/null)
    std::string askpass_program;   // prints a secret for password/passphrase prompts
    std::vector<std::string> env;  // environment for the ssh client (PATH, ...)
};

struct ExecOptions {
    std::chrono::milliseconds timeout{0};  // 0: none
};

class SshTransport {
  public:
    virtual ~SshTransport() = default;
    virtual Status connect() = 0;
    virtual Result<ExitStatus> exec(const std::vector<std::string>& argv, RunIo io,
                                    ExecOptions options = {}) = 0;
    virtual void close() = 0;
    virtual const SshTarget& target() const = 0;
    virtual SshBackend backend() const = 0;
};

// Runs argv remotely with `input` on stdin and returns everything captured.
Result<Captured> exec_captured(SshTransport& transport, const std::vector<std::string>& argv,
                               const std::string& input = {}, ExecOptions options = {});

// Runs argv remotely and fails unless it exits 0; the error quotes stderr's last line.
Result<std::string> exec_checked(SshTransport& transport, const std::vector<std::string>& argv,
                                 const std::string& input = {}, ExecOptions options = {});

// The shared error texts, so both backends say the same thing.
Status host_key_changed_error(const SshTarget& target, const std::string& known_hosts_file);
Status host_key_unknown_error(const SshTarget& target, const std::string& known_hosts_file);
Status auth_failed_error(const SshTarget& target, const std::string& detail);
Status connect_timeout_error(const SshTarget& target, std::chrono::seconds timeout);
Status unreachable_error(const SshTarget& target, const std::string& reason);
Status connection_lost_error(const SshTarget& target, const std::string& reason);

}  // namespace vmlift

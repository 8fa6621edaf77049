// OpenSSH-client backend of SshTransport.
//
// Lifecycle
//   connect() starts one `ssh -M` master as a child process (its own process
//   group, owned by this object) with a control socket in a private 0700
//   temp directory. The master's session is a remote `cat >/dev/null` fed by
//   a pipe this object holds, so if the controller dies (even by SIGKILL)
//   the pipe closes, the session ends and the master exits; it then waits and waits until the
//   socket exists (authenticated) or the master exits (its stderr is classified into the shared
//   error texts: host key, auth, timeout, unreachable). exec() runs `ssh -S SOCKET ... HOST 'quoted
//   command'` through the process runner, so each command reuses the master's connection without a
//   new handshake. close() asks the master to exit, kills it if needed, and removes the temp
//   directory.
// Security
//   No user ssh_config is read unless options.ssh_config_file is set
//   (-F /dev/null). Host keys: StrictHostKeyChecking=yes|accept-new from the
//   policy, against options.known_hosts_file only (no global file);
//   "no" only for insecure_no_check. UpdateHostKeys=no: known_hosts is never
//   changed behind the user's back. A password or passphrase reaches ssh only
//   through options.askpass_program (SSH_ASKPASS_REQUIRE=force) reading a
//   0600 file in the private temp dir, never argv.
// Thread safety: one exec at a time per object.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "engine/process.h"
#include "engine/transport.h"

namespace vmlift {

class OpenSshTransport : public SshTransport {
  public:
    OpenSshTransport(SshOptions options, ProcessRunner& runner);
    ~OpenSshTransport() override;

    Status connect() override;
    Result<ExitStatus> exec(const std::vector<std::string>& argv, RunIo io,
                            ExecOptions options = {}) override;
    void close() override;
    const SshTarget& target() const override { return m_options.target; }
    SshBackend backend() const override { return SshBackend::openssh; }

    // The full client argv for a remote command line (exposed for tests).
    std::vector<std::string> client_argv(const std::string& command_line) const;
    std::vector<std::string> master_argv() const;

  private:
    std::vector<std::string> common_options() const;
    std::vector<std::string> client_env() const;
    Status classify_failure(const std::string& stderr_text) const;
    std::string read_master_stderr() const;

    SshOptions m_options;
    ProcessRunner& m_runner;
    std::string m_dir;  // private temp dir: control socket, askpass secret, master log
    std::unique_ptr<Process> m_master;
    int m_lifeline = -1;  // write end of the master's stdin; closing it ends the master
    Status m_lost;        // set once the master died; every later exec reports it
    std::mutex m_mutex;
};

}  // namespace vmlift

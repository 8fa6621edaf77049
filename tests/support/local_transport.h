// Fake SshTransport for unit tests: runs the quoted command line with
// /bin/sh -c on this machine, exactly as sshd hands it to the login shell.
// It exercises the same quoting and streaming paths without a network.
#pragma once

#include "engine/process.h"
#include "engine/quote.h"
#include "engine/transport.h"

namespace vmlift::testing_support {

class LocalTransport : public SshTransport {
  public:
    LocalTransport() { m_target.host = "localhost"; }
    Status connect() override { return {}; }
    Result<ExitStatus> exec(const std::vector<std::string>& argv, RunIo io,
                            ExecOptions options = {}) override {
        auto line = shell_join(argv);
        if (!line.ok()) {
            return line.status();
        }
        ProcessSpec spec;
        spec.argv = {"/bin/sh", "-c", *line};
        spec.env = default_tool_env();
        spec.timeout = options.timeout;
        return m_runner.run(spec, io);
    }
    void close() override {}
    const SshTarget& target() const override { return m_target; }
    SshBackend backend() const override { return SshBackend::openssh; }

  private:
    SshTarget m_target;
    PosixProcessRunner m_runner;
};

}  // namespace vmlift::testing_support

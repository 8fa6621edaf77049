#include "connectors/ssh/ssh_factory.h"

#include "connectors/ssh/libssh2_transport.h"
#include "connectors/ssh/openssh_transport.h"

namespace vmlift {

std::unique_ptr<SshTransport> make_ssh_transport(SshBackend backend, SshOptions options,
                                                 ProcessRunner& runner) {
    if (backend == SshBackend::libssh2) {
        return std::make_unique<Libssh2Transport>(std::move(options));
    }
    return std::make_unique<OpenSshTransport>(std::move(options), runner);
}

}  // namespace vmlift

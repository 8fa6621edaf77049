// The registry of SSH backends: the one place that knows both exist.
//
// Contract
//   make_ssh_transport() returns an unconnected transport for `backend`.
//   The OpenSSH backend spawns through `runner`, which must outlive it.
#pragma once

#include <memory>

#include "engine/process.h"
#include "engine/transport.h"

namespace vmlift {

std::unique_ptr<SshTransport> make_ssh_transport(SshBackend backend, SshOptions options,
                                                 ProcessRunner& runner);

}  // namespace vmlift

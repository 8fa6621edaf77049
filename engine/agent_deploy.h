// Putting vmlift-agent on a host and taking it away again.
//
// Contract
//   deploy_agent() makes `dir` (0700) on the host, uploads the local agent
//   as dir/vmlift-agent-<first 16 hex of its SHA-256> unless a file with
//   that exact SHA-256 is already there, and proves it executes. It returns
//   the remote path. A directory on a noexec mount (or any other reason the
//   binary cannot run) is an error naming the host and the directory and
//   saying to pass --agent-dir or --transport shell.
//   remove_run_dir() deletes a run-scoped directory (best effort); the
//   caller only ever passes the directory it deployed into for this run.
// Thread safety: as the transport.
#pragma once

#include <string>

#include "engine/transport.h"

namespace vmlift {

Result<std::string> sha256_file_hex(const std::string& path);

Result<std::string> deploy_agent(SshTransport& host, const std::string& local_agent,
                                 const std::string& dir);

void remove_run_dir(SshTransport& host, const std::string& dir);

}  // namespace vmlift

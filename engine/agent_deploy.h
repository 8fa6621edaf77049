// Putting vmlift-agent on a host and taking it away again.
//
// Contract
//   deploy_agent() makes `dir` (0700) on the host, uploads the local agent
//   as dir/vmlift-agent-<first 16 hex of its SHA-256> unless a file with
//   that exact SHA-256 is already there, checks the SHA-256 of what
//   arrived, and proves it executes, all in one remote command (each round
//   trip costs a session on the host). It returns the remote path and the
//   output of that first run. A directory on a noexec mount
//   (or any other reason the binary cannot run) is an error naming the host and the directory and
//   saying to pass --agent-dir or --transport shell.
//   The same command also writes `extras.files` (small files, mode 0600;
//   their content travels in argv, so never secrets) and deletes
//   `extras.remove` before the first run.
//   Run directories beside `dir` (run-*) untouched for seven days are
//   removed on the way: a controller that was killed cannot clean up.
//   remove_run_dir() deletes a run-scoped directory (best effort); the
//   caller only ever passes the directory it deployed into for this run.
// Thread safety: as the transport.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "engine/transport.h"

namespace vmlift {

Result<std::string> sha256_file_hex(const std::string& path);

struct DeployedAgent {
    std::string path;          // on the host
    std::string first_output;  // stdout of its first run
};
struct DeployExtras {
    std::vector<std::pair<std::string, std::string>> files;  // path, content
    std::vector<std::string> remove;
};

// `first`: the arguments of the agent's first run, whose stdout comes back
// (a caller with a question for the agent saves a round trip).
Result<DeployedAgent> deploy_agent(SshTransport& host, const std::string& local_agent,
                                   const std::string& dir,
                                   const std::vector<std::string>& first = {"--version"},
                                   const DeployExtras& extras = {});

// `also`: further paths to delete in the same command.
void remove_run_dir(SshTransport& host, const std::string& dir,
                    const std::vector<std::string>& also = {});

}  // namespace vmlift

// The guest-network edit run on another host: vmlift-agent is deployed there
// (agent_deploy.h) and does the whole edit_guest_disk() locally on that
// host, so no long remote shell script is ever built.
//
// Contract
//   edit_guest_disk_remote() deploys the agent into a run-scoped directory
//   under agent_dir, runs `vmlift-agent edit-guest` with the disk options
//   and the NICs as JSON, removes the directory again, and returns the
//   agent's JSON (as edit_guest_disk()). The agent's exit code carries the
//   error's Code, so an invalid layout stays invalid_input; the message is
//   the agent's last error line, prefixed with the host's name.
// Thread safety: as the transport.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/guest_disk.h"
#include "engine/guest_net.h"
#include "engine/transport.h"

namespace vmlift {

struct RemoteEdit {
    std::string host_name;    // for messages
    std::string local_agent;  // vmlift-agent on the controller
    std::string agent_dir = "/var/tmp/vmlift";
    std::string run_id;
    std::chrono::seconds timeout{1800};
};

Result<nlohmann::json> edit_guest_disk_remote(SshTransport& host, const RemoteEdit& how,
                                              const GuestDiskOptions& disk,
                                              const std::vector<GuestNic>& nics, bool dry_run);

}  // namespace vmlift

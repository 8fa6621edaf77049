// Rewriting a running guest's network configuration through its guest
// agent, before the source shuts down: the same planner as the offline
// rewrite (guest_net.h), with the guest's files fetched and written back.
//
// Contract
//   GuestExec runs one command in the guest (argv, no shell) with optional
//   stdin and returns its exit code and output; the Proxmox connector
//   implements it with agent/exec + agent/exec-status.
//   rewrite_guest_net_via_agent():
//     1. pulls the folders of every network stack plan_guest_net() reads,
//        and cloud-init's config, as one tar archive: `sh -c` with a fixed
//        script whose values travel as positional parameters, `tar` and
//        `base64` (present on GNU and busybox guests alike);
//     2. unpacks it with this machine's tar into options.work_dir/before and
//        /after, and refuses anything but regular files and folders there
//        (a symbolic link could point at this machine's files);
//     3. plans on `after` and, unless dry_run, applies the plan there;
//     4. calls record_undo with what restore needs (the originals stay in
//        work_dir/before) and only then changes the guest: a tar of exactly
//        the files written (new config, backups) is staged in the guest in
//        pieces that fit the agent's 64 KiB input, unpacked at the guest's
//        root, then the originals that moved to the backup folder are
//        removed and the guest's disks synced;
//     5. pulls and plans again: anything still to change is remote_failed
//        ("did not stick").
//   An already rewritten guest yields no changes and writes nothing.
//   The result is plan.to_json() plus method_used "agent", "verified" and
//   "diff" (dry run). Errors: the planner's invalid_input (no recognisable
//   config, a NIC it cannot name); remote_failed naming the guest command
//   and its stderr; the GuestExec's own errors (unreachable: the agent does not answer).
//   restore_guest_net_via_agent(record) writes the originals back and
//   removes the files the rewrite created.
// Thread safety: none; one guest at a time.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/guest_net.h"
#include "engine/process.h"
#include "engine/status.h"

namespace vmlift {

struct GuestExecResult {
    int exit_code = -1;
    std::string out;
    std::string err;
    bool truncated = false;  // the agent did not capture all of stdout
};

class GuestExec {
  public:
    virtual ~GuestExec() = default;
    virtual std::string describe() const = 0;  // "the guest agent of VM 101"
    virtual Result<GuestExecResult> exec(const std::vector<std::string>& argv,
                                         const std::string& input) = 0;
};

struct AgentNetOptions {
    std::string work_dir;          // private folder on this machine (created 0700)
    std::string guest_root = "/";  // tests: a folder standing in for the guest's root
    size_t max_input = 60000;      // bytes of stdin per agent exec (Proxmox: 65536)
    bool dry_run = false;
    std::function<Status(const nlohmann::json&)> record_undo;  // called before any change
};

Result<nlohmann::json> rewrite_guest_net_via_agent(GuestExec& guest, ProcessRunner& local,
                                                   std::vector<GuestNic> nics,
                                                   const AgentNetOptions& options);

Status restore_guest_net_via_agent(GuestExec& guest, ProcessRunner& local,
                                   const nlohmann::json& record, size_t max_input = 60000);

}  // namespace vmlift

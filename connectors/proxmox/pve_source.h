// The source side of a migration on Proxmox VE: find a VM, read it into a
// VmSpec, and act on it (power, marks, snapshots, hookscript, guest agent).
//
// Contract
//   parse_pve_url() reads pve://[USER@]HOST[:PORT]/VMID-or-NAME.
//   PveSource::inspect() finds the VM through /cluster/resources (by VMID,
//   or by name when exactly one VM has it), reads config?current=1, warns
//   about pending changes (/pending), reads status/current (status, paused,
//   HA, agent), resolves every disk through /storage and
//   /nodes/{node}/storage/{sid}/content/{volid} into its host path and real
//   size, and, when the guest agent answers, adds each NIC's IP addresses
//   (matched by MAC) and the guest OS name. The agent not answering is a
//   warning, never an error.
//   Actions wait for their task (wait_task) and return its outcome:
//     shutdown(timeout, force)  graceful (agent or ACPI, as the VM is set
//                               up); with force, stop after the timeout.
//     stop(), start()
//     mark_migrated(note)       tag `vmlift-migrated`, onboot=0, and a line
//                               in the description, in one PUT carrying the
//                               config digest (a concurrent edit fails it);
//     unmark()                  undoes exactly that.
//     snapshot_create/delete(name)
//     set_hookscript(volume)    needs root@pam with a ticket (Proxmox
//                               refuses tokens for it); otherwise the error
//                               says to use SSH and `qm set`, which
//                               set_hookscript_over_ssh() does.
//     agent_exec(argv, stdin)   runs a command in the guest and waits for it;
//     agent_file_write(path, content)
//   Before any action it checks the lock, HA management and the paused
//   state, and refuses with a message saying what to do (check_actionable).
// Thread safety: none.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "connectors/proxmox/pve_client.h"
#include "engine/transport.h"
#include "engine/vm_spec.h"

namespace vmlift::proxmox {

struct PveUrl {
    std::string user;
    std::string host;
    int port = 8006;
    std::string vm;  // VMID or name
};
Result<PveUrl> parse_pve_url(const std::string& url);

struct AgentExecResult {
    int exit_code = -1;
    std::string out;
    std::string err;
    bool out_truncated = false;
};

class PveSource {
  public:
    PveSource(PveClient& api, std::string source_url) : m_api(api), m_url(std::move(source_url)) {}

    // Finds the VM (VMID or unique name); sets node() and vmid().
    Status locate(const std::string& vm);
    Result<VmSpec> inspect();

    Status check_actionable(const VmSpec& spec) const;
    Status shutdown(std::chrono::seconds timeout, bool force);
    Status stop();
    Status start();
    Status mark_migrated(const std::string& note);
    Status unmark();
    Status snapshot_create(const std::string& name, const std::string& description);
    Status snapshot_delete(const std::string& name);
    Status set_hookscript(const std::string& volume);
    Result<AgentExecResult> agent_exec(const std::vector<std::string>& argv,
                                       const std::string& input, std::chrono::seconds timeout);
    Status agent_file_write(const std::string& path, const std::string& content);

    const std::string& node() const { return m_node; }
    int vmid() const { return m_vmid; }

  private:
    std::string vm_path() const;
    Status run_task(const Result<nlohmann::json>& upid, std::chrono::seconds timeout);

    PveClient& m_api;
    std::string m_url;
    std::string m_node;
    int m_vmid = 0;
};

// The other way to set a hookscript: `qm set VMID --hookscript VOLUME` on the
// VM's node over SSH (as root), for API users other than root@pam.
Status set_hookscript_over_ssh(SshTransport& node, int vmid, const std::string& volume);

}  // namespace vmlift::proxmox

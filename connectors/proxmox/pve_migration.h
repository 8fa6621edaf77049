// Proxmox VE as the source of `migrate-vm run`: the engine's MigrationSource
// over PveSource (pve_source.h).
//
// Contract
//   inspect() locates the VM (VMID or unique name) and reads it; the other
//   calls act on that VM. preflight() adds the checks only the source can
//   make: lock, HA management and the paused state (check_actionable), and
//   pending changes. running() reads status/current. guest_exec() runs
//   commands in the guest through agent/exec and polls agent/exec-status
//   (two minutes per command); a guest agent that does not answer is
//   `unreachable`.
// Thread safety: none.
#pragma once

#include <memory>
#include <string>

#include "connectors/proxmox/pve_source.h"
#include "engine/migration.h"

namespace vmlift::proxmox {

class PveMigrationSource : public MigrationSource {
  public:
    PveMigrationSource(PveClient& api, std::string url, std::string vm)
        : m_api(api), m_source(api, url), m_url(std::move(url)), m_vm(std::move(vm)) {}

    std::string describe() const override { return m_url; }
    Result<VmSpec> inspect() override;
    void preflight(const VmSpec& spec, std::vector<Check>& checks) override;
    Result<bool> running() override;
    Status shutdown(std::chrono::seconds timeout, bool force) override;
    Status start() override;
    Status mark_migrated(const std::string& note) override;
    Status unmark() override;
    GuestExec* guest_exec() override;

  private:
    Status located();
    PveClient& m_api;
    PveSource m_source;
    std::string m_url;
    std::string m_vm;
    bool m_located = false;
    std::unique_ptr<GuestExec> m_guest;
};

}  // namespace vmlift::proxmox

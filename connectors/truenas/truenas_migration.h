// TrueNAS SCALE as the target of `migrate-vm run`: the engine's
// MigrationTarget over TrueNasTarget (target.h) and plan_provision().
//
// Contract
//   plan() turns the VmSpec and the run's options into the provisioning
//   calls (a firmware override replaces the source's firmware first) and
//   the engine's TargetPlan: one zvol per data disk, the EFI vars disk as
//   the VM's NVRAM file (NVRAM_DIR/<id>_<name>_VARS.fd, as TrueNAS names
//   it) and the TPM state as a file in TPM_DIR, every NIC with its source
//   MAC and mapped bridge. preflight() checks the release, the pool's free
//   space, the bridges, and name and MAC collisions with VMs already there.
//   provision() runs the calls idempotently (marker "vmlift run <id>") and
//   says where each disk goes on the target host: ZVOL_ROOT/<zvol>
//   (/dev/zvol on TrueNAS; a lab may serve zvols elsewhere).
//   rollback() deletes what carries the run's marker, nothing else.
// Thread safety: none.
#pragma once

#include <string>

#include "connectors/truenas/target.h"
#include "engine/migration.h"

namespace vmlift::truenas {

struct TargetLayout {
    std::string zvol_root = "/dev/zvol";
    std::string nvram_dir = "/var/db/system/vm/nvram";
    std::string tpm_dir = "/var/db/system/vm/tpm";
};

class TrueNasMigrationTarget : public MigrationTarget {
  public:
    TrueNasMigrationTarget(TrueNasTarget& api, TargetUrl url, std::string url_text,
                           TargetLayout layout)
        : m_api(api),
          m_url(std::move(url)),
          m_text(std::move(url_text)),
          m_layout(std::move(layout)) {}

    std::string describe() const override { return m_text; }
    Result<TargetPlan> plan(const VmSpec& spec, const MigrationOptions& options,
                            const std::string& run_id) override;
    void preflight(const TargetPlan& plan, std::vector<Check>& checks) override;
    Result<ProvisionedVm> provision(const VmSpec& spec, const MigrationOptions& options,
                                    const std::string& run_id) override;
    Status start_vm(int vm_id) override { return m_api.start_vm(vm_id); }
    Status stop_vm(int vm_id) override { return m_api.stop_vm(vm_id, true); }
    Result<std::string> vm_state(int vm_id) override { return m_api.vm_state(vm_id); }
    Result<nlohmann::json> rollback(const std::string& run_id) override;

  private:
    Result<ProvisionPlan> provision_plan(const VmSpec& spec, const MigrationOptions& options,
                                         const std::string& run_id);
    TrueNasTarget& m_api;
    TargetUrl m_url;
    std::string m_text;
    TargetLayout m_layout;
};

}  // namespace vmlift::truenas

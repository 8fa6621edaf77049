#include "connectors/truenas/truenas_migration.h"

#include <set>

namespace vmlift::truenas {
namespace {

std::string lower(std::string s) {
    for (auto& c : s) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return s;
}

}  // namespace

Result<ProvisionPlan> TrueNasMigrationTarget::provision_plan(const VmSpec& source_spec,
                                                             const MigrationOptions& options,
                                                             const std::string& run_id) {
    VmSpec spec = source_spec;
    if (options.firmware_override == "UEFI") {
        spec.firmware = Firmware::uefi;
    } else if (options.firmware_override == "UEFI_CSM") {
        spec.firmware = Firmware::bios;
        spec.secure_boot = false;
    }
    ProvisionOptions po;
    po.run_id = run_id;
    po.target_name = options.target_name;
    po.zvol_names = options.zvol_names;
    po.default_bridge = options.bridge;
    po.bridge_map = options.bridge_map;
    return plan_provision(spec, m_url, m_api.release(), po);
}

Result<TargetPlan> TrueNasMigrationTarget::plan(const VmSpec& spec, const MigrationOptions& options,
                                                const std::string& run_id) {
    auto pp = provision_plan(spec, options, run_id);
    if (!pp.ok()) {
        return pp.status();
    }
    TargetPlan plan;
    plan.vm_name = pp->vm_name;
    plan.notes = pp->notes;
    std::vector<const ApiCall*> zvol_calls;
    for (const auto& call : pp->calls) {
        plan.calls.push_back(call.to_json());
        if (call.method == "pool.dataset.create") {
            zvol_calls.push_back(&call);
        } else if (call.method == "vm.create") {
            plan.bootloader = call.params[0].value("bootloader", "");
        } else if (call.method == "vm.device.create") {
            const auto& attrs = call.params[0]["attributes"];
            if (attrs.contains("mac")) {
                TargetNic nic;
                nic.mac = attrs["mac"].get<std::string>();
                nic.bridge = attrs.value("nic_attach", "");
                nic.model = attrs.value("type", "");
                for (const auto& n : spec.nics) {
                    if (n.mac == nic.mac) {
                        nic.key = n.key;
                    }
                }
                plan.nics.push_back(nic);
            }
        }
    }
    plan.firmware_overridden = !options.firmware_override.empty();
    size_t next_zvol = 0;
    for (const auto& d : spec.disks) {
        TargetDisk t;
        t.key = d.key;
        t.role = d.role;
        t.size_bytes = d.size_bytes;
        if (d.role == DiskRole::data) {
            if (next_zvol >= zvol_calls.size()) {
                return Status(Code::internal, "no zvol planned for " + d.key);
            }
            const auto& p = zvol_calls[next_zvol++]->params[0];
            t.name = p["name"].get<std::string>();
            t.device_path = zvol_device_path(t.name);
            t.size_bytes = p["volsize"].get<uint64_t>();
        } else if (d.role == DiskRole::efivars) {
            if (plan.bootloader != "UEFI") {
                continue;  // a BIOS target has no NVRAM: nothing to copy it to
            }
            t.name = "NVRAM (" + m_layout.nvram_dir + ")";
        } else {
            t.name = "TPM state (" + m_layout.tpm_dir + ")";
        }
        plan.disks.push_back(t);
    }
    return plan;
}

void TrueNasMigrationTarget::preflight(const TargetPlan& plan, std::vector<Check>& checks) {
    auto inv = m_api.inventory();
    if (!inv.ok()) {
        checks.push_back({"target API", false, false, inv.status().message()});
        return;
    }
    checks.push_back({"target API", true, false,
                      "TrueNAS " + m_api.version() + " (" + to_string(m_api.release()) + ")"});
    // Space.
    uint64_t need = 0;
    for (const auto& d : plan.disks) {
        if (d.role == DiskRole::data) {
            need += d.size_bytes;
        }
    }
    Check space{"target space", true, false, ""};
    space.passed = false;
    space.detail = "pool " + m_url.pool + " not found on the target";
    for (const auto& p : inv->value("pools", nlohmann::json::array())) {
        if (p.value("name", "") == m_url.pool) {
            uint64_t free = p.value("free", uint64_t{0});
            space.passed = free >= need;
            space.detail = "pool " + m_url.pool + " has " + std::to_string(free >> 20) +
                           " MiB free, the disks need " + std::to_string(need >> 20) + " MiB" +
                           (space.passed ? "" : ": free space or pick another pool");
        }
    }
    checks.push_back(space);
    // Bridges.
    std::set<std::string> choices;
    const auto& nac = (*inv)["nic_attach_choices"];
    if (nac.is_object()) {
        for (const auto& [k, v] : nac.items()) {
            choices.insert(k);
        }
    } else if (nac.is_array()) {
        for (const auto& v : nac) {
            choices.insert(v.is_string() ? v.get<std::string>() : v.dump());
        }
    }
    for (const auto& n : plan.nics) {
        Check c{"bridge " + n.bridge, true, false, ""};
        c.passed = choices.count(n.bridge) > 0;
        c.detail = c.passed ? n.key + " attaches to " + n.bridge
                            : n.key + " would attach to '" + n.bridge +
                                  "', which the target does not offer; use --bridge or "
                                  "--bridge-map";
        checks.push_back(c);
    }
    // Name and MAC collisions.
    for (const auto& vm : inv->value("vms", nlohmann::json::array())) {
        if (vm.value("name", "") == plan.vm_name) {
            checks.push_back({"target name", false, true,
                              "a VM named " + plan.vm_name +
                                  " exists; unless it is this run's, the new one gets a _2 "
                                  "suffix (or give --target-name)"});
        }
    }
    auto devices = m_api.call("vm.device.query");
    if (devices.ok() && devices->is_array()) {
        for (const auto& n : plan.nics) {
            for (const auto& dev : *devices) {
                const auto& a = dev.value("attributes", nlohmann::json::object());
                if (lower(a.value("mac", "")) == lower(n.mac)) {
                    checks.push_back({"MAC " + n.mac, false, false,
                                      "VM " + std::to_string(dev.value("vm", 0)) +
                                          " on the target already uses " + n.mac +
                                          "; remove that NIC (or roll back the run that made it)"});
                }
            }
        }
    }
}

Result<ProvisionedVm> TrueNasMigrationTarget::provision(const VmSpec& spec,
                                                        const MigrationOptions& options,
                                                        const std::string& run_id) {
    auto pp = provision_plan(spec, options, run_id);
    if (!pp.ok()) {
        return pp.status();
    }
    auto plan = this->plan(spec, options, run_id);
    if (!plan.ok()) {
        return plan.status();
    }
    auto done = m_api.provision(*pp, m_url);
    if (!done.ok()) {
        return done.status();
    }
    ProvisionedVm vm;
    vm.vm_id = done->vm_id;
    vm.vm_name = done->vm_name;
    vm.details = done->to_json();
    const std::string prefix = "/dev/zvol";
    for (const auto& d : plan->disks) {
        if (d.role == DiskRole::data) {
            std::string path = zvol_device_path(d.name);
            vm.disk_paths[d.key] = m_layout.zvol_root + path.substr(prefix.size());
        } else if (d.role == DiskRole::efivars) {
            vm.disk_paths[d.key] =
                m_layout.nvram_dir + "/" + std::to_string(vm.vm_id) + "_" + vm.vm_name + "_VARS.fd";
        } else {
            vm.disk_paths[d.key] = m_layout.tpm_dir + "/" + std::to_string(vm.vm_id) + "_" +
                                   vm.vm_name + "_vmlift_" + d.key + ".raw";
        }
    }
    return vm;
}

Result<nlohmann::json> TrueNasMigrationTarget::rollback(const std::string& run_id) {
    auto r = m_api.rollback("vmlift run " + run_id);
    if (!r.ok()) {
        return r.status();
    }
    return nlohmann::json{{"vms_deleted", r->vms_deleted}, {"zvols_deleted", r->zvols_deleted}};
}

}  // namespace vmlift::truenas

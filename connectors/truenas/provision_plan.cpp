#include "connectors/truenas/provision_plan.h"

#include <algorithm>
#include <cctype>
#include <regex>

namespace vmlift::truenas {
namespace {

std::string volblocksize_text(uint64_t bytes) {
    if (bytes >= 1024 && bytes % 1024 == 0) {
        return std::to_string(bytes / 1024) + "K";
    }
    return std::to_string(bytes);
}

std::string legal_zvol_component(const std::string& name) {
    std::string out;
    for (char c : name) {
        bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
                  c == ':';
        out += ok ? c : '_';
    }
    return out.empty() ? std::string("disk") : out;
}

bool is_virtio_bus(const std::string& bus) {
    return bus == "virtio" || bus == "scsi";
}

}  // namespace

const char* to_string(Release release) {
    switch (release) {
        case Release::v24_10:
            return "24.10";
        case Release::v25_04_2:
            return "25.04.2";
        case Release::v25_10:
            return "25.10";
        case Release::v26:
            break;
    }
    return "26";
}

Result<Release> parse_release(const std::string& text) {
    auto starts = [&](const char* p) {
        std::string s(p);
        return text == s || text.rfind(s + ".", 0) == 0;
    };
    if (starts("25.04.0") || starts("25.04.1")) {
        return Status(Code::invalid_input, "TrueNAS " + text +
                                               " has no libvirt VMs; upgrade to TrueNAS 25.04.2 "
                                               "or later");
    }
    if (starts("24.10")) {
        return Release::v24_10;
    }
    if (starts("25.04.2") || text == "25.04") {
        return Release::v25_04_2;
    }
    if (starts("25.10")) {
        return Release::v25_10;
    }
    if (starts("26")) {
        return Release::v26;
    }
    return Status(Code::invalid_input, "--target-version '" + text +
                                           "' is not a supported TrueNAS release; use 24.10, "
                                           "25.04.2, 25.10 or 26");
}

Result<TargetUrl> parse_truenas_url(const std::string& url) {
    static const std::regex re(
        R"(^truenas://([^/]+)/([A-Za-z0-9_.:\-]+)((?:/[A-Za-z0-9_.: \-]+)*)/?$)");
    std::smatch m;
    if (!std::regex_match(url, m, re)) {
        return Status(Code::invalid_input, "'" + url +
                                               "' is not a TrueNAS target; expected "
                                               "truenas://HOST/POOL[/DATASET]");
    }
    TargetUrl t;
    t.host = m[1].str();
    t.pool = m[2].str();
    t.dataset = t.pool + m[3].str();
    return t;
}

std::string legal_vm_name(const std::string& name) {
    std::string out;
    for (char c : name) {
        out += std::isalnum(static_cast<unsigned char>(c)) || c == '_' ? c : '_';
    }
    return out.empty() ? std::string("vm") : out;
}

std::string zvol_device_path(const std::string& zvol) {
    std::string path = "/dev/zvol/" + zvol;
    std::replace(path.begin(), path.end(), ' ', '+');
    return path;
}

nlohmann::json ApiCall::to_json() const {
    nlohmann::json j = {{"method", method}, {"params", params}};
    if (!rest_path.empty()) {
        j["rest"] = rest_method + " " + rest_path;
    }
    return j;
}

Result<ProvisionPlan> plan_provision(const VmSpec& spec, const TargetUrl& target, Release release,
                                     const ProvisionOptions& options) {
    if (options.volblocksize == 0 || (options.volblocksize & (options.volblocksize - 1)) != 0 ||
        options.volblocksize < 512 || options.volblocksize > 131072) {
        return Status(Code::invalid_input, "volblocksize must be a power of two from 512 to 128K");
    }
    if (spec.memory_mib < 20) {
        return Status(Code::invalid_input, "the VM has " + std::to_string(spec.memory_mib) +
                                               " MiB of memory; TrueNAS needs at least 20");
    }
    ProvisionPlan plan;
    const bool legacy = release == Release::v24_10;
    plan.vm_name = legal_vm_name(options.target_name.empty() ? spec.name : options.target_name);
    plan.marker = "vmlift run " + options.run_id;
    auto rest = [&](ApiCall& c, const char* path) {
        if (legacy) {
            c.rest_method = "POST";
            c.rest_path = std::string("/api/v2.0") + path;
        }
    };

    // Zvols, one per data disk.
    struct DiskPlan {
        const DiskSpec* disk;
        std::string zvol;
    };
    std::vector<DiskPlan> disks;
    for (const auto& d : spec.disks) {
        if (d.role == DiskRole::efivars) {
            plan.notes.push_back(d.key +
                                 " holds the UEFI variables: copied to the VM's NVRAM "
                                 "after provisioning, not to a zvol");
            continue;
        }
        if (d.role == DiskRole::tpm) {
            plan.notes.push_back(d.key +
                                 " holds TPM state: the VM gets a new TPM "
                                 "(trusted_platform_module); secrets sealed to the old "
                                 "one (BitLocker, LUKS with TPM) need their recovery key");
            continue;
        }
        if (d.size_bytes == 0) {
            return Status(Code::invalid_input, "disk " + d.key +
                                                   " has no size; inspect the source through "
                                                   "the API so sizes are known");
        }
        auto named = options.zvol_names.find(d.key);
        std::string leaf = named != options.zvol_names.end()
                               ? named->second
                               : legal_zvol_component(plan.vm_name + "-" + d.key);
        std::string zvol = target.dataset + "/" + leaf;
        const uint64_t bs = options.volblocksize;
        const uint64_t volsize = (d.size_bytes + bs - 1) / bs * bs;
        ApiCall c;
        c.method = "pool.dataset.create";
        c.params = nlohmann::json::array({{{"name", zvol},
                                           {"type", "VOLUME"},
                                           {"volsize", volsize},
                                           {"volblocksize", volblocksize_text(bs)},
                                           {"sparse", true},
                                           {"comments", plan.marker}}});
        if (options.force_size) {
            c.params[0]["force_size"] = true;
        }
        rest(c, "/pool/dataset");
        plan.calls.push_back(std::move(c));
        disks.push_back({&d, zvol});
    }

    // The VM.
    nlohmann::json vm = {{"name", plan.vm_name},
                         {"description", plan.marker + ": migrated from " + spec.source},
                         {"vcpus", std::max(1, spec.sockets)},
                         {"cores", std::max(1, spec.cores)},
                         {"threads", 1},
                         {"memory", spec.memory_mib},
                         {"bootloader", spec.firmware == Firmware::uefi ? "UEFI" : "UEFI_CSM"},
                         {"autostart", false},
                         {"time", spec.os_type.rfind("win", 0) == 0 ? "LOCAL" : "UTC"}};
    if (spec.vcpus != spec.sockets * spec.cores) {
        plan.notes.push_back("the source runs " + std::to_string(spec.vcpus) + " of " +
                             std::to_string(spec.sockets * spec.cores) +
                             " vCPUs (vcpus=); the target gets the full topology");
    }
    if (!spec.uuid.empty()) {
        vm["uuid"] = spec.uuid;
    }
    if (spec.secure_boot) {
        if (legacy) {
            plan.notes.push_back(
                "the source boots with Secure Boot; TrueNAS 24.10 cannot "
                "enable it (25.04.2 and later can)");
        } else {
            vm["enable_secure_boot"] = true;
        }
    }
    if (std::any_of(spec.disks.begin(), spec.disks.end(),
                    [](const DiskSpec& d) { return d.role == DiskRole::tpm; })) {
        vm["trusted_platform_module"] = true;
    }
    ApiCall create;
    create.method = "vm.create";
    create.params = nlohmann::json::array({vm});
    rest(create, "/vm");
    plan.calls.push_back(std::move(create));

    // Devices: disks in boot order first, then NICs.
    std::stable_sort(disks.begin(), disks.end(), [](const DiskPlan& a, const DiskPlan& b) {
        auto rank = [](const DiskSpec* d) { return d->boot_index < 0 ? 1000 : d->boot_index; };
        return rank(a.disk) < rank(b.disk);
    });
    int order = 1001;
    auto device = [&](const char* dtype, nlohmann::json attributes) {
        ApiCall c;
        c.method = "vm.device.create";
        nlohmann::json p = {{"vm", "${vm.id}"}, {"order", order++}};
        if (legacy) {
            p["dtype"] = dtype;
            p["attributes"] = std::move(attributes);
        } else {
            attributes["dtype"] = dtype;
            p["attributes"] = std::move(attributes);
        }
        c.params = nlohmann::json::array({p});
        rest(c, "/vm/device");
        plan.calls.push_back(std::move(c));
    };
    for (const auto& d : disks) {
        device("DISK", {{"path", zvol_device_path(d.zvol)},
                        {"type", is_virtio_bus(d.disk->bus) ? "VIRTIO" : "AHCI"}});
    }
    for (const auto& n : spec.nics) {
        std::string bridge = n.bridge;
        if (auto it = options.bridge_map.find(n.bridge); it != options.bridge_map.end()) {
            bridge = it->second;
        } else if (!options.default_bridge.empty()) {
            bridge = options.default_bridge;
        }
        nlohmann::json a = {{"type", n.model == "virtio" ? "VIRTIO" : "E1000"},
                            {"nic_attach", bridge}};
        if (!n.mac.empty()) {
            a["mac"] = n.mac;
        } else {
            plan.notes.push_back(n.key + " has no MAC on the source; TrueNAS assigns one");
        }
        if (n.vlan >= 0) {
            plan.notes.push_back(n.key + " is tagged VLAN " + std::to_string(n.vlan) +
                                 " on the source; attach it to a bridge on that VLAN "
                                 "(--bridge-map)");
        }
        device("NIC", a);
    }
    if (options.display) {
        if (legacy && options.display_password.empty()) {
            return Status(Code::invalid_input,
                          "TrueNAS 24.10 needs a password for a display device; give "
                          "--display-password-file");
        }
        nlohmann::json a = {{"type", "SPICE"}, {"bind", "127.0.0.1"}, {"web", true}};
        if (!options.display_password.empty()) {
            a["password"] = options.display_password;
        }
        device("DISPLAY", a);
    }
    return plan;
}

}  // namespace vmlift::truenas

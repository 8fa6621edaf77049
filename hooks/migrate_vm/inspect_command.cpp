#include "hooks/migrate_vm/inspect_command.h"

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "connectors/proxmox/qemu_config.h"
#include "connectors/proxmox/storage_cfg.h"

namespace vmlift::cli {
namespace {

Result<std::string> read_file(const std::string& path, const char* option) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return Status(Code::not_found, std::string(option) + " " + path + " cannot be read");
    }
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

std::string human_bytes(uint64_t b) {
    const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = static_cast<double>(b);
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        ++u;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
    return buf;
}

void print_table(const VmSpec& s) {
    std::cout << "VM " << s.vmid << " \"" << s.name << "\"";
    if (!s.node.empty()) {
        std::cout << " on node " << s.node;
    }
    std::cout << " (" << s.status << ")\n";
    std::cout << "  firmware " << to_string(s.firmware) << (s.secure_boot ? " (secure boot)" : "")
              << ", machine " << s.machine << ", cpu " << s.cpu << ", " << s.vcpus << " vCPU ("
              << s.sockets << " socket(s) x " << s.cores << " core(s)), " << s.memory_mib
              << " MiB, os " << s.os_type << (s.guest_os.empty() ? "" : " (" + s.guest_os + ")")
              << "\n";
    std::string boot;
    for (const auto& b : s.boot_order) {
        boot += (boot.empty() ? "" : ", ") + b;
    }
    std::cout << "  boot order: " << (boot.empty() ? "-" : boot) << "\n\n";
    std::printf("  %-10s %-7s %-8s %12s  %-14s %-6s %s\n", "DISK", "BUS", "ROLE", "SIZE", "STORAGE",
                "FORMAT", "HOST PATH");
    for (const auto& d : s.disks) {
        std::printf("  %-10s %-7s %-8s %12s  %-14s %-6s %s\n", d.key.c_str(), d.bus.c_str(),
                    to_string(d.role), human_bytes(d.size_bytes).c_str(),
                    d.storage.empty() ? "-" : d.storage.c_str(), d.format.c_str(),
                    d.host_path.empty() ? "-" : d.host_path.c_str());
    }
    std::printf("\n  %-6s %-8s %-17s %-8s %-5s %-5s %s\n", "NIC", "MODEL", "MAC", "BRIDGE", "VLAN",
                "MTU", "IP ADDRESSES");
    for (const auto& n : s.nics) {
        std::string ips;
        for (const auto& ip : n.ip_addresses) {
            ips += (ips.empty() ? "" : " ") + ip;
        }
        std::printf("  %-6s %-8s %-17s %-8s %-5s %-5s %s\n", n.key.c_str(), n.model.c_str(),
                    n.mac.empty() ? "-" : n.mac.c_str(), n.bridge.c_str(),
                    n.vlan < 0 ? "-" : std::to_string(n.vlan).c_str(),
                    n.mtu == 0 ? "-" : std::to_string(n.mtu).c_str(),
                    ips.empty() ? "-" : ips.c_str());
    }
    if (!s.warnings.empty()) {
        std::cout << "\nwarnings:\n";
        for (const auto& w : s.warnings) {
            std::cout << "  - " << w << "\n";
        }
    }
    std::cout.flush();
}

Result<VmSpec> inspect_file(const InspectOptions& o) {
    auto text = read_file(o.from_file, "--from-file");
    if (!text.ok()) {
        return text.status();
    }
    auto config = proxmox::parse_qemu_config(*text);
    if (!config.ok()) {
        return Status(config.status().code(), o.from_file + ": " + config.status().message());
    }
    proxmox::StorageTable storage = proxmox::default_storage_table();
    bool defaults = true;
    if (!o.storage_cfg.empty()) {
        auto cfg = read_file(o.storage_cfg, "--storage-cfg");
        if (!cfg.ok()) {
            return cfg.status();
        }
        auto parsed = proxmox::parse_storage_cfg(*cfg);
        if (!parsed.ok()) {
            return Status(parsed.status().code(), o.storage_cfg + ": " + parsed.status().message());
        }
        storage = *parsed;
        defaults = false;
    }
    std::string base = o.from_file.substr(o.from_file.rfind('/') + 1);
    int vmid = 0;
    try {
        vmid = std::stoi(base);
    } catch (...) {
    }
    VmSpec spec =
        proxmox::vm_spec_from_config(config->current, {"file:" + o.from_file, vmid, "", &storage});
    spec.warnings.insert(spec.warnings.begin(), config->warnings.begin(), config->warnings.end());
    if (!config->pending.empty() || !config->pending_delete.empty()) {
        std::string keys;
        for (const auto& [k, v] : config->pending) {
            keys += (keys.empty() ? "" : ", ") + k;
        }
        for (const auto& k : config->pending_delete) {
            keys += (keys.empty() ? "" : ", ") + k + " (delete)";
        }
        spec.warnings.push_back("pending changes not yet applied (" + keys +
                                "): the current configuration is what migrates");
    }
    if (defaults) {
        spec.warnings.push_back(
            "host paths assume a default storage.cfg (local, local-lvm, local-zfs); give "
            "--storage-cfg for the real one");
    }
    return spec;
}

}  // namespace

void add_inspect_command(CLI::App& app, InspectOptions& o) {
    auto* cmd = app.add_subcommand("inspect", "read a source VM (Proxmox API or config file)");
    cmd->add_option("source", o.source, "pve://[USER@]HOST[:PORT]/VMID (or a VM name)");
    cmd->add_option("--from-file", o.from_file,
                    "a config copied from /etc/pve/qemu-server/VMID.conf (no API)");
    cmd->add_option("--storage-cfg", o.storage_cfg,
                    "with --from-file: /etc/pve/storage.cfg, to resolve host paths");
    add_pve_options(*cmd, o.pve);
}

int run_inspect(Context& ctx, const InspectOptions& o) {
    Result<VmSpec> spec = Status(Code::internal, "not run");
    if (!o.from_file.empty()) {
        if (!o.source.empty()) {
            ctx.logger.error("inspect", "give either a pve:// source or --from-file, not both");
            return exit_code_for(Code::invalid_input);
        }
        spec = inspect_file(o);
    } else if (o.source.empty()) {
        ctx.logger.error("inspect", "nothing to inspect: give pve://HOST/VMID or --from-file FILE");
        return exit_code_for(Code::invalid_input);
    } else {
        auto conn = connect_pve(ctx, o.pve, o.source);
        if (!conn.ok()) {
            ctx.logger.error("inspect", conn.status().message());
            return exit_code_for(conn.status().code());
        }
        proxmox::PveSource source(*(*conn)->client, o.source);
        Status located = source.locate((*conn)->url.vm);
        spec = located.ok() ? source.inspect() : Result<VmSpec>(located);
    }
    if (!spec.ok()) {
        ctx.logger.error("inspect", spec.status().message());
        return exit_code_for(spec.status().code());
    }
    if (ctx.global.json) {
        std::cout << to_json(*spec).dump(2) << std::endl;
    } else {
        print_table(*spec);
    }
    return 0;
}

}  // namespace vmlift::cli

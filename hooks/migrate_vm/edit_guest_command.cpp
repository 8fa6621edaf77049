#include "hooks/migrate_vm/edit_guest_command.h"

#include <signal.h>

#include <atomic>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <sstream>

#include "connectors/ssh/ssh_factory.h"
#include "engine/guest_disk.h"
#include "engine/guest_net.h"
#include "engine/io.h"
#include "engine/remote_edit.h"
#include "engine/transport.h"
#include "engine/vm_spec.h"
#include "hooks/migrate_vm/cli_util.h"
#include "hooks/migrate_vm/ssh_options.h"

namespace vmlift::cli {
namespace {

std::atomic<int> g_signal{0};

void on_signal(int sig) {
    g_signal = sig;
}

int fail(Context& ctx, const Status& st) {
    ctx.logger.error("edit-guest-disk", st.message());
    return exit_code_for(st.code());
}

// --nic MAC[,name=OLD][,dhcp|,cidr=CIDR,gw=IP][,dns=A;B]
Result<GuestNic> parse_nic(const std::string& text) {
    auto parts = split(text, ',');
    if (parts.empty()) {
        return Status(Code::invalid_input, "--nic needs a MAC");
    }
    auto mac = normalize_mac(parts[0]);
    if (!mac) {
        return Status(Code::invalid_input, "--nic '" + text + "': '" + parts[0] + "' is not a MAC");
    }
    GuestNic nic;
    nic.mac = *mac;
    for (size_t i = 1; i < parts.size(); ++i) {
        const std::string& p = parts[i];
        if (p == "dhcp") {
            nic.addressing = Addressing::dhcp;
        } else if (p.rfind("name=", 0) == 0) {
            nic.name = p.substr(5);
        } else if (p.rfind("cidr=", 0) == 0) {
            nic.addressing = Addressing::static_address;
            nic.addresses.push_back(p.substr(5));
        } else if (p.rfind("gw=", 0) == 0) {
            nic.gateway = p.substr(3);
        } else if (p.rfind("dns=", 0) == 0) {
            nic.nameservers = split(p.substr(4), ';');
        } else {
            return Status(Code::invalid_input, "--nic '" + text + "': unknown part '" + p +
                                                   "' (name=, dhcp, cidr=, gw=, dns=)");
        }
    }
    return nic;
}

}  // namespace

void add_edit_guest_command(CLI::App& app, EditGuestOptions& o) {
    auto* cmd = app.add_subcommand("edit-guest-disk",
                                   "rewrite the guest's network config on the copied disk");
    cmd->add_option("--tool-host", o.tool_host, "work on this host over SSH (default: here)");
    cmd->add_option("--tool-user", o.tool_user, "SSH user on the tool host");
    cmd->add_option("--target-mode", o.target_mode, "nbd or local")->capture_default_str();
    cmd->add_option("--nbd-host", o.nbd_host, "NBD server of the target zvol");
    cmd->add_option("--nbd-port", o.nbd_port, "NBD port")->capture_default_str();
    cmd->add_option("--nbd-device", o.nbd_device, "local nbd device")->capture_default_str();
    cmd->add_option("--local-dev-path", o.local_dev_path, "the copied disk: block device or image");
    cmd->add_option("--vg-name", o.vg_name, "volume group of the root");
    cmd->add_option("--lv-name", o.lv_name, "logical volume of the root");
    cmd->add_option("--mount-point", o.mount_point, "where to mount the root (default: temp dir)");
    cmd->add_option("--lvm-global-filter", o.lvm_global_filter,
                    "LVM filter for device-mapper activation (unused without device-mapper)");
    cmd->add_option("--target-mac", o.target_mac, "the one NIC's MAC (one-NIC form)");
    cmd->add_flag("--use-dhcp", o.use_dhcp, "the one NIC uses DHCP");
    cmd->add_option("--static-cidr", o.static_cidr, "the one NIC's static address (CIDR)");
    cmd->add_option("--gateway", o.gateway, "the one NIC's gateway");
    cmd->add_option("--nic", o.nics,
                    "MAC[,name=OLD][,dhcp|,cidr=CIDR,gw=IP][,dns=A;B] (repeatable)");
    cmd->add_flag("--dry-run", o.dry_run, "print a unified diff of the changes; change nothing");
}

namespace {

// The agent on the tool host does the edit (engine/remote_edit.h).
Result<nlohmann::json> edit_on_tool_host(Context& ctx, const EditGuestOptions& o,
                                         const GuestDiskOptions& disk,
                                         const std::vector<GuestNic>& nics) {
    GlobalOptions global = ctx.global;
    if (!o.tool_user.empty()) {
        global.ssh_user = o.tool_user;
    }
    auto ssh_options = build_ssh_options(global, ctx.env, o.tool_host, ctx.redactor);
    if (!ssh_options.ok()) {
        return ssh_options.status();
    }
    auto backend = parse_ssh_backend(ctx.global.ssh_backend);
    if (!backend.ok()) {
        return backend.status();
    }
    auto host = make_ssh_transport(*backend, *ssh_options, ctx.runner);
    VMLIFT_RETURN_IF_ERROR(host->connect());
    char id[17];
    std::snprintf(id, sizeof id, "%08x%08x", static_cast<unsigned>(::getpid()),
                  static_cast<unsigned>(std::time(nullptr)));
    RemoteEdit how;
    how.host_name = o.tool_host;
    how.local_agent = ctx.env.self_dir + "/vmlift-agent";
    how.run_id = id;
    how.timeout = std::chrono::seconds(ctx.global.task_timeout_sec);
    return edit_guest_disk_remote(*host, how, disk, nics, o.dry_run);
}

}  // namespace

int run_edit_guest(Context& ctx, const EditGuestOptions& o) {
    if (o.target_mode != "local" && o.target_mode != "nbd") {
        return fail(ctx, Status(Code::invalid_input, "--target-mode is nbd or local"));
    }
    if (o.target_mode == "local" && o.local_dev_path.empty()) {
        return fail(ctx, Status(Code::invalid_input, "--local-dev-path is required in local mode"));
    }
    if (o.target_mode == "nbd" && o.nbd_host.empty()) {
        return fail(ctx, Status(Code::invalid_input,
                                "--nbd-host is required in nbd mode (the host exporting the "
                                "copied disk over NBD)"));
    }
    std::vector<GuestNic> nics;
    if (!o.target_mac.empty()) {
        auto mac = normalize_mac(o.target_mac);
        if (!mac) {
            return fail(ctx, Status(Code::invalid_input,
                                    "--target-mac '" + o.target_mac + "' is not a MAC address"));
        }
        GuestNic nic;
        nic.mac = *mac;
        if (o.use_dhcp && !o.static_cidr.empty()) {
            return fail(ctx,
                        Status(Code::invalid_input, "give --use-dhcp or --static-cidr, not both"));
        }
        if (o.use_dhcp) {
            nic.addressing = Addressing::dhcp;
        } else if (!o.static_cidr.empty()) {
            nic.addressing = Addressing::static_address;
            nic.addresses = {o.static_cidr};
            nic.gateway = o.gateway;
        }
        nics.push_back(nic);
    }
    for (const auto& text : o.nics) {
        auto nic = parse_nic(text);
        if (!nic.ok()) {
            return fail(ctx, nic.status());
        }
        nics.push_back(*nic);
    }
    if (nics.empty()) {
        return fail(ctx, Status(Code::invalid_input, "no NIC given: --target-mac or --nic"));
    }
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    ::sigaction(SIGINT, &sa, nullptr);
    ::sigaction(SIGTERM, &sa, nullptr);
    GuestDiskOptions disk;
    if (o.target_mode == "nbd") {
        const bool v6 = o.nbd_host.find(':') != std::string::npos;
        disk.nbd_uri = "nbd://" + (v6 ? "[" + o.nbd_host + "]" : o.nbd_host) + ":" +
                       std::to_string(o.nbd_port);
        disk.nbd_device = o.nbd_device;
    } else {
        disk.device = o.local_dev_path;
    }
    disk.vg_name = o.vg_name;
    disk.lv_name = o.lv_name;
    disk.mount_point = o.mount_point;
    disk.cancelled = [] { return g_signal.load() != 0; };
    auto result = o.tool_host.empty()
                      ? edit_guest_disk(ctx.runner, ctx.logger, disk, nics, o.dry_run)
                      : edit_on_tool_host(ctx, o, disk, nics);
    if (!result.ok()) {
        return fail(ctx, result.status());
    }
    const nlohmann::json& j = *result;
    if (ctx.global.json) {
        std::cout << j.dump() << std::endl;
        return 0;
    }
    if (o.dry_run) {
        std::cout << j.value("diff", std::string());
    }
    std::cout << (o.dry_run ? "Would change " : "Changed ") << j["files"].size() << " file(s) on "
              << j.value("root", std::string()) << " (" << j.value("method", std::string()) << ")"
              << (o.tool_host.empty() ? "" : " on " + o.tool_host) << "\n";
    for (const auto& w : j["warnings"]) {
        std::cout << "  note: " << w.get<std::string>() << "\n";
    }
    return 0;
}

}  // namespace vmlift::cli

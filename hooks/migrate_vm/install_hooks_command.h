// `migrate-vm install-hooks pve|truenas`: put the hook binaries where
// Proxmox VE and TrueNAS call them, and register what must survive reboots
// and upgrades.
#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "hooks/migrate_vm/context.h"
#include "hooks/migrate_vm/truenas_options.h"

namespace vmlift::cli {

struct InstallHooksOptions {
    // pve
    std::string host;
    std::string storage = "local";
    std::string snippets_dir;  // default: from /etc/pve/storage.cfg on the host
    std::vector<int> vmids;
    // truenas
    std::string target;
    std::string target_ssh_host;
    TrueNasOptions truenas;
    std::string bin_dir;  // default /mnt/<dataset>/.vmlift/bin
    std::string hook_path = "/etc/libvirt/hooks/qemu.d/vmlift";
    std::string cron_queue;
    std::string cron_schedule = "*/10 * * * *";
};

void add_install_hooks_command(CLI::App& app, InstallHooksOptions& options);
int run_install_hooks(Context& ctx, const InstallHooksOptions& options, bool pve);

}  // namespace vmlift::cli

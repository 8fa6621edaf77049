// `migrate-vm edit-guest-disk`: rewrite the network config on a copied disk.
#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "hooks/migrate_vm/context.h"

namespace vmlift::cli {

struct EditGuestOptions {
    std::string tool_host;
    std::string tool_user;
    std::string target_mode = "local";
    std::string local_dev_path;
    std::string nbd_host;
    int nbd_port = 10809;
    std::string nbd_device = "/dev/nbd0";
    std::string vg_name;
    std::string lv_name;
    std::string mount_point;
    std::string lvm_global_filter;
    std::string target_mac;
    bool use_dhcp = false;
    std::string static_cidr;
    std::string gateway;
    std::vector<std::string> nics;
    bool dry_run = false;
};

void add_edit_guest_command(CLI::App& app, EditGuestOptions& options);
int run_edit_guest(Context& ctx, const EditGuestOptions& options);

}  // namespace vmlift::cli

// `migrate-vm provision`: the TrueNAS calls that create a VmSpec's target.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "hooks/migrate_vm/context.h"
#include "hooks/migrate_vm/truenas_options.h"

namespace vmlift::cli {

struct ProvisionOptions {
    std::string spec_file;
    std::string target;
    std::string target_version;
    std::string target_name;
    std::string run_id;
    std::vector<std::string> zvols;  // KEY=NAME
    std::string bridge;
    std::string bridge_map;  // SRC=DST,...
    bool dry_run = false;
    bool rollback = false;
    TrueNasOptions truenas;  // the connection (without --dry-run)
    bool force_size = false;
    bool display = false;
    std::string display_password_file;
    bool inventory = false;
};

void add_provision_command(CLI::App& app, ProvisionOptions& options);
int run_provision(Context& ctx, const ProvisionOptions& options);

}  // namespace vmlift::cli

// `migrate-vm inspect`: read a source VM into a VmSpec (table or --json),
// through the Proxmox API or from a copied config file.
#pragma once

#include <CLI/CLI.hpp>

#include "hooks/migrate_vm/context.h"
#include "hooks/migrate_vm/pve_options.h"

namespace vmlift::cli {

struct InspectOptions {
    std::string source;  // pve://[USER@]HOST[:PORT]/VMID-or-NAME
    std::string from_file;
    std::string storage_cfg;
    PveOptions pve;
};

void add_inspect_command(CLI::App& app, InspectOptions& options);
int run_inspect(Context& ctx, const InspectOptions& options);

}  // namespace vmlift::cli

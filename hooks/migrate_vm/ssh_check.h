// `migrate-vm ssh-check`: prove SSH works to each host before a migration.
#pragma once

#include <CLI/CLI.hpp>

#include "hooks/migrate_vm/context.h"

namespace vmlift::cli {

struct SshCheckOptions {
    std::vector<std::string> hosts;
    uint64_t bytes = 64ULL << 20;
};

void add_ssh_check_command(CLI::App& app, SshCheckOptions& options);
int run_ssh_check(Context& ctx, const SshCheckOptions& options);

}  // namespace vmlift::cli

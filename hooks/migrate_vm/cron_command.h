// `migrate-vm cron --queue DIR`: the TrueNAS cron task (engine/queue.h).
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "hooks/migrate_vm/context.h"

namespace vmlift::cli {

struct CronOptions {
    std::string queue;
    int reverify_days = 7;
    int job_timeout_sec = 86400;
};

void add_cron_command(CLI::App& app, CronOptions& options);
int run_cron(Context& ctx, const CronOptions& options);

}  // namespace vmlift::cli

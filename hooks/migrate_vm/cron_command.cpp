#include "hooks/migrate_vm/cron_command.h"

#include <iostream>

#include "engine/queue.h"
#include "engine/verify.h"

namespace vmlift::cli {

void add_cron_command(CLI::App& app, CronOptions& o) {
    auto* cmd = app.add_subcommand(
        "cron", "run queued migrations one at a time and re-check recent cutovers (for cron)");
    cmd->add_option("--queue", o.queue,
                    "directory of migration configs (*.conf, as for run --config)")
        ->required();
    cmd->add_option("--reverify-days", o.reverify_days,
                    "re-check cutovers of runs that succeeded within this many days (0: none)")
        ->capture_default_str();
    cmd->add_option("--job-timeout-sec", o.job_timeout_sec, "give one migration at most this long")
        ->capture_default_str();
}

int run_cron(Context& ctx, const CronOptions& o) {
    // The queued runs get this invocation's global options.
    const GlobalOptions& g = ctx.global;
    std::vector<std::string> argv = {ctx.env.self_dir + "/migrate-vm",
                                     "--run-dir",
                                     g.run_dir,
                                     "--ssh-user",
                                     g.ssh_user,
                                     "--ssh-port",
                                     std::to_string(g.ssh_port),
                                     "--connect-timeout-sec",
                                     std::to_string(g.connect_timeout_sec)};
    for (const auto& [flag, value] :
         {std::pair{"--identity-file", g.identity_file}, std::pair{"--known-hosts", g.known_hosts},
          std::pair{"--migration-key-path", g.migration_key_path}}) {
        if (!value.empty()) {
            argv.insert(argv.end(), {flag, value});
        }
    }
    argv.push_back("run");
    auto report = run_queue(ctx.runner, o.queue, argv, std::chrono::seconds(o.job_timeout_sec));
    if (!report.ok()) {
        ctx.logger.error("cron", report.status().message());
        return exit_code_for(report.status().code());
    }
    if (o.reverify_days > 0) {
        RealProber prober;
        reverify_recent(prober, g.run_dir, o.reverify_days, *report);
    }
    // cron mails whatever is printed: print only what happened.
    for (const auto& line : report->lines) {
        std::cout << line << "\n";
    }
    std::cout.flush();
    return report->exit_code;
}

}  // namespace vmlift::cli

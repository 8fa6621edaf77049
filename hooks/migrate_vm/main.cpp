// migrate-vm: the command users run. argv/env → structs → engine → exit code.
#include <unistd.h>

#include <iostream>

#include <CLI/CLI.hpp>

#include "hooks/migrate_vm/config_file.h"
#include "hooks/migrate_vm/context.h"
#include "hooks/migrate_vm/cron_command.h"
#include "hooks/migrate_vm/edit_guest_command.h"
#include "hooks/migrate_vm/inspect_command.h"
#include "hooks/migrate_vm/install_hooks_command.h"
#include "hooks/migrate_vm/provision_command.h"
#include "hooks/migrate_vm/run_command.h"
#include "hooks/migrate_vm/ssh_check.h"
#include "hooks/migrate_vm/stream_command.h"
#include "hooks/migrate_vm/verify_command.h"

int main(int argc, char** argv) {
    using namespace vmlift;
    using namespace vmlift::cli;
    ignore_sigpipe();

    Context ctx;
    ctx.env = Environment::from_process();
    ctx.stderr_is_terminal = ::isatty(STDERR_FILENO) != 0;

    CLI::App app{"vmlift migrate-vm: move virtual machines from Proxmox VE to TrueNAS SCALE"};
    app.set_version_flag("--version", std::string("migrate-vm ") + VMLIFT_VERSION);
    app.require_subcommand(1);
    app.fallthrough();
    add_global_options(app, ctx.global);

    SshCheckOptions ssh_check;
    add_ssh_check_command(app, ssh_check);
    StreamOptions stream;
    add_stream_command(app, stream);
    InspectOptions inspect;
    add_inspect_command(app, inspect);
    ProvisionOptions provision;
    add_provision_command(app, provision);
    EditGuestOptions edit_guest;
    add_edit_guest_command(app, edit_guest);
    RunOptions run;
    RunOptions plan;
    RunDirOptions run_dir;
    add_run_commands(app, run, plan, run_dir);
    VerifyOptions verify;
    add_verify_command(app, verify);
    InstallHooksOptions install_hooks;
    add_install_hooks_command(app, install_hooks);
    CronOptions cron;
    add_cron_command(app, cron);

    std::vector<std::string> args(argv, argv + argc);
    auto expanded = expand_config(args);
    if (!expanded.ok()) {
        std::cerr << "migrate-vm: " << expanded.status().message() << std::endl;
        return exit_code_for(expanded.status().code());
    }
    // CLI11 wants them in reverse order, without the program name.
    std::vector<std::string> reversed(expanded->rbegin(), expanded->rend() - 1);
    try {
        app.parse(reversed);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        app.exit(e);
        return 2;  // usage error (README "Exit codes")
    }
    ctx.logger.set_console(&std::cerr, ctx.global.verbose ? LogLevel::debug : LogLevel::info);

    if (app.got_subcommand("ssh-check")) {
        return run_ssh_check(ctx, ssh_check);
    }
    if (app.got_subcommand("stream")) {
        return run_stream_command(ctx, stream);
    }
    if (app.got_subcommand("inspect")) {
        return run_inspect(ctx, inspect);
    }
    if (app.got_subcommand("provision")) {
        return run_provision(ctx, provision);
    }
    if (app.got_subcommand("edit-guest-disk")) {
        return run_edit_guest(ctx, edit_guest);
    }
    if (app.got_subcommand("run")) {
        return run_run(ctx, run, false);
    }
    if (app.got_subcommand("plan")) {
        return run_run(ctx, plan, true);
    }
    if (app.got_subcommand("resume")) {
        return run_resume(ctx, run_dir);
    }
    if (app.got_subcommand("rollback")) {
        return run_rollback(ctx, run_dir);
    }
    if (app.got_subcommand("status")) {
        return run_status(ctx, run_dir);
    }
    if (app.got_subcommand("verify")) {
        return run_verify(ctx, verify);
    }
    if (app.got_subcommand("install-hooks")) {
        return run_install_hooks(ctx, install_hooks,
                                 app.get_subcommand("install-hooks")->got_subcommand("pve"));
    }
    if (app.got_subcommand("cron")) {
        return run_cron(ctx, cron);
    }
    return 2;
}

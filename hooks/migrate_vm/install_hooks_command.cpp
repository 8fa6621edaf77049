#include "hooks/migrate_vm/install_hooks_command.h"

#include <iostream>
#include <sstream>

#include "connectors/proxmox/pve_source.h"
#include "connectors/proxmox/storage_cfg.h"
#include "connectors/ssh/ssh_factory.h"
#include "connectors/truenas/target.h"
#include "engine/quote.h"
#include "engine/upload.h"
#include "hooks/migrate_vm/ssh_options.h"

namespace vmlift::cli {
namespace {

constexpr const char* k_hookscript = "vmlift-pve-hookscript";
constexpr const char* k_marker = "vmlift hooks";
constexpr const char* k_cron_marker = "vmlift cron";

int fail(Context& ctx, const Status& st) {
    ctx.logger.error("install-hooks", st.message());
    return exit_code_for(st.code());
}

Result<std::unique_ptr<SshTransport>> ssh_to(Context& ctx, const std::string& host) {
    auto options = build_ssh_options(ctx.global, ctx.env, host, ctx.redactor);
    if (!options.ok()) {
        return options.status();
    }
    auto backend = parse_ssh_backend(ctx.global.ssh_backend);
    if (!backend.ok()) {
        return backend.status();
    }
    auto t = make_ssh_transport(*backend, *options, ctx.runner);
    VMLIFT_RETURN_IF_ERROR(t->connect());
    return t;
}

Result<std::string> snippets_dir(SshTransport& host, const InstallHooksOptions& o) {
    if (!o.snippets_dir.empty()) {
        return o.snippets_dir;
    }
    auto text = exec_checked(host, {"cat", "/etc/pve/storage.cfg"});
    if (!text.ok()) {
        return Status(text.status().code(), "cannot read /etc/pve/storage.cfg on " + o.host + " (" +
                                                text.status().message() +
                                                "); is it a Proxmox VE node? "
                                                "(or give --snippets-dir)");
    }
    auto table = proxmox::parse_storage_cfg(*text);
    if (!table.ok()) {
        return table.status();
    }
    const proxmox::StorageDef* def = table->find(o.storage);
    if (!def || !def->props.count("path")) {
        return Status(Code::invalid_input, "storage '" + o.storage + "' on " + o.host +
                                               " is not a directory storage; pick one with "
                                               "content type snippets (--storage)");
    }
    auto content = def->props.count("content") ? def->props.at("content") : "";
    if (content.find("snippets") == std::string::npos) {
        return Status(Code::invalid_input, "storage '" + o.storage +
                                               "' does not hold snippets; enable it with `pvesm "
                                               "set " +
                                               o.storage + " --content " + content +
                                               (content.empty() ? "" : ",") + "snippets`");
    }
    return def->props.at("path") + "/snippets";
}

int install_pve(Context& ctx, const InstallHooksOptions& o) {
    if (o.host.empty()) {
        return fail(ctx, Status(Code::invalid_input, "install-hooks pve needs --host"));
    }
    auto host = ssh_to(ctx, o.host);
    if (!host.ok()) {
        return fail(ctx, host.status());
    }
    auto dir = snippets_dir(**host, o);
    if (!dir.ok()) {
        return fail(ctx, dir.status());
    }
    const std::string remote = *dir + "/" + k_hookscript;
    if (auto made = exec_checked(**host, {"mkdir", "-p", *dir}); !made.ok()) {
        return fail(ctx, made.status());
    }
    auto sent = upload_file(**host, ctx.env.self_dir + "/" + k_hookscript, remote, 0755);
    if (!sent.ok()) {
        return fail(ctx, sent.status());
    }
    // Prove it runs there (a phase that only records).
    auto ran = exec_captured(**host, {remote, "0", "post-stop"});
    if (!ran.ok() || !ran->exit.success()) {
        return fail(ctx, Status(Code::remote_failed,
                                remote + " does not run on " + o.host + " (noexec storage?): " +
                                    (ran.ok() ? ran->err : ran.status().message())));
    }
    std::cout << "Installed " << remote << " on " << o.host << "\n";
    const std::string volume = o.storage + ":snippets/" + k_hookscript;
    for (int vmid : o.vmids) {
        Status st = proxmox::set_hookscript_over_ssh(**host, vmid, volume);
        if (!st.ok()) {
            return fail(ctx, st);
        }
        std::cout << "VM " << vmid << ": hookscript " << volume << "\n";
    }
    if (o.vmids.empty()) {
        std::cout << "Attach it to a VM with: qm set VMID --hookscript " << volume << "\n";
    }
    return 0;
}

int install_truenas(Context& ctx, const InstallHooksOptions& o) {
    auto url = truenas::parse_truenas_url(o.target);
    if (!url.ok()) {
        return fail(ctx, url.status());
    }
    auto session = connect_truenas(ctx, o.truenas, *url);
    if (!session.ok()) {
        return fail(ctx, session.status());
    }
    auto host = ssh_to(ctx, o.target_ssh_host.empty() ? url->host : o.target_ssh_host);
    if (!host.ok()) {
        return fail(ctx, host.status());
    }
    // /etc does not survive TrueNAS upgrades; a pool dataset does.
    const std::string bin = o.bin_dir.empty() ? "/mnt/" + url->dataset + "/.vmlift/bin" : o.bin_dir;
    if (auto made = exec_checked(**host, {"mkdir", "-p", "-m", "0700", bin}); !made.ok()) {
        return fail(ctx, made.status());
    }
    for (const char* name :
         {"vmlift-libvirt-hook", "migrate-vm", "vmlift-agent", "vmlift-askpass"}) {
        auto sent = upload_file(**host, ctx.env.self_dir + "/" + name, bin + "/" + name, 0755);
        if (!sent.ok()) {
            return fail(ctx, sent.status());
        }
    }
    std::vector<std::string> install = {
        "install", "-D", "-m", "0755", bin + "/vmlift-libvirt-hook", o.hook_path};
    auto command = shell_join(install);
    if (!command.ok()) {
        return fail(ctx, command.status());
    }
    auto script = session->target->ensure_init_script(k_marker, *command,
                                                      truenas::TrueNasTarget::When::postinit);
    if (!script.ok()) {
        return fail(ctx, script.status());
    }
    // In place now, not only after the next boot.
    if (auto now = exec_checked(**host, install); !now.ok()) {
        return fail(ctx, now.status());
    }
    std::cout << "Installed " << bin << "/{vmlift-libvirt-hook,migrate-vm,vmlift-agent} on "
              << url->host << "; init script " << *script << " (POSTINIT) puts the hook at "
              << o.hook_path << " at every boot\n";
    if (!o.cron_queue.empty()) {
        std::istringstream fields(o.cron_schedule);
        truenas::TrueNasTarget::CronSchedule schedule;
        if (!(fields >> schedule.minute >> schedule.hour >> schedule.dom >> schedule.month >>
              schedule.dow)) {
            return fail(ctx,
                        Status(Code::invalid_input,
                               "--cron-schedule needs five fields: minute hour dom month dow"));
        }
        auto cron_cmd =
            shell_join({bin + "/migrate-vm", "--run-dir", "/mnt/" + url->dataset + "/.vmlift/runs",
                        "cron", "--queue", o.cron_queue});
        if (!cron_cmd.ok()) {
            return fail(ctx, cron_cmd.status());
        }
        auto job = session->target->ensure_cronjob(k_cron_marker, *cron_cmd, schedule);
        if (!job.ok()) {
            return fail(ctx, job.status());
        }
        std::cout << "Cron job " << *job << " (" << o.cron_schedule << "): " << *cron_cmd << "\n";
    }
    return 0;
}

}  // namespace

void add_install_hooks_command(CLI::App& app, InstallHooksOptions& o) {
    auto* cmd = app.add_subcommand("install-hooks", "install the Proxmox or TrueNAS hooks");
    cmd->require_subcommand(1);
    auto* pve = cmd->add_subcommand("pve", "upload the hookscript to a node's snippets storage");
    pve->add_option("--host", o.host, "the Proxmox VE node (SSH)")->required();
    pve->add_option("--storage", o.storage, "a directory storage with snippets")
        ->capture_default_str();
    pve->add_option("--snippets-dir", o.snippets_dir,
                    "the storage's snippets directory (default: from /etc/pve/storage.cfg)");
    pve->add_option("--vmid", o.vmids, "attach it to this VM with `qm set` (repeatable)");
    auto* tn = cmd->add_subcommand(
        "truenas", "store the libvirt hook on a pool and register it (init script, cron)");
    tn->add_option("--target", o.target, "truenas://HOST/POOL[/DATASET]")->required();
    tn->add_option("--target-ssh-host", o.target_ssh_host, "SSH address (default: URL host)");
    add_truenas_options(*tn, o.truenas);
    tn->add_option("--bin-dir", o.bin_dir,
                   "where the binaries live (default /mnt/DATASET/.vmlift/bin)");
    tn->add_option("--hook-path", o.hook_path, "where libvirt looks for the hook")
        ->capture_default_str();
    tn->add_option("--cron-queue", o.cron_queue,
                   "also register `migrate-vm cron --queue DIR` as a cron job");
    tn->add_option("--cron-schedule", o.cron_schedule, "minute hour dom month dow")
        ->capture_default_str();
}

int run_install_hooks(Context& ctx, const InstallHooksOptions& o, bool pve) {
    return pve ? install_pve(ctx, o) : install_truenas(ctx, o);
}

}  // namespace vmlift::cli

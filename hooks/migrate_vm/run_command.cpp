#include "hooks/migrate_vm/run_command.h"

#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <sstream>

#include "connectors/proxmox/pve_migration.h"
#include "connectors/ssh/ssh_factory.h"
#include "connectors/truenas/truenas_migration.h"
#include "engine/journal.h"
#include "engine/migration.h"
#include "engine/report.h"
#include "engine/run_dir.h"
#include "hooks/migrate_vm/cli_util.h"
#include "hooks/migrate_vm/ssh_options.h"
#include "hooks/migrate_vm/trusted_key.h"

namespace vmlift::cli {

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(PveOptions, token_id, token_secret_file,
                                                password_file, ca_file, fingerprint, insecure)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(TrueNasOptions, user, port, api_key_file, ca_file,
                                                fingerprint, insecure, via_ssh)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(
    RunOptions, source, target, pve, truenas, source_ssh_host, target_ssh_host,
    target_address_from_source, target_zvol_root, target_nvram_dir, target_tpm_dir, target_name,
    zvols, bridge, bridge_map, firmware_override, target_ips, use_dhcp, static_cidr, gateway,
    transfer_mode, offline_vg_name, offline_lv_name, net_prep, shutdown_timeout, force_stop, yes,
    post_cutover_cmd, verify_port, verify_mode, verify_timeout, verify_poll, skip_ip_conflict_check,
    zstd_level, agent_dir)
// The SSH settings a resumed run must reuse (secrets stay in their files).
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(GlobalOptions, ssh_user, ssh_port, identity_file,
                                                known_hosts, migration_key_path,
                                                connect_timeout_sec, task_timeout_sec,
                                                keepalive_sec, ssh_backend, host_key_policy,
                                                passphrase_file, password_file, ssh_config)

namespace {

int fail(Context& ctx, const char* what, const Status& st) {
    ctx.logger.error(what, st.message());
    if (ctx.global.json) {
        std::cout << nlohmann::json{{"event", "error"},
                                    {"code", code_name(st.code())},
                                    {"message", ctx.redactor.redact(st.message())}}
                         .dump()
                  << std::endl;
    }
    return exit_code_for(st.code());
}

Result<MigrationOptions> migration_options(const RunOptions& o) {
    nlohmann::json j = {{"target_name", o.target_name},
                        {"bridge", o.bridge},
                        {"firmware_override", o.firmware_override},
                        {"target_ips", o.target_ips},
                        {"use_dhcp", o.use_dhcp},
                        {"static_cidr", o.static_cidr},
                        {"gateway", o.gateway},
                        {"transfer_mode", o.transfer_mode},
                        {"offline_vg_name", o.offline_vg_name},
                        {"offline_lv_name", o.offline_lv_name},
                        {"net_prep", o.net_prep},
                        {"shutdown_timeout_sec", o.shutdown_timeout},
                        {"force_stop", o.force_stop},
                        {"yes", o.yes},
                        {"post_cutover_cmd", split(o.post_cutover_cmd, ' ')},
                        {"verify_port", o.verify_port},
                        {"verify_mode", o.verify_mode},
                        {"verify_timeout_sec", o.verify_timeout},
                        {"verify_poll_sec", o.verify_poll},
                        {"skip_ip_conflict_check", o.skip_ip_conflict_check},
                        {"zstd_level", o.zstd_level},
                        {"agent_dir", o.agent_dir},
                        {"target_state_dir", o.target_state_dir}};
    auto zvols = key_value_pairs(o.zvols, "--zvol");
    if (!zvols.ok()) {
        return zvols.status();
    }
    auto bridges = key_value_pairs(split(o.bridge_map, ','), "--bridge-map");
    if (!bridges.ok()) {
        return bridges.status();
    }
    j["zvol_names"] = *zvols;
    j["bridge_map"] = *bridges;
    return MigrationOptions::from_json(j);
}

// Everything one run talks to, connected.
struct Session {
    std::unique_ptr<PveConnection> pve;
    TrueNasSession truenas;
    truenas::TargetUrl target_url;
    std::unique_ptr<proxmox::PveMigrationSource> source;
    std::unique_ptr<truenas::TrueNasMigrationTarget> target;
    std::unique_ptr<SshTransport> source_ssh;
    std::unique_ptr<SshTransport> target_ssh;
    std::string target_known_hosts;
};

Result<std::unique_ptr<SshTransport>> ssh_to(Context& ctx, const std::string& host,
                                             bool forward_agent, std::string* trusted_line) {
    auto options = build_ssh_options(ctx.global, ctx.env, host, ctx.redactor);
    if (!options.ok()) {
        return options.status();
    }
    auto backend = parse_ssh_backend(ctx.global.ssh_backend);
    if (!backend.ok()) {
        return backend.status();
    }
    if (forward_agent) {
        options->auth.forward_agent = !options->auth.agent_socket.empty();
    }
    if (trusted_line) {
        *trusted_line = trusted_key_line(ctx, *options);
    }
    auto t = make_ssh_transport(*backend, *options, ctx.runner);
    VMLIFT_RETURN_IF_ERROR(t->connect());
    return t;
}

Result<std::unique_ptr<Session>> open_session(Context& ctx, const RunOptions& o, bool need_ssh) {
    auto s = std::make_unique<Session>();
    auto pve = connect_pve(ctx, o.pve, o.source);
    if (!pve.ok()) {
        return pve.status().with_context("source " + o.source);
    }
    s->pve = std::move(*pve);
    auto turl = truenas::parse_truenas_url(o.target);
    if (!turl.ok()) {
        return turl.status();
    }
    s->target_url = *turl;
    auto tn = connect_truenas(ctx, o.truenas, *turl);
    if (!tn.ok()) {
        return tn.status().with_context("target " + o.target);
    }
    s->truenas = std::move(*tn);
    s->source =
        std::make_unique<proxmox::PveMigrationSource>(*s->pve->client, o.source, s->pve->url.vm);
    truenas::TargetLayout layout{o.target_zvol_root, o.target_nvram_dir, o.target_tpm_dir};
    s->target = std::make_unique<truenas::TrueNasMigrationTarget>(*s->truenas.target, *turl,
                                                                  o.target, layout);
    if (need_ssh) {
        const std::string src_host =
            o.source_ssh_host.empty() ? s->pve->url.host : o.source_ssh_host;
        const std::string dst_host = o.target_ssh_host.empty() ? turl->host : o.target_ssh_host;
        bool direct_possible = o.transfer_mode != "relay" && ctx.global.migration_key_path.empty();
        auto src = ssh_to(ctx, src_host, direct_possible, nullptr);
        if (!src.ok()) {
            return src.status().with_context("source host");
        }
        auto dst = ssh_to(ctx, dst_host, false, &s->target_known_hosts);
        if (!dst.ok()) {
            return dst.status().with_context("target host");
        }
        s->source_ssh = std::move(*src);
        s->target_ssh = std::move(*dst);
    }
    return s;
}

// The approval prompt: on the controlling terminal, never from a pipe.
bool ask_on_terminal(const std::string& text) {
    int fd = ::open("/dev/tty", O_RDWR | O_CLOEXEC);
    if (fd < 0 || !::isatty(STDIN_FILENO)) {
        if (fd >= 0) {
            ::close(fd);
        }
        std::cerr << "migrate-vm: no terminal to confirm on; pass --yes to run unattended\n";
        return false;
    }
    std::string prompt = text + "Type 'yes' to go ahead: ";
    (void)!::write(fd, prompt.data(), prompt.size());
    std::string answer;
    char c;
    while (::read(fd, &c, 1) == 1 && c != '\n') {
        answer += c;
    }
    ::close(fd);
    return answer == "yes" || answer == "y";
}

int drive(Context& ctx, RunOptions& o, RunDir& dir, Journal& journal, bool plan_only) {
    auto options = migration_options(o);
    if (!options.ok()) {
        return fail(ctx, "run", options.status());
    }
    auto session = open_session(ctx, o, true);
    if (!session.ok()) {
        (void)journal.set_state("failed");
        return fail(ctx, "run", session.status());
    }
    Session& s = **session;
    RealSleeper sleeper;
    RealProber prober;
    MigrationEnv env(*s.source, *s.target, *s.source_ssh, *s.target_ssh, ctx.runner, ctx.clock,
                     sleeper, prober, ctx.logger);
    env.local_agent = ctx.env.self_dir + "/vmlift-agent";
    env.target_known_hosts = s.target_known_hosts;
    env.target_address_from_source = o.target_address_from_source;
    env.migration_key_path = ctx.global.migration_key_path;
    env.connect_timeout = std::chrono::seconds(ctx.global.connect_timeout_sec);
    env.task_timeout = std::chrono::seconds(ctx.global.task_timeout_sec);
    env.approve = ask_on_terminal;
    env.progress = [&ctx](const std::string& label, uint64_t total) {
        return std::make_unique<ProgressReporter>(ctx.progress_stream(), ctx.progress_style(),
                                                  ctx.clock, label, total);
    };
    s.truenas.target->on_job_progress([&ctx](int percent, const std::string& what) {
        ctx.logger.debug("truenas", std::to_string(percent) + "% " + what);
    });
    RunControl control;
    control.until_preflight = plan_only;
    Status st = run_migration(env, journal, *options, control);
    if (plan_only) {
        const auto& plan = journal.stage("plan").result;
        const auto checks = journal.data().value("preflight", nlohmann::json::array());
        (void)journal.set_state(st.ok() ? "planned" : "failed");
        (void)dir.set_status(st.ok() ? "planned" : "failed");
        if (ctx.global.json) {
            std::cout << nlohmann::json{{"run_dir", dir.path()},
                                        {"ok", st.ok()},
                                        {"vm_spec", journal.stage("inspect").result},
                                        {"plan", plan},
                                        {"checks", checks}}
                             .dump()
                      << std::endl;
        } else {
            if (plan.is_object()) {
                const auto& t = plan["target"];
                std::cout << "Plan (" << dir.path() << "):\n  " << o.source << " → "
                          << t.value("vm_name", "") << " on " << o.target << ", bootloader "
                          << t.value("bootloader", "") << "\n";
                for (const auto& d : t["disks"]) {
                    std::cout << "  disk " << d.value("key", "") << " (" << d.value("role", "")
                              << ", " << format_bytes(d.value("size_bytes", uint64_t{0})) << ") → "
                              << d.value("name", "") << "\n";
                }
                for (const auto& n : t["nics"]) {
                    std::cout << "  nic " << n.value("key", "") << " " << n.value("mac", "")
                              << " → " << n.value("bridge", "") << " (" << n.value("model", "")
                              << ")\n";
                }
                for (const auto& n : t["notes"]) {
                    std::cout << "  note: " << n.get<std::string>() << "\n";
                }
                std::cout << "  cutover IPs: " << plan["cutover_ips"].dump() << ", net-prep "
                          << plan.value("net_prep", "") << "\n";
            }
            std::cout << "Checks:\n";
            for (const auto& c : checks) {
                const char* mark = c.value("passed", false)    ? "ok  "
                                   : c.value("warning", false) ? "warn"
                                                               : "FAIL";
                std::cout << "  [" << mark << "] " << c.value("name", "") << ": "
                          << ctx.redactor.redact(c.value("detail", "")) << "\n";
            }
            std::cout.flush();
        }
        return st.ok() ? 0 : fail(ctx, "plan", st);
    }
    (void)dir.set_status(st.ok() ? "succeeded" : "failed");
    if (!st.ok()) {
        int code = fail(ctx, "run", st);
        std::cerr << "The run stopped; journal and summary in " << dir.path()
                  << ".\n  continue:  migrate-vm resume " << dir.path()
                  << "\n  undo:      migrate-vm rollback " << dir.path() << " [--start-source]\n";
        return code;
    }
    if (ctx.global.json) {
        std::cout << build_summary(journal).dump() << std::endl;
    } else {
        auto md = dir.read_file("summary.md");
        std::cout << (md.ok() ? *md : std::string()) << std::flush;
        ctx.logger.info("run", "migrated; summary in " + dir.file("summary.md"));
    }
    return 0;
}

Result<RunDir> open_run_dir(Context& ctx, const std::string& path) {
    auto dir = RunDir::open(path);
    if (!dir.ok()) {
        return dir.status();
    }
    if (Status st = ctx.logger.open_file(dir->file("log.txt")); !st.ok()) {
        ctx.logger.warn("run", st.message());
    }
    return dir;
}

// The options the run was started with, back from its journal.
Result<RunOptions> options_from(Context& ctx, const Journal& journal) {
    try {
        RunOptions o = journal.request().at("cli").get<RunOptions>();
        ctx.global = [&] {
            GlobalOptions g = journal.request().at("global").get<GlobalOptions>();
            g.run_dir = ctx.global.run_dir;
            g.json = ctx.global.json;
            g.verbose = ctx.global.verbose;
            return g;
        }();
        return o;
    } catch (const std::exception& e) {
        return Status(Code::invalid_input,
                      journal.dir().file("journal.json") + " has no usable request: " + e.what());
    }
}

}  // namespace

void add_run_commands(CLI::App& app, RunOptions& run, RunOptions& plan, RunDirOptions& dir) {
    for (auto [name, o] : {std::pair{"run", &run}, std::pair{"plan", &plan}}) {
        auto* cmd = app.add_subcommand(
            name, std::string(name) == "run"
                      ? "migrate a VM from Proxmox VE to TrueNAS SCALE (journaled; resumable)"
                      : "inspect, plan and preflight a migration; change nothing");
        // Read by expand_config() before parsing (config_file.h); listed for --help.
        cmd->add_option("--config", o->config_file,
                        "read options from this file (`name = value` lines, the long option names "
                        "without dashes); the command line wins");
        cmd->add_option("--source", o->source, "pve://[USER@]HOST[:PORT]/VMID")->required();
        cmd->add_option("--target", o->target, "truenas://HOST/POOL[/DATASET]")->required();
        add_pve_options(*cmd, o->pve);
        add_truenas_options(*cmd, o->truenas);
        cmd->add_option("--source-ssh-host", o->source_ssh_host,
                        "SSH address of the source node (default: the source URL's host)");
        cmd->add_option("--target-ssh-host", o->target_ssh_host,
                        "SSH address of the TrueNAS host (default: the target URL's host)");
        cmd->add_option("--target-address-from-source", o->target_address_from_source,
                        "address the source node uses to reach the target (direct mode)");
        cmd->add_option("--target-zvol-root", o->target_zvol_root,
                        "where the target host exposes zvols")
            ->capture_default_str();
        cmd->add_option("--target-nvram-dir", o->target_nvram_dir,
                        "TrueNAS's VM NVRAM directory (EFI vars)")
            ->capture_default_str();
        cmd->add_option("--target-tpm-dir", o->target_tpm_dir, "where TPM state files go")
            ->capture_default_str();
        cmd->add_option("--target-name", o->target_name, "the VM's name on TrueNAS");
        cmd->add_option("--target-zvol-name,--zvol", o->zvols,
                        "DISKKEY=NAME: a disk's zvol name (repeatable)");
        cmd->add_option("--bridge", o->bridge, "attach every NIC to this bridge");
        cmd->add_option("--bridge-map", o->bridge_map, "SRC=DST,...: bridge per source bridge");
        cmd->add_option("--firmware-override", o->firmware_override, "UEFI or UEFI_CSM")
            ->check(CLI::IsMember({"UEFI", "UEFI_CSM"}));
        cmd->add_option("--target-ip", o->target_ips,
                        "cutover IP to verify (repeatable; default: the guest agent's IPv4s)");
        cmd->add_flag("--use-dhcp", o->use_dhcp, "the first NIC uses DHCP on the target");
        cmd->add_option("--static-cidr", o->static_cidr, "the first NIC's address on the target");
        cmd->add_option("--gateway", o->gateway, "the first NIC's gateway (with --static-cidr)");
        cmd->add_option("--transfer-mode", o->transfer_mode, "auto | direct | relay")
            ->check(CLI::IsMember({"auto", "direct", "relay"}))
            ->capture_default_str();
        cmd->add_option("--offline-vg-name", o->offline_vg_name, "VG of the guest's root");
        cmd->add_option("--offline-lv-name", o->offline_lv_name, "LV of the guest's root");
        cmd->add_option("--net-prep", o->net_prep, "agent | offline | auto | none")
            ->check(CLI::IsMember({"agent", "offline", "auto", "none"}))
            ->capture_default_str();
        cmd->add_option("--shutdown-timeout", o->shutdown_timeout,
                        "seconds to wait for the source to power off")
            ->capture_default_str();
        cmd->add_flag("--force-stop", o->force_stop, "stop the source hard after the timeout");
        cmd->add_flag("--yes", o->yes, "do not ask before shutting the source down");
        cmd->add_option("--post-cutover-cmd", o->post_cutover_cmd,
                        "command run after verify (split on spaces, no shell; gets "
                        "VMLIFT_RUN_ID, VMLIFT_RUN_DIR, VMLIFT_CUTOVER_IP, VMLIFT_TARGET_VM)");
        cmd->add_option("--verify-port", o->verify_port, "TCP port checked on the cutover IP")
            ->capture_default_str();
        cmd->add_option("--verify-mode", o->verify_mode, "tcp | icmp")
            ->check(CLI::IsMember({"tcp", "icmp"}))
            ->capture_default_str();
        cmd->add_option("--verify-timeout", o->verify_timeout, "seconds to wait for the target")
            ->capture_default_str();
        cmd->add_option("--verify-poll-interval", o->verify_poll, "seconds between probes")
            ->capture_default_str();
        cmd->add_flag("--skip-ip-conflict-check", o->skip_ip_conflict_check,
                      "start the target even if the cutover IP answers while the source is off");
        cmd->add_option("--zstd-level", o->zstd_level, "zstd level for the disk copies")
            ->check(CLI::Range(0, 19))
            ->capture_default_str();
        cmd->add_option("--agent-dir", o->agent_dir, "where the agent runs on each host")
            ->capture_default_str();
        cmd->add_option("--target-state-dir", o->target_state_dir,
                        "where the target host keeps disk claims for vmlift-libvirt-hook")
            ->capture_default_str();
    }
    auto* resume = app.add_subcommand("resume", "continue a failed or interrupted run");
    resume->add_option("RUN", dir.run, "the run directory")->required();
    auto* rollback = app.add_subcommand(
        "rollback", "undo a run: stop and delete what it created, unmark the source");
    rollback->add_option("RUN", dir.run, "the run directory")->required();
    rollback->add_flag("--start-source", dir.start_source, "start the source VM again");
    auto* status = app.add_subcommand("status", "show a run's journal");
    status->add_option("RUN", dir.run, "the run directory")->required();
}

int run_run(Context& ctx, RunOptions& o, bool plan_only) {
    auto dir = RunDir::create(ctx.global.run_dir, ctx.clock);
    if (!dir.ok()) {
        return fail(ctx, "run", dir.status());
    }
    if (Status st = ctx.logger.open_file(dir->file("log.txt")); !st.ok()) {
        ctx.logger.warn("run", st.message());
    }
    ctx.logger.info("run", "run directory " + dir->path());
    auto pve_url = proxmox::parse_pve_url(o.source);
    auto turl = truenas::parse_truenas_url(o.target);
    if (!pve_url.ok()) {
        return fail(ctx, "run", pve_url.status());
    }
    if (!turl.ok()) {
        return fail(ctx, "run", turl.status());
    }
    nlohmann::json request = {
        {"command", plan_only ? "plan" : "run"},
        {"tool_version", VMLIFT_VERSION},
        {"source", o.source},
        {"target", o.target},
        {"source_host", o.source_ssh_host.empty() ? pve_url->host : o.source_ssh_host},
        {"target_host", o.target_ssh_host.empty() ? turl->host : o.target_ssh_host},
        {"cli", o},
        {"global", ctx.global}};
    auto journal = Journal::create(*dir, ctx.clock, request);
    if (!journal.ok()) {
        return fail(ctx, "run", journal.status());
    }
    return drive(ctx, o, *dir, *journal, plan_only);
}

int run_resume(Context& ctx, const RunDirOptions& d) {
    auto dir = open_run_dir(ctx, d.run);
    if (!dir.ok()) {
        return fail(ctx, "resume", dir.status());
    }
    auto journal = Journal::open(*dir, ctx.clock);
    if (!journal.ok()) {
        return fail(ctx, "resume", journal.status());
    }
    if (journal->state() == "succeeded" || journal->state() == "rolled-back") {
        return fail(
            ctx, "resume",
            Status(Code::invalid_input, "run " + journal->run_id() + " is " + journal->state() +
                                            "; there is nothing to resume"));
    }
    if (journal->request().value("command", "") == "plan") {
        return fail(
            ctx, "resume",
            Status(Code::invalid_input, d.run + " is a plan; start a run with migrate-vm run"));
    }
    auto o = options_from(ctx, *journal);
    if (!o.ok()) {
        return fail(ctx, "resume", o.status());
    }
    ctx.logger.info("resume", "resuming run " + journal->run_id());
    return drive(ctx, *o, *dir, *journal, false);
}

int run_rollback(Context& ctx, const RunDirOptions& d) {
    auto dir = open_run_dir(ctx, d.run);
    if (!dir.ok()) {
        return fail(ctx, "rollback", dir.status());
    }
    auto journal = Journal::open(*dir, ctx.clock);
    if (!journal.ok()) {
        return fail(ctx, "rollback", journal.status());
    }
    auto o = options_from(ctx, *journal);
    if (!o.ok()) {
        return fail(ctx, "rollback", o.status());
    }
    auto session = open_session(ctx, *o, false);
    if (!session.ok()) {
        return fail(ctx, "rollback", session.status());
    }
    RollbackOptions ro;
    ro.start_source = d.start_source;
    ro.local = &ctx.runner;
    Status st =
        rollback_migration(*(*session)->source, *(*session)->target, *journal, ctx.logger, ro);
    if (!st.ok()) {
        (void)dir->set_status("rollback-failed");
        return fail(ctx, "rollback", st);
    }
    (void)dir->set_status("rolled-back");
    if (ctx.global.json) {
        std::cout << nlohmann::json{{"run_id", journal->run_id()},
                                    {"state", journal->state()},
                                    {"undo", journal->undo()}}
                         .dump()
                  << std::endl;
    } else {
        std::cout << "Rolled back run " << journal->run_id() << ":\n";
        for (const auto& u : journal->undo()) {
            std::cout << "  " << u.value("action", "") << ": "
                      << (u.contains("undone_at") ? "done" : "not needed") << "\n";
        }
    }
    return 0;
}

int run_status(Context& ctx, const RunDirOptions& d) {
    auto dir = RunDir::open(d.run);
    if (!dir.ok()) {
        return fail(ctx, "status", dir.status());
    }
    auto journal = Journal::open(*dir, ctx.clock);
    if (!journal.ok()) {
        return fail(ctx, "status", journal.status());
    }
    if (ctx.global.json) {
        std::cout << journal->to_json().dump() << std::endl;
        return 0;
    }
    std::cout << "run " << journal->run_id() << " (" << dir->path() << "): " << journal->state()
              << "\n  " << journal->request().value("source", "") << " → "
              << journal->request().value("target", "") << "\n";
    for (const auto& s : journal->stages()) {
        char secs[32];
        std::snprintf(secs, sizeof secs, "%7.1f s", s.seconds);
        std::cout << "  "
                  << (s.state == StageState::done      ? "done   "
                      : s.state == StageState::skipped ? "skipped"
                      : s.state == StageState::failed  ? "FAILED "
                      : s.state == StageState::running ? "running"
                      : s.state == StageState::undone  ? "undone "
                                                       : "pending")
                  << " " << secs << "  " << s.name << (s.error.empty() ? "" : ": " + s.error)
                  << "\n";
    }
    const auto streams = journal->data().value("streams", nlohmann::json::object());
    for (const auto& [key, st] : streams.items()) {
        std::cout << "  disk " << key << ": " << st.value("state", "") << "\n";
    }
    return 0;
}

}  // namespace vmlift::cli

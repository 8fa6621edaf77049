#include "engine/migration.h"

#include <algorithm>
#include <sstream>
#include <thread>

#include "engine/hook_guard.h"
#include "engine/io.h"
#include "engine/remote_edit.h"
#include "engine/report.h"

namespace vmlift {
namespace {

bool finished(StageState s) {
    return s == StageState::done || s == StageState::skipped;
}

std::string join(const std::vector<std::string>& items, const std::string& sep) {
    std::string out;
    for (const auto& i : items) {
        out += (out.empty() ? "" : sep) + i;
    }
    return out;
}

nlohmann::json skipped(const std::string& reason) {
    return {{"skipped", reason}};
}

class Driver {
  public:
    Driver(MigrationEnv& env, Journal& journal, const MigrationOptions& options)
        : m_env(env), m_journal(journal), m_options(options) {}

    Status run(const RunControl& control) {
        VMLIFT_RETURN_IF_ERROR(load());
        VMLIFT_RETURN_IF_ERROR(stage("inspect", [&] { return inspect(); }));
        VMLIFT_RETURN_IF_ERROR(stage("plan", [&] { return plan(); }));
        VMLIFT_RETURN_IF_ERROR(stage("preflight", [&] { return preflight(); }));
        if (control.until_preflight) {
            return Status::ok_status();
        }
        VMLIFT_RETURN_IF_ERROR(stage("approve", [&] { return approve(); }));
        VMLIFT_RETURN_IF_ERROR(stage("provision", [&] { return provision(); }));
        VMLIFT_RETURN_IF_ERROR(stage("net-prep-agent", [&] { return net_prep_agent(); }));
        VMLIFT_RETURN_IF_ERROR(stage("shutdown", [&] { return shutdown(); }));
        VMLIFT_RETURN_IF_ERROR(stage("stream", [&] { return stream(); }));
        VMLIFT_RETURN_IF_ERROR(stage("guest-net", [&] { return guest_net(); }));
        VMLIFT_RETURN_IF_ERROR(stage("mark-source", [&] { return mark_source(); }));
        VMLIFT_RETURN_IF_ERROR(stage("start", [&] { return start(); }));
        VMLIFT_RETURN_IF_ERROR(stage("verify", [&] { return verify(); }));
        VMLIFT_RETURN_IF_ERROR(stage("post-cutover", [&] { return post_cutover(); }));
        VMLIFT_RETURN_IF_ERROR(stage("report", [&] { return report(); }));
        VMLIFT_RETURN_IF_ERROR(m_journal.set_state("succeeded"));
        return write_report(m_journal);  // again, now with the final state
    }

  private:
    template <typename F>
    Status stage(const std::string& name, F body) {
        if (finished(m_journal.stage(name).state)) {
            return Status::ok_status();
        }
        m_env.log.info("run", "stage " + name);
        VMLIFT_RETURN_IF_ERROR(m_journal.begin(name));
        Result<nlohmann::json> r = body();
        if (!r.ok()) {
            (void)m_journal.fail(name, r.status().message());
            return r.status().with_context(name);
        }
        if (r->is_object() && r->contains("skipped")) {
            m_env.log.info("run", name + " skipped: " + (*r)["skipped"].get<std::string>());
            return m_journal.skip(name, (*r)["skipped"].get<std::string>());
        }
        return m_journal.finish(name, std::move(*r));
    }

    // What earlier stages recorded, for a resumed run.
    Status load() {
        const auto& insp = m_journal.stage("inspect");
        if (finished(insp.state)) {
            auto spec = vm_spec_from_json(insp.result);
            if (!spec.ok()) {
                return spec.status().with_context("journal inspect result");
            }
            m_spec = *spec;
        }
        const auto& pl = m_journal.stage("plan");
        if (finished(pl.state)) {
            auto plan = TargetPlan::from_json(pl.result.at("target"));
            if (!plan.ok()) {
                return plan.status();
            }
            m_plan = *plan;
        }
        const auto& pv = m_journal.stage("provision");
        if (finished(pv.state)) {
            m_vm.vm_id = pv.result.value("vm_id", 0);
            m_vm.vm_name = pv.result.value("vm_name", "");
            m_vm.disk_paths = pv.result.value("disk_paths", std::map<std::string, std::string>{});
            m_vm.details = pv.result.value("details", nlohmann::json::object());
        }
        return Status::ok_status();
    }

    Result<nlohmann::json> inspect() {
        auto spec = m_env.source.inspect();
        if (!spec.ok()) {
            return spec.status();
        }
        m_spec = *spec;
        nlohmann::json j = to_json(m_spec);
        VMLIFT_RETURN_IF_ERROR(m_journal.dir().write_file("vm-spec.json", j.dump(2) + "\n"));
        return j;
    }

    Result<nlohmann::json> plan() {
        auto plan = m_env.target.plan(m_spec, m_options, m_journal.run_id());
        if (!plan.ok()) {
            return plan.status();
        }
        m_plan = *plan;
        nlohmann::json j = {{"target", m_plan.to_json()},
                            {"cutover_ips", cutover_ips(m_spec, m_options)},
                            {"guest_nics", nics_to_json(guest_nics(m_spec, m_options))},
                            {"net_prep", net_prep_name(m_options.net_prep)},
                            {"transfer_mode", m_options.transfer_mode == StreamMode::automatic
                                                  ? "auto"
                                                  : stream_mode_name(m_options.transfer_mode)}};
        VMLIFT_RETURN_IF_ERROR(m_journal.dir().write_file("plan.json", j.dump(2) + "\n"));
        return j;
    }

    void check_host(SshTransport& host, const std::string& what, std::vector<Check>& checks) {
        auto r = exec_captured(host, {"true"}, {}, ExecOptions{std::chrono::seconds(30)});
        Check c{"ssh " + what, true, false, ""};
        c.passed = r.ok() && r->exit.success();
        c.detail = c.passed
                       ? host.target().user + "@" + host.target().host + " answers"
                       : (r.ok() ? "`true` failed: " + last_line(r->err) : r.status().message());
        checks.push_back(c);
    }

    Result<nlohmann::json> preflight() {
        std::vector<Check> checks;
        m_env.source.preflight(m_spec, checks);
        m_env.target.preflight(m_plan, checks);
        check_host(m_env.source_host, "source", checks);
        check_host(m_env.target_host, "target", checks);
        for (const auto& disk : m_spec.disks) {
            Check c{"source disk " + disk.key, true, false, ""};
            if (disk.host_path.empty() || disk.size_bytes == 0) {
                c.passed = false;
                c.detail = "no host path or size for " + disk.volume +
                           " (not a local volume); move it to a local storage first";
            } else {
                auto r = exec_captured(m_env.source_host, {"test", "-r", disk.host_path}, {},
                                       ExecOptions{std::chrono::seconds(30)});
                c.passed = r.ok() && r->exit.success();
                c.detail = disk.host_path + (c.passed ? " is readable" : " cannot be read there");
            }
            checks.push_back(c);
        }
        if (m_options.transfer_mode == StreamMode::direct) {
            Check c{"direct-mode trust", true, false, ""};
            c.passed = !m_env.target_known_hosts.empty();
            c.detail = c.passed ? "the source will check the target's key the controller trusts"
                                : "the controller's known_hosts has no key for the target; "
                                  "connect once with ssh-check or use --transfer-mode relay";
            checks.push_back(c);
        }
        if (m_options.net_prep == NetPrep::agent || m_options.net_prep == NetPrep::automatic) {
            checks.push_back(guest_agent_check());
        }
        if (m_options.net_prep == NetPrep::offline || m_options.net_prep == NetPrep::automatic) {
            Check c{"tool host", true, false, ""};
            auto r = exec_captured(m_env.target_host,
                                   {"which", "losetup", "blkid", "sfdisk", "mount", "umount"}, {},
                                   ExecOptions{std::chrono::seconds(30)});
            c.passed = r.ok() && r->exit.success();
            c.detail = c.passed ? "the target host has losetup, blkid, sfdisk and mount for the "
                                  "offline network rewrite"
                                : "the target host lacks one of losetup, blkid, sfdisk, mount "
                                  "(util-linux, fdisk); install them or use --net-prep none";
            c.warning = m_options.net_prep == NetPrep::automatic;
            checks.push_back(c);
        }
        if (cutover_ips(m_spec, m_options).empty()) {
            checks.push_back({"cutover ip", false, true,
                              "no IP known (no guest agent address, no --target-ip): "
                              "reachability will not be verified"});
        }
        nlohmann::json j = nlohmann::json::array();
        std::vector<std::string> failed;
        for (const auto& c : checks) {
            j.push_back({{"name", c.name},
                         {"passed", c.passed},
                         {"warning", c.warning},
                         {"detail", c.detail}});
            if (!c.passed && !c.warning) {
                failed.push_back(c.name + ": " + c.detail);
            }
        }
        VMLIFT_RETURN_IF_ERROR(m_journal.put("preflight", j));
        if (!failed.empty()) {
            return Status(Code::invalid_input,
                          std::to_string(failed.size()) +
                              " check(s) failed, nothing was changed: " + join(failed, "; "));
        }
        return nlohmann::json{{"checks", j}};
    }

    std::string approval_text() const {
        std::ostringstream s;
        s << "Migrate " << m_spec.name << " (" << m_env.source.describe() << ") to "
          << m_plan.vm_name << " on " << m_env.target.describe() << ":\n"
          << "  - create " << m_plan.disks.size() << " disk target(s) and the VM (bootloader "
          << m_plan.bootloader << ") on the target\n"
          << "  - SHUT DOWN the source VM " << m_spec.vmid << " (timeout "
          << m_options.shutdown_timeout_sec << " s" << (m_options.force_stop ? ", then force" : "")
          << ")\n"
          << "  - copy every disk, rewrite the guest network (" << net_prep_name(m_options.net_prep)
          << "), mark the source as migrated, start the target and verify it\n";
        return s.str();
    }

    Result<nlohmann::json> approve() {
        if (m_options.yes) {
            return nlohmann::json{{"approved_by", "--yes"}};
        }
        if (!m_env.approve || !m_env.approve(approval_text())) {
            return Status(Code::cancelled,
                          "not approved; nothing was changed (run again and answer yes, or pass "
                          "--yes)");
        }
        return nlohmann::json{{"approved_by", "prompt"}};
    }

    Result<nlohmann::json> provision() {
        // Recorded first: a crash in the middle still rolls back (by marker).
        VMLIFT_RETURN_IF_ERROR(m_journal.add_undo({{"action", "delete-target-objects"}}));
        auto vm = m_env.target.provision(m_spec, m_options, m_journal.run_id());
        if (!vm.ok()) {
            return vm.status();
        }
        m_vm = *vm;
        return nlohmann::json{{"vm_id", m_vm.vm_id},
                              {"vm_name", m_vm.vm_name},
                              {"disk_paths", m_vm.disk_paths},
                              {"details", m_vm.details}};
    }

    // Agent-first: the running guest rewrites its own config through the
    // guest agent; auto falls back to the offline rewrite on the copy.
    Result<nlohmann::json> net_prep_agent() {
        if (m_options.net_prep == NetPrep::none) {
            return skipped("--net-prep none");
        }
        if (m_options.net_prep == NetPrep::offline) {
            return skipped("--net-prep offline: the rewrite runs on the copy");
        }
        const bool must = m_options.net_prep == NetPrep::agent;
        auto fall_back = [&](const Status& why) -> Result<nlohmann::json> {
            if (must) {
                return Status(why.code(), "--net-prep agent: " + why.message() +
                                              " (or use --net-prep offline)");
            }
            m_env.log.warn("run", "in-guest network rewrite not done (" + why.message() +
                                      "); it runs offline on the copy instead");
            return skipped("in-guest rewrite not possible (" + why.message() +
                           "); the rewrite runs offline on the copy");
        };
        GuestExec* guest = m_env.source.guest_exec();
        if (!m_spec.agent || guest == nullptr) {
            return fall_back(
                Status(Code::invalid_input, "the source VM has no guest agent enabled (agent: 1)"));
        }
        auto running = m_env.source.running();
        if (!running.ok()) {
            return running.status();
        }
        if (!*running) {
            return fall_back(
                Status(Code::invalid_input, "the source VM is not running, so its agent cannot"));
        }
        AgentNetOptions o;
        o.work_dir = m_journal.dir().path() + "/net-prep-agent/attempt-" +
                     std::to_string(m_journal.undo().size());
        o.record_undo = [&](const nlohmann::json& u) { return m_journal.add_undo(u); };
        auto r =
            rewrite_guest_net_via_agent(*guest, m_env.runner, guest_nics(m_spec, m_options), o);
        if (!r.ok()) {
            return fall_back(r.status());
        }
        return *r;
    }

    // The guest agent answers and the guest has what the in-guest rewrite
    // runs (sh, tar, base64, mktemp). A warning under auto.
    Check guest_agent_check() {
        Check c{"guest agent", true, m_options.net_prep == NetPrep::automatic, ""};
        GuestExec* guest = m_env.source.guest_exec();
        auto running = m_env.source.running();
        if (!m_spec.agent || guest == nullptr) {
            c.passed = false;
            c.detail = "the source VM has no guest agent enabled (agent: 1)";
        } else if (!running.ok() || !*running) {
            c.passed = false;
            c.detail = "the source VM is not running, so its agent cannot rewrite the network";
        } else {
            auto r = guest->exec({"sh", "-c",
                                  "command -v tar && command -v base64 && command -v "
                                  "mktemp"},
                                 "");
            c.passed = r.ok() && r->exit_code == 0;
            c.detail = c.passed ? guest->describe() + " runs commands; the guest has tar and base64"
                       : r.ok() ? "the guest lacks tar, base64 or mktemp for the in-guest rewrite"
                                : r.status().message();
        }
        if (!c.passed && c.warning) {
            c.detail += "; the network rewrite will run offline on the copy";
        }
        return c;
    }

    Result<nlohmann::json> shutdown() {
        auto running = m_env.source.running();
        if (!running.ok()) {
            return running.status();
        }
        std::string at = iso8601_utc(m_env.clock.wall());
        if (*running) {
            VMLIFT_RETURN_IF_ERROR(m_journal.add_undo({{"action", "start-source"}}));
            VMLIFT_RETURN_IF_ERROR(m_env.source.shutdown(
                std::chrono::seconds(m_options.shutdown_timeout_sec), m_options.force_stop));
            at = iso8601_utc(m_env.clock.wall());
        }
        VMLIFT_RETURN_IF_ERROR(m_journal.put("source_stopped_at", at));
        VMLIFT_RETURN_IF_ERROR(m_journal.put(
            "source_stopped_epoch",
            std::chrono::duration<double>(m_env.clock.wall().time_since_epoch()).count()));
        return nlohmann::json{{"was_running", *running}, {"stopped_at", at}};
    }

    const DiskSpec* source_disk(const std::string& key) const {
        for (const auto& d : m_spec.disks) {
            if (d.key == key) {
                return &d;
            }
        }
        return nullptr;
    }

    // The disk claim the target host's libvirt hook checks (hook_guard.h).
    Status write_claim(const TargetDisk& disk, const std::string& state) {
        if (disk.device_path.empty()) {
            return Status::ok_status();
        }
        DiskClaim claim;
        claim.path = disk.device_path;
        claim.run_id = m_journal.run_id();
        claim.state = state;
        auto ips = cutover_ips(m_spec, m_options);
        claim.cutover_ip = ips.empty() ? "" : ips[0];
        claim.port = m_options.verify_port;
        claim.mode = m_options.verify_mode == ProbeMode::tcp ? "tcp" : "icmp";
        const std::string file = claim_file(m_options.target_state_dir, disk.device_path);
        const std::string dir = file.substr(0, file.rfind('/'));
        auto made = exec_checked(m_env.target_host, {"mkdir", "-p", "-m", "0700", dir});
        if (made.ok()) {
            made = exec_checked(m_env.target_host, {"tee", file + ".tmp"},
                                claim_json(claim).dump() + "\n");
        }
        if (made.ok()) {
            made = exec_checked(m_env.target_host, {"mv", "-f", file + ".tmp", file});
        }
        if (!made.ok()) {
            return made.status().with_context("disk claim " + file + " on the target host");
        }
        return Status::ok_status();
    }

    Result<nlohmann::json> stream() {
        nlohmann::json streams = m_journal.data().value("streams", nlohmann::json::object());
        for (const auto& disk : m_plan.disks) {
            if (streams.value(disk.key, nlohmann::json::object()).value("state", "") == "done") {
                continue;
            }
            const DiskSpec* src = source_disk(disk.key);
            auto path = m_vm.disk_paths.find(disk.key);
            if (!src || path == m_vm.disk_paths.end()) {
                return Status(Code::internal, "no target path for disk " + disk.key);
            }
            if (disk.role != DiskRole::data) {
                // NVRAM and TPM files: the directory may not exist yet.
                std::string dir = path->second.substr(0, path->second.rfind('/'));
                auto made = exec_checked(m_env.target_host, {"mkdir", "-p", "-m", "0700", dir});
                if (!made.ok()) {
                    return made.status().with_context("disk " + disk.key);
                }
            }
            VMLIFT_RETURN_IF_ERROR(write_claim(disk, "copying"));
            const bool resumed = streams.contains(disk.key);
            streams[disk.key] = {{"state", "started"}, {"dst_path", path->second}};
            VMLIFT_RETURN_IF_ERROR(m_journal.put("streams", streams));
            StreamRequest req;
            req.src_path = src->host_path;
            req.dst_path = path->second;
            req.expected_bytes = src->size_bytes;
            req.mode = m_options.transfer_mode;
            req.zstd_level = m_options.zstd_level;
            req.resume = resumed;
            req.dst_fresh = !resumed && disk.role == DiskRole::data &&
                            m_vm.details.value("zvols_reused", nlohmann::json::array()).empty();
            req.local_agent = m_env.local_agent;
            req.agent_dir = m_options.agent_dir;
            req.run_id = m_journal.run_id() + "-" + disk.key;
            req.dst_host_for_src = m_env.target_address_from_source;
            req.dst_known_hosts_line = m_env.target_known_hosts;
            req.migration_key_path = m_env.migration_key_path;
            req.connect_timeout = m_env.connect_timeout;
            req.task_timeout = m_env.task_timeout;
            m_env.log.info("run", "copying " + disk.key + ": " + src->host_path + " → " +
                                      path->second + (resumed ? " (resuming)" : ""));
            auto progress = m_env.progress ? m_env.progress(disk.key, src->size_bytes) : nullptr;
            auto r =
                run_stream(m_env.source_host, m_env.target_host, req, progress.get(), m_env.log);
            if (progress) {
                if (r.ok()) {
                    progress->update(r->size);
                }
                progress->finish(r.ok());
            }
            if (!r.ok()) {
                return r.status().with_context("disk " + disk.key);
            }
            streams[disk.key] = {{"state", "done"},
                                 {"dst_path", path->second},
                                 {"resumed", resumed},
                                 {"result", r->to_json()}};
            VMLIFT_RETURN_IF_ERROR(m_journal.put("streams", streams));
        }
        for (const auto& disk : m_plan.disks) {
            VMLIFT_RETURN_IF_ERROR(write_claim(disk, "verified"));
        }
        return nlohmann::json{{"disks", streams}};
    }

    std::string root_disk_key() const {
        const DiskSpec* best = nullptr;
        for (const auto& d : m_spec.disks) {
            if (d.role != DiskRole::data) {
                continue;
            }
            if (!best ||
                (d.boot_index >= 0 && (best->boot_index < 0 || d.boot_index < best->boot_index))) {
                best = &d;
            }
        }
        return best ? best->key : "";
    }

    Result<nlohmann::json> guest_net() {
        if (m_options.net_prep == NetPrep::none) {
            return skipped("--net-prep none: the guest keeps its network config as it was");
        }
        if (m_journal.stage("net-prep-agent").state == StageState::done) {
            return skipped("done in the guest through its agent before shutdown");
        }
        const std::string key = root_disk_key();
        if (key.empty() || !m_vm.disk_paths.count(key)) {
            return skipped("no data disk to look for a Linux root on");
        }
        GuestDiskOptions disk;
        disk.device = m_vm.disk_paths.at(key);
        disk.vg_name = m_options.offline_vg_name;
        disk.lv_name = m_options.offline_lv_name;
        RemoteEdit how;
        how.host_name = m_env.target_host.target().host;
        how.local_agent = m_env.local_agent;
        how.agent_dir = m_options.agent_dir;
        how.run_id = m_journal.run_id();
        how.timeout = std::chrono::seconds(1800);
        auto r = edit_guest_disk_remote(m_env.target_host, how, disk, guest_nics(m_spec, m_options),
                                        false);
        if (!r.ok()) {
            if (m_options.net_prep == NetPrep::automatic &&
                r.status().code() == Code::invalid_input) {
                m_env.log.warn("run", "offline network rewrite not done: " + r.status().message());
                return skipped("no rewrite: " + r.status().message());
            }
            return r.status();
        }
        nlohmann::json j = *r;
        j["disk"] = key;
        j["method_used"] = "offline";
        return j;
    }

    Result<nlohmann::json> mark_source() {
        VMLIFT_RETURN_IF_ERROR(m_journal.add_undo({{"action", "unmark-source"}}));
        std::string note = "migrated by vmlift run " + m_journal.run_id() + " to " +
                           m_env.target.describe() + " as " + m_vm.vm_name;
        VMLIFT_RETURN_IF_ERROR(m_env.source.mark_migrated(note));
        return nlohmann::json{{"note", note}};
    }

    Result<nlohmann::json> start() {
        nlohmann::json streams = m_journal.data().value("streams", nlohmann::json::object());
        for (const auto& disk : m_plan.disks) {
            auto s = streams.value(disk.key, nlohmann::json::object());
            if (s.value("state", "") != "done" ||
                s.value("result", nlohmann::json::object()).value("digest", "").empty()) {
                return Status(Code::internal, "disk " + disk.key +
                                                  " has no verified copy; the target is not "
                                                  "started (run `migrate-vm resume`)");
            }
        }
        nlohmann::json conflict = nlohmann::json::array();
        if (!m_options.skip_ip_conflict_check) {
            for (const auto& ip : cutover_ips(m_spec, m_options)) {
                auto answered = m_env.prober.probe(ip, m_options.verify_port, m_options.verify_mode,
                                                   std::chrono::milliseconds(2000));
                if (answered.ok() && *answered) {
                    return Status(Code::remote_failed,
                                  ip + " still answers although the source is stopped: another "
                                       "machine holds it; free it (or pass "
                                       "--skip-ip-conflict-check) and run `migrate-vm resume`");
                }
                conflict.push_back({{"ip", ip}, {"answered", answered.ok() && *answered}});
            }
        }
        VMLIFT_RETURN_IF_ERROR(
            m_journal.add_undo({{"action", "stop-target"}, {"vm_id", m_vm.vm_id}}));
        VMLIFT_RETURN_IF_ERROR(m_env.target.start_vm(m_vm.vm_id));
        VMLIFT_RETURN_IF_ERROR(m_journal.put("target_started_at", iso8601_utc(m_env.clock.wall())));
        return nlohmann::json{{"vm_id", m_vm.vm_id}, {"ip_conflict_check", conflict}};
    }

    Result<nlohmann::json> verify() {
        auto ips = cutover_ips(m_spec, m_options);
        if (ips.empty()) {
            return skipped("no cutover IP known; give --target-ip to verify");
        }
        nlohmann::json results = nlohmann::json::array();
        for (const auto& ip : ips) {
            VerifyRequest req;
            req.ip = ip;
            req.port = m_options.verify_port;
            req.mode = m_options.verify_mode;
            req.timeout = std::chrono::seconds(m_options.verify_timeout_sec);
            req.poll_interval = std::chrono::seconds(m_options.verify_poll_sec);
            VerifyResult last;
            auto r = verify_reachability(m_env.prober, m_env.clock, m_env.sleeper, req, &last);
            results.push_back(last.to_json());
            VMLIFT_RETURN_IF_ERROR(m_journal.put("verify", results));
            if (!r.ok()) {
                return r.status();
            }
        }
        VMLIFT_RETURN_IF_ERROR(m_journal.put(
            "target_reachable_epoch",
            std::chrono::duration<double>(m_env.clock.wall().time_since_epoch()).count()));
        return nlohmann::json{{"results", results}};
    }

    Result<nlohmann::json> post_cutover() {
        if (m_options.post_cutover_cmd.empty()) {
            return skipped("no --post-cutover-cmd");
        }
        ProcessSpec spec;
        spec.argv = m_options.post_cutover_cmd;
        spec.env = default_tool_env();
        spec.env.push_back("VMLIFT_RUN_ID=" + m_journal.run_id());
        spec.env.push_back("VMLIFT_RUN_DIR=" + m_journal.dir().path());
        auto ips = cutover_ips(m_spec, m_options);
        spec.env.push_back("VMLIFT_CUTOVER_IP=" + (ips.empty() ? std::string() : ips[0]));
        spec.env.push_back("VMLIFT_TARGET_VM=" + m_vm.vm_name);
        spec.timeout = std::chrono::seconds(600);
        auto r = run_captured(m_env.runner, spec);
        if (!r.ok()) {
            return r.status();
        }
        if (!r->exit.success()) {
            return Status(Code::remote_failed, "--post-cutover-cmd " + spec.argv[0] + " failed (" +
                                                   r->exit.describe() + "): " + last_line(r->err));
        }
        return nlohmann::json{{"argv", spec.argv}, {"exit_code", 0}, {"output", last_line(r->out)}};
    }

    Result<nlohmann::json> report() {
        VMLIFT_RETURN_IF_ERROR(write_report(m_journal));
        return nlohmann::json{{"files", {"summary.md", "summary.json"}}};
    }

    MigrationEnv& m_env;
    Journal& m_journal;
    const MigrationOptions& m_options;
    VmSpec m_spec;
    TargetPlan m_plan;
    ProvisionedVm m_vm;
};

}  // namespace

Status run_migration(MigrationEnv& env, Journal& journal, const MigrationOptions& options,
                     const RunControl& control) {
    Driver driver(env, journal, options);
    Status st = driver.run(control);
    if (!st.ok()) {
        (void)journal.set_state(journal.stage("approve").state == StageState::done ? "failed"
                                                                                   : "stopped");
        (void)write_report(journal);
    }
    return st;
}

Status rollback_migration(MigrationSource& source, MigrationTarget& target, Journal& journal,
                          Logger& log, const RollbackOptions& options) {
    const nlohmann::json undo = journal.undo();
    Status first_error;
    for (size_t i = undo.size(); i-- > 0;) {
        const auto& u = undo[i];
        if (u.contains("undone_at")) {
            continue;
        }
        const std::string action = u.value("action", "");
        Status st;
        if (action == "stop-target") {
            int id = u.value("vm_id", 0);
            auto state = target.vm_state(id);
            if (state.ok() && *state == "RUNNING") {
                st = target.stop_vm(id);
            } else if (!state.ok() && state.status().code() != Code::not_found) {
                st = state.status();
            }
        } else if (action == "delete-target-objects") {
            auto r = target.rollback(journal.run_id());
            st = r.ok() ? Status::ok_status() : r.status();
            if (r.ok()) {
                log.info("rollback", "deleted on the target: " + r->dump());
            }
        } else if (action == "unmark-source") {
            st = source.unmark();
        } else if (action == "start-source") {
            if (!options.start_source) {
                log.info("rollback", "the source stays stopped (pass --start-source to start it)");
                continue;
            }
            auto running = source.running();
            st =
                running.ok() ? (*running ? Status::ok_status() : source.start()) : running.status();
        } else if (action == "restore-guest-net") {
            auto running = source.running();
            GuestExec* guest = source.guest_exec();
            if (running.ok() && !*running) {
                log.info("rollback",
                         "the source guest keeps the network config vmlift wrote in it (matched by "
                         "MAC, so it works on Proxmox too); pass --start-source to put the "
                         "originals back through its agent");
                continue;
            }
            if (!running.ok()) {
                st = running.status();
            } else if (guest == nullptr || options.local == nullptr) {
                st = Status(Code::unreachable, "no guest agent to restore the network config with");
            } else {
                // A source just started needs a while before its agent answers.
                for (int attempt = 0;; ++attempt) {
                    st = restore_guest_net_via_agent(*guest, *options.local, u);
                    if (st.ok() || st.code() != Code::unreachable ||
                        attempt * 5 >= options.agent_wait_sec) {
                        break;
                    }
                    std::this_thread::sleep_for(std::chrono::seconds(5));
                }
            }
        } else {
            st = Status(Code::internal, "unknown undo action '" + action + "'");
        }
        if (!st.ok()) {
            log.error("rollback", action + ": " + st.message());
            if (first_error.ok()) {
                first_error = st.with_context("rollback " + action);
            }
            continue;
        }
        log.info("rollback", "done: " + action);
        VMLIFT_RETURN_IF_ERROR(journal.mark_undone(i));
    }
    if (!first_error.ok()) {
        (void)journal.set_state("rollback-failed");
        return first_error;
    }
    VMLIFT_RETURN_IF_ERROR(journal.set_state("rolled-back"));
    (void)write_report(journal);
    return Status::ok_status();
}

}  // namespace vmlift

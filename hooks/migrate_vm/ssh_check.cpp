#include "hooks/migrate_vm/ssh_check.h"

#include <chrono>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "connectors/ssh/ssh_factory.h"
#include "engine/pattern.h"
#include "engine/run_dir.h"

namespace vmlift::cli {
namespace {

using SteadyClock = std::chrono::steady_clock;

double seconds_since(SteadyClock::time_point t0) {
    return std::chrono::duration<double>(SteadyClock::now() - t0).count();
}

std::string hex64(uint64_t v) {
    char buf[20];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
    return buf;
}

// Checks one host; fills `report` and returns the first failure.
Status check_host(Context& ctx, const SshCheckOptions& options, const std::string& host,
                  nlohmann::json& report) {
    auto ssh_options = build_ssh_options(ctx.global, ctx.env, host, ctx.redactor);
    if (!ssh_options.ok()) {
        return ssh_options.status();
    }
    auto backend = parse_ssh_backend(ctx.global.ssh_backend);
    if (!backend.ok()) {
        return backend.status();
    }
    auto transport = make_ssh_transport(*backend, *ssh_options, ctx.runner);
    report["target"] = ssh_options->target.describe();
    report["backend"] = ssh_backend_name(*backend);

    auto t0 = SteadyClock::now();
    VMLIFT_RETURN_IF_ERROR(transport->connect());
    report["connect_ms"] = static_cast<int>(seconds_since(t0) * 1000);
    ctx.logger.info("ssh-check", "connected to " + ssh_options->target.describe() + " (" +
                                     ssh_backend_name(*backend) + ")");

    ExecOptions exec_options{std::chrono::seconds(ctx.global.task_timeout_sec)};
    auto uname = exec_checked(*transport, {"uname", "-srm"}, {}, exec_options);
    if (!uname.ok()) {
        return uname.status();
    }
    report["uname"] = last_line(*uname);

    PatternSource source(options.bytes, 0x766d6c696674ULL);
    HashingSink received;
    ProgressReporter progress(ctx.progress_stream(), ctx.progress_style(), ctx.clock,
                              "ssh-check " + host, options.bytes);
    ProgressSink counted(received, progress);
    LimitedStringSink err(64 * 1024);
    t0 = SteadyClock::now();
    auto exit = transport->exec({"cat"}, RunIo{&source, &counted, &err}, exec_options);
    double secs = seconds_since(t0);
    progress.finish(exit.ok() && exit->success());
    if (!exit.ok()) {
        return exit.status();
    }
    if (!exit->success()) {
        return Status(Code::remote_failed, "`cat` on " + host + " failed (" + exit->describe() +
                                               "): " + last_line(err.str()));
    }
    report["bytes"] = received.bytes();
    report["seconds"] = secs;
    report["mb_per_sec"] = secs > 0 ? static_cast<double>(received.bytes()) / secs / 1e6 : 0.0;
    report["digest_sent"] = hex64(source.digest());
    report["digest_received"] = hex64(received.digest());
    if (received.bytes() != source.produced() || received.digest() != source.digest()) {
        return Status(Code::io_error, "data echoed by " + host + " differs from what was sent (" +
                                          std::to_string(received.bytes()) + " of " +
                                          std::to_string(source.produced()) +
                                          " bytes); the link or the host corrupts data");
    }
    transport->close();
    return {};
}

}  // namespace

void add_ssh_check_command(CLI::App& app, SshCheckOptions& options) {
    auto* cmd = app.add_subcommand(
        "ssh-check", "connect to each host, run a command, echo data through it and verify it");
    cmd->add_option("--host", options.hosts, "host to check (repeatable)")->required();
    cmd->add_option("--bytes", options.bytes, "bytes to echo through `cat` on each host")
        ->capture_default_str();
}

int run_ssh_check(Context& ctx, const SshCheckOptions& options) {
    auto run_dir = RunDir::create(ctx.global.run_dir, ctx.clock);
    if (!run_dir.ok()) {
        ctx.logger.error("ssh-check", run_dir.status().message());
        return exit_code_for(run_dir.status().code());
    }
    Status log_status = ctx.logger.open_file(run_dir->file("log.txt"));
    if (!log_status.ok()) {
        ctx.logger.warn("ssh-check", log_status.message());
    }
    ctx.logger.info("ssh-check", "run directory " + run_dir->path());
    nlohmann::json results = nlohmann::json::array();
    Status first_failure;
    for (const auto& host : options.hosts) {
        nlohmann::json report = {{"host", host}};
        Status st = check_host(ctx, options, host, report);
        report["ok"] = st.ok();
        if (!st.ok()) {
            report["error"] = ctx.redactor.redact(st.to_string());
            ctx.logger.error("ssh-check", st.message());
            if (first_failure.ok()) {
                first_failure = st;
            }
        } else {
            char line[256];
            std::snprintf(line, sizeof line,
                          "%s: ok, %s, echoed %llu bytes at %.1f MB/s, digests match",
                          report["target"].get<std::string>().c_str(),
                          report["uname"].get<std::string>().c_str(),
                          static_cast<unsigned long long>(report["bytes"].get<uint64_t>()),
                          report["mb_per_sec"].get<double>());
            ctx.logger.info("ssh-check", line);
        }
        results.push_back(report);
    }
    nlohmann::json summary = {{"event", "ssh_check"},
                              {"ok", first_failure.ok()},
                              {"run_dir", run_dir->path()},
                              {"hosts", results}};
    (void)run_dir->write_file("ssh-check.json", summary.dump(2) + "\n");
    (void)run_dir->set_status(first_failure.ok() ? "succeeded" : "failed");
    if (ctx.global.json) {
        std::cout << summary.dump() << std::endl;
    }
    return exit_code_for(first_failure.code());
}

}  // namespace vmlift::cli

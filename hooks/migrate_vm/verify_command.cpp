#include "hooks/migrate_vm/verify_command.h"

#include <iostream>

#include "engine/verify.h"

namespace vmlift::cli {

void add_verify_command(CLI::App& app, VerifyOptions& o) {
    auto* cmd = app.add_subcommand("verify", "wait until an IP answers (or stops answering)");
    cmd->add_option("--ip", o.ip, "the address to check")->required();
    cmd->add_option("--port", o.port, "TCP port (tcp mode)")->capture_default_str();
    cmd->add_option("--mode", o.mode, "tcp | icmp")
        ->check(CLI::IsMember({"tcp", "icmp"}))
        ->capture_default_str();
    cmd->add_option("--expect", o.expect, "reachable | unreachable")
        ->check(CLI::IsMember({"reachable", "unreachable"}))
        ->capture_default_str();
    cmd->add_option("--timeout-sec", o.timeout_sec, "give up after this many seconds")
        ->check(CLI::Range(0, 86400))
        ->capture_default_str();
    cmd->add_option("--poll-interval-sec", o.poll_interval_sec, "seconds between probes")
        ->check(CLI::Range(1, 3600))
        ->capture_default_str();
}

int run_verify(Context& ctx, const VerifyOptions& o) {
    VerifyRequest req;
    req.ip = o.ip;
    req.port = o.port;
    req.mode = *parse_probe_mode(o.mode);
    req.expect = *parse_expect(o.expect);
    req.timeout = std::chrono::seconds(o.timeout_sec);
    req.poll_interval = std::chrono::seconds(o.poll_interval_sec);
    RealProber prober;
    RealSleeper sleeper;
    VerifyResult last;
    auto r = verify_reachability(prober, ctx.clock, sleeper, req, &last);
    if (ctx.global.json) {
        nlohmann::json j = last.to_json();
        if (!r.ok()) {
            j["error"] = r.status().message();
            j["code"] = code_name(r.status().code());
        }
        std::cout << j.dump() << std::endl;
    }
    if (!r.ok()) {
        ctx.logger.error("verify", r.status().message());
        return exit_code_for(r.status().code());
    }
    if (!ctx.global.json) {
        std::cout << o.ip << (req.mode == ProbeMode::tcp ? " port " + std::to_string(o.port) : "")
                  << " (" << o.mode << ") is " << o.expect << " after " << r->attempts
                  << " attempt(s), " << static_cast<int>(r->seconds) << " s\n";
    }
    return 0;
}

}  // namespace vmlift::cli

#include "hooks/migrate_vm/stream_command.h"

#include <thread>

#include <nlohmann/json.hpp>

#include "connectors/ssh/ssh_factory.h"
#include "engine/run_dir.h"
#include "hooks/migrate_vm/trusted_key.h"

namespace vmlift::cli {
void add_stream_command(CLI::App& app, StreamOptions& o) {
    auto* cmd = app.add_subcommand("stream", "copy a disk from one host to another over SSH");
    StreamRequest& r = o.request;
    cmd->add_option("--src-host", o.src_host, "host holding the source disk")->required();
    cmd->add_option("--dst-host", o.dst_host, "host receiving the copy")->required();
    cmd->add_option("--src-dev-path", r.src_path, "source block device or image file")->required();
    cmd->add_option("--dst-dev-path", r.dst_path, "destination block device or image file")
        ->required();
    cmd->add_option("--src-user", o.src_user, "SSH user on the source (default --ssh-user)");
    cmd->add_option("--dst-user", o.dst_user, "SSH user on the destination (default --ssh-user)");
    cmd->add_option("--expected-bytes", r.expected_bytes, "fail unless the source has this size");
    cmd->add_option("--mode", o.mode, "direct | relay | auto")
        ->check(CLI::IsMember({"direct", "relay", "auto"}))
        ->capture_default_str();
    cmd->add_option("--block-size", r.block_size, "chunk size (4M; multiple of 4K, up to 64M)")
        ->transform(CLI::AsSizeValue(false))
        ->capture_default_str();
    cmd->add_option("--zstd-level", r.zstd_level, "zstd level (-7..19; 0: no compression)")
        ->check(CLI::Range(-7, 19))
        ->capture_default_str();
    cmd->add_option("--zstd-threads", r.zstd_threads, "compression threads (0: one per core)")
        ->check(CLI::Range(0, 256))
        ->capture_default_str();
    cmd->add_flag("--sparse,!--no-sparse", r.sparse, "skip holes and zero blocks (default on)");
    cmd->add_flag("--resume", r.resume, "continue an interrupted copy from its confirmed chunks");
    cmd->add_flag("--delta", r.delta, "hash the destination and send only differing chunks");
    cmd->add_flag("--seal", r.seal,
                  "keep the destination's block hashes after a complete copy, so a later "
                  "--delta need not read it");
    cmd->add_flag("--verify-readback", r.verify_readback,
                  "re-read the destination after the copy and check every chunk");
    cmd->add_flag("--dst-fresh", r.dst_fresh,
                  "the destination is new and reads as zeros (skip writing zero chunks)");
    cmd->add_option("--transport", o.transport, "agent | shell")
        ->check(CLI::IsMember({"agent", "shell"}))
        ->capture_default_str();
    cmd->add_option("--agent-dir", r.agent_dir, "where the agent and its state live on each host")
        ->capture_default_str();
    cmd->add_option("--dst-address-from-src", o.dst_address_from_src,
                    "address the source uses to reach the destination (default --dst-host)");
}

int run_stream_command(Context& ctx, StreamOptions& o) {
    StreamRequest& req = o.request;
    req.mode = o.mode == "direct"  ? StreamMode::direct
               : o.mode == "relay" ? StreamMode::relay
                                   : StreamMode::automatic;
    req.transport = o.transport == "shell" ? StreamTransport::shell : StreamTransport::agent;
    req.local_agent = ctx.env.self_dir + "/vmlift-agent";
    req.migration_key_path = ctx.global.migration_key_path;
    req.dst_host_for_src = o.dst_address_from_src;
    req.connect_timeout = std::chrono::seconds(ctx.global.connect_timeout_sec);
    req.task_timeout = std::chrono::seconds(ctx.global.task_timeout_sec);
    if (req.block_size == 0 || req.block_size % 4096 != 0 || req.block_size > (64u << 20)) {
        ctx.logger.error("stream", "--block-size must be a multiple of 4K up to 64M");
        return exit_code_for(Code::invalid_input);
    }

    auto run_dir = RunDir::create(ctx.global.run_dir, ctx.clock);
    if (!run_dir.ok()) {
        ctx.logger.error("stream", run_dir.status().message());
        return exit_code_for(run_dir.status().code());
    }
    if (Status st = ctx.logger.open_file(run_dir->file("log.txt")); !st.ok()) {
        ctx.logger.warn("stream", st.message());
    }
    auto fail = [&](const Status& st) {
        ctx.logger.error("stream", st.message());
        (void)run_dir->set_status("failed");
        if (ctx.global.json) {
            std::cout << nlohmann::json{{"event", "error"},
                                        {"code", code_name(st.code())},
                                        {"message", ctx.redactor.redact(st.message())}}
                             .dump()
                      << std::endl;
        }
        return exit_code_for(st.code());
    };

    auto src_options = build_ssh_options(ctx.global, ctx.env, o.src_host, ctx.redactor);
    auto dst_options = build_ssh_options(ctx.global, ctx.env, o.dst_host, ctx.redactor);
    if (!src_options.ok()) {
        return fail(src_options.status());
    }
    if (!dst_options.ok()) {
        return fail(dst_options.status());
    }
    if (!o.src_user.empty()) {
        src_options->target.user = o.src_user;
    }
    if (!o.dst_user.empty()) {
        dst_options->target.user = o.dst_user;
    }
    auto backend = parse_ssh_backend(ctx.global.ssh_backend);
    if (!backend.ok()) {
        return fail(backend.status());
    }
    if (req.mode != StreamMode::relay && req.migration_key_path.empty()) {
        // Direct mode authenticates the source to the destination with the
        // controller's forwarded agent (OpenSSH -A).
        src_options->auth.forward_agent = !src_options->auth.agent_socket.empty();
    }
    req.dst_known_hosts_line = trusted_key_line(ctx, *dst_options);

    auto src = make_ssh_transport(*backend, *src_options, ctx.runner);
    auto dst = make_ssh_transport(*backend, *dst_options, ctx.runner);
    Status dst_connected;
    std::thread dst_connect([&] { dst_connected = dst->connect(); });  // both handshakes at once
    Status src_connected = src->connect();
    dst_connect.join();
    if (!src_connected.ok()) {
        return fail(src_connected);
    }
    if (!dst_connected.ok()) {
        return fail(dst_connected);
    }
    ctx.logger.info("stream", "run directory " + run_dir->path());
    req.run_id = run_dir->id();
    ctx.logger.info("stream", "copying " + o.src_host + ":" + req.src_path + " to " + o.dst_host +
                                  ":" + req.dst_path);
    ProgressReporter progress(ctx.progress_stream(), ctx.progress_style(), ctx.clock, req.src_path,
                              0);
    auto result = run_stream(*src, *dst, req, &progress, ctx.logger);
    if (result.ok()) {
        progress.update(result->size);
    }
    progress.finish(result.ok());
    if (!result.ok()) {
        return fail(result.status());
    }
    nlohmann::json j = result->to_json();
    (void)run_dir->write_file("stream.json", j.dump(2) + "\n");
    (void)run_dir->set_status("succeeded");
    if (ctx.global.json) {
        std::cout << j.dump() << std::endl;
    } else {
        char line[512];
        std::snprintf(
            line, sizeof line,
            "copied %s in %.1f s (%s, %s): read %s, sent %s, wrote %s, skipped %s of "
            "zeros, digest %s",
            format_bytes(result->size).c_str(), result->seconds, stream_mode_name(result->mode),
            stream_transport_name(result->transport), format_bytes(result->bytes_read).c_str(),
            format_bytes(result->bytes_sent).c_str(), format_bytes(result->bytes_written).c_str(),
            format_bytes(result->zero_bytes_skipped).c_str(), result->digest.c_str());
        ctx.logger.info("stream", line);
    }
    return 0;
}

}  // namespace vmlift::cli

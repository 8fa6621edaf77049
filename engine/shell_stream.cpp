#include "engine/shell_stream.h"

#include <regex>
#include <thread>

#include "engine/direct_route.h"
#include "engine/quote.h"

namespace vmlift {
namespace {

constexpr const char* k_block = "4M";
constexpr uint64_t k_block_bytes = 4u << 20;

Result<uint64_t> source_size(SshTransport& src, const std::string& path) {
    auto out = exec_captured(
        src, {"sh", "-c",
              "if [ -b \"$1\" ]; then blockdev --getsize64 \"$1\"; else stat -L -c %s \"$1\"; fi",
              "vmlift-size", path});
    if (!out.ok()) {
        return out.status();
    }
    if (!out->exit.success()) {
        return Status(Code::not_found, "source " + path + " on " + src.target().host +
                                           " cannot be read: " + last_line(out->err));
    }
    return std::strtoull(out->out.c_str(), nullptr, 10);
}

Result<bool> destination_is_block(SshTransport& dst, const std::string& path) {
    auto out = exec_captured(dst, {"test", "-b", path});
    if (!out.ok()) {
        return out.status();
    }
    return out->exit.success();
}

std::vector<std::string> sender_argv(const StreamRequest& req) {
    int level = req.zstd_level == 0 ? 1 : req.zstd_level;
    return {"sh",
            "-c",
            "dd if=\"$1\" bs=\"$2\" iflag=fullblock status=none | zstd -q -T0 -\"$3\" -c",
            "vmlift-shell-send",
            req.src_path,
            k_block,
            std::to_string(level)};
}

std::vector<std::string> receiver_argv(const StreamRequest& req, bool sparse_ok) {
    std::string conv = sparse_ok ? "conv=sparse" : "conv=notrunc";
    return {"sh",
            "-c",
            "zstd -q -dc | dd of=\"$1\" bs=\"$2\" iflag=fullblock \"$3\"",
            "vmlift-shell-recv",
            req.dst_path,
            k_block,
            conv};
}

Status check_count(const std::string& dd_err, uint64_t size, const std::string& dst_path) {
    auto bytes = parse_dd_bytes(dd_err);
    if (!bytes) {
        return Status(Code::remote_failed,
                      "the destination dd gave no byte count: " + last_line(dd_err));
    }
    uint64_t diff = *bytes > size ? *bytes - size : size - *bytes;
    if (diff > k_block_bytes) {
        return Status(Code::io_error, "destination dd wrote " + std::to_string(*bytes) +
                                          " bytes to " + dst_path + " but the source has " +
                                          std::to_string(size) + "; the copy is incomplete");
    }
    return {};
}

}  // namespace

std::optional<uint64_t> parse_dd_bytes(const std::string& dd_stderr) {
    static const std::regex k_bytes(R"re((\d+) bytes)re");
    std::smatch m;
    std::optional<uint64_t> found;
    auto begin = dd_stderr.cbegin();
    while (std::regex_search(begin, dd_stderr.cend(), m, k_bytes)) {
        found = std::stoull(m[1].str());
        begin = m[0].second;
    }
    return found;
}

Result<StreamResult> run_shell_stream(SshTransport& src, SshTransport& dst,
                                      const StreamRequest& req, ProgressReporter* progress,
                                      Logger& log) {
    auto t0 = std::chrono::steady_clock::now();
    StreamResult result;
    result.transport = StreamTransport::shell;
    result.rounds = 1;
    auto size = source_size(src, req.src_path);
    if (!size.ok()) {
        return size.status();
    }
    result.size = *size;
    result.block_size = req.block_size;
    if (progress) {
        progress->set_total(*size);
    }
    if (req.expected_bytes != 0 && req.expected_bytes != *size) {
        return Status(Code::invalid_input, "--expected-bytes is " +
                                               std::to_string(req.expected_bytes) + " but source " +
                                               req.src_path + " has " + std::to_string(*size) +
                                               " bytes (nothing was written)");
    }
    auto block = destination_is_block(dst, req.dst_path);
    if (!block.ok()) {
        return block.status();
    }
    const bool sparse_ok = !*block || req.dst_fresh;
    DirectRoute route(src, dst, req, req.agent_dir, log);
    VMLIFT_RETURN_IF_ERROR(route.choose(result));
    ExecOptions limit{std::chrono::duration_cast<std::chrono::milliseconds>(req.task_timeout)};
    LimitedStringSink recv_err(64 * 1024);
    LimitedStringSink send_err(64 * 1024);
    if (result.mode == StreamMode::relay) {
        BytePipe pipe(16u << 20);
        StringSink recv_out;
        Result<ExitStatus> recv_exit = Status(Code::internal, "receiver did not run");
        std::thread receiver([&] {
            recv_exit = dst.exec(receiver_argv(req, sparse_ok),
                                 RunIo{&pipe.source(), &recv_out, &recv_err}, limit);
            pipe.close_read();
        });
        auto send_exit = src.exec(sender_argv(req), RunIo{nullptr, &pipe.sink(), &send_err}, limit);
        pipe.close_write();
        receiver.join();
        if (!recv_exit.ok()) {
            return recv_exit.status();
        }
        if (!send_exit.ok()) {
            return send_exit.status();
        }
        if (!recv_exit->success()) {
            return Status(Code::remote_failed, "the destination pipeline on " + dst.target().host +
                                                   " failed: " + last_line(recv_err.str()));
        }
        result.bytes_sent = pipe.bytes_through();
    } else {
        auto line = shell_join(receiver_argv(req, sparse_ok));
        if (!line.ok()) {
            return line.status();
        }
        auto argv = sender_argv(req);
        argv[2] += " | { shift 3; exec \"$@\"; }";
        auto ssh = route.ssh_argv();
        argv.insert(argv.end(), ssh.begin(), ssh.end());
        argv.push_back(*line);
        StringSink out;
        auto exit = src.exec(argv, RunIo{nullptr, &out, &recv_err}, limit);
        if (!exit.ok()) {
            return exit.status();
        }
        if (!exit->success()) {
            return Status(Code::remote_failed, "the direct pipeline from " + src.target().host +
                                                   " failed: " + last_line(recv_err.str()));
        }
    }
    VMLIFT_RETURN_IF_ERROR(check_count(recv_err.str(), *size, req.dst_path));
    result.bytes_read = *size;
    result.bytes_written = *size;
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (progress) {
        progress->update(*size);
    }
    return result;
}

}  // namespace vmlift

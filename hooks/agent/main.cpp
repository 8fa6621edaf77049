// vmlift-agent: the static on-host helper of the stream. argv → engine → exit code.
//
//   vmlift-agent send --path SRC [--block-size N] [--zstd-level L] [--threads T]
//                     [--no-sparse] [--known-state FILE|-] [--source-state FILE]
//                     [-- PIPE-TO ARGV...]
//       Streams SRC to stdout, or into the stdin of PIPE-TO (spawned from
//       argv, e.g. the source's own ssh to the destination; its stdout and
//       stderr are ours). Progress "P <bytes>" and the final "S <json>" go to
//       stderr. With --known-state -, stdin starts with a u64 length and a
//       chunk state (the destination's confirmed chunks). --source-state is
//       SRC's own hashes from `hashes` (delta): chunks whose hash matches the
//       known one are not read again.
//   vmlift-agent recv --path DST [--state FILE] [--fresh] [--verify-readback]
//                     [--seal FILE [--seal-block-size N]]
//       Writes the stream from stdin to DST; prints a JSON result on stdout.
//       Removes the seal FILE first; with --seal-block-size, a complete copy
//       writes a new one (engine/stream_seal.h).
//   vmlift-agent state --state FILE --size N --block-size B
//       Prints the saved chunk state (binary; nothing when there is none).
//   vmlift-agent hashes --path DST --block-size B --state FILE [--print] [--seal FILE]
//       Hashes DST and saves it as the confirmed state (delta baseline);
//       with --print, prints that state as `state` would (saves the caller
//       a second command). With --seal, a seal that still describes DST at
//       this block size is used instead of reading DST (and is consumed);
//       stderr then says "sealed".
//   vmlift-agent edit-guest --device DISK|--nbd-uri URI [--nbd-device DEV] --nics JSON [--vg-name
//   VG]
//                     [--lv-name LV] [--mount-point DIR] [--dry-run]
//       Rewrites the network config on the copied disk DISK on this host
//       (engine/guest_disk.h); prints the result JSON on stdout.
//   vmlift-agent info --path P [--seal FILE]
//       Prints {"exists","type","size","readable","allocated_bytes"} as JSON;
//       with --seal, also "seal": {"size","block_size"} when that seal still
//       describes P, else "seal": null and "seal_why".
// Errors: "vmlift-agent: error: ..." on stderr and the exit codes of the
// README's table.
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "engine/clock.h"
#include "engine/guest_disk.h"
#include "engine/log.h"
#include "engine/process.h"
#include "engine/redact.h"
#include "engine/stream_receiver.h"
#include "engine/stream_seal.h"
#include "engine/stream_sender.h"

namespace {

using namespace vmlift;
using namespace vmlift::stream;

// CPU seconds and peak RSS of this process and of its waited-for children.
nlohmann::json resource_usage() {
    struct rusage self {
    }, kids{};
    ::getrusage(RUSAGE_SELF, &self);
    ::getrusage(RUSAGE_CHILDREN, &kids);
    auto secs = [](const timeval& tv) {
        return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
    };
    return {{"cpu_s", secs(self.ru_utime) + secs(self.ru_stime)},
            {"max_rss_kib", self.ru_maxrss},
            {"children_cpu_s", secs(kids.ru_utime) + secs(kids.ru_stime)},
            {"children_max_rss_kib", kids.ru_maxrss}};
}

int fail(const Status& st) {
    std::cerr << "vmlift-agent: error: " << st.message() << std::endl;
    return exit_code_for(st.code());
}

bool read_fd_exact(int fd, char* data, size_t size) {
    size_t got = 0;
    while (got < size) {
        ssize_t r = ::read(fd, data + got, size - got);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            return false;
        }
        got += static_cast<size_t>(r);
    }
    return true;
}

Result<std::optional<ChunkState>> read_known(const std::string& source) {
    if (source.empty()) {
        return std::optional<ChunkState>();
    }
    std::string data;
    if (source == "-") {
        // u64 length, then the serialized state; read unbuffered from fd 0.
        char len_bytes[8];
        if (!read_fd_exact(STDIN_FILENO, len_bytes, 8)) {
            return Status(Code::invalid_input, "no known state on stdin");
        }
        uint64_t len = 0;
        for (int b = 7; b >= 0; --b) {
            len = (len << 8) | static_cast<uint8_t>(len_bytes[b]);
        }
        if (len == 0) {
            return std::optional<ChunkState>();
        }
        if (len > (1ULL << 32)) {
            return Status(Code::invalid_input, "known state on stdin is implausibly large");
        }
        data.resize(len);
        if (!read_fd_exact(STDIN_FILENO, data.data(), len)) {
            return Status(Code::invalid_input, "truncated known state on stdin");
        }
    } else {
        std::ifstream in(source, std::ios::binary);
        std::stringstream buf;
        buf << in.rdbuf();
        data = buf.str();
    }
    auto state = ChunkState::parse(data);
    if (!state.ok()) {
        return state.status();
    }
    return std::optional<ChunkState>(std::move(*state));
}

int exit_code_of(const ExitStatus& exit) {
    return exit.kind == ExitStatus::Kind::exited ? exit.code : 128 + exit.signal;
}

// A 1 MiB pipe instead of 64 KiB: the stream crosses it in fewer, larger
// reads and writes, so ssh and the agent wake each other far less often.
// Not a pipe, or over the system's limit: left as it is.
void widen_pipe(int fd) {
    (void)::fcntl(fd, F_SETPIPE_SZ, 1 << 20);
}

int run_send(const SenderOptions& base, const std::string& known_source,
             const std::string& source_state, const std::vector<std::string>& pipe_to) {
    SenderOptions options = base;
    auto known = read_known(known_source);
    if (!known.ok()) {
        return fail(known.status());
    }
    if (*known) {
        options.known = known_from_state(**known);
    }
    if (!source_state.empty()) {
        auto source = read_known(source_state);
        if (!source.ok()) {
            return fail(Status(source.status().code(),
                               "source hashes " + source_state + ": " + source.status().message()));
        }
        if (*source) {
            options.source_hashes = known_from_state(**source);
        }
    }
    int out_fd = STDOUT_FILENO;
    pid_t child = -1;
    if (!pipe_to.empty()) {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) {
            return fail(Status(Code::io_error, "pipe2 failed"));
        }
        ProcessSpec spec;
        spec.argv = pipe_to;
        spec.env = default_tool_env();
        if (const char* sock = std::getenv("SSH_AUTH_SOCK")) {
            spec.env.push_back(std::string("SSH_AUTH_SOCK=") + sock);  // a forwarded agent
        }
        auto started = spawn_with_stdin(spec, fds[0]);
        ::close(fds[0]);
        if (!started.ok()) {
            ::close(fds[1]);
            return fail(started.status());
        }
        child = *started;
        out_fd = fds[1];
    }
    widen_pipe(out_fd);
    auto last = std::chrono::steady_clock::now();
    auto progress = [&last](uint64_t done) {
        auto now = std::chrono::steady_clock::now();
        if (now - last >= std::chrono::milliseconds(200)) {
            last = now;
            char line[32];
            int n =
                std::snprintf(line, sizeof line, "P %llu\n", static_cast<unsigned long long>(done));
            if (::write(STDERR_FILENO, line, static_cast<size_t>(n)) != n) {
                // The controller is gone: stop, so a resumed copy never races us.
                std::_Exit(exit_code_for(Code::connection_lost));
            }
        }
    };
    auto stats = send_stream(options, out_fd, progress);
    if (child > 0) {
        ::close(out_fd);
        ExitStatus exit = wait_for(child);
        if (!exit.success() && (stats.ok() || stats.status().code() == Code::connection_lost)) {
            // The receiving side failed; its own error is already on stderr.
            return exit_code_of(exit);
        }
    }
    if (!stats.ok()) {
        return fail(stats.status());
    }
    nlohmann::json j = {{"size", stats->size},
                        {"bytes_read", stats->bytes_read},
                        {"bytes_sent", stats->bytes_sent},
                        {"zero_bytes", stats->zero_bytes},
                        {"same_bytes", stats->same_bytes},
                        {"data_bytes", stats->data_bytes},
                        {"seek_data", stats->seek_data_used},
                        {"digest", stats->digest.hex()},
                        {"usage", resource_usage()}};
    std::fprintf(stderr, "S %s\n", j.dump().c_str());
    return 0;
}

int run_recv(const ReceiverOptions& options) {
    widen_pipe(STDIN_FILENO);
    auto stats = receive_stream(options, STDIN_FILENO);
    if (!stats.ok()) {
        return fail(stats.status());
    }
    nlohmann::json j = {{"complete", stats->complete()},
                        {"size", stats->size},
                        {"fresh", stats->fresh},
                        {"bytes_written", stats->bytes_written},
                        {"zero_bytes_skipped", stats->zero_bytes_skipped},
                        {"zero_bytes_zeroed", stats->zero_bytes_zeroed},
                        {"same_bytes", stats->same_bytes},
                        {"chunks_bad", stats->chunks_bad},
                        {"chunks_unconfirmed", stats->chunks_unconfirmed},
                        {"sender_bytes_read", stats->sender_bytes_read},
                        {"digest", stats->digest.hex()},
                        {"sender_digest", stats->sender_digest.hex()},
                        {"readback_checked", stats->readback_checked},
                        {"readback_mismatches", stats->readback_mismatches},
                        {"sealed", stats->sealed},
                        {"usage", resource_usage()}};
    std::cout << j.dump() << std::endl;
    return 0;
}

int run_edit_guest(const GuestDiskOptions& options, const std::string& nics_text, bool dry_run) {
    if (options.device.empty() == options.nbd_uri.empty()) {
        return fail(Status(Code::invalid_input, "edit-guest: give --device or --nbd-uri"));
    }
    auto parsed = nlohmann::json::parse(nics_text, nullptr, false);
    auto nics = nics_from_json(parsed);
    if (!nics.ok()) {
        return fail(nics.status());
    }
    RealClock clock;
    Redactor redactor;
    Logger log(clock, redactor);
    log.set_console(&std::cerr, LogLevel::info);
    PosixProcessRunner runner;
    auto result = edit_guest_disk(runner, log, options, *nics, dry_run);
    if (!result.ok()) {
        return fail(result.status());
    }
    std::cout << result->dump() << std::endl;
    return 0;
}

int run_state(const std::string& path, uint64_t size, uint32_t block_size) {
    auto state = ChunkState::load(path, size, block_size);
    std::string data = state ? state->serialize() : std::string();
    std::fwrite(data.data(), 1, data.size(), stdout);
    return 0;
}

int run_hashes(const std::string& path, uint32_t block_size, const std::string& state_path,
               bool print, const std::string& seal_path) {
    Result<ChunkState> state = Status(Code::not_found, "no seal");
    if (!seal_path.empty()) {
        std::string why;
        // The seal's size is the source's (a block device may be larger).
        auto seal = read_seal_any(seal_path, path, &why);
        if (seal && seal->block_size() == block_size) {
            state = std::move(*seal);
            drop_seal(seal_path);  // one use: the receiver writes a new one
            std::fprintf(stderr, "sealed\n");
        }
    }
    if (!state.ok()) {
        state = hash_device(path, block_size);
    }
    if (!state.ok()) {
        return fail(state.status());
    }
    Status st = state->save(state_path);
    if (!st.ok()) {
        return fail(st);
    }
    if (print) {
        const std::string data = state->serialize();
        std::fwrite(data.data(), 1, data.size(), stdout);
        return std::fflush(stdout) == 0 ? 0
                                        : fail(Status(Code::io_error, "cannot print the state"));
    }
    std::cout << nlohmann::json{{"chunks", state->count()}, {"size", state->size()}}.dump()
              << std::endl;
    return 0;
}

int run_info(const std::string& path, const std::string& seal_path) {
    struct stat st {};
    nlohmann::json j;
    if (::stat(path.c_str(), &st) != 0) {
        j = {{"exists", false},
             {"type", "missing"},
             {"size", 0},
             {"readable", false},
             {"allocated_bytes", 0}};
    } else {
        auto size = device_size(path);
        j = {{"exists", true},
             {"type", S_ISBLK(st.st_mode)   ? "block"
                      : S_ISREG(st.st_mode) ? "file"
                                            : "other"},
             {"size", size.ok() ? *size : 0},
             {"readable", size.ok()},
             {"allocated_bytes", static_cast<uint64_t>(st.st_blocks) * 512}};
    }
    if (!seal_path.empty()) {
        std::string why;
        auto seal = read_seal_any(seal_path, path, &why);
        j["seal"] = seal
                        ? nlohmann::json{{"size", seal->size()}, {"block_size", seal->block_size()}}
                        : nlohmann::json(nullptr);
        if (!seal) {
            j["seal_why"] = why;
        }
    }
    std::cout << j.dump() << std::endl;
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    ignore_sigpipe();
    CLI::App app{"vmlift-agent: on-host helper for vmlift disk streams"};
    app.require_subcommand(1);
    app.set_version_flag("--version", "vmlift-agent 1");

    SenderOptions send;
    std::string known_source;
    std::vector<std::string> pipe_to;
    bool no_sparse = false;
    auto* s = app.add_subcommand("send", "stream a disk to stdout or into PIPE-TO");
    s->add_option("--path", send.path)->required();
    s->add_option("--block-size", send.block_size);
    s->add_option("--zstd-level", send.zstd_level)->check(CLI::Range(-7, 19));
    s->add_option("--threads", send.threads)->check(CLI::Range(0, 256));
    s->add_flag("--no-sparse", no_sparse);
    s->add_option("--known-state", known_source);
    std::string source_state;
    s->add_option("--source-state", source_state);
    s->add_option("pipe_to", pipe_to, "program (argv) that receives the stream on its stdin");

    ReceiverOptions recv;
    auto* r = app.add_subcommand("recv", "write the stream on stdin to a disk");
    r->add_option("--path", recv.path)->required();
    r->add_option("--state", recv.state_path);
    r->add_flag("--fresh", recv.fresh);
    r->add_flag("--verify-readback", recv.verify_readback);
    r->add_option("--seal", recv.seal_path, "the destination's seal (removed first)");
    r->add_option("--seal-block-size", recv.seal_block_size, "seal a complete copy at this size");

    std::string state_path;
    uint64_t size = 0;
    uint32_t block_size = 4u << 20;
    auto* st = app.add_subcommand("state", "print the saved chunk state");
    st->add_option("--state", state_path)->required();
    st->add_option("--size", size)->required();
    st->add_option("--block-size", block_size)->required();

    std::string hash_path;
    auto* h = app.add_subcommand("hashes", "hash a disk into a confirmed chunk state");
    h->add_option("--path", hash_path)->required();
    h->add_option("--block-size", block_size)->required();
    h->add_option("--state", state_path)->required();
    bool print_state = false;
    h->add_flag("--print", print_state, "print the state instead of a summary");
    std::string seal_path;
    h->add_option("--seal", seal_path, "use this seal instead of reading the disk when it holds");

    GuestDiskOptions guest;
    std::string guest_nics;
    bool guest_dry_run = false;
    auto* g = app.add_subcommand("edit-guest", "rewrite the network config on a copied disk");
    g->add_option("--device", guest.device);
    g->add_option("--nbd-uri", guest.nbd_uri);
    g->add_option("--nbd-device", guest.nbd_device);
    g->add_option("--nics", guest_nics)->required();
    g->add_option("--vg-name", guest.vg_name);
    g->add_option("--lv-name", guest.lv_name);
    g->add_option("--mount-point", guest.mount_point);
    g->add_flag("--dry-run", guest_dry_run);

    std::string info_path;
    auto* i = app.add_subcommand("info", "describe a path");
    i->add_option("--path", info_path)->required();
    i->add_option("--seal", seal_path);

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        int code = app.exit(e);
        return code == 0 ? 0 : 2;
    }
    if (s->parsed()) {
        send.sparse = !no_sparse;
        return run_send(send, known_source, source_state, pipe_to);
    }
    if (r->parsed()) {
        return run_recv(recv);
    }
    if (st->parsed()) {
        return run_state(state_path, size, block_size);
    }
    if (g->parsed()) {
        return run_edit_guest(guest, guest_nics, guest_dry_run);
    }
    if (h->parsed()) {
        return run_hashes(hash_path, block_size, state_path, print_state, seal_path);
    }
    return run_info(info_path, seal_path);
}

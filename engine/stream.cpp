#include "engine/stream.h"

#include <fstream>
#include <thread>

#include <xxhash.h>

#include "engine/agent_deploy.h"
#include "engine/direct_route.h"
#include "engine/quote.h"
#include "engine/shell_stream.h"
#include "engine/upload.h"

namespace vmlift {
namespace {

using SteadyClock = std::chrono::steady_clock;

struct PathInfo {
    bool exists = false;
    bool readable = false;
    std::string type;
    uint64_t size = 0;
};

// `agent info --path` output.
Result<PathInfo> path_info(const SshTransport& host, const std::string& out) {
    try {
        auto j = nlohmann::json::parse(out);
        return PathInfo{j.at("exists"), j.at("readable"), j.at("type"), j.at("size")};
    } catch (const nlohmann::json::exception& e) {
        return Status(Code::remote_failed, "the agent on " + host.target().host +
                                               " answered info with bad JSON: " + e.what());
    }
}

// A field of an agent's JSON answer, or `fallback` when absent or mistyped.
template <typename T>
T field(const nlohmann::json& j, const char* key, T fallback) {
    if (!j.is_object()) {
        return fallback;
    }
    auto it = j.find(key);
    if (it == j.end()) {
        return fallback;
    }
    try {
        return it->get<T>();
    } catch (const nlohmann::json::exception&) {
        return fallback;
    }
}

std::string random_id() {
    uint64_t v = 0;
    std::ifstream("/dev/urandom", std::ios::binary).read(reinterpret_cast<char*>(&v), sizeof v);
    char buf[20];
    std::snprintf(buf, sizeof buf, "%012llx",
                  static_cast<unsigned long long>(v & 0xffffffffffffULL));
    return buf;
}

std::string hex64(uint64_t v) {
    char buf[20];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
    return buf;
}

// The sender's stderr: "P <bytes>" progress, "S <json>" stats, anything else kept.
class SenderStderr : public ByteSink {
  public:
    explicit SenderStderr(ProgressReporter* progress) : m_progress(progress) {}
    Status write(std::string_view data) override {
        m_partial.append(data);
        size_t nl;
        while ((nl = m_partial.find('\n')) != std::string::npos) {
            std::string line = m_partial.substr(0, nl);
            m_partial.erase(0, nl + 1);
            if (line.rfind("P ", 0) == 0) {
                if (m_progress) {
                    m_progress->update(std::strtoull(line.c_str() + 2, nullptr, 10));
                }
            } else if (line.rfind("S ", 0) == 0) {
                try {
                    m_stats = nlohmann::json::parse(line.substr(2));
                } catch (const nlohmann::json::exception&) {
                }
            } else if (m_other.size() < 64 * 1024) {
                m_other += line + "\n";
            }
        }
        return {};
    }
    const nlohmann::json& stats() const { return m_stats; }
    const std::string& other() const { return m_other; }

  private:
    ProgressReporter* m_progress;
    std::string m_partial;
    std::string m_other;
    nlohmann::json m_stats;
};

// Runs a and b at the same time (b on a thread of its own).
template <typename A, typename B>
void both(A&& a, B&& b) {
    std::thread other(std::forward<B>(b));
    a();
    other.join();
}

class Copier {
  public:
    Copier(SshTransport& src, SshTransport& dst, const StreamRequest& req,
           ProgressReporter* progress, Logger& log)
        : m_src(src),
          m_dst(dst),
          m_req(req),
          m_progress(progress),
          m_log(log),
          m_run_dir(req.agent_dir + "/run-" + (req.run_id.empty() ? random_id() : req.run_id)),
          m_route(src, dst, req, m_run_dir, log) {
        const std::string key = hex64(XXH3_64bits(req.dst_path.data(), req.dst_path.size()));
        m_state_path = req.agent_dir + "/state-" + key + ".bin";
        m_seal_path = req.agent_dir + "/seal-" + key + ".bin";
    }

    Result<StreamResult> run() {
        auto t0 = SteadyClock::now();
        // The two hosts are set up and cleaned up at the same time: each
        // remote command costs a session round trip on its host.
        // Each agent's first run answers `info` about its path.
        // The same commands write the source's known_hosts file for the
        // direct route and drop the destination's saved state unless this
        // is a resume (a delta re-hashes it).
        DeployExtras src_extras, dst_extras;
        const auto known_hosts = m_route.known_hosts_file();
        if (known_hosts) {
            src_extras.files.push_back(*known_hosts);
        }
        if (!m_req.resume) {
            dst_extras.remove.push_back(m_state_path);
        }
        Result<DeployedAgent> dst_agent = DeployedAgent{};
        std::thread dst_deploy([&] {
            dst_agent =
                deploy_agent(m_dst, m_req.local_agent, m_run_dir,
                             {"info", "--path", m_req.dst_path, "--seal", m_seal_path}, dst_extras);
        });
        auto src_agent = deploy_agent(m_src, m_req.local_agent, m_run_dir,
                                      {"info", "--path", m_req.src_path}, src_extras);
        dst_deploy.join();
        if (src_agent.ok() && known_hosts) {
            m_route.adopt_known_hosts(known_hosts->first);
        }
        if (!src_agent.ok() || !dst_agent.ok()) {
            both([&] { remove_run_dir(m_src, m_run_dir); },
                 [&] { remove_run_dir(m_dst, m_run_dir); });
            m_route.forget();
            return !src_agent.ok() ? src_agent.status() : dst_agent.status();
        }
        m_src_agent = src_agent->path;
        m_dst_agent = dst_agent->path;
        m_src_info = src_agent->first_output;
        m_dst_info = dst_agent->first_output;
        m_log.debug("stream", "agents ready on both hosts");
        auto result = copy();
        // The route's known_hosts file lives in the run directory; a
        // complete copy's receiver state goes with it.
        std::vector<std::string> dst_also;
        if (m_remove_state) {
            dst_also.push_back(m_state_path);
        }
        both([&] { remove_run_dir(m_src, m_run_dir); },
             [&] { remove_run_dir(m_dst, m_run_dir, dst_also); });
        m_route.forget();  // its known_hosts file was in the run directory
        if (result.ok()) {
            result->seconds = std::chrono::duration<double>(SteadyClock::now() - t0).count();
        }
        return result;
    }

  private:
    Result<StreamResult> copy() {
        VMLIFT_RETURN_IF_ERROR(preflight());
        m_log.debug("stream", "preflight done: " + std::to_string(m_size) + " bytes");
        StreamResult result;
        result.transport = StreamTransport::agent;
        result.size = m_size;
        result.block_size = block_size();
        VMLIFT_RETURN_IF_ERROR(m_route.choose(result));
        if (m_req.delta) {
            VMLIFT_RETURN_IF_ERROR(hash_both(result));
        }
        for (int round = 1; round <= m_req.max_rounds; ++round) {
            result.rounds = round;
            m_log.debug("stream", "round " + std::to_string(round) + " starts");
            auto pass = run_pass(result);
            m_log.debug("stream", "round " + std::to_string(round) + " ended");
            if (!pass.ok()) {
                return pass.status();
            }
            const nlohmann::json& r = *pass;
            result.bytes_written += field(r, "bytes_written", uint64_t{0});
            result.zero_bytes_skipped += field(r, "zero_bytes_skipped", uint64_t{0});
            result.same_bytes = field(r, "same_bytes", uint64_t{0});
            result.readback_verified = field(r, "readback_checked", false);
            result.sealed = field(r, "sealed", false);
            if (r.is_object() && r.contains("usage")) {
                result.receiver_usage = r["usage"];
            }
            if (field(r, "complete", false)) {
                result.digest = field(r, "digest", std::string());
                m_remove_state = true;
                return result;
            }
            if (field(r, "digest", std::string()) != field(r, "sender_digest", std::string()) &&
                field(r, "chunks_unconfirmed", uint64_t{1}) == 0) {
                return Status(Code::io_error,
                              "whole-disk digest mismatch: source " +
                                  field(r, "sender_digest", std::string("?")) + ", destination " +
                                  field(r, "digest", std::string("?")) +
                                  "; the source changed during the copy or a host corrupts data");
            }
            m_log.warn("stream", std::to_string(field(r, "chunks_unconfirmed", uint64_t{0})) +
                                     " chunk(s) failed verification in round " +
                                     std::to_string(round) + "; sending them again");
        }
        return Status(Code::io_error, "chunks still failed verification after " +
                                          std::to_string(m_req.max_rounds) +
                                          " rounds; check the hosts' memory and disks");
    }

    // Whether the destination's seal still describes it at this delta's
    // geometry (its agent checked the identity in `info`).
    bool seal_holds() const {
        try {
            auto seal = nlohmann::json::parse(m_dst_info).at("seal");
            return seal.is_object() && seal.at("size") == m_size &&
                   seal.at("block_size") == block_size();
        } catch (const nlohmann::json::exception&) {
            return false;
        }
    }

    // Delta: both hosts hash their disk at the same time; the sender then
    // reads only the chunks whose hashes differ. With a seal that holds,
    // the destination is not read: the sender reads the source once,
    // hashing as it goes, and sends what differs.
    Status hash_both(StreamResult& result) {
        const std::string bs = std::to_string(block_size());
        if (seal_holds()) {
            m_log.info("stream",
                       "delta: the destination is unchanged since its seal; reading "
                       "only the source, in " +
                           std::to_string(block_size() / 1024) + " KiB blocks");
            auto sealed = exec_checked(
                m_dst, {m_dst_agent, "hashes", "--path", m_req.dst_path, "--block-size", bs,
                        "--state", m_state_path, "--print", "--seal", m_seal_path});
            if (!sealed.ok()) {
                return sealed.status();
            }
            m_dst_state = std::move(*sealed);
            result.delta_baseline = "seal";
            return {};
        }
        m_log.info("stream", "delta: hashing both disks in " + std::to_string(block_size() / 1024) +
                                 " KiB blocks to find unchanged ones");
        result.delta_baseline = "hashed";
        Status dst_status;
        std::thread dst_thread([&] {
            // The destination's state comes back with it: the sender's
            // first pass needs it, and a second command would cost a session.
            auto hashed =
                exec_checked(m_dst, {m_dst_agent, "hashes", "--path", m_req.dst_path,
                                     "--block-size", bs, "--state", m_state_path, "--print"});
            dst_status = hashed.status();
            if (hashed.ok()) {
                m_dst_state = std::move(*hashed);
            }
        });
        const std::string source_state = m_run_dir + "/source-hashes.bin";
        auto hashed = exec_checked(m_src, {m_src_agent, "hashes", "--path", m_req.src_path,
                                           "--block-size", bs, "--state", source_state});
        dst_thread.join();
        VMLIFT_RETURN_IF_ERROR(dst_status);
        if (!hashed.ok()) {
            return hashed.status();
        }
        m_source_state = source_state;
        return {};
    }

    Status preflight() {
        auto src = path_info(m_src, m_src_info);
        auto dst = path_info(m_dst, m_dst_info);
        if (!src.ok()) {
            return src.status();
        }
        if (!src->exists) {
            return Status(Code::not_found, "source " + m_req.src_path + " does not exist on " +
                                               m_src.target().host + "; check --src-dev-path");
        }
        if (!src->readable || (src->type != "block" && src->type != "file")) {
            return Status(Code::permission_denied, "source " + m_req.src_path + " on " +
                                                       m_src.target().host +
                                                       " is not a readable block device or file");
        }
        m_size = src->size;
        if (m_progress) {
            m_progress->set_total(m_size);
        }
        if (m_req.expected_bytes != 0 && m_req.expected_bytes != m_size) {
            return Status(Code::invalid_input,
                          "--expected-bytes is " + std::to_string(m_req.expected_bytes) +
                              " but source " + m_req.src_path + " has " + std::to_string(m_size) +
                              " bytes; check the disk or the value (nothing was written)");
        }
        if (!dst.ok()) {
            return dst.status();
        }
        if (dst->type == "block" && dst->size < m_size) {
            return Status(Code::invalid_input,
                          "destination " + m_req.dst_path + " on " + m_dst.target().host +
                              " holds " + std::to_string(dst->size) + " bytes but the source has " +
                              std::to_string(m_size) + "; grow it first (nothing was written)");
        }
        if (dst->exists && dst->type == "other") {
            return Status(Code::invalid_input, "destination " + m_req.dst_path +
                                                   " is neither a block device nor a file");
        }
        return {};
    }

    uint32_t block_size() const {
        return m_req.delta ? delta_granularity(m_size, m_req.delta_block_size, m_req.block_size)
                           : m_req.block_size;
    }

    std::vector<std::string> recv_argv() const {
        std::vector<std::string> argv = {m_dst_agent,    "recv",    "--path",
                                         m_req.dst_path, "--state", m_state_path};
        if (m_req.dst_fresh) {
            argv.push_back("--fresh");
        }
        if (m_req.verify_readback) {
            argv.push_back("--verify-readback");
        }
        argv.push_back("--seal");  // removed before the first write
        argv.push_back(m_seal_path);
        if (m_req.seal) {
            argv.push_back("--seal-block-size");
            argv.push_back(std::to_string(
                delta_granularity(m_size, m_req.delta_block_size, m_req.block_size)));
        }
        return argv;
    }

    std::vector<std::string> send_argv() const {
        std::vector<std::string> argv = {m_src_agent,     "send",
                                         "--path",        m_req.src_path,
                                         "--block-size",  std::to_string(block_size()),
                                         "--zstd-level",  std::to_string(m_req.zstd_level),
                                         "--threads",     std::to_string(m_req.zstd_threads),
                                         "--known-state", "-"};
        if (!m_req.sparse) {
            argv.push_back("--no-sparse");
        }
        if (!m_source_state.empty()) {
            argv.push_back("--source-state");
            argv.push_back(m_source_state);
        }
        return argv;
    }

    // The destination's confirmed chunks, framed for the sender's stdin.
    Result<std::string> known_state_input() {
        if (!m_req.resume && !m_req.delta && !m_state_written) {
            m_state_written = true;       // later rounds read what round 1 confirmed
            return std::string(8, '\0');  // a fresh copy: nothing is known yet
        }
        std::string state;
        if (!m_dst_state.empty()) {
            state = std::move(m_dst_state);  // printed by the delta's hash pass
            m_dst_state.clear();
        } else {
            auto out = exec_checked(
                m_dst, {m_dst_agent, "state", "--state", m_state_path, "--size",
                        std::to_string(m_size), "--block-size", std::to_string(block_size())});
            if (!out.ok()) {
                return out.status();
            }
            state = std::move(*out);
        }
        std::string framed(8, '\0');
        for (int b = 0; b < 8; ++b) {
            framed[static_cast<size_t>(b)] = static_cast<char>((state.size() >> (8 * b)) & 0xff);
        }
        return framed + state;
    }

    Result<nlohmann::json> run_pass(StreamResult& result) {
        auto known = known_state_input();
        if (!known.ok()) {
            return known.status();
        }
        m_log.debug("stream", "destination state fetched; starting the agents");
        SenderStderr sender_err(m_progress);
        StringSource sender_in(std::move(*known));
        StringSink receiver_out;
        LimitedStringSink receiver_err(64 * 1024);
        ExecOptions limit{
            std::chrono::duration_cast<std::chrono::milliseconds>(m_req.task_timeout)};
        Status send_status, recv_status;
        if (result.mode == StreamMode::relay) {
            // The two legs' ssh clients share one kernel pipe: the stream does
            // not pass through this process (see KernelPipe).
            auto pipe = KernelPipe::make(1u << 20);
            if (!pipe.ok()) {
                return pipe.status();
            }
            KernelPipe& legs = **pipe;
            std::thread receiver([&] {
                auto exit = m_dst.exec(recv_argv(),
                                       RunIo{&legs.source(), &receiver_out, &receiver_err}, limit);
                legs.close_read();
                recv_status = exit_status(exit, "receiver", m_dst, receiver_err.str());
            });
            auto exit =
                m_src.exec(send_argv(), RunIo{&sender_in, &legs.sink(), &sender_err}, limit);
            legs.close_write();
            receiver.join();
            send_status = exit_status(exit, "sender", m_src, sender_err.other());
        } else {
            auto line = shell_join(recv_argv());
            if (!line.ok()) {
                return line.status();
            }
            auto argv = send_argv();
            argv.push_back("--");
            auto ssh = m_route.ssh_argv();
            argv.insert(argv.end(), ssh.begin(), ssh.end());
            argv.push_back(*line);
            auto exit = m_src.exec(argv, RunIo{&sender_in, &receiver_out, &sender_err}, limit);
            send_status = exit_status(exit, "sender", m_src, sender_err.other());
            if (exit.ok() && exit->kind == ExitStatus::Kind::exited && exit->code == 255) {
                // The source's own ssh to the destination failed.
                const std::string why = send_status.message();
                send_status =
                    Status(why.find("Permission denied") != std::string::npos ? Code::auth_failed
                                                                              : Code::unreachable,
                           "direct copy: " + m_src.target().host + " cannot log in to " +
                               m_dst.target().host + " (" + why +
                               "); check --migration-key-path (a key on the source host) or use "
                               "--mode relay");
            }
        }
        result.bytes_sent += field(sender_err.stats(), "bytes_sent", uint64_t{0});
        result.bytes_read += field(sender_err.stats(), "bytes_read", uint64_t{0});
        if (sender_err.stats().is_object() && sender_err.stats().contains("usage")) {
            result.sender_usage = sender_err.stats()["usage"];
        }
        // The receiver's error is the root cause when both failed.
        VMLIFT_RETURN_IF_ERROR(recv_status);
        VMLIFT_RETURN_IF_ERROR(send_status);
        try {
            return nlohmann::json::parse(last_line(receiver_out.str()));
        } catch (const nlohmann::json::exception&) {
            return Status(Code::remote_failed, "the receiver on " + m_dst.target().host +
                                                   " gave no result; see the log");
        }
    }

    Status exit_status(const Result<ExitStatus>& exit, const char* role, SshTransport& host,
                       const std::string& err) {
        if (!exit.ok()) {
            return exit.status();
        }
        if (exit->success()) {
            return {};
        }
        std::string line = last_line(err);
        const std::string prefix = "vmlift-agent: error: ";
        if (line.rfind(prefix, 0) == 0) {
            line = line.substr(prefix.size());
        }
        Code code = Code::remote_failed;
        if (exit->kind == ExitStatus::Kind::exited) {
            for (int c = 0; c <= static_cast<int>(Code::internal); ++c) {
                if (exit_code_for(static_cast<Code>(c)) == exit->code && c != 0) {
                    code = static_cast<Code>(c);
                }
            }
            if (exit->code == 255) {
                code = Code::unreachable;  // ssh's own failure, in direct mode
            }
        }
        m_log.debug("stream", std::string(role) + " on " + host.target().host + " failed: " + err);
        return Status(code, line.empty() ? std::string(role) + " on " + host.target().host +
                                               " failed (" + exit->describe() + ")"
                                         : line);
    }

    SshTransport& m_src;
    SshTransport& m_dst;
    const StreamRequest& m_req;
    ProgressReporter* m_progress;
    Logger& m_log;
    std::string m_src_agent;
    std::string m_dst_agent;
    std::string m_state_path;
    std::string m_seal_path;
    std::string m_source_state;    // delta: the source's hash pass, on the source host
    std::string m_dst_state;       // delta: the destination's state, as printed by its hash pass
    bool m_remove_state = false;   // the copy completed: its receiver state goes
    bool m_state_written = false;  // a pass ran, so the destination has state
    std::string m_src_info;        // `agent info` of the source path
    std::string m_dst_info;        // ... and of the destination path
    std::string m_run_dir;         // declared before m_route, which uses it
    DirectRoute m_route;
    uint64_t m_size = 0;
};

}  // namespace

const char* stream_mode_name(StreamMode mode) {
    switch (mode) {
        case StreamMode::direct:
            return "direct";
        case StreamMode::relay:
            return "relay";
        case StreamMode::automatic:
            return "auto";
    }
    return "auto";
}

const char* stream_transport_name(StreamTransport transport) {
    return transport == StreamTransport::agent ? "agent" : "shell";
}

nlohmann::json StreamResult::to_json() const {
    return {{"event", "result"},
            {"mode", stream_mode_name(mode)},
            {"mode_reason", mode_reason},
            {"transport", stream_transport_name(transport)},
            {"size", size},
            {"bytes_read", bytes_read},
            {"bytes_sent", bytes_sent},
            {"bytes_written", bytes_written},
            {"zero_bytes_skipped", zero_bytes_skipped},
            {"same_bytes", same_bytes},
            {"digest", digest},
            {"seconds", seconds},
            {"rounds", rounds},
            {"block_size", block_size},
            {"readback_verified", readback_verified},
            {"sealed", sealed},
            {"delta_baseline", delta_baseline},
            {"sender_usage", sender_usage},
            {"receiver_usage", receiver_usage}};
}

uint32_t delta_granularity(uint64_t disk_size, uint32_t wanted, uint32_t block_size) {
    uint64_t size = std::max<uint64_t>(wanted, 4096);
    while (size < block_size && (disk_size + size - 1) / size > k_max_delta_chunks) {
        size *= 2;
    }
    return static_cast<uint32_t>(std::min<uint64_t>(size, block_size));
}

Result<StreamResult> run_stream(SshTransport& src, SshTransport& dst, const StreamRequest& req,
                                ProgressReporter* progress, Logger& log) {
    if (req.transport == StreamTransport::shell) {
        return run_shell_stream(src, dst, req, progress, log);
    }
    Copier copier(src, dst, req, progress, log);
    return copier.run();
}

}  // namespace vmlift

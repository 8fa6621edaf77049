// One disk copy between two hosts: the stream stage.
//
// Contract
//   run_stream() copies req.src_path on `src` to req.dst_path on `dst`.
//   Before anything is written it checks the source exists and is readable,
//   its size against --expected-bytes, and that a block-device destination
//   is large enough. The source is only ever opened read-only.
//   Agent transport: vmlift-agent is deployed to both hosts (agent_deploy.h)
//   and the copy runs in rounds: round 1 sends everything (or, with resume,
//   skips chunks the destination's state already confirms; with delta, first
//   hashes both disks at the same time and the sender reads only chunks
//   whose hashes differ, or, when the destination's seal from the last copy
//   still holds, reads the source once against it); later rounds resend
//   only chunks that failed verification, up to max_rounds. Success means
//   every chunk confirmed and both whole-disk digests equal. Topologies:
//   relay (two SSH legs joined by a bounded pipe on the controller), direct
//   (the source agent pushes through the source's own `ssh`, which checks
//   the destination's key against a run-scoped known_hosts holding the key
//   the controller trusts, `req.dst_known_hosts_line`), and automatic (a
//   BatchMode probe from the source decides; the reason is in the result).
//   Shell transport: the classic `dd | zstd | ssh "zstd -dc | dd"` pipeline,
//   built from argv, with the destination's byte count checked against the
//   source size (one block of tolerance).
//   The receiver's state lives in req.agent_dir on the destination and is
//   removed after success; the agents are removed in every case.
//   Errors: the codes of status.h with one-line messages; on failure the
//   destination's state is kept so --resume continues.
// Thread safety: uses two threads internally in relay mode; one call at a
//   time per pair of transports.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/log.h"
#include "engine/progress.h"
#include "engine/transport.h"

namespace vmlift {

enum class StreamMode { direct, relay, automatic };
enum class StreamTransport { agent, shell };

const char* stream_mode_name(StreamMode mode);
const char* stream_transport_name(StreamTransport transport);

struct StreamRequest {
    std::string src_path;
    std::string dst_path;
    uint64_t expected_bytes = 0;  // 0: not checked
    StreamMode mode = StreamMode::automatic;
    StreamTransport transport = StreamTransport::agent;
    uint32_t block_size = 4u << 20;
    // --delta compares and sends at this granularity: 1% of 4 KiB blocks
    // changed at random then moves about 1% of the disk, where 4 MiB chunks
    // would move nearly all of it. Bounded by delta_granularity().
    uint32_t delta_block_size = 4096;
    int zstd_level = 1;  // 0: no compression (1 measured fastest; see README)
    int zstd_threads = 0;
    bool sparse = true;
    bool resume = false;
    bool delta = false;
    // A complete copy leaves the destination's hashes at the delta's block
    // size beside its state (stream_seal.h): a later --delta then trusts
    // them while the destination's identity is unchanged and reads only the
    // source, in one pass. Any other copy to the destination removes it.
    bool seal = false;
    bool verify_readback = false;
    bool dst_fresh = false;  // the destination is known to read as zeros
    int max_rounds = 3;
    std::string local_agent;  // path of vmlift-agent on the controller
    // On each host: the agent runs from agent_dir/run-<run_id>/ (removed
    // afterwards, so parallel copies never share it); resume state lives in
    // agent_dir itself so it outlives the run.
    std::string agent_dir = "/var/tmp/vmlift";
    std::string run_id;  // empty: a random one
    // How the source reaches the destination in direct mode.
    std::string dst_host_for_src;      // default: dst.target().host
    std::string dst_known_hosts_line;  // "<key type> <base64 key>" the controller trusts
    std::string migration_key_path;    // key on the source host; empty: forwarded agent
    std::chrono::seconds connect_timeout{15};
    std::chrono::seconds probe_timeout{5};
    std::chrono::seconds task_timeout{7200};
};

struct StreamResult {
    StreamMode mode = StreamMode::relay;
    std::string mode_reason;
    StreamTransport transport = StreamTransport::agent;
    uint64_t size = 0;
    uint64_t bytes_read = 0;
    uint64_t bytes_sent = 0;
    uint64_t bytes_written = 0;
    uint64_t zero_bytes_skipped = 0;
    uint64_t same_bytes = 0;
    std::string digest;
    double seconds = 0;
    int rounds = 0;
    uint32_t block_size = 0;  // the chunk size compared and sent (a delta's is smaller)
    bool readback_verified = false;
    bool sealed = false;         // this copy left a seal
    std::string delta_baseline;  // delta: "seal" or "hashed" (the destination was read)
    // What each agent reported of itself: cpu_s, max_rss_kib, children_*.
    nlohmann::json sender_usage;
    nlohmann::json receiver_usage;
    nlohmann::json to_json() const;
};

// Each host holds a hash per chunk of the disk (twice on the sender), so a
// delta's memory grows with the chunk count. It compares at `wanted` bytes
// (4 KiB), doubled until the disk has at most k_max_delta_chunks chunks, and
// never coarser than `block_size`: 8 GiB stays at 4 KiB, 100 GiB compares at
// 64 KiB, 2 TiB at 1 MiB, and each agent stays within the memory measured
// for 8 GiB (README: at most 128 MiB).
inline constexpr uint64_t k_max_delta_chunks = uint64_t{1} << 21;
uint32_t delta_granularity(uint64_t disk_size, uint32_t wanted, uint32_t block_size);

Result<StreamResult> run_stream(SshTransport& src, SshTransport& dst, const StreamRequest& req,
                                ProgressReporter* progress, Logger& log);

}  // namespace vmlift

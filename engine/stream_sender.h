// Sending side of the agent stream: disk → frames.
//
// Contract
//   send_stream() reads `path` (file or block device, never written: opened
//   O_RDONLY) chunk by chunk and writes the stream (stream_protocol.h) to
//   out_fd. With sparse on, holes found with SEEK_DATA are not read, and
//   chunks that are all zeros in memory become zero frames; with it off,
//   every chunk is data. Data chunks are zstd-compressed at zstd_level on
//   `threads` workers (0: one per core; level 0: no compression) and sent
//   raw when compression does not help. A chunk whose hash equals
//   known[index] goes as a `same` frame without payload (resume, retry,
//   delta); so is one whose source_hashes[index] equals known[index], which
//   is then not read at all. Frames leave in chunk order. Memory is bounded by about
//   (2 * threads + 4) chunk buffers.
//   `progress` is called from the writer thread with the disk bytes done.
//   Errors: not_found/permission_denied/io_error for the source, naming it;
//   connection_lost when out_fd is closed by the other side.
// Thread safety: one call per stream; spawns and joins its own threads.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "engine/stream_protocol.h"

namespace vmlift::stream {

struct SenderOptions {
    std::string path;
    uint32_t block_size = 4u << 20;
    int zstd_level = 1;
    int threads = 0;
    bool sparse = true;
    std::vector<std::optional<uint64_t>> known;  // per chunk, may be shorter or empty
    // Per chunk, the source's own hashes from a hash pass just before (a
    // delta copy hashes both disks at once). A chunk whose source hash equals
    // its known hash is sent as `same` without being read again.
    std::vector<std::optional<uint64_t>> source_hashes;
};

struct SenderStats {
    uint64_t size = 0;
    uint64_t bytes_read = 0;      // read from the source
    uint64_t bytes_sent = 0;      // stream bytes written to out_fd
    uint64_t zero_bytes = 0;      // covered by zero frames
    uint64_t same_bytes = 0;      // covered by same frames
    uint64_t data_bytes = 0;      // covered by data frames
    bool seek_data_used = false;  // the source answered SEEK_DATA
    Digest digest;
};

Result<SenderStats> send_stream(const SenderOptions& options, int out_fd,
                                const std::function<void(uint64_t)>& progress = {});

// Size in bytes of a file or block device.
Result<uint64_t> device_size(const std::string& path);

// Hashes every chunk of `path` (holes found with SEEK_DATA are not read)
// and records them all as confirmed: the baseline of a delta copy.
struct HashOptions {
    bool direct = true;  // O_DIRECT reads where possible
    int threads = 4;     // concurrent readers
};
Result<ChunkState> hash_device(const std::string& path, uint32_t block_size,
                               const HashOptions& options = {});

// Known hashes from a receiver's state: the confirmed chunks.
std::vector<std::optional<uint64_t>> known_from_state(const ChunkState& state);

}  // namespace vmlift::stream

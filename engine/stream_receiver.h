// Receiving side of the agent stream: frames → disk.
//
// Contract
//   receive_stream() reads the stream from in_fd and writes `path`:
//   - a missing path becomes a new regular file (fresh); an existing regular
//     file is set to the source size and counts as fresh when it holds no
//     blocks; a block device must be at least the source size, or nothing is
//     written and the error says both sizes.
//   - every data chunk is decompressed and its hash checked before it is
//     written with pwrite; a mismatching chunk is not written and stays
//     unconfirmed (the controller sends it again).
//   - zero chunks are skipped on a fresh destination; otherwise the range is
//     zeroed (hole punch on files, BLKZEROOUT on block devices, written
//     zeros where neither works), so stale data never survives.
//   - `same` chunks are accepted only when the state already has that hash
//     confirmed.
//   - every checkpoint_interval the file is fdatasync'ed and the chunks
//     written before it are confirmed in the state file (when state_path is
//     set), so an interrupted copy resumes from there.
//   At the end frame it syncs, saves the state, compares the whole-disk
//   digest with the sender's, and with verify_readback re-reads every chunk
//   from the disk and checks its hash. complete() means every chunk is
//   confirmed and the digests match.
//   Errors: invalid_input (bad stream, destination too small), io_error
//   (write failure; "disk full at offset N"), connection_lost (the stream
//   ended before its end frame). The state is saved before any error return.
// Thread safety: one call per stream.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "engine/stream_protocol.h"

namespace vmlift::stream {

struct ReceiverOptions {
    std::string path;
    std::string state_path;  // empty: keep state in memory only
    bool fresh = false;      // the caller knows the destination reads as zeros
    bool verify_readback = false;
    std::chrono::milliseconds checkpoint_interval{2000};
    // Any seal of the destination (stream_seal.h) is removed before the
    // first write. With seal_block_size set, a complete copy leaves a new
    // one holding every block's hash at that size (a multiple of 4 KiB that
    // divides the stream's block size): one pass that wrote every chunk, or
    // a stream at that very block size, can seal; a resumed copy cannot.
    std::string seal_path;
    uint32_t seal_block_size = 0;
};

struct ReceiverStats {
    uint64_t size = 0;
    uint64_t bytes_written = 0;       // data written with pwrite
    uint64_t zero_bytes_skipped = 0;  // zero chunks not written (fresh destination)
    uint64_t zero_bytes_zeroed = 0;   // zero chunks zeroed on a used destination
    uint64_t same_bytes = 0;          // chunks the destination already had
    uint64_t chunks_bad = 0;          // hash mismatch or unverifiable same
    uint64_t chunks_unconfirmed = 0;  // at the end
    uint64_t sender_bytes_read = 0;
    bool fresh = false;
    Digest digest;
    Digest sender_digest;
    bool readback_checked = false;
    uint64_t readback_mismatches = 0;
    bool sealed = false;
    bool complete() const {
        return chunks_unconfirmed == 0 && digest == sender_digest && readback_mismatches == 0;
    }
};

Result<ReceiverStats> receive_stream(const ReceiverOptions& options, int in_fd);

}  // namespace vmlift::stream

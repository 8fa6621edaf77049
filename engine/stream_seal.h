// The destination's seal: its block hashes, kept after a complete copy so a
// later delta need not read the destination again.
//
// Contract
//   A seal file holds one line "vmlift-seal 1 <identity>\n" followed by a
//   ChunkState (serialize()) of every block's hash at the delta's block size.
//   The identity is what changes when anything writes to the destination:
//   - a regular file: device, inode, size, mtime and ctime (nanoseconds);
//   - a block device: its device number, size and this boot's id, with the
//     write and discard counters (/sys/dev/block/M:m/stat) of the device, of
//     the disk a partition belongs to and of the devices it is built on
//     (slaves, recursively), and a loop device's backing file identity; a
//     device with I/O accounting off (queue/iostats 0) has no identity.
//   read_seal() returns the hashes only when the recorded identity equals the
//   destination's identity now and the geometry matches; anything else
//   (no seal, another disk, a write since, a reboot for a block device, a
//   counter that cannot be read) gives nullopt and `why`, and the caller
//   hashes the destination as before. write_seal() must be called after the
//   destination is fsynced and nothing else writes to it.
//   Not covered (documented in the README): content changed below the block
//   layer without a write through it, e.g. `zfs rollback` of a zvol.
// Thread safety: plain functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "engine/status.h"
#include "engine/stream_protocol.h"

namespace vmlift::stream {

// The destination's identity as one line of text; an error when part of it
// cannot be read (then no seal can be trusted).
Result<std::string> destination_identity(const std::string& path);

Status write_seal(const std::string& seal_path, const std::string& dst_path,
                  const ChunkState& hashes);

std::optional<ChunkState> read_seal(const std::string& seal_path, const std::string& dst_path,
                                    uint64_t size, uint32_t block_size, std::string* why);

// The seal's geometry when its identity still matches (for `info`).
std::optional<ChunkState> read_seal_any(const std::string& seal_path, const std::string& dst_path,
                                        std::string* why);

// Removes the seal (before anything writes to its destination).
void drop_seal(const std::string& seal_path);

}  // namespace vmlift::stream

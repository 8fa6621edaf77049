// The agent stream format and the receiver's chunk state.
//
// Contract
//   A disk is a grid of chunks: chunk i covers [i*block_size,
//   min((i+1)*block_size, size)). Each chunk has a hash, XXH3-64 of its
//   bytes (an all-zero chunk hashes like its zeros). The whole-disk digest
//   is XXH3-128 over the chunk hashes as little-endian u64 in chunk order, so
//   both ends compute it from their hash arrays whatever was skipped.
//
//   Stream := Header Frame* End, all integers little-endian.
//   Header (32 bytes): "VMLIFTS1", u32 version (1), u32 block_size,
//     u64 size, u64 reserved.
//   Frame header (32 bytes): u8 kind, u8[3] 0, u32 length (bytes of disk it
//     covers), u64 offset, u64 hash, u32 payload_length, u32 0; then payload.
//     kind raw: payload is the bytes; zstd: payload is one zstd frame of the
//     bytes; zero: no payload, the range is zeros; same: no payload, the
//     destination already holds this run of consecutive chunks (length may
//     span many chunks; hash is run_hash() of their chunk hashes).
//   End: a frame of kind end whose payload is the 16-byte digest followed by
//     u64 bytes_read at the sender.
//   Decoders reject anything else (bad magic, version, kind, a chunk off the
//   grid, lengths over the block size) with an invalid_input Status.
//
//   ChunkState is the receiver's memory: for each chunk whether it is
//   confirmed (written, verified and fsynced) and its hash. It is saved
//   atomically and identifies the disk by size and block size; a state for a
//   different geometry is ignored. Resume, retry and delta all read it: a
//   confirmed chunk is offered to the sender as "known", and the sender then
//   sends `same` instead of data when its own hash agrees.
// Thread safety: plain values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/status.h"

namespace vmlift::stream {

constexpr char k_magic[9] = "VMLIFTS1";
constexpr uint32_t k_version = 1;
constexpr size_t k_header_size = 32;
constexpr size_t k_frame_header_size = 32;
constexpr uint32_t k_max_block_size = 64u << 20;

enum class FrameKind : uint8_t { raw = 1, zstd = 2, zero = 3, same = 4, end = 0x7f };

struct Header {
    uint32_t block_size = 0;
    uint64_t size = 0;
};

struct FrameHeader {
    FrameKind kind = FrameKind::raw;
    uint32_t length = 0;
    uint64_t offset = 0;
    uint64_t hash = 0;
    uint32_t payload_length = 0;
};

struct Digest {
    uint64_t low = 0;
    uint64_t high = 0;
    bool operator==(const Digest&) const = default;
    std::string hex() const;  // 32 lower-case hex digits, high then low
};

std::string encode_header(const Header& header);
Result<Header> decode_header(const char* data, size_t size);
std::string encode_frame_header(const FrameHeader& frame);
Result<FrameHeader> decode_frame_header(const char* data, size_t size, const Header& stream);

uint64_t chunk_count(uint64_t size, uint32_t block_size);
uint32_t chunk_length(uint64_t size, uint32_t block_size, uint64_t index);
uint64_t hash_bytes(const char* data, size_t size);
// Hash of `length` zero bytes (cached for the common lengths).
uint64_t zero_hash(uint32_t length);
bool is_all_zero(const char* data, size_t size);
Digest digest_of(const std::vector<uint64_t>& chunk_hashes);
// XXH3-64 over chunk hashes [first, first + count) as little-endian u64.
uint64_t run_hash(const uint64_t* hashes, size_t count);

class ChunkState {
  public:
    ChunkState() = default;
    ChunkState(uint64_t size, uint32_t block_size);

    uint64_t size() const { return m_size; }
    uint32_t block_size() const { return m_block_size; }
    uint64_t count() const { return m_hashes.size(); }
    bool confirmed(uint64_t index) const { return m_confirmed[index] != 0; }
    uint64_t hash(uint64_t index) const { return m_hashes[index]; }
    const std::vector<uint64_t>& hashes() const { return m_hashes; }
    void confirm(uint64_t index, uint64_t hash);
    void unconfirm(uint64_t index);
    uint64_t confirmed_count() const;
    uint64_t confirmed_bytes() const;

    std::string serialize() const;
    static Result<ChunkState> parse(const std::string& data);
    Status save(const std::string& path) const;
    // nullopt when the file is missing or describes another geometry.
    static std::optional<ChunkState> load(const std::string& path, uint64_t size,
                                          uint32_t block_size);

  private:
    uint64_t m_size = 0;
    uint32_t m_block_size = 0;
    std::vector<uint8_t> m_confirmed;
    std::vector<uint64_t> m_hashes;
};

}  // namespace vmlift::stream

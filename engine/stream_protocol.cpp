#include "engine/stream_protocol.h"

#include <xxhash.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <fstream>
#include <mutex>
#include <unordered_map>

#include "engine/run_dir.h"

namespace vmlift::stream {
namespace {

void put_u32(std::string& out, uint32_t v) {
    for (int i = 0; i < 4; ++i) {
        out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    }
}
void put_u64(std::string& out, uint64_t v) {
    for (int i = 0; i < 8; ++i) {
        out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    }
}
// Little-endian store into memory the caller sized (one 8-byte store once
// compiled).
void store_u64(char* p, uint64_t v) {
    for (int i = 0; i < 8; ++i) {
        p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
    }
}

// XXH3 of `count` u64 as little-endian bytes: the array itself on
// little-endian hosts (no copy), a converted copy elsewhere.
template <typename Hash>
auto hash_u64s(const uint64_t* values, size_t count, Hash hash) {
    if constexpr (std::endian::native == std::endian::little) {
        return hash(values, count * 8);
    } else {
        std::string bytes(count * 8, '\0');
        for (size_t i = 0; i < count; ++i) {
            store_u64(bytes.data() + 8 * i, values[i]);
        }
        return hash(bytes.data(), bytes.size());
    }
}

uint32_t get_u32(const char* p) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; --i) {
        v = (v << 8) | static_cast<uint8_t>(p[i]);
    }
    return v;
}
uint64_t get_u64(const char* p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i) {
        v = (v << 8) | static_cast<uint8_t>(p[i]);
    }
    return v;
}

constexpr char k_state_magic[9] = "VMLSTAT1";

}  // namespace

std::string Digest::hex() const {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(high),
                  static_cast<unsigned long long>(low));
    return buf;
}

std::string encode_header(const Header& header) {
    std::string out(k_magic, 8);
    put_u32(out, k_version);
    put_u32(out, header.block_size);
    put_u64(out, header.size);
    put_u64(out, 0);
    return out;
}

Result<Header> decode_header(const char* data, size_t size) {
    if (size < k_header_size || std::memcmp(data, k_magic, 8) != 0) {
        return Status(Code::invalid_input,
                      "the stream does not start with a vmlift header (is the agent on both hosts "
                      "the same version?)");
    }
    if (get_u32(data + 8) != k_version) {
        return Status(Code::invalid_input, "stream version " + std::to_string(get_u32(data + 8)) +
                                               " is not supported; use the same vmlift-agent on "
                                               "both hosts");
    }
    Header h;
    h.block_size = get_u32(data + 12);
    h.size = get_u64(data + 16);
    if (h.block_size == 0 || h.block_size > k_max_block_size || h.block_size % 4096 != 0) {
        return Status(Code::invalid_input,
                      "stream block size " + std::to_string(h.block_size) + " is invalid");
    }
    return h;
}

std::string encode_frame_header(const FrameHeader& f) {
    std::string out;
    out.reserve(k_frame_header_size);
    out.push_back(static_cast<char>(f.kind));
    out.append(3, '\0');
    put_u32(out, f.length);
    put_u64(out, f.offset);
    put_u64(out, f.hash);
    put_u32(out, f.payload_length);
    put_u32(out, 0);
    return out;
}

Result<FrameHeader> decode_frame_header(const char* data, size_t size, const Header& stream) {
    if (size < k_frame_header_size) {
        return Status(Code::invalid_input, "truncated frame header");
    }
    FrameHeader f;
    uint8_t kind = static_cast<uint8_t>(data[0]);
    f.length = get_u32(data + 4);
    f.offset = get_u64(data + 8);
    f.hash = get_u64(data + 16);
    f.payload_length = get_u32(data + 24);
    switch (kind) {
        case 1:
        case 2:
        case 3:
        case 4:
        case 0x7f:
            f.kind = static_cast<FrameKind>(kind);
            break;
        default:
            return Status(Code::invalid_input, "unknown frame kind " + std::to_string(kind));
    }
    if (f.kind == FrameKind::end) {
        if (f.payload_length != 24) {
            return Status(Code::invalid_input, "malformed end frame");
        }
        return f;
    }
    const bool run = f.kind == FrameKind::same;
    const bool run_ok = run && f.length > 0 && f.offset + f.length <= stream.size &&
                        (f.length % stream.block_size == 0 || f.offset + f.length == stream.size);
    if (f.offset % stream.block_size != 0 || f.offset >= stream.size ||
        (!run &&
         f.length != chunk_length(stream.size, stream.block_size, f.offset / stream.block_size)) ||
        (run && !run_ok)) {
        return Status(Code::invalid_input,
                      "frame at offset " + std::to_string(f.offset) + " is off the chunk grid");
    }
    bool needs_payload = f.kind == FrameKind::raw || f.kind == FrameKind::zstd;
    if ((needs_payload && f.payload_length == 0) || (!needs_payload && f.payload_length != 0) ||
        (f.kind == FrameKind::raw && f.payload_length != f.length) ||
        f.payload_length > stream.block_size + stream.block_size / 8 + 1024) {
        return Status(Code::invalid_input, "frame at offset " + std::to_string(f.offset) +
                                               " has an invalid payload length");
    }
    return f;
}

uint64_t chunk_count(uint64_t size, uint32_t block_size) {
    return (size + block_size - 1) / block_size;
}

uint32_t chunk_length(uint64_t size, uint32_t block_size, uint64_t index) {
    uint64_t start = index * block_size;
    if (start >= size) {
        return 0;
    }
    uint64_t left = size - start;
    return static_cast<uint32_t>(left < block_size ? left : block_size);
}

uint64_t hash_bytes(const char* data, size_t size) {
    return XXH3_64bits(data, size);
}

uint64_t zero_hash(uint32_t length) {
    static std::mutex mutex;
    static std::unordered_map<uint32_t, uint64_t> cache;
    std::lock_guard lock(mutex);
    auto it = cache.find(length);
    if (it != cache.end()) {
        return it->second;
    }
    std::string zeros(length, '\0');
    uint64_t h = XXH3_64bits(zeros.data(), zeros.size());
    cache.emplace(length, h);
    return h;
}

bool is_all_zero(const char* data, size_t size) {
    size_t i = 0;
    for (; i + 64 <= size; i += 64) {
        uint64_t acc = 0;
        uint64_t words[8];
        std::memcpy(words, data + i, 64);
        for (uint64_t w : words) {
            acc |= w;
        }
        if (acc != 0) {
            return false;
        }
    }
    for (; i < size; ++i) {
        if (data[i] != 0) {
            return false;
        }
    }
    return true;
}

Digest digest_of(const std::vector<uint64_t>& chunk_hashes) {
    XXH128_hash_t d = hash_u64s(chunk_hashes.data(), chunk_hashes.size(),
                                [](const void* p, size_t n) { return XXH3_128bits(p, n); });
    return Digest{d.low64, d.high64};
}

uint64_t run_hash(const uint64_t* hashes, size_t count) {
    return hash_u64s(hashes, count, [](const void* p, size_t n) { return XXH3_64bits(p, n); });
}

ChunkState::ChunkState(uint64_t size, uint32_t block_size)
    : m_size(size),
      m_block_size(block_size),
      m_confirmed(chunk_count(size, block_size), 0),
      m_hashes(chunk_count(size, block_size), 0) {}

void ChunkState::confirm(uint64_t index, uint64_t hash) {
    m_confirmed[index] = 1;
    m_hashes[index] = hash;
}

void ChunkState::unconfirm(uint64_t index) {
    m_confirmed[index] = 0;
}

uint64_t ChunkState::confirmed_count() const {
    uint64_t n = 0;
    for (uint8_t c : m_confirmed) {
        n += c;
    }
    return n;
}

uint64_t ChunkState::confirmed_bytes() const {
    uint64_t n = 0;
    for (uint64_t i = 0; i < m_confirmed.size(); ++i) {
        if (m_confirmed[i]) {
            n += chunk_length(m_size, m_block_size, i);
        }
    }
    return n;
}

std::string ChunkState::serialize() const {
    std::string out(k_state_magic, 8);
    put_u64(out, m_size);
    put_u32(out, m_block_size);
    put_u32(out, 0);
    const size_t head = out.size();
    out.resize(head + m_hashes.size() * 9 + 8);
    char* p = out.data() + head;
    for (uint64_t i = 0; i < m_hashes.size(); ++i, p += 9) {
        p[0] = static_cast<char>(m_confirmed[i]);
        store_u64(p + 1, m_hashes[i]);
    }
    store_u64(p, XXH3_64bits(out.data(), out.size() - 8));
    return out;
}

Result<ChunkState> ChunkState::parse(const std::string& data) {
    if (data.size() < 32 || std::memcmp(data.data(), k_state_magic, 8) != 0) {
        return Status(Code::invalid_input, "not a vmlift chunk state");
    }
    uint64_t check = get_u64(data.data() + data.size() - 8);
    if (check != XXH3_64bits(data.data(), data.size() - 8)) {
        return Status(Code::invalid_input, "chunk state checksum mismatch");
    }
    uint64_t size = get_u64(data.data() + 8);
    uint32_t block_size = get_u32(data.data() + 16);
    if (block_size == 0 || block_size > k_max_block_size) {
        return Status(Code::invalid_input, "chunk state has an invalid block size");
    }
    ChunkState state(size, block_size);
    if (data.size() != 24 + state.count() * 9 + 8) {
        return Status(Code::invalid_input, "chunk state has the wrong length");
    }
    const char* p = data.data() + 24;
    for (uint64_t i = 0; i < state.count(); ++i, p += 9) {
        state.m_confirmed[i] = p[0] ? 1 : 0;
        state.m_hashes[i] = get_u64(p + 1);
    }
    return state;
}

Status ChunkState::save(const std::string& path) const {
    return write_file_atomic(path, serialize(), 0600);
}

std::optional<ChunkState> ChunkState::load(const std::string& path, uint64_t size,
                                           uint32_t block_size) {
    std::ifstream in(path, std::ios::binary | std::ios::ate);
    if (!in) {
        return std::nullopt;
    }
    std::string data(static_cast<size_t>(std::max<std::streamoff>(0, in.tellg())), '\0');
    in.seekg(0);
    if (!in.read(data.data(), static_cast<std::streamsize>(data.size()))) {
        return std::nullopt;
    }
    auto state = parse(data);
    if (!state.ok() || state->size() != size || state->block_size() != block_size) {
        return std::nullopt;
    }
    return std::move(*state);
}

}  // namespace vmlift::stream

#include "engine/pattern.h"

#include <xxhash.h>

#include <cstring>

namespace vmlift {
namespace {
uint64_t rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}
uint64_t splitmix(uint64_t& x) {
    uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
struct StateDeleter {
    void operator()(XXH3_state_t* s) const { XXH3_freeState(s); }
};
}  // namespace

struct PatternSource::Hash {
    std::unique_ptr<XXH3_state_t, StateDeleter> state{XXH3_createState()};
};
struct HashingSink::Hash {
    std::unique_ptr<XXH3_state_t, StateDeleter> state{XXH3_createState()};
};

PatternSource::PatternSource(uint64_t size, uint64_t seed)
    : m_size(size), m_hash(std::make_unique<Hash>()) {
    for (auto& s : m_state) {
        s = splitmix(seed);
    }
    XXH3_64bits_reset(m_hash->state.get());
}

PatternSource::~PatternSource() = default;

uint64_t PatternSource::next() {
    uint64_t result = rotl(m_state[1] * 5, 7) * 9;
    uint64_t t = m_state[1] << 17;
    m_state[2] ^= m_state[0];
    m_state[3] ^= m_state[1];
    m_state[1] ^= m_state[2];
    m_state[0] ^= m_state[3];
    m_state[2] ^= t;
    m_state[3] = rotl(m_state[3], 45);
    return result;
}

Result<size_t> PatternSource::read(char* buffer, size_t size) {
    uint64_t left = m_size - m_produced;
    size_t n = static_cast<size_t>(left < size ? left : size);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v = next();
        std::memcpy(buffer + i, &v, 8);
    }
    if (i < n) {
        uint64_t v = next();
        std::memcpy(buffer + i, &v, n - i);
    }
    XXH3_64bits_update(m_hash->state.get(), buffer, n);
    m_produced += n;
    return n;
}

uint64_t PatternSource::digest() const {
    return XXH3_64bits_digest(m_hash->state.get());
}

HashingSink::HashingSink() : m_hash(std::make_unique<Hash>()) {
    XXH3_64bits_reset(m_hash->state.get());
}

HashingSink::~HashingSink() = default;

Status HashingSink::write(std::string_view data) {
    XXH3_64bits_update(m_hash->state.get(), data.data(), data.size());
    m_bytes += data.size();
    return {};
}

uint64_t HashingSink::digest() const {
    return XXH3_64bits_digest(m_hash->state.get());
}

}  // namespace vmlift

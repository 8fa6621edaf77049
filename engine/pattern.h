// Checksummed byte streams for self-checks, tests and benchmarks.
//
// Contract
//   PatternSource yields `size` pseudo-random bytes (xoshiro256** seeded by
//   `seed`, incompressible, identical for identical seeds) and keeps an
//   XXH3-64 digest of everything it produced. HashingSink keeps the XXH3-64
//   digest and byte count of everything written to it. Equal digests and
//   counts at both ends prove a byte-identical transfer.
// Thread safety: one thread per object.
#pragma once

#include <cstdint>
#include <memory>

#include "engine/io.h"

namespace vmlift {

class PatternSource : public ByteSource {
  public:
    PatternSource(uint64_t size, uint64_t seed);
    ~PatternSource() override;
    Result<size_t> read(char* buffer, size_t size) override;
    uint64_t digest() const;
    uint64_t produced() const { return m_produced; }

  private:
    uint64_t next();
    uint64_t m_size;
    uint64_t m_produced = 0;
    uint64_t m_state[4];
    struct Hash;
    std::unique_ptr<Hash> m_hash;
};

class HashingSink : public ByteSink {
  public:
    HashingSink();
    ~HashingSink() override;
    Status write(std::string_view data) override;
    uint64_t digest() const;
    uint64_t bytes() const { return m_bytes; }

  private:
    uint64_t m_bytes = 0;
    struct Hash;
    std::unique_ptr<Hash> m_hash;
};

}  // namespace vmlift

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <thread>

#include <gtest/gtest.h>
#include <xxhash.h>

#include "engine/stream.h"
#include "engine/stream_receiver.h"
#include "engine/stream_seal.h"
#include "engine/stream_sender.h"
#include "tests/support/temp_dir.h"

namespace vmlift::stream {
namespace {

using testing_support::read_all;
using testing_support::TempDir;

constexpr uint32_t k_block = 64 * 1024;

// A sparse image: random data in some chunks, zeros written in others, holes elsewhere.
void make_image(const std::string& path, uint64_t size, uint32_t seed) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(size)), 0);
    std::mt19937_64 rng(seed);
    std::string chunk(k_block, '\0');
    for (uint64_t off = 0; off + k_block <= size; off += k_block) {
        uint64_t pick = rng() % 4;
        if (pick == 0) {
            for (auto& c : chunk) {
                c = static_cast<char>(rng() % 7);  // compressible data
            }
        } else if (pick == 1) {
            chunk.assign(k_block, '\0');  // explicit zeros (allocated, not a hole)
        } else {
            continue;  // hole
        }
        ASSERT_EQ(::pwrite(fd, chunk.data(), k_block, static_cast<off_t>(off)),
                  static_cast<ssize_t>(k_block));
    }
    // A short tail chunk of data.
    std::string tail(1000, 'T');
    ASSERT_EQ(::pwrite(fd, tail.data(), tail.size(), static_cast<off_t>(size - 1000)), 1000);
    ::close(fd);
}

// Moves bytes from `in` to `out`, optionally stopping after `limit` bytes or
// flipping the byte at `flip_at`; closes `out` at the end.
void proxy(int in, int out, uint64_t limit, uint64_t flip_at) {
    std::string buf(65536, '\0');
    uint64_t moved = 0;
    for (;;) {
        ssize_t r = ::read(in, buf.data(), buf.size());
        if (r <= 0) {
            break;
        }
        size_t n = static_cast<size_t>(r);
        if (flip_at >= moved && flip_at < moved + n) {
            buf[flip_at - moved] ^= 0x5a;
        }
        if (moved + n > limit) {
            n = static_cast<size_t>(limit - moved);
        }
        if (n > 0 && ::write(out, buf.data(), n) != static_cast<ssize_t>(n)) {
            break;
        }
        moved += n;
        if (moved >= limit) {
            break;
        }
    }
    ::close(out);
    // Drain so the sender never blocks on a full pipe.
    while (::read(in, buf.data(), buf.size()) > 0) {
    }
}

struct Transfer {
    Result<SenderStats> sent = Status(Code::internal, "not run");
    Result<ReceiverStats> received = Status(Code::internal, "not run");
};

Transfer transfer(const SenderOptions& send, const ReceiverOptions& recv,
                  uint64_t limit = UINT64_MAX, uint64_t flip_at = UINT64_MAX) {
    int a[2], b[2];
    EXPECT_EQ(::pipe(a), 0);
    EXPECT_EQ(::pipe(b), 0);
    Transfer t;
    std::thread middle([&] { proxy(a[0], b[1], limit, flip_at); });
    std::thread receiver([&] {
        t.received = receive_stream(recv, b[0]);
        ::close(b[0]);
    });
    t.sent = send_stream(send, a[1]);
    ::close(a[1]);
    middle.join();
    ::close(a[0]);
    receiver.join();
    return t;
}

class StreamTest : public ::testing::Test {
  protected:
    void SetUp() override {
        m_src = m_dir.file("src.img");
        m_dst = m_dir.file("dst.img");
        make_image(m_src, 64 * k_block + 1000 + 3 * k_block, 7);
        m_send.path = m_src;
        m_send.block_size = k_block;
        m_send.threads = 2;
        m_recv.path = m_dst;
        m_recv.state_path = m_dir.file("state");
        m_recv.checkpoint_interval = std::chrono::milliseconds(0);
    }
    TempDir m_dir;
    std::string m_src, m_dst;
    SenderOptions m_send;
    ReceiverOptions m_recv;
};

TEST_F(StreamTest, SparseCopyIsBitIdenticalAndSkipsZeros) {
    auto t = transfer(m_send, m_recv);
    ASSERT_TRUE(t.sent.ok()) << t.sent.status().to_string();
    ASSERT_TRUE(t.received.ok()) << t.received.status().to_string();
    EXPECT_TRUE(t.received->complete());
    EXPECT_TRUE(t.received->fresh);
    EXPECT_EQ(read_all(m_dst), read_all(m_src));
    EXPECT_EQ(t.received->digest, t.sent->digest);
    EXPECT_GT(t.sent->zero_bytes, 0u);
    EXPECT_EQ(t.received->zero_bytes_skipped, t.sent->zero_bytes);
    EXPECT_TRUE(t.sent->seek_data_used);
    EXPECT_LT(t.sent->bytes_read, t.sent->size) << "holes must not be read";
    EXPECT_LT(t.sent->bytes_sent, t.sent->data_bytes) << "data must be compressed";
    struct stat st {};
    ASSERT_EQ(::stat(m_dst.c_str(), &st), 0);
    EXPECT_LT(static_cast<uint64_t>(st.st_blocks) * 512, t.sent->size)
        << "destination stays sparse";
}

TEST_F(StreamTest, PrefilledDestinationHasNoStaleDataLeft) {
    std::string junk(static_cast<size_t>(64 * k_block + 1000 + 3 * k_block), '\xee');
    testing_support::write_all(m_dst, junk);
    auto t = transfer(m_send, m_recv);
    ASSERT_TRUE(t.received.ok()) << t.received.status().to_string();
    EXPECT_FALSE(t.received->fresh);
    EXPECT_GT(t.received->zero_bytes_zeroed, 0u);
    EXPECT_EQ(read_all(m_dst), read_all(m_src));
}

TEST_F(StreamTest, WithoutSparseEveryChunkIsDataAndStillIdentical) {
    m_send.sparse = false;
    m_send.zstd_level = 0;
    auto t = transfer(m_send, m_recv);
    ASSERT_TRUE(t.received.ok());
    EXPECT_EQ(t.sent->zero_bytes, 0u);
    EXPECT_EQ(t.sent->bytes_read, t.sent->size);
    EXPECT_EQ(read_all(m_dst), read_all(m_src));
}

TEST_F(StreamTest, InterruptedCopyResumesFromConfirmedChunks) {
    // Measure the stream, then let the link die halfway through it.
    ReceiverOptions scratch = m_recv;
    scratch.path = m_dir.file("scratch.img");
    scratch.state_path.clear();
    auto whole = transfer(m_send, scratch);
    ASSERT_TRUE(whole.sent.ok());
    auto first = transfer(m_send, m_recv, whole.sent->bytes_sent / 2);
    ASSERT_FALSE(first.received.ok());
    EXPECT_EQ(first.received.status().code(), Code::connection_lost);
    EXPECT_NE(first.received.status().message().find("--resume"), std::string::npos);
    auto state = ChunkState::load(m_recv.state_path, read_all(m_src).size(), k_block);
    ASSERT_TRUE(state.has_value());
    uint64_t confirmed = state->confirmed_bytes();
    EXPECT_GT(confirmed, 0u);

    m_send.known = known_from_state(*state);
    auto second = transfer(m_send, m_recv);
    ASSERT_TRUE(second.received.ok()) << second.received.status().to_string();
    EXPECT_TRUE(second.received->complete());
    EXPECT_EQ(read_all(m_dst), read_all(m_src));
    EXPECT_EQ(second.sent->same_bytes, confirmed);
    uint64_t size = second.sent->size;
    EXPECT_LE(second.received->bytes_written, size - confirmed + size / 20)
        << "resume re-sent more than 5% beyond what was missing";
}

TEST_F(StreamTest, CorruptedChunkIsNotWrittenAndASecondRoundRepairsIt) {
    // Flip a byte well inside the stream (inside some payload).
    auto first = transfer(m_send, m_recv, UINT64_MAX, 200000);
    ASSERT_TRUE(first.received.ok()) << first.received.status().to_string();
    EXPECT_FALSE(first.received->complete());
    EXPECT_EQ(first.received->chunks_bad, 1u);
    EXPECT_EQ(first.received->chunks_unconfirmed, 1u);
    auto state = ChunkState::load(m_recv.state_path, first.sent->size, k_block);
    ASSERT_TRUE(state.has_value());
    m_send.known = known_from_state(*state);
    auto second = transfer(m_send, m_recv);
    ASSERT_TRUE(second.received.ok());
    EXPECT_TRUE(second.received->complete());
    EXPECT_EQ(read_all(m_dst), read_all(m_src));
    EXPECT_LE(second.received->bytes_written, uint64_t{k_block});
}

TEST_F(StreamTest, DeltaSendsOnlyChangedChunks) {
    ASSERT_TRUE(transfer(m_send, m_recv).received.ok());
    // Change 3 chunks of the source.
    int fd = ::open(m_src.c_str(), O_WRONLY);
    for (uint64_t chunk : {2u, 30u, 60u}) {
        std::string data(100, static_cast<char>('a' + chunk % 20));
        ASSERT_EQ(::pwrite(fd, data.data(), data.size(), static_cast<off_t>(chunk * k_block + 5)),
                  100);
    }
    ::close(fd);
    auto baseline = hash_device(m_dst, k_block);
    ASSERT_TRUE(baseline.ok());
    ASSERT_TRUE(baseline->save(m_recv.state_path).ok());
    m_send.known = known_from_state(*baseline);
    auto t = transfer(m_send, m_recv);
    ASSERT_TRUE(t.received.ok());
    EXPECT_TRUE(t.received->complete());
    EXPECT_EQ(read_all(m_dst), read_all(m_src));
    EXPECT_EQ(t.received->bytes_written, 3u * k_block);
}

TEST_F(StreamTest, DeltaWithSourceHashesReadsOnlyChangedChunks) {
    ASSERT_TRUE(transfer(m_send, m_recv).received.ok());
    int fd = ::open(m_src.c_str(), O_WRONLY);
    for (uint64_t chunk : {4u, 40u}) {
        std::string data(100, 'x');
        ASSERT_EQ(::pwrite(fd, data.data(), data.size(), static_cast<off_t>(chunk * k_block)), 100);
    }
    ::close(fd);
    auto baseline = hash_device(m_dst, k_block);
    auto source = hash_device(m_src, k_block);
    ASSERT_TRUE(baseline.ok() && source.ok());
    ASSERT_TRUE(baseline->save(m_recv.state_path).ok());
    m_send.known = known_from_state(*baseline);
    m_send.source_hashes = known_from_state(*source);
    auto t = transfer(m_send, m_recv);
    ASSERT_TRUE(t.sent.ok());
    ASSERT_TRUE(t.received.ok());
    EXPECT_TRUE(t.received->complete());
    EXPECT_EQ(read_all(m_dst), read_all(m_src));
    EXPECT_EQ(t.received->bytes_written, 2u * k_block);
    EXPECT_EQ(t.sent->bytes_read, 2u * k_block);  // unchanged chunks were not read again
    EXPECT_EQ(t.sent->digest.hex(), t.received->digest.hex());
}

TEST_F(StreamTest, SourceHashThatDisagreesWithTheDestinationForcesARead) {
    ASSERT_TRUE(transfer(m_send, m_recv).received.ok());
    auto baseline = hash_device(m_dst, k_block);
    ASSERT_TRUE(baseline.ok());
    ASSERT_TRUE(baseline->save(m_recv.state_path).ok());
    // The hash pass saw chunk 9 differ (here: a made-up hash); it must be read and sent.
    auto source = *baseline;
    source.confirm(9, baseline->hash(9) ^ 1);
    int fd = ::open(m_src.c_str(), O_WRONLY);
    std::string data(k_block, 'y');
    ASSERT_EQ(::pwrite(fd, data.data(), data.size(), static_cast<off_t>(9 * k_block)),
              static_cast<ssize_t>(k_block));
    ::close(fd);
    m_send.known = known_from_state(*baseline);
    m_send.source_hashes = known_from_state(source);
    auto t = transfer(m_send, m_recv);
    ASSERT_TRUE(t.received.ok());
    EXPECT_TRUE(t.received->complete());
    EXPECT_EQ(read_all(m_dst), read_all(m_src));
    EXPECT_EQ(t.received->bytes_written, uint64_t{k_block});
}

TEST_F(StreamTest, SameFrameWithoutMatchingStateIsRejected) {
    // The sender believes the destination has every chunk; it has none.
    auto claimed = hash_device(m_src, k_block);
    ASSERT_TRUE(claimed.ok());
    m_send.known = known_from_state(*claimed);
    auto t = transfer(m_send, m_recv);
    ASSERT_TRUE(t.received.ok());
    EXPECT_EQ(t.sent->same_bytes, t.sent->size);
    EXPECT_FALSE(t.received->complete());
    EXPECT_EQ(t.received->chunks_unconfirmed, chunk_count(t.sent->size, k_block));
    EXPECT_EQ(t.received->bytes_written, 0u);
}

TEST_F(StreamTest, MissingSourceIsNotFound) {
    m_send.path = m_dir.file("nope.img");
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    auto r = send_stream(m_send, fds[1]);
    ::close(fds[0]);
    ::close(fds[1]);
    EXPECT_EQ(r.status().code(), Code::not_found);
    EXPECT_NE(r.status().message().find("nope.img"), std::string::npos);
}

// The seal of a copy made in 64 KiB chunks holds every 4 KiB block's hash,
// as a fresh hash pass of the destination would find them, until anything
// writes to the destination.
TEST_F(StreamTest, SealHoldsTheDestinationsBlockHashesUntilItIsWritten) {
    m_recv.seal_path = m_dir.file("seal");
    m_recv.seal_block_size = 4096;
    auto t = transfer(m_send, m_recv);
    ASSERT_TRUE(t.received.ok()) << t.received.status().to_string();
    ASSERT_TRUE(t.received->complete());
    EXPECT_TRUE(t.received->sealed);
    const uint64_t size = t.sent->size;
    std::string why;
    auto seal = read_seal(m_recv.seal_path, m_dst, size, 4096, &why);
    ASSERT_TRUE(seal.has_value()) << why;
    auto fresh = hash_device(m_dst, 4096);
    ASSERT_TRUE(fresh.ok());
    EXPECT_EQ(seal->hashes(), fresh->hashes());
    EXPECT_EQ(seal->confirmed_count(), seal->count());
    EXPECT_FALSE(read_seal(m_recv.seal_path, m_dst, size, 8192, &why).has_value());
    EXPECT_NE(why.find("geometry"), std::string::npos) << why;
    EXPECT_FALSE(read_seal(m_recv.seal_path, m_dir.file("other.img"), size, 4096, &why));

    // The same bytes written again still count as a write.
    std::string block = read_all(m_dst).substr(8192, 4096);
    int fd = ::open(m_dst.c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::pwrite(fd, block.data(), block.size(), 8192), 4096);
    ::close(fd);
    EXPECT_FALSE(read_seal(m_recv.seal_path, m_dst, size, 4096, &why).has_value());
    EXPECT_NE(why.find("changed since the seal"), std::string::npos) << why;
}

TEST_F(StreamTest, DeltaAgainstASealWritesOnlyChangesAndSealsAgain) {
    m_recv.seal_path = m_dir.file("seal");
    m_recv.seal_block_size = 4096;
    ASSERT_TRUE(transfer(m_send, m_recv).received.ok());
    int fd = ::open(m_src.c_str(), O_WRONLY);
    for (uint64_t block : {3u, 100u, 700u}) {
        std::string data(10, 'q');
        ASSERT_EQ(::pwrite(fd, data.data(), data.size(), static_cast<off_t>(block * 4096 + 7)), 10);
    }
    ::close(fd);
    const uint64_t size = read_all(m_src).size();
    auto seal = read_seal(m_recv.seal_path, m_dst, size, 4096, nullptr);
    ASSERT_TRUE(seal.has_value());
    ASSERT_TRUE(seal->save(m_recv.state_path).ok());  // what `hashes --seal` does
    m_send.block_size = 4096;
    m_send.known = known_from_state(*seal);
    auto t = transfer(m_send, m_recv);
    ASSERT_TRUE(t.received.ok()) << t.received.status().to_string();
    EXPECT_TRUE(t.received->complete());
    EXPECT_EQ(read_all(m_dst), read_all(m_src));
    EXPECT_EQ(t.received->bytes_written, 3u * 4096);
    EXPECT_TRUE(t.received->sealed) << "a stream at the seal's block size seals again";
    auto again = read_seal(m_recv.seal_path, m_dst, size, 4096, nullptr);
    ASSERT_TRUE(again.has_value());
    EXPECT_EQ(again->hashes(), hash_device(m_dst, 4096)->hashes());
}

TEST_F(StreamTest, InterruptedOrResumedCopyLeavesNoSealAndAnyCopyDropsAnOldOne) {
    m_recv.seal_path = m_dir.file("seal");
    m_recv.seal_block_size = 4096;
    ASSERT_TRUE(transfer(m_send, m_recv).received.ok());
    ASSERT_TRUE(std::filesystem::exists(m_recv.seal_path));
    // A copy that does not seal still removes the old seal before writing.
    ReceiverOptions plain = m_recv;
    plain.seal_block_size = 0;
    auto cut = transfer(m_send, plain, 5000);
    EXPECT_FALSE(cut.received.ok());
    EXPECT_FALSE(std::filesystem::exists(m_recv.seal_path));
    // Resumed: the chunks it skips were never hashed at 4 KiB here.
    auto state = ChunkState::load(m_recv.state_path, read_all(m_src).size(), k_block);
    ASSERT_TRUE(state.has_value());
    ASSERT_GT(state->confirmed_count(), 0u);
    m_send.known = known_from_state(*state);
    auto resumed = transfer(m_send, m_recv);
    ASSERT_TRUE(resumed.received.ok());
    EXPECT_TRUE(resumed.received->complete());
    EXPECT_FALSE(resumed.received->sealed);
    EXPECT_FALSE(std::filesystem::exists(m_recv.seal_path));
    std::string why;
    EXPECT_FALSE(read_seal(m_recv.seal_path, m_dst, 1, 4096, &why).has_value());
    EXPECT_EQ(why, "no seal");
}

TEST_F(StreamTest, DamagedOrIncompleteSealIsNotTrusted) {
    m_recv.seal_path = m_dir.file("seal");
    m_recv.seal_block_size = 4096;
    ASSERT_TRUE(transfer(m_send, m_recv).received.ok());
    std::string data = read_all(m_recv.seal_path);
    data[data.size() - 20] ^= 1;
    testing_support::write_all(m_recv.seal_path, data);
    std::string why;
    EXPECT_FALSE(read_seal_any(m_recv.seal_path, m_dst, &why).has_value());
    EXPECT_NE(why.find("damaged seal"), std::string::npos) << why;
    ChunkState partial(read_all(m_src).size(), 4096);
    partial.confirm(0, 1);
    ASSERT_TRUE(write_seal(m_recv.seal_path, m_dst, partial).ok());
    EXPECT_FALSE(read_seal_any(m_recv.seal_path, m_dst, &why).has_value());
    EXPECT_EQ(why, "incomplete seal");
}

// A loop device: writes through it, and writes to its backing file behind
// its back, both change its identity.
TEST(SealIdentity, BlockDeviceChangesWithWritesThroughItAndToItsBackingFile) {
    if (::geteuid() != 0 || std::system("losetup --version > /dev/null 2>&1") != 0) {
        GTEST_SKIP() << "needs root and losetup to attach a loop device";
    }
    TempDir dir;
    const std::string file = dir.file("disk.img");
    testing_support::write_all(file, std::string(1 << 20, 'a'));
    FILE* p = ::popen(("losetup --find --show " + file).c_str(), "r");
    ASSERT_NE(p, nullptr);
    char line[128] = {};
    ASSERT_NE(std::fgets(line, sizeof line, p), nullptr);
    ::pclose(p);
    std::string dev(line);
    dev.erase(dev.find_last_not_of('\n') + 1);
    auto detach = [&] { std::system(("losetup -d " + dev).c_str()); };
    auto id0 = destination_identity(dev);
    ASSERT_TRUE(id0.ok()) << id0.status().to_string();
    EXPECT_EQ(id0->rfind("block rdev=", 0), 0u) << *id0;
    EXPECT_NE(id0->find(" backing(dev="), std::string::npos) << *id0;
    EXPECT_EQ(*destination_identity(dev), *id0) << "reading changes nothing";
    int fd = ::open(dev.c_str(), O_WRONLY | O_DIRECT);
    alignas(4096) static char block[4096];
    std::memset(block, 'b', sizeof block);
    bool wrote = fd >= 0 && ::pwrite(fd, block, sizeof block, 4096) == 4096 && ::fsync(fd) == 0;
    if (fd >= 0) {
        ::close(fd);
    }
    auto id1 = destination_identity(dev);
    fd = ::open(file.c_str(), O_WRONLY);
    bool wrote_file = fd >= 0 && ::pwrite(fd, "c", 1, 0) == 1;
    if (fd >= 0) {
        ::close(fd);
    }
    auto id2 = destination_identity(dev);
    // With I/O accounting off the counters would stand still.
    const std::string iostats =
        "/sys/block/" + std::filesystem::path(dev).filename().string() + "/queue/iostats";
    testing_support::write_all(iostats, "0");
    auto off = destination_identity(dev);
    testing_support::write_all(iostats, "1");
    detach();
    ASSERT_FALSE(off.ok());
    EXPECT_NE(off.status().message().find("iostats"), std::string::npos);
    ASSERT_TRUE(wrote && wrote_file);
    ASSERT_TRUE(id1.ok() && id2.ok());
    EXPECT_NE(*id1, *id0) << "a write through the device";
    EXPECT_NE(*id2, *id1) << "a write to the backing file";
}

TEST(StreamProtocol, RejectsGarbageAndOffGridFrames) {
    std::string junk(32, 'x');
    EXPECT_EQ(decode_header(junk.data(), junk.size()).status().code(), Code::invalid_input);
    Header h{k_block, 10 * k_block};
    std::string enc = encode_header(h);
    auto back = decode_header(enc.data(), enc.size());
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(back->size, h.size);
    FrameHeader off_grid{FrameKind::raw, k_block, 100, 0, k_block};
    std::string f = encode_frame_header(off_grid);
    EXPECT_FALSE(decode_frame_header(f.data(), f.size(), h).ok());
    FrameHeader zero_with_payload{FrameKind::zero, k_block, 0, 0, 5};
    f = encode_frame_header(zero_with_payload);
    EXPECT_FALSE(decode_frame_header(f.data(), f.size(), h).ok());
    FrameHeader good{FrameKind::zstd, k_block, 3 * k_block, 42, 1234};
    f = encode_frame_header(good);
    auto decoded = decode_frame_header(f.data(), f.size(), h);
    ASSERT_TRUE(decoded.ok());
    EXPECT_EQ(decoded->hash, 42u);
    EXPECT_EQ(decoded->offset, 3u * k_block);
}

TEST(ChunkState, RoundTripsAndRejectsCorruption) {
    ChunkState s(10 * k_block + 7, k_block);
    EXPECT_EQ(s.count(), 11u);
    s.confirm(3, 99);
    s.confirm(10, 5);
    std::string data = s.serialize();
    auto back = ChunkState::parse(data);
    ASSERT_TRUE(back.ok());
    EXPECT_TRUE(back->confirmed(3));
    EXPECT_FALSE(back->confirmed(4));
    EXPECT_EQ(back->hash(10), 5u);
    EXPECT_EQ(back->confirmed_bytes(), k_block + 7u);
    data[30] ^= 1;
    EXPECT_FALSE(ChunkState::parse(data).ok());
}

// The wire and file formats spelled out byte by byte: the digest, run hashes
// and the state file are little-endian whatever the host, and the fast paths
// must produce exactly these bytes.
TEST(StreamProtocol, DigestRunHashAndStateHaveTheDocumentedBytes) {
    const std::vector<uint64_t> hashes = {0x0102030405060708ULL, 0xf0e0d0c0b0a09080ULL, 7};
    std::string le;
    for (uint64_t h : hashes) {
        for (int b = 0; b < 8; ++b) {
            le.push_back(static_cast<char>((h >> (8 * b)) & 0xff));
        }
    }
    EXPECT_EQ(le.substr(0, 2), std::string("\x08\x07", 2));
    XXH128_hash_t d = XXH3_128bits(le.data(), le.size());
    EXPECT_EQ(digest_of(hashes), (Digest{d.low64, d.high64}));
    EXPECT_EQ(run_hash(hashes.data() + 1, 2), XXH3_64bits(le.data() + 8, 16));

    ChunkState s(3 * k_block, k_block);
    s.confirm(0, hashes[0]);
    s.confirm(2, hashes[2]);
    const std::string data = s.serialize();
    ASSERT_EQ(data.size(), 24u + 3 * 9 + 8);
    EXPECT_EQ(data.substr(0, 8), "VMLSTAT1");
    EXPECT_EQ(data.substr(24, 9), std::string("\x01", 1) + le.substr(0, 8));
    EXPECT_EQ(data[33], 0);  // chunk 1 unconfirmed
    EXPECT_EQ(data.substr(43, 8), le.substr(16, 8));
    uint64_t check = 0;
    for (int b = 7; b >= 0; --b) {
        check = (check << 8) | static_cast<uint8_t>(data[data.size() - 8 + static_cast<size_t>(b)]);
    }
    EXPECT_EQ(check, XXH3_64bits(data.data(), data.size() - 8));
}

}  // namespace
}  // namespace vmlift::stream

namespace vmlift {
namespace {

// A delta's hash tables are one entry per chunk: the granularity grows with
// the disk so the chunk count (and the agents' memory) stays bounded.
TEST(DeltaGranularity, StaysAt4KiBUpTo8GiBThenDoublesToBoundTheChunkCount) {
    constexpr uint64_t gib = uint64_t{1} << 30;
    constexpr uint32_t chunk = 4u << 20;
    EXPECT_EQ(delta_granularity(0, 4096, chunk), 4096u);
    EXPECT_EQ(delta_granularity(8 * gib, 4096, chunk), 4096u);
    EXPECT_EQ(delta_granularity(8 * gib + 1, 4096, chunk), 8192u);
    EXPECT_EQ(delta_granularity(100 * gib, 4096, chunk), 65536u);
    EXPECT_EQ(delta_granularity(2048 * gib, 4096, chunk), 1u << 20);
    // Never coarser than the copy's own chunks, never finer than 4 KiB.
    EXPECT_EQ(delta_granularity(64 * 1024 * gib, 4096, chunk), chunk);
    EXPECT_EQ(delta_granularity(64 * 1024 * gib, 4096, 1u << 20), 1u << 20);
    EXPECT_EQ(delta_granularity(gib, 512, chunk), 4096u);
    for (uint64_t size : {gib, 8 * gib, 33 * gib, 1000 * gib, 3000 * gib}) {
        const uint32_t g = delta_granularity(size, 4096, chunk);
        EXPECT_EQ(g % 4096, 0u);
        EXPECT_LE((size + g - 1) / g, k_max_delta_chunks) << size;
        if (g > 4096) {  // the smallest size that fits
            EXPECT_GT((size + g / 2 - 1) / (g / 2), k_max_delta_chunks) << size;
        }
    }
}

}  // namespace
}  // namespace vmlift

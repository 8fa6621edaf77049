#include "engine/io.h"

#include <fcntl.h>
#include <unistd.h>

#include <random>
#include <string>

#include <gtest/gtest.h>

#include "tests/support/temp_dir.h"

namespace vmlift {
namespace {

using testing_support::TempDir;

std::string random_bytes(size_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::string s(n, '\0');
    for (auto& c : s) {
        c = static_cast<char>(rng());
    }
    return s;
}

TEST(AlignedBuffer, IsAlignedAndRoundsUp) {
    AlignedBuffer b;
    char* p = b.get(5000);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 4096, 0u);
    EXPECT_EQ(b.capacity(), 8192u);
    EXPECT_EQ(b.get(100), p);  // no shrink, no move
}

// A file whose size is not a multiple of 4 KiB, read aligned (O_DIRECT where
// the filesystem allows it), unaligned (buffered) and past its end.
TEST(DirectReader, ReadsEverythingIncludingAnUnalignedTail) {
    TempDir dir;
    const std::string path = dir.file("data");
    const std::string content = random_bytes(3 * 4096 * 16 + 1234, 5);
    {
        int fd = ::open(path.c_str(), O_WRONLY | O_CREAT, 0600);
        ASSERT_EQ(::write(fd, content.data(), content.size()),
                  static_cast<ssize_t>(content.size()));
        ::close(fd);
    }
    int fd = ::open(path.c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    DirectReader reader(fd, path);
    AlignedBuffer buffer;
    char* p = buffer.get(content.size() + 4096);
    int error = -1;
    size_t got = reader.read(p, content.size(), 0, &error);
    EXPECT_EQ(error, 0);
    ASSERT_EQ(got, content.size());
    EXPECT_EQ(std::string(p, got), content);

    // The tail alone, from an aligned offset: asks for fewer bytes than the
    // rounded read returns and gets exactly what it asked for.
    const uint64_t tail_at = 3 * 4096 * 16;
    got = reader.read(p, 1000, tail_at, &error);
    EXPECT_EQ(error, 0);
    ASSERT_EQ(got, 1000u);
    EXPECT_EQ(std::string(p, 1000), content.substr(tail_at, 1000));

    // Unaligned offset and buffer: served buffered, same bytes.
    got = reader.read(p + 1, 777, 4097, &error);
    EXPECT_EQ(error, 0);
    ASSERT_EQ(got, 777u);
    EXPECT_EQ(std::string(p + 1, 777), content.substr(4097, 777));

    // Past the end: a short read with no error.
    got = reader.read(p, 8192, tail_at, &error);
    EXPECT_EQ(error, 0);
    EXPECT_EQ(got, 1234u);
    ::close(fd);
}

}  // namespace
}  // namespace vmlift

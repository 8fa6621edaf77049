#include "engine/run_dir.h"

#include <sys/stat.h>

#include <regex>

#include <gtest/gtest.h>

#include "tests/support/temp_dir.h"

namespace vmlift {
namespace {

using testing_support::read_all;
using testing_support::TempDir;

TEST(RunDir, CreatesDatedPrivateDirectoryWithStatus) {
    TempDir tmp;
    FakeClock clock;
    auto dir = RunDir::create(tmp.file("runs/nested"), clock);
    ASSERT_TRUE(dir.ok()) << dir.status().to_string();
    EXPECT_TRUE(std::regex_match(dir->id(), std::regex("20260101-[0-9a-f]{6}")));
    EXPECT_EQ(dir->path(), tmp.file("runs/nested/") + dir->id());
    struct stat st {};
    ASSERT_EQ(::stat(dir->path().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    EXPECT_EQ(read_all(dir->file("status")), "created\n");
}

TEST(RunDir, TwoRunsOnOneDayGetDifferentIds) {
    TempDir tmp;
    FakeClock clock;
    auto a = RunDir::create(tmp.path(), clock);
    auto b = RunDir::create(tmp.path(), clock);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_NE(a->id(), b->id());
}

TEST(RunDir, WritesFilesAtomicallyAndPrivately) {
    TempDir tmp;
    FakeClock clock;
    auto dir = RunDir::create(tmp.path(), clock);
    ASSERT_TRUE(dir.ok());
    ASSERT_TRUE(dir->write_file("journal.json", "{\"v\":1}").ok());
    ASSERT_TRUE(dir->write_file("journal.json", "{\"v\":2}").ok());
    EXPECT_EQ(*dir->read_file("journal.json"), "{\"v\":2}");
    struct stat st {};
    ASSERT_EQ(::stat(dir->file("journal.json").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    // No temp files are left behind.
    int entries = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir->path())) {
        (void)e;
        ++entries;
    }
    EXPECT_EQ(entries, 2);  // status + journal.json
}

TEST(RunDir, OpenFindsExistingAndNamesMissing) {
    TempDir tmp;
    FakeClock clock;
    auto created = RunDir::create(tmp.path(), clock);
    ASSERT_TRUE(created.ok());
    auto opened = RunDir::open(created->path() + "/");
    ASSERT_TRUE(opened.ok());
    EXPECT_EQ(opened->id(), created->id());
    auto missing = RunDir::open(tmp.file("nope"));
    EXPECT_EQ(missing.status().code(), Code::not_found);
    EXPECT_NE(missing.status().message().find(tmp.file("nope")), std::string::npos);
}

TEST(RunDir, UncreatableBaseIsAnIoError) {
    FakeClock clock;
    auto dir = RunDir::create("/proc/vmlift-cannot-exist", clock);
    EXPECT_EQ(dir.status().code(), Code::io_error);
}

}  // namespace
}  // namespace vmlift

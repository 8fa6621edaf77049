#include "engine/hook_guard.h"

#include <filesystem>

#include <gtest/gtest.h>

#include "tests/support/temp_dir.h"

namespace vmlift {
namespace {

using testing_support::TempDir;
using testing_support::write_all;

TEST(HookGuard, ClaimFilesEscapeThePathAndRoundTrip) {
    TempDir dir;
    EXPECT_EQ(claim_file("/s", "/dev/zvol/tank/my vm"),
              "/s/disks/%2Fdev%2Fzvol%2Ftank%2Fmy%20vm.json");
    auto none = read_claim(dir.path(), "/dev/zvol/tank/x");
    ASSERT_TRUE(none.ok());
    EXPECT_FALSE(none->has_value());
    DiskClaim c{"/dev/zvol/tank/x", "r1", "verified", "198.18.3.4", 443, "tcp"};
    std::string file = claim_file(dir.path(), c.path);
    std::filesystem::create_directories(file.substr(0, file.rfind('/')));
    write_all(file, claim_json(c).dump());
    auto back = read_claim(dir.path(), c.path);
    ASSERT_TRUE(back.ok());
    ASSERT_TRUE(back->has_value());
    EXPECT_EQ((*back)->port, 443);
    EXPECT_EQ((*back)->state, "verified");
    write_all(file, "{not json");
    EXPECT_EQ(read_claim(dir.path(), c.path).status().code(), Code::invalid_input);
    // A damaged claim refuses a start: it cannot vouch for the disk.
    FakeClock clock;
    auto out = libvirt_hook({dir.path(), ""}, "d", "prepare", "begin", {c.path}, clock);
    EXPECT_EQ(out.exit_code, 1);
    EXPECT_NE(out.message.find("is damaged"), std::string::npos);
}

TEST(HookGuard, PveRefusesOnlyTaggedVmsAtPreStart) {
    TempDir dir;
    FakeClock clock;
    HookPaths paths{dir.file("state"), dir.path()};
    write_all(dir.file("7.conf"), "name: a\ntags: vmlift-migrated\n");
    write_all(dir.file("8.conf"), "name: b\ntags: vmlift-migrated-not\n");
    EXPECT_EQ(pve_hook(paths, "7", "pre-start", clock).exit_code, 1);
    EXPECT_EQ(pve_hook(paths, "7", "post-stop", clock).exit_code, 0);
    EXPECT_EQ(pve_hook(paths, "8", "pre-start", clock).exit_code, 0);
}

}  // namespace
}  // namespace vmlift

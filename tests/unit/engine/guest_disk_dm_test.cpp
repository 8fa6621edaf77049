// LVM activation through device-mapper: the plan of commands. (The kernel
// of the test machines has no device-mapper; there the loop-device mapping
// in tests/integration/guest_disk_test.cpp runs instead.)
#include <gtest/gtest.h>

#include "engine/guest_disk.h"

namespace vmlift {
namespace {

// An Ubuntu installer's VG as pvck prints it: the root LV in two linear
// segments (it was extended once), and a swap LV.
constexpr const char* k_ubuntu_vg = R"(  metadata text at 4608 crc 0x1 # vgname ubuntu-vg seqno 4
  ---
ubuntu-vg {
id = "Gk3N1e-aaaa-bbbb-cccc-dddd-eeee-ffffff"
seqno = 4
extent_size = 8192
physical_volumes {
pv0 {
id = "pvuuid"
pe_start = 2048
pe_count = 500
}
}
logical_volumes {
ubuntu-lv {
segment_count = 2
segment1 {
start_extent = 0
extent_count = 100
type = "striped"
stripe_count = 1
stripes = [
"pv0", 0
]
}
segment2 {
start_extent = 100
extent_count = 50
type = "striped"
stripe_count = 1
stripes = [
"pv0", 300
]
}
}
swap_1 {
segment_count = 1
segment1 {
start_extent = 0
extent_count = 20
type = "striped"
stripe_count = 1
stripes = [
"pv0", 100
]
}
}
}
}
  ---
)";

TEST(DmPlan, WithoutACollisionActivatesTheGuestVgBehindAFilterAdmittingOnlyItsDevice) {
    auto lvs = parse_lvm_metadata(k_ubuntu_vg);
    ASSERT_TRUE(lvs.ok()) << lvs.status().message();
    ASSERT_EQ(lvs->size(), 2u);  // in name order: swap_1, ubuntu-lv
    const LvmExtent& root = (*lvs)[1];
    EXPECT_EQ(root.lv, "ubuntu-lv");
    EXPECT_EQ(root.vg_id, "Gk3N1e-aaaa-bbbb-cccc-dddd-eeee-ffffff");
    ASSERT_EQ(root.segs.size(), 2u);
    EXPECT_EQ(root.segs[1].lv_offset, 100u * 8192 * 512);
    EXPECT_EQ(root.segs[1].offset, 2048u * 512 + 300u * 8192 * 512);

    // The host (a Proxmox node) has only its own "pve" VG.
    auto plan = plan_dm_activation(*lvs, "/dev/loop7", "  pve:Xy12-host-uuid\n", "42", "/run/x");
    ASSERT_TRUE(plan.ok()) << plan.status().message();
    EXPECT_FALSE(plan->collision);
    const std::string config =
        "devices { global_filter = [ \"a|^/dev/loop7$|\", \"r|.*|\" ] use_devicesfile = 0 }";
    ASSERT_EQ(plan->activate.size(), 1u);
    EXPECT_EQ(plan->activate[0], (std::vector<std::string>{"vgchange", "--activate", "y",
                                                           "--config", config, "ubuntu-vg"}));
    EXPECT_EQ(plan->deactivate[0], (std::vector<std::string>{"vgchange", "--activate", "n",
                                                             "--config", config, "ubuntu-vg"}));
    EXPECT_EQ(plan->devices.at("ubuntu-vg/ubuntu-lv"), "/dev/mapper/ubuntu--vg-ubuntu--lv");
    EXPECT_EQ(plan->devices.at("ubuntu-vg/swap_1"), "/dev/mapper/ubuntu--vg-swap_1");
    EXPECT_TRUE(plan->tables.empty());

    // The guest's own VG seen by the host's LVM (same UUID) is no collision.
    auto self = plan_dm_activation(
        *lvs, "/dev/loop7", "ubuntu-vg:Gk3N1e-aaaa-bbbb-cccc-dddd-eeee-ffffff\n", "42", "/r");
    ASSERT_TRUE(self.ok());
    EXPECT_FALSE(self->collision);
}

TEST(DmPlan, AHostVgOfTheSameNameIsLeftAloneAndTheGuestsLvsMappedUnderOurOwnNames) {
    auto lvs = parse_lvm_metadata(k_ubuntu_vg);
    ASSERT_TRUE(lvs.ok());
    auto plan =
        plan_dm_activation(*lvs, "/dev/loop7", "  ubuntu-vg:Host-uuid-0000\n  data:Other-uuid\n",
                           "42", "/run/vmlift/guest-disk");
    ASSERT_TRUE(plan.ok()) << plan.status().message();
    EXPECT_TRUE(plan->collision);
    for (const auto& cmd : plan->activate) {
        EXPECT_EQ(cmd[0], "dmsetup") << "no LVM command may touch the host's ubuntu-vg";
    }
    const std::string root = "vmlift-42-ubuntu-vg-ubuntu-lv";
    EXPECT_EQ(plan->devices.at("ubuntu-vg/ubuntu-lv"), "/dev/mapper/" + root);
    ASSERT_EQ(plan->activate.size(), 2u);
    EXPECT_EQ(plan->activate[1],
              (std::vector<std::string>{"dmsetup", "create", root,
                                        "/run/vmlift/guest-disk/" + root + ".table"}));
    // Two linear segments, in 512-byte sectors: LV start, length, PV offset.
    EXPECT_EQ(plan->tables.at(root),
              "0 819200 linear /dev/loop7 2048\n"
              "819200 409600 linear /dev/loop7 2459648\n");
    EXPECT_EQ(plan->tables.at("vmlift-42-ubuntu-vg-swap_1"), "0 163840 linear /dev/loop7 821248\n");
    // Removed in reverse order of creation.
    ASSERT_EQ(plan->deactivate.size(), 2u);
    EXPECT_EQ(plan->deactivate[0], (std::vector<std::string>{"dmsetup", "remove", root}));
    EXPECT_EQ(plan->deactivate[1],
              (std::vector<std::string>{"dmsetup", "remove", "vmlift-42-ubuntu-vg-swap_1"}));
}

TEST(DmPlan, RefusesWhatItCannotMapCleanly) {
    auto lvs = parse_lvm_metadata(k_ubuntu_vg);
    ASSERT_TRUE(lvs.ok());
    auto striped = *lvs;
    striped[1].segs[0].stripes = 2;
    auto r = plan_dm_activation(striped, "/dev/loop7", "ubuntu-vg:Host-uuid\n", "1", "/r");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Code::invalid_input);
    EXPECT_NE(r.status().message().find("the host has its own VG ubuntu-vg"), std::string::npos)
        << r.status().message();
    auto spanning = *lvs;
    for (auto& lv : spanning) {
        lv.vg_pvs = 2;
    }
    auto two = plan_dm_activation(spanning, "/dev/loop7", "", "1", "/r");
    ASSERT_FALSE(two.ok());
    EXPECT_NE(two.status().message().find("spans 2 physical volumes"), std::string::npos);
    EXPECT_FALSE(plan_dm_activation({}, "/dev/loop7", "", "1", "/r").ok());
}

}  // namespace
}  // namespace vmlift

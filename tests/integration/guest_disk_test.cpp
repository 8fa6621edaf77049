// edit-guest-disk on real images: GPT + LVM (ubuntu-vg/ubuntu-lv, no
// device-mapper) with netplan and cloud-init; xfs on a plain partition with
// ifupdown; MBR + ext4 with NetworkManager keyfiles; and the refusals.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "engine/guest_disk.h"
#include "engine/io.h"
#include "engine/process.h"
#include "tests/integration/lab.h"
#include "tests/support/temp_dir.h"

namespace vmlift {
namespace {

using testing_support::read_all;
using testing_support::TempDir;
using testing_support::write_all;

// LVM sees only this test's PV: other tests (and the lab's guest image build)
// run at the same time with their own loop devices and volume groups, some of
// them with the same VG name, and a scan that met them would refuse or race.
std::string lvm_config(const std::string& pv) {
    return "backup { backup = 0 archive = 0 } devices { filter = [ \"a|^" + pv +
           "$|\", \"r|.*|\" ] }";
}

class GuestDisk : public ::testing::Test {
  protected:
    void SetUp() override {
        if (::geteuid() != 0) {
            GTEST_SKIP() << "needs root (loop devices, mount)";
        }
        for (const char* tool : {"/usr/sbin/sfdisk", "/usr/sbin/pvcreate", "/usr/sbin/mkfs.xfs",
                                 "/usr/sbin/mkfs.ext4", "/usr/sbin/losetup"}) {
            if (::access(tool, X_OK) != 0) {
                GTEST_SKIP() << "needs " << tool << " (contrib/install-deps.sh installs it)";
            }
        }
        m_img = m_dir.file("disk.img");
    }
    void TearDown() override {
        for (auto it = m_loops.rbegin(); it != m_loops.rend(); ++it) {
            sh({"losetup", "-d", *it});
        }
    }

    std::string sh(const std::vector<std::string>& argv, const std::string& input = {}) {
        ProcessSpec spec;
        spec.argv = argv;
        spec.env = default_tool_env();
        spec.timeout = std::chrono::seconds(120);
        auto r = run_captured(m_runner, spec, input);
        EXPECT_TRUE(r.ok());
        EXPECT_EQ(r->exit.code, 0) << argv[0] << ": " << r->err;
        return r->out;
    }
    std::string loop(uint64_t offset, uint64_t size) {
        std::string dev =
            last_line(sh({"losetup", "--find", "--show", "--offset", std::to_string(offset),
                          "--sizelimit", std::to_string(size), m_img}));
        m_loops.push_back(dev);
        return dev;
    }
    void detach_all() {
        for (auto it = m_loops.rbegin(); it != m_loops.rend(); ++it) {
            sh({"losetup", "-d", *it});
        }
        m_loops.clear();
    }
    // Start and size in bytes of partition n (1-based).
    std::pair<uint64_t, uint64_t> partition(int n) {
        auto j = nlohmann::json::parse(sh({"sfdisk", "--json", m_img}));
        const auto& p = j["partitiontable"]["partitions"][n - 1];
        return {p["start"].get<uint64_t>() * 512, p["size"].get<uint64_t>() * 512};
    }
    // mkfs on [offset, offset+size), then write the guest's files into it.
    void make_root(uint64_t offset, uint64_t size, const std::string& fs,
                   const std::map<std::string, std::string>& files) {
        std::string dev = loop(offset, size);
        if (fs == "xfs") {
            sh({"mkfs.xfs", "-q", "-f", dev});
        } else {
            sh({"mkfs.ext4", "-q", "-F", dev});
        }
        std::string mnt = m_dir.file("mnt");
        std::filesystem::create_directories(mnt);
        sh({"mount", dev, mnt});
        for (const auto& [path, text] : files) {
            std::filesystem::create_directories(
                std::filesystem::path(mnt + "/" + path).parent_path());
            write_all(mnt + "/" + path, text);
        }
        sh({"umount", mnt});
    }
    std::string read_back(uint64_t offset, uint64_t size, const std::string& path) {
        std::string dev = loop(offset, size);
        std::string mnt = m_dir.file("check");
        std::filesystem::create_directories(mnt);
        sh({"mount", "-o", "ro,nouuid", dev, mnt});
        std::string text = read_all(mnt + "/" + path);
        sh({"umount", mnt});
        return text;
    }
    std::string read_back_ext(uint64_t offset, uint64_t size, const std::string& path) {
        std::string dev = loop(offset, size);
        std::string mnt = m_dir.file("check");
        std::filesystem::create_directories(mnt);
        sh({"mount", "-o", "ro", dev, mnt});
        std::string text = read_all(mnt + "/" + path);
        sh({"umount", mnt});
        return text;
    }
    Captured edit(std::vector<std::string> args) {
        ProcessSpec spec;
        spec.argv = {VMLIFT_MIGRATE_VM,  "--json", "edit-guest-disk", "--target-mode", "local",
                     "--local-dev-path", m_img};
        spec.argv.insert(spec.argv.end(), args.begin(), args.end());
        spec.env = default_tool_env();
        spec.timeout = std::chrono::seconds(120);
        auto r = run_captured(m_runner, spec);
        EXPECT_TRUE(r.ok());
        return *r;
    }
    // Nothing of ours is left attached or mounted.
    void expect_clean() {
        EXPECT_EQ(sh({"losetup", "-j", m_img}), "");
        const std::string img = std::filesystem::weakly_canonical(m_img).string();
        EXPECT_EQ(guest_mounts_of([&](const std::string& back) { return back == img; }), "");
    }
    // The edit's mounts (a /tmp/vmlift-guest-* mount point) whose device is, or
    // is a loop device backed by, something of this test (is_ours). Other
    // tests edit their own images at the same time; their mounts don't count.
    static std::string guest_mounts_of(const std::function<bool(const std::string&)>& is_ours) {
        std::istringstream mounts(read_all("/proc/mounts"));
        std::string line, found;
        while (std::getline(mounts, line)) {
            std::istringstream fields(line);
            std::string source, target;
            fields >> source >> target;
            if (target.find("vmlift-guest-") == std::string::npos) {
                continue;
            }
            std::string backing = source;
            if (source.rfind("/dev/loop", 0) == 0) {
                std::error_code ec;
                std::string sys = "/sys/block/" + source.substr(5) + "/loop/backing_file";
                backing = std::filesystem::exists(sys, ec) ? read_all(sys) : "";
                while (!backing.empty() && backing.back() == '\n') {
                    backing.pop_back();
                }
            }
            if (is_ours(backing)) {
                found += line + "\n";
            }
        }
        return found;
    }

    TempDir m_dir;
    std::string m_img;
    std::vector<std::string> m_loops;
    PosixProcessRunner m_runner;
};

const char* k_os = "PRETTY_NAME=\"Ubuntu 24.04 LTS\"\nID=ubuntu\n";

TEST_F(GuestDisk, UbuntuOnLvmWithNetplanIsRewrittenByMac) {
    sh({"truncate", "-s", "400M", m_img});
    sh({"sfdisk", "-q", m_img},
       "label: "
       "gpt\n,1M,21686148-6449-6E6F-744E-656564454649\n,32M,L\n,+,E6D6D379-F507-44C2-A23C-"
       "238F2A3DF928\n");
    auto [boot_off, boot_size] = partition(2);
    make_root(boot_off, boot_size, "ext4", {{"grub/grub.cfg", "# not a root\n"}});
    auto [pv_off, pv_size] = partition(3);
    std::string pv = loop(pv_off, pv_size);
    sh({"pvcreate", "-q", "-ff", "-y", "--config", lvm_config(pv), pv});
    sh({"vgcreate", "-q", "--config", lvm_config(pv), "ubuntu-vg", pv});
    sh({"lvcreate", "--driverloaded", "n", "-q", "--config", lvm_config(pv), "-L", "200M", "-n",
        "ubuntu-lv", "ubuntu-vg"});
    auto lvs = parse_lvm_metadata(sh({"pvck", "--dump", "metadata", pv}));
    ASSERT_TRUE(lvs.ok()) << lvs.status().message();
    ASSERT_EQ(lvs->size(), 1u);
    const uint64_t lv_off = pv_off + (*lvs)[0].offset, lv_size = (*lvs)[0].length;
    make_root(
        lv_off, lv_size, "ext4",
        {{"etc/os-release", k_os},
         {"etc/fstab", "/dev/disk/by-id/dm-uuid-LVM-x / ext4 defaults 0 1\n"},
         {"etc/cloud/cloud.cfg", "# cloud-init\n"},
         {"etc/netplan/50-cloud-init.yaml",
          "network:\n  version: 2\n  ethernets:\n    ens18:\n      addresses: [198.18.5.10/24]\n"
          "      routes:\n        - to: default\n          via: 198.18.5.1\n"}});
    detach_all();

    auto dry = edit({"--target-mac", "BC:24:11:AA:BB:01", "--dry-run"});
    ASSERT_EQ(dry.exit.code, 0) << dry.err;
    auto dj = nlohmann::json::parse(dry.out);
    EXPECT_NE(dj["diff"].get<std::string>().find("+++ b/etc/netplan/50-vmlift.yaml"),
              std::string::npos);
    EXPECT_EQ(dj["root"], "ubuntu-vg/ubuntu-lv (ext4)");
    expect_clean();
    EXPECT_EQ(read_back_ext(lv_off, lv_size, "etc/netplan/50-vmlift.yaml"),
              "");  // dry run wrote nothing
    detach_all();

    auto r = edit({"--target-mac", "BC:24:11:AA:BB:01"});
    ASSERT_EQ(r.exit.code, 0) << r.err;
    auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["method"], "netplan");
    EXPECT_EQ(j["nics"][0]["name"], "ens18");
    EXPECT_EQ(j["nics"][0]["addresses"], nlohmann::json::array({"198.18.5.10/24"}));
    expect_clean();
    std::string netplan = read_back_ext(lv_off, lv_size, "etc/netplan/50-vmlift.yaml");
    detach_all();
    EXPECT_NE(netplan.find("macaddress: \"bc:24:11:aa:bb:01\""), std::string::npos) << netplan;
    EXPECT_NE(netplan.find("set-name: ens18"), std::string::npos);
    EXPECT_NE(read_back_ext(lv_off, lv_size, "etc/cloud/cloud.cfg.d/99-disable-network-config.cfg")
                  .find("disabled"),
              std::string::npos);
    detach_all();
    // A re-run changes nothing; a wrong VG name and a missing LV fail cleanly.
    auto again = edit({"--target-mac", "bc:24:11:aa:bb:01"});
    ASSERT_EQ(again.exit.code, 0) << again.err;
    EXPECT_TRUE(nlohmann::json::parse(again.out)["files"].empty()) << again.out;
    auto wrong = edit({"--target-mac", "bc:24:11:aa:bb:01", "--vg-name", "pve"});
    EXPECT_EQ(wrong.exit.code, 3);
    EXPECT_NE(wrong.err.find("volume group pve is not on"), std::string::npos) << wrong.err;
    EXPECT_NE(wrong.err.find("found: ubuntu-vg"), std::string::npos);
    expect_clean();
}

TEST_F(GuestDisk, MultiSegmentLvIsRefused) {
    sh({"truncate", "-s", "200M", m_img});
    sh({"sfdisk", "-q", m_img}, "label: gpt\n,+,E6D6D379-F507-44C2-A23C-238F2A3DF928\n");
    auto [pv_off, pv_size] = partition(1);
    std::string pv = loop(pv_off, pv_size);
    sh({"pvcreate", "-q", "-ff", "-y", "--config", lvm_config(pv), pv});
    sh({"vgcreate", "-q", "--config", lvm_config(pv), "guestvg", pv});
    for (const char* lv : {"root", "other"}) {
        sh({"lvcreate", "--driverloaded", "n", "-q", "--config", lvm_config(pv), "-L", "16M", "-n",
            lv, "guestvg"});
    }
    sh({"lvextend", "--driverloaded", "n", "-q", "--config", lvm_config(pv), "-L", "+16M",
        "guestvg/root"});
    detach_all();
    auto r =
        edit({"--target-mac", "bc:24:11:aa:bb:01", "--vg-name", "guestvg", "--lv-name", "root"});
    EXPECT_EQ(r.exit.code, 3);
    EXPECT_NE(r.err.find("guestvg/root has 2 segment(s)"), std::string::npos) << r.err;
    expect_clean();
}

TEST_F(GuestDisk, DebianXfsOnAPlainPartitionWithIfupdown) {
    sh({"truncate", "-s", "400M", m_img});
    sh({"sfdisk", "-q", m_img}, "label: gpt\n,+,L\n");
    auto [off, size] = partition(1);
    make_root(
        off, size, "xfs",
        {{"etc/os-release", "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"},
         {"etc/fstab", "UUID=abc / xfs defaults 0 1\n"},
         {"etc/network/interfaces",
          "auto lo\niface lo inet loopback\n\nallow-hotplug ens18\niface ens18 inet dhcp\n"}});
    detach_all();
    auto r = edit(
        {"--nic", "bc:24:11:aa:bb:01,name=ens18,cidr=198.18.7.7/24,gw=198.18.7.1,dns=198.18.7.1"});
    ASSERT_EQ(r.exit.code, 0) << r.err;
    EXPECT_EQ(nlohmann::json::parse(r.out)["method"], "ifupdown");
    expect_clean();
    std::string ifaces = read_back(off, size, "etc/network/interfaces");
    detach_all();
    EXPECT_NE(ifaces.find("iface ens18 inet static"), std::string::npos) << ifaces;
    EXPECT_NE(ifaces.find("address 198.18.7.7/24"), std::string::npos);
    EXPECT_NE(read_back(off, size, "etc/systemd/network/10-vmlift-ens18.link")
                  .find("MACAddress=bc:24:11:aa:bb:01"),
              std::string::npos);
    detach_all();
    EXPECT_NE(read_back(off, size, "etc/network/vmlift-backup/interfaces").find("inet dhcp"),
              std::string::npos);
}

TEST_F(GuestDisk, MbrExt4WithNetworkManagerAndTwoNics) {
    sh({"truncate", "-s", "200M", m_img});
    sh({"sfdisk", "-q", m_img}, "label: dos\n,+,83\n");
    auto [off, size] = partition(1);
    make_root(
        off, size, "ext4",
        {{"etc/os-release", "PRETTY_NAME=\"Fedora Linux 40\"\n"},
         {"etc/fstab", "UUID=abc / ext4 defaults 1 1\n"},
         {"etc/NetworkManager/system-connections/ens18.nmconnection",
          "[connection]\nid=ens18\ntype=ethernet\ninterface-name=ens18\n\n[ipv4]\n"
          "method=manual\naddress1=198.18.8.8/24,198.18.8.1\n"},
         {"etc/NetworkManager/system-connections/ens19.nmconnection",
          "[connection]\nid=ens19\ntype=ethernet\ninterface-name=ens19\n\n[ipv4]\nmethod=auto\n"}});
    detach_all();
    auto r =
        edit({"--nic", "bc:24:11:aa:bb:01,name=ens18", "--nic", "bc:24:11:aa:bb:02,name=ens19"});
    ASSERT_EQ(r.exit.code, 0) << r.err;
    auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["method"], "networkmanager");
    EXPECT_EQ(j["nics"][0]["addresses"], nlohmann::json::array({"198.18.8.8/24"}));
    EXPECT_EQ(j["nics"][1]["addressing"], "dhcp");
    expect_clean();
    std::string k =
        read_back_ext(off, size, "etc/NetworkManager/system-connections/vmlift-ens19.nmconnection");
    detach_all();
    EXPECT_NE(k.find("mac-address=bc:24:11:aa:bb:02"), std::string::npos) << k;
    EXPECT_NE(k.find("method=auto"), std::string::npos);
}

// The same edit done by the agent on a tool host over SSH (a lab host).
TEST_F(GuestDisk, OnAToolHostOverSsh) {
    std::string skip = testing_support::Lab::skip_reason();
    if (!skip.empty()) {
        GTEST_SKIP() << skip;
    }
    auto lab = testing_support::Lab::create({"tool"});
    ASSERT_TRUE(lab.ok()) << lab.status().to_string();
    sh({"truncate", "-s", "200M", m_img});
    sh({"sfdisk", "-q", m_img}, "label: dos\n,+,83\n");
    auto [off, size] = partition(1);
    make_root(off, size, "ext4",
              {{"etc/os-release", k_os},
               {"etc/fstab", "LABEL=root / ext4 defaults 0 1\n"},
               {"etc/netplan/00-installer-config.yaml",
                "network:\n  version: 2\n  ethernets:\n    ens18:\n      dhcp4: true\n"}});
    detach_all();
    ProcessSpec spec;
    spec.argv = {VMLIFT_MIGRATE_VM,
                 "--json",
                 "--known-hosts",
                 (*lab)->known_hosts(),
                 "--identity-file",
                 (*lab)->client_key(),
                 "edit-guest-disk",
                 "--tool-host",
                 (*lab)->ip("tool"),
                 "--target-mode",
                 "local",
                 "--local-dev-path",
                 m_img,
                 "--target-mac",
                 "bc:24:11:aa:bb:01",
                 "--static-cidr",
                 "198.18.9.9/24",
                 "--gateway",
                 "198.18.9.1"};
    spec.env = default_tool_env();
    spec.env.push_back("HOME=" + m_dir.path());
    spec.timeout = std::chrono::seconds(120);
    auto r = run_captured(m_runner, spec);
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->exit.code, 0) << r->err;
    auto j = nlohmann::json::parse(r->out);
    EXPECT_EQ(j["method"], "netplan");
    EXPECT_EQ(j["nics"][0]["addresses"], nlohmann::json::array({"198.18.9.9/24"}));
    expect_clean();
    std::string netplan = read_back_ext(off, size, "etc/netplan/50-vmlift.yaml");
    detach_all();
    EXPECT_NE(netplan.find("198.18.9.9/24"), std::string::npos) << netplan;
    // Errors come back with their code and message.
    spec.argv.back() = "198.18.9.1";
    spec.argv.insert(spec.argv.end(), {"--vg-name", "nope"});
    auto bad = run_captured(m_runner, spec);
    ASSERT_TRUE(bad.ok());
    EXPECT_EQ(bad->exit.code, 3) << bad->err;
    EXPECT_NE(bad->err.find("volume group nope is not on"), std::string::npos) << bad->err;
    expect_clean();
}

// --target-mode nbd: the copy is exported over NBD by qemu-nbd on one lab
// host; the controller itself (dry run) and then the agent on another lab
// host reach it. Without the nbd kernel module (as here) that is nbdfuse
// plus a loop device; nothing stays mounted or attached afterwards.
TEST_F(GuestDisk, OverNbdFromAnotherHost) {
    std::string skip = testing_support::Lab::skip_reason();
    if (!skip.empty()) {
        GTEST_SKIP() << skip;
    }
    for (const char* tool : {"/usr/bin/nbdfuse", "/usr/bin/qemu-nbd", "/usr/bin/fusermount3"}) {
        if (::access(tool, X_OK) != 0) {
            GTEST_SKIP() << "needs " << tool << " (contrib/install-deps.sh installs it)";
        }
    }
    auto lab = testing_support::Lab::create({"nbd", "tool"});
    ASSERT_TRUE(lab.ok()) << lab.status().to_string();
    sh({"truncate", "-s", "200M", m_img});
    sh({"sfdisk", "-q", m_img}, "label: dos\n,+,83\n");
    auto [off, size] = partition(1);
    make_root(off, size, "ext4",
              {{"etc/os-release", k_os},
               {"etc/fstab", "LABEL=root / ext4 defaults 0 1\n"},
               {"etc/netplan/00-installer-config.yaml",
                "network:\n  version: 2\n  ethernets:\n    ens18:\n      dhcp4: true\n"}});
    detach_all();
    const std::string server_ip = (*lab)->ip("nbd");
    ProcessSpec server;
    server.argv = {"/bin/bash",    VMLIFT_SOURCE_DIR "/contrib/lab/lab.sh",
                   "exec",         "--dir",
                   (*lab)->dir(),  "nbd",
                   "--",           "qemu-nbd",
                   "--format=raw", "--bind=" + server_ip,
                   "--port=10809", "--persistent",
                   "--shared=4",   m_img};
    server.env = default_tool_env();
    server.stderr_redirect = Redirect::truncate_to(m_dir.file("qemu-nbd.log"));
    auto nbd = m_runner.start(server);
    ASSERT_TRUE(nbd.ok());
    bool up = false;
    for (int i = 0; i < 100 && !up; ++i) {
        ProcessSpec probe;
        probe.argv = {"nbdinfo", "--size", "nbd://" + server_ip + ":10809"};
        probe.env = default_tool_env();
        auto r = run_captured(m_runner, probe);
        up = r.ok() && r->exit.success();
        if (!up) {
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
    }
    ASSERT_TRUE(up) << read_all(m_dir.file("qemu-nbd.log"));
    auto no_fuse_left = [&] {
        const std::string mounts = read_all("/proc/mounts");
        EXPECT_EQ(mounts.find("/nbd-"), std::string::npos) << mounts;
        EXPECT_EQ(guest_mounts_of([](const std::string& back) {
                      return back.find("/nbd-") != std::string::npos ||
                             back.rfind("/dev/nbd", 0) == 0;
                  }),
                  "");
        EXPECT_EQ(sh({"losetup", "--list", "--noheadings", "-O", "BACK-FILE"}).find("/nbd-"),
                  std::string::npos);
        std::error_code ec;
        // (Other tests running at the same time keep their own state files here.)
        for (const auto& e : std::filesystem::directory_iterator("/run/vmlift/guest-disk", ec)) {
            EXPECT_NE(e.path().filename().string().rfind("nbd-", 0), 0u)
                << "left behind: " << e.path();
            if (e.path().extension() == ".json") {
                auto j = nlohmann::json::parse(read_all(e.path().string()), nullptr, false);
                EXPECT_TRUE(!j.is_object() || j.value("fuse_mount", std::string()).empty())
                    << "a state file still names an NBD mount: " << j.dump();
            }
        }
    };

    // On this machine, a dry run.
    ProcessSpec local;
    local.argv = {VMLIFT_MIGRATE_VM, "--json",       "edit-guest-disk",
                  "--target-mode",   "nbd",          "--nbd-host",
                  server_ip,         "--target-mac", "bc:24:11:aa:bb:01",
                  "--use-dhcp",      "--dry-run"};
    local.env = default_tool_env();
    local.timeout = std::chrono::seconds(120);
    auto dry = run_captured(m_runner, local);
    ASSERT_TRUE(dry.ok());
    ASSERT_EQ(dry->exit.code, 0) << dry->err;
    EXPECT_NE(nlohmann::json::parse(dry->out)["diff"].get<std::string>().find("50-vmlift.yaml"),
              std::string::npos);
    no_fuse_left();

    // On the tool host, through its agent.
    ProcessSpec remote;
    remote.argv = {VMLIFT_MIGRATE_VM,
                   "--json",
                   "--known-hosts",
                   (*lab)->known_hosts(),
                   "--identity-file",
                   (*lab)->client_key(),
                   "edit-guest-disk",
                   "--tool-host",
                   (*lab)->ip("tool"),
                   "--target-mode",
                   "nbd",
                   "--nbd-host",
                   server_ip,
                   "--target-mac",
                   "bc:24:11:aa:bb:01",
                   "--static-cidr",
                   "198.18.9.19/24",
                   "--gateway",
                   "198.18.9.1"};
    remote.env = default_tool_env();
    remote.env.push_back("HOME=" + m_dir.path());
    remote.timeout = std::chrono::seconds(120);
    auto r = run_captured(m_runner, remote);
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->exit.code, 0) << r->err;
    EXPECT_EQ(nlohmann::json::parse(r->out)["method"], "netplan");
    no_fuse_left();

    // A port nobody serves: a clear error naming the export, nothing left.
    local.argv = {VMLIFT_MIGRATE_VM, "edit-guest-disk",  "--target-mode", "nbd",
                  "--nbd-host",      server_ip,          "--nbd-port",    "10899",
                  "--target-mac",    "bc:24:11:aa:bb:01"};
    auto refused = run_captured(m_runner, local);
    ASSERT_TRUE(refused.ok());
    EXPECT_EQ(refused->exit.code, exit_code_for(Code::unreachable)) << refused->err;
    EXPECT_NE(refused->err.find("cannot reach the NBD export nbd://" + server_ip + ":10899"),
              std::string::npos)
        << refused->err;
    no_fuse_left();

    (*nbd)->terminate(std::chrono::milliseconds(2000));
    std::string netplan = read_back_ext(off, size, "etc/netplan/50-vmlift.yaml");
    detach_all();
    EXPECT_NE(netplan.find("198.18.9.19/24"), std::string::npos) << netplan;
    EXPECT_NE(netplan.find("macaddress: \"bc:24:11:aa:bb:01\""), std::string::npos) << netplan;
}

TEST_F(GuestDisk, NoRootIsAClearError) {
    sh({"truncate", "-s", "64M", m_img});
    sh({"mkfs.ext4", "-q", "-F", m_img});  // a filesystem, but not a root
    auto r = edit({"--target-mac", "bc:24:11:aa:bb:01"});
    EXPECT_EQ(r.exit.code, 3);
    EXPECT_NE(r.err.find("no Linux root filesystem"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("not a root"), std::string::npos) << r.err;
    expect_clean();
}

TEST(LvmMetadata, ParsesTheTextFormat) {
    auto lvs = parse_lvm_metadata(R"(  metadata text at 5632 crc 0xc0fb292b # vgname vg seqno 2
  ---
vg {
id = "x"
extent_size = 8192
physical_volumes {
pv0 {
pe_start = 2048
pe_count = 59
}
}
logical_volumes {
root {
segment_count = 1
segment1 {
start_extent = 0
extent_count = 25
type = "striped"
stripe_count = 1
stripes = [
"pv0", 3
]
}
}
}
}
# Generated by LVM2
contents = "Text Format Volume Group"
description = "Write from lvcreate --config devices{filter=[\"a|^/dev/loop0$|\",\"r|.*|\"]} -n root vg."
)");
    ASSERT_TRUE(lvs.ok()) << lvs.status().message();
    ASSERT_EQ(lvs->size(), 1u);
    EXPECT_EQ((*lvs)[0].vg, "vg");
    EXPECT_EQ((*lvs)[0].lv, "root");
    EXPECT_EQ((*lvs)[0].offset, 2048u * 512 + 3u * 8192 * 512);
    EXPECT_EQ((*lvs)[0].length, 25u * 8192 * 512);
    EXPECT_FALSE(parse_lvm_metadata("vg { extent_size = ").ok());
}

}  // namespace
}  // namespace vmlift

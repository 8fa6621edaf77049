// The hook binaries, invoked exactly as their callers do: Proxmox runs
// `<hookscript> <vmid> <phase>`; libvirt runs `qemu <domain> <operation>
// <sub-operation> <extra>` with the domain XML on stdin.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "engine/hook_guard.h"
#include "engine/process.h"
#include "tests/support/temp_dir.h"

namespace vmlift {
namespace {

using testing_support::read_all;
using testing_support::TempDir;
using testing_support::write_all;

class Hooks : public ::testing::Test {
  protected:
    Result<Captured> call(const char* binary, std::vector<std::string> args,
                          const std::string& input = {}) {
        ProcessSpec spec;
        spec.argv = {binary};
        spec.argv.insert(spec.argv.end(), args.begin(), args.end());
        spec.env = default_tool_env();
        spec.env.push_back("VMLIFT_STATE_DIR=" + m_dir.file("state"));
        spec.env.push_back("VMLIFT_PVE_CONFIG_DIR=" + m_dir.file("qemu-server"));
        spec.env.push_back(std::string("VMLIFT_MIGRATE_VM=") + VMLIFT_MIGRATE_VM);
        spec.timeout = std::chrono::seconds(30);
        return run_captured(m_runner, spec, input);
    }
    Result<Captured> pve(const std::string& vmid, const std::string& phase) {
        return call(VMLIFT_PVE_HOOKSCRIPT, {vmid, phase});
    }
    Result<Captured> libvirt(const std::string& op, const std::string& xml) {
        return call(VMLIFT_LIBVIRT_HOOK, {"web01", op, "begin", "-"}, xml);
    }
    void config(const std::string& vmid, const std::string& text) {
        std::filesystem::create_directories(m_dir.file("qemu-server"));
        write_all(m_dir.file("qemu-server/" + vmid + ".conf"), text);
    }
    void claim(const std::string& path, const std::string& state, const std::string& ip = "",
               int port = 22) {
        DiskClaim c{path, "20261123-abcdef", state, ip, port, "tcp"};
        std::string file = claim_file(m_dir.file("state"), path);
        std::filesystem::create_directories(file.substr(0, file.rfind('/')));
        write_all(file, claim_json(c).dump());
    }
    std::vector<nlohmann::json> events() {
        std::vector<nlohmann::json> out;
        std::istringstream in(read_all(m_dir.file("state/events.jsonl")));
        std::string line;
        while (std::getline(in, line)) {
            out.push_back(nlohmann::json::parse(line));
        }
        return out;
    }

    TempDir m_dir;
    PosixProcessRunner m_runner;
};

// A domain in libvirt's documented format (formatdomain.html): a zvol as a
// block disk, an image file, and an empty cdrom.
const char* k_domain_xml = R"(<domain type='kvm' id='3'>
  <name>web01</name>
  <uuid>6f1f2d3c-4b5a-4e6f-8a7b-9c0d1e2f3a4b</uuid>
  <memory unit='KiB'>2097152</memory>
  <os><type arch='x86_64' machine='pc-q35-7.2'>hvm</type></os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='block' device='disk'>
      <driver name='qemu' type='raw' cache='none' io='threads' discard='unmap'/>
      <source dev='/dev/zvol/tank/vms/web01-scsi0'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='/mnt/tank/images/data.img'/>
      <target dev='vdb' bus='virtio'/>
    </disk>
    <disk type='file' device='cdrom'>
      <target dev='sda' bus='sata'/>
      <readonly/>
    </disk>
    <interface type='bridge'>
      <mac address='bc:24:11:00:01:01'/>
      <source bridge='br0'/>
      <model type='virtio'/>
    </interface>
  </devices>
</domain>
)";

TEST_F(Hooks, PveHookscriptRefusesToStartAMigratedVm) {
    config("101",
           "boot: order=scsi0\nmemory: 2048\nname: web01\nonboot: 0\n"
           "tags: prod;vmlift-migrated\n");
    auto r = pve("101", "pre-start");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->exit.code, 1);
    EXPECT_NE(r->err.find("VM 101 was migrated by vmlift and must not start here"),
              std::string::npos)
        << r->err;
    EXPECT_NE(r->err.find(m_dir.file("state/allow-start/101")), std::string::npos) << r->err;
    // The other phases only record.
    for (const char* phase : {"post-start", "pre-stop", "post-stop"}) {
        auto other = pve("101", phase);
        ASSERT_TRUE(other.ok());
        EXPECT_EQ(other->exit.code, 0) << phase;
    }
    auto ev = events();
    ASSERT_EQ(ev.size(), 4u);
    EXPECT_EQ(ev[0]["phase"], "pre-start");
    EXPECT_EQ(ev[0]["decision"], "refused");
    EXPECT_EQ(ev[3]["phase"], "post-stop");
    // The override file lets it start.
    std::filesystem::create_directories(m_dir.file("state/allow-start"));
    write_all(m_dir.file("state/allow-start/101"), "");
    auto allowed = pve("101", "pre-start");
    ASSERT_TRUE(allowed.ok());
    EXPECT_EQ(allowed->exit.code, 0) << allowed->err;
    EXPECT_EQ(events().back()["decision"], "allowed (override file)");
}

TEST_F(Hooks, PveHookscriptLetsOtherVmsStart) {
    config("102", "memory: 512\nname: other\ntags: prod\n");
    // The tag only in a snapshot is not the running config.
    config("103", "memory: 512\nname: snap\n\n[before]\ntags: vmlift-migrated\n");
    for (const char* vmid : {"102", "103", "104" /* no config at all */}) {
        auto r = pve(vmid, "pre-start");
        ASSERT_TRUE(r.ok());
        EXPECT_EQ(r->exit.code, 0) << vmid << ": " << r->err;
    }
    auto usage = call(VMLIFT_PVE_HOOKSCRIPT, {"101"});
    ASSERT_TRUE(usage.ok());
    EXPECT_EQ(usage->exit.code, 2);
}

TEST_F(Hooks, LibvirtHookRefusesAHalfCopiedDisk) {
    claim("/dev/zvol/tank/vms/web01-scsi0", "copying");
    auto r = libvirt("prepare", k_domain_xml);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->exit.code, 1);
    EXPECT_NE(r->err.find("its disk /dev/zvol/tank/vms/web01-scsi0 belongs to vmlift run "
                          "20261123-abcdef, which has not verified it (copying)"),
              std::string::npos)
        << r->err;
    // Stopping and releasing are never refused.
    for (const char* op : {"stopped", "release"}) {
        auto other = libvirt(op, k_domain_xml);
        ASSERT_TRUE(other.ok());
        EXPECT_EQ(other->exit.code, 0) << op;
    }
    // Disks vmlift never claimed start as usual; garbage XML does not.
    std::filesystem::remove(claim_file(m_dir.file("state"), "/dev/zvol/tank/vms/web01-scsi0"));
    auto free = libvirt("prepare", k_domain_xml);
    ASSERT_TRUE(free.ok());
    EXPECT_EQ(free->exit.code, 0) << free->err;
    auto bad = libvirt("prepare", "<domain><name>x</name><devices>");
    ASSERT_TRUE(bad.ok());
    EXPECT_EQ(bad->exit.code, 1);
    EXPECT_NE(bad->err.find("domain XML"), std::string::npos) << bad->err;
    EXPECT_EQ(events().size(), 4u);
}

TEST_F(Hooks, LibvirtHookStartsAVerifyInTheBackgroundAndReturnsAtOnce) {
    // Something answering on the "cutover IP".
    int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ASSERT_EQ(::listen(listener, 4), 0);
    socklen_t len = sizeof addr;
    ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
    claim("/dev/zvol/tank/vms/web01-scsi0", "verified", "127.0.0.1", ntohs(addr.sin_port));

    auto prepare = libvirt("prepare", k_domain_xml);
    ASSERT_TRUE(prepare.ok());
    EXPECT_EQ(prepare->exit.code, 0) << prepare->err;
    auto start = std::chrono::steady_clock::now();
    auto started = libvirt("started", k_domain_xml);
    auto took = std::chrono::steady_clock::now() - start;
    ASSERT_TRUE(started.ok());
    EXPECT_EQ(started->exit.code, 0) << started->err;
    EXPECT_LT(took, std::chrono::seconds(2));
    nlohmann::json verify;
    for (int i = 0; i < 100; ++i) {
        verify =
            nlohmann::json::parse(read_all(m_dir.file("state/verify-web01.json")), nullptr, false);
        if (verify.is_object()) {
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_TRUE(verify.is_object()) << read_all(m_dir.file("state/verify-web01.json"));
    EXPECT_EQ(verify["ip"], "127.0.0.1");
    EXPECT_TRUE(verify["satisfied"].get<bool>());
    EXPECT_EQ(events().back()["verify"], "127.0.0.1");
    ::close(listener);
}

}  // namespace
}  // namespace vmlift

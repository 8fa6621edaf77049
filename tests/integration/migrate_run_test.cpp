// `migrate-vm run | plan | resume | rollback | status` end to end: the
// Proxmox simulator on the lab host "pve" (its VM's disks are files there),
// the TrueNAS simulator on the lab host "truenas" (zvols are sparse files
// there), real sshd on both, the controller in the root namespace.
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "connectors/http/curl_http.h"
#include "connectors/proxmox/pve_client.h"
#include "connectors/truenas/target.h"
#include "engine/process.h"
#include "tests/integration/lab.h"
#include "tests/support/temp_dir.h"

namespace vmlift {
namespace {

using testing_support::Lab;
using testing_support::read_all;
using testing_support::TempDir;
using testing_support::write_all;

constexpr uint64_t k_mib = 1 << 20;
constexpr const char* k_secret = "0b8f3c57-2f0e-4c35-9d0e-7a6c5b4a3f21";
constexpr const char* k_api_key = "1-vmliftlabkeyvmliftlabkeyvmliftlabkey";

// Random data in every other 4 MiB chunk, holes elsewhere: a disk with both
// data and sparse regions.
void make_disk(const std::string& path, uint64_t size, unsigned seed, bool every_chunk = false) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    std::mt19937_64 rng(seed);
    std::vector<uint64_t> block((4 * k_mib) / 8);
    for (uint64_t off = 0; off < size; off += 4 * k_mib) {
        if (every_chunk || (off / (4 * k_mib)) % 2 == 0) {
            for (auto& w : block) {
                w = rng();
            }
            out.seekp(static_cast<std::streamoff>(off));
            out.write(reinterpret_cast<const char*>(block.data()),
                      static_cast<std::streamsize>(std::min<uint64_t>(size - off, 4 * k_mib)));
        }
    }
    out.close();
    std::filesystem::resize_file(path, size);
}

bool same_prefix(const std::string& a, const std::string& b, uint64_t length) {
    std::ifstream fa(a, std::ios::binary), fb(b, std::ios::binary);
    std::vector<char> ba(k_mib), bb(k_mib);
    for (uint64_t done = 0; done < length; done += k_mib) {
        fa.read(ba.data(), k_mib);
        fb.read(bb.data(), k_mib);
        if (fa.gcount() != fb.gcount() || ba != bb) {
            return false;
        }
    }
    return true;
}

class MigrateRun : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        if (!Lab::skip_reason().empty()) {
            return;
        }
        auto lab = Lab::create({"pve", "truenas"});
        if (lab.ok()) {
            s_lab = std::move(*lab).release();
        }
    }
    static void TearDownTestSuite() {
        delete s_lab;
        s_lab = nullptr;
    }

    void SetUp() override {
        std::string skip = Lab::skip_reason();
        if (!skip.empty()) {
            GTEST_SKIP() << skip;
        }
        PosixProcessRunner r;
        ProcessSpec check;
        check.argv = {"/usr/bin/python3", "-c", "import websockets, jsonschema"};
        check.env = default_tool_env();
        auto c = run_captured(r, check);
        if (!c.ok() || c->exit.code != 0) {
            GTEST_SKIP() << "needs /usr/bin/python3 with python3-websockets and "
                            "python3-jsonschema for the simulators";
        }
        ASSERT_NE(s_lab, nullptr) << "the lab could not be built";
        m_disk = s_lab->disks("pve") + "/" + m_home.path().substr(m_home.path().rfind('/') + 1);
        std::filesystem::create_directories(m_disk);
        m_nvram = s_lab->disks("truenas") + "/nvram-" + std::to_string(::getpid()) + "-" +
                  std::to_string(s_counter++);
    }

    void TearDown() override {
        for (auto* p : {&m_pve, &m_truenas}) {
            if (*p) {
                (*p)->terminate(std::chrono::milliseconds(2000));
            }
        }
        std::error_code ec;
        std::filesystem::remove_all(m_disk, ec);
        std::filesystem::remove_all(m_nvram, ec);
    }

    std::string pve_ip() const { return s_lab->ip("pve"); }
    std::string truenas_ip() const { return s_lab->ip("truenas"); }

    Result<std::unique_ptr<Process>> on_host(const std::string& host,
                                             const std::vector<std::string>& argv,
                                             const std::string& log,
                                             const std::vector<std::string>& env = {}) {
        ProcessSpec spec;
        spec.argv = {"/bin/bash",  VMLIFT_SOURCE_DIR "/contrib/lab/lab.sh",
                     "exec",       "--dir",
                     s_lab->dir(), host,
                     "--"};
        spec.argv.insert(spec.argv.end(), argv.begin(), argv.end());
        spec.env = default_tool_env();
        spec.env.insert(spec.env.end(), env.begin(), env.end());
        spec.stderr_redirect = Redirect::truncate_to(log);
        return m_runner.start(spec);
    }

    static bool wait_for_file(const std::string& path) {
        for (int i = 0; i < 300; ++i) {
            if (!read_all(path).empty()) {
                return true;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        return false;
    }

    // The source: VM 101 "web01", UEFI, a data disk and an EFI vars disk, two NICs.
    // A running guest for the agent: a root folder with busybox's sh, tar
    // and base64, and an Ubuntu-style netplan that names ens18 and ens19
    // without MACs (Proxmox's net0 and net1).
    static constexpr const char* k_guest_netplan =
        "network:\n  version: 2\n  ethernets:\n    ens18:\n      addresses:\n"
        "      - 198.18.250.77/24\n      routes:\n      - to: default\n"
        "        via: 198.18.250.1\n    ens19:\n      dhcp4: true\n";
    std::string guest_root() const { return m_home.file("guest"); }
    void make_live_guest() {
        namespace fs = std::filesystem;
        const std::string g = guest_root();
        for (const char* d : {"bin", "tmp", "etc/netplan", "etc/cloud/cloud.cfg.d"}) {
            fs::create_directories(g + "/" + d);
        }
        fs::copy_file("/bin/busybox", g + "/bin/busybox");
        for (const char* tool : {"sh", "tar", "base64", "mktemp", "rm", "sync", "cat"}) {
            fs::create_symlink("busybox", g + "/bin/" + tool);
        }
        write_all(g + "/etc/cloud/cloud.cfg", "datasource_list: [NoCloud]\n");
        write_all(g + "/etc/netplan/00-installer-config.yaml", k_guest_netplan);
    }

    void start_pve(uint64_t disk_size = 64 * k_mib, bool every_chunk = false,
                   bool live_guest = false) {
        if (live_guest) {
            make_live_guest();
        }
        make_disk(disk_path(), disk_size, 7, every_chunk);
        make_disk(efi_path(), 540672, 8, true);
        write_all(m_home.file("101.conf"),
                  "agent: 1\nbios: ovmf\nboot: order=scsi0\ncores: 2\nsockets: 1\n"
                  "hookscript: local:snippets/vmlift-pve-hookscript\n"
                  "efidisk0: local:101/vm-101-disk-1.raw,efitype=4m,pre-enrolled-keys=1,"
                  "size=528K\nmachine: q35\nmemory: 2048\nname: web01\n"
                  "net0: virtio=BC:24:11:00:01:01,bridge=vmbr0\n"
                  "net1: e1000=BC:24:11:00:01:02,bridge=vmbr1\nostype: l26\n"
                  "scsi0: local:101/vm-101-disk-0.raw,discard=on,size=" +
                      std::to_string(disk_size >> 20) +
                      "M\nscsihw: virtio-scsi-single\n"
                      "smbios1: uuid=6f1f2d3c-4b5a-4e6f-8a7b-9c0d1e2f3a4b\n");
        nlohmann::json cluster = {
            {"nodes", {"pve1"}},
            {"users", {{"root@pam", {{"password", "lab"}, {"privs", {"*"}}}}}},
            {"tokens", {{"root@pam!vmlift", {{"secret", k_secret}, {"privs", {"*"}}}}}},
            {"storage",
             {{{"storage", "local"},
               {"type", "dir"},
               {"path", m_home.file("local")},
               {"content", "images,snippets"}}}},
            {"vms",
             {{{"vmid", 101},
               {"node", "pve1"},
               {"config", "101.conf"},
               {"status", "running"},
               {"agent",
                {{"interfaces",
                  {{{"name", "ens18"},
                    {"hardware-address", "bc:24:11:00:01:01"},
                    {"ip-addresses",
                     {{{"ip-address", "198.18.250.77"},
                       {"ip-address-type", "ipv4"},
                       {"prefix", 24}}}}}}},
                 {"osinfo", {{"pretty-name", "Debian GNU/Linux 12 (bookworm)"}}},
                 {"root", live_guest ? "guest" : ""}}},
               {"volumes",
                {{"local:101/vm-101-disk-0.raw", disk_path()},
                 {"local:101/vm-101-disk-1.raw", efi_path()}}},
               {"shutdown_seconds", 0.5}}}}};
        write_all(m_home.file("cluster.json"), cluster.dump(2));
        std::filesystem::create_directories(m_home.file("local/snippets"));
        std::filesystem::copy_file(VMLIFT_PVE_HOOKSCRIPT,
                                   m_home.file("local/snippets/vmlift-pve-hookscript"));
        auto p =
            on_host("pve",
                    {"/usr/bin/python3", VMLIFT_SOURCE_DIR "/contrib/sim/pve/pve_sim.py",
                     "--cluster", m_home.file("cluster.json"), "--schema",
                     VMLIFT_SOURCE_DIR "/tests/data/proxmox/api-schema/pve-api-schema-subset.json",
                     "--state", m_home.file("pve-state"), "--listen", pve_ip() + ":8006", "--names",
                     pve_ip(), "--auth-delay", "0.2"},
                    m_home.file("pve-sim.log"),
                    {"VMLIFT_PVE_CONFIG_DIR=" + m_home.file("pve-state"),
                     "VMLIFT_STATE_DIR=" + m_home.file("pve-vmlift")});
        ASSERT_TRUE(p.ok());
        m_pve = std::move(*p);
        ASSERT_TRUE(wait_for_file(m_home.file("pve-state/port")))
            << read_all(m_home.file("pve-sim.log"));
        m_pve_fp = read_all(m_home.file("pve-state/fingerprint"));
        m_pve_fp = m_pve_fp.substr(0, m_pve_fp.find('\n'));
    }

    void start_truenas() {
        write_all(m_home.file("api-key"), std::string(k_api_key) + "\n");
        auto p = on_host(
            "truenas",
            {"/usr/bin/python3", VMLIFT_SOURCE_DIR "/contrib/sim/truenas/truenas_sim.py",
             "--release", "25.10", "--schemas", VMLIFT_SOURCE_DIR "/tests/data/truenas/api-schemas",
             "--state", m_home.file("tn-state"), "--api-key-file", m_home.file("api-key"),
             "--listen", truenas_ip() + ":443", "--pool", "tank:2G", "--bridge", "br0", "--bridge",
             "br1"},
            m_home.file("tn-sim.log"));
        ASSERT_TRUE(p.ok());
        m_truenas = std::move(*p);
        ASSERT_TRUE(wait_for_file(m_home.file("tn-state/port")))
            << read_all(m_home.file("tn-sim.log"));
        m_tn_fp = read_all(m_home.file("tn-state/fingerprint"));
        m_tn_fp = m_tn_fp.substr(0, m_tn_fp.find('\n'));
    }

    std::string disk_path() const { return m_disk + "/vm-101-disk-0.raw"; }
    std::string efi_path() const { return m_disk + "/vm-101-disk-1.raw"; }
    std::string zvol_root() const { return m_home.file("tn-state/zvols"); }

    std::vector<std::string> run_args(const std::string& command) {
        return {"--known-hosts",
                s_lab->known_hosts(),
                "--identity-file",
                s_lab->client_key(),
                "--run-dir",
                m_runs.path(),
                command,
                "--source",
                "pve://" + pve_ip() + "/101",
                "--target",
                "truenas://" + truenas_ip() + "/tank/vms",
                "--pve-token-id",
                "root@pam!vmlift",
                "--pve-fingerprint",
                m_pve_fp,
                "--truenas-api-key-file",
                m_home.file("api-key"),
                "--truenas-fingerprint",
                m_tn_fp,
                "--bridge-map",
                "vmbr0=br0,vmbr1=br1",
                "--target-zvol-root",
                zvol_root(),
                "--target-nvram-dir",
                m_nvram,
                "--target-state-dir",
                m_home.file("tn-vmlift"),
                "--verify-timeout",
                "20",
                "--verify-poll-interval",
                "1"};
    }

    ProcessSpec spec_for(std::vector<std::string> args) {
        ProcessSpec spec;
        spec.argv = {VMLIFT_MIGRATE_VM};
        spec.argv.insert(spec.argv.end(), args.begin(), args.end());
        spec.env = default_tool_env();
        spec.env.push_back("HOME=" + m_home.path());
        spec.env.push_back(std::string("VMLIFT_PVE_TOKEN_SECRET=") + k_secret);
        spec.timeout = std::chrono::seconds(300);
        return spec;
    }

    Result<Captured> migrate(std::vector<std::string> args) {
        return run_captured(m_runner, spec_for(std::move(args)));
    }

    std::string only_run_dir() {
        std::string found;
        for (const auto& e : std::filesystem::directory_iterator(m_runs.path())) {
            found = e.path().string();
        }
        return found;
    }

    nlohmann::json json_file(const std::string& path) {
        auto j = nlohmann::json::parse(read_all(path), nullptr, false);
        return j.is_discarded() ? nlohmann::json::object() : j;
    }

    std::string source_config() { return read_all(m_home.file("pve-state/101.conf")); }

    // Starts the source VM through the Proxmox API, as an admin would.
    Status start_source() {
        http::CurlOptions o;
        o.base_url = "https://" + pve_ip() + ":8006/api2/json";
        o.tls = {http::TlsMode::pinned, "", m_pve_fp};
        http::CurlHttpClient curl(o);
        RealClock clock;
        RealSleeper sleeper;
        proxmox::PveClient api(curl, clock, sleeper, {"root@pam!vmlift", k_secret, "", ""});
        auto upid = api.post("/nodes/pve1/qemu/101/status/start");
        if (!upid.ok()) {
            return upid.status();
        }
        return api.wait_task(upid->get<std::string>(), std::chrono::seconds(60));
    }

    Result<nlohmann::json> truenas_call(const std::string& method) {
        truenas::TrueNasConnection c;
        c.host = truenas_ip();
        c.tls = {http::TlsMode::pinned, "", m_tn_fp};
        c.api_key = k_api_key;
        auto t = truenas::TrueNasTarget::connect(c);
        if (!t.ok()) {
            return t.status();
        }
        return (*t)->call(method);
    }

    static Lab* s_lab;
    static int s_counter;
    TempDir m_home;
    TempDir m_runs;
    std::string m_disk;
    std::string m_nvram;
    std::string m_pve_fp;
    std::string m_tn_fp;
    PosixProcessRunner m_runner;
    std::unique_ptr<Process> m_pve;
    std::unique_ptr<Process> m_truenas;
};

Lab* MigrateRun::s_lab = nullptr;
int MigrateRun::s_counter = 0;

TEST_F(MigrateRun, MovesTwoDisksAndTwoNicsAndWritesTheSummary) {
    start_pve();
    start_truenas();
    auto args = run_args("run");
    args.insert(args.end(), {"--yes", "--target-ip", truenas_ip(), "--skip-ip-conflict-check"});
    auto r = migrate(args);
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->exit.code, 0) << r->err;
    const std::string run = only_run_dir();
    auto summary = json_file(run + "/summary.json");
    EXPECT_EQ(summary["state"], "succeeded");
    EXPECT_EQ(summary["source"]["name"], "web01");
    EXPECT_EQ(summary["target"]["vm_name"], "web01");
    EXPECT_EQ(summary["firmware"]["bootloader"], "UEFI");
    EXPECT_EQ(summary["vcpus"], 2);
    EXPECT_EQ(summary["memory_mib"], 2048);
    ASSERT_EQ(summary["disks"].size(), 2u);
    for (const auto& d : summary["disks"]) {
        EXPECT_TRUE(d["verified"].get<bool>()) << d.dump();
        EXPECT_EQ(d["digest"].get<std::string>().size(), 32u) << d.dump();
    }
    EXPECT_EQ(summary["disks"][0]["key"], "scsi0");
    EXPECT_EQ(summary["disks"][0]["zero_bytes_skipped"], 32 * k_mib);
    EXPECT_EQ(summary["disks"][1]["role"], "efivars");
    ASSERT_EQ(summary["nics"].size(), 2u);
    EXPECT_EQ(summary["nics"][0]["mac"], "bc:24:11:00:01:01");
    EXPECT_EQ(summary["nics"][0]["bridge"], "br0");
    EXPECT_EQ(summary["nics"][1]["bridge"], "br1");
    EXPECT_TRUE(summary["nics"][1]["mac_preserved"].get<bool>());
    EXPECT_EQ(summary["reachability"][0]["ip"], truenas_ip());
    EXPECT_TRUE(summary["reachability"][0]["satisfied"].get<bool>());
    EXPECT_TRUE(summary["downtime_seconds"].is_number());
    // Random bytes are no Linux root: auto net-prep says so and goes on. The
    // simulated guest runs no commands, so the in-guest rewrite was skipped first.
    EXPECT_EQ(summary["network_prep"]["method"], "none");
    EXPECT_NE(
        summary["network_prep"]["agent_skipped"].dump().find("Failed to execute child process"),
        std::string::npos)
        << summary["network_prep"].dump();
    std::string md = read_all(run + "/summary.md");
    EXPECT_NE(md.find("migrate-vm rollback " + run), std::string::npos) << md;
    EXPECT_NE(md.find("| scsi0 | data | 64.0 MiB |"), std::string::npos) << md;

    // The data, bit for bit, on the target's zvol and NVRAM files.
    EXPECT_TRUE(same_prefix(disk_path(), zvol_root() + "/tank/vms/web01-scsi0", 64 * k_mib));
    int vm_id = summary["target"]["vm_id"];
    EXPECT_TRUE(
        same_prefix(efi_path(), m_nvram + "/" + std::to_string(vm_id) + "_web01_VARS.fd", 540672));

    // The target VM: UEFI, its disk, both MACs, running.
    auto vms = truenas_call("vm.query");
    ASSERT_TRUE(vms.ok()) << vms.status().to_string();
    ASSERT_EQ(vms->size(), 1u);
    EXPECT_EQ((*vms)[0]["bootloader"], "UEFI");
    EXPECT_EQ((*vms)[0]["status"]["state"], "RUNNING");
    auto devices = truenas_call("vm.device.query");
    ASSERT_TRUE(devices.ok());
    std::set<std::string> macs;
    int disks = 0;
    for (const auto& d : *devices) {
        const auto& a = d["attributes"];
        if (a.value("dtype", "") == "NIC") {
            macs.insert(a.value("mac", ""));
        }
        if (a.value("dtype", "") == "DISK") {
            ++disks;
            EXPECT_EQ(a["path"], "/dev/zvol/tank/vms/web01-scsi0");
        }
    }
    EXPECT_EQ(disks, 1);
    EXPECT_EQ(macs, (std::set<std::string>{"bc:24:11:00:01:01", "bc:24:11:00:01:02"}));

    // The source: marked, not started on boot, stopped.
    std::string conf = source_config();
    EXPECT_NE(conf.find("vmlift-migrated"), std::string::npos) << conf;
    EXPECT_NE(conf.find("onboot: 0"), std::string::npos) << conf;

    // The target's libvirt hook finds the disk verified by this run.
    auto claim =
        json_file(m_home.file("tn-vmlift/disks/%2Fdev%2Fzvol%2Ftank%2Fvms%2Fweb01-scsi0.json"));
    EXPECT_EQ(claim["state"], "verified") << claim.dump();
    EXPECT_EQ(claim["run_id"], summary["run_id"]);
    EXPECT_EQ(claim["cutover_ip"], truenas_ip());

    // Proxmox runs the hookscript on a start: it refuses, and says why.
    Status restart = start_source();
    EXPECT_FALSE(restart.ok());
    EXPECT_NE(restart.message().find("was migrated by vmlift and must not start here"),
              std::string::npos)
        << restart.to_string();
    std::string events = read_all(m_home.file("pve-vmlift/events.jsonl"));
    EXPECT_NE(events.find("\"phase\":\"post-stop\""), std::string::npos) << events;
    EXPECT_NE(events.find("\"decision\":\"refused\""), std::string::npos) << events;

    auto status = migrate({"status", run});
    ASSERT_TRUE(status.ok());
    EXPECT_EQ(status->exit.code, 0);
    EXPECT_NE(status->out.find("succeeded"), std::string::npos) << status->out;
    EXPECT_NE(status->out.find("done   "), std::string::npos) << status->out;
}

// --net-prep agent: the running source rewrites its own netplan through the
// guest agent before shutdown (names from Proxmox's slot convention, as the
// guest's config has no MACs); rollback --start-source puts it back.
TEST_F(MigrateRun, AgentNetPrepRewritesTheRunningGuestAndRollbackRestoresIt) {
    if (::access("/bin/busybox", X_OK) != 0) {
        GTEST_SKIP() << "needs /bin/busybox (busybox-static) for the simulated guest";
    }
    start_pve(64 * k_mib, false, true);
    start_truenas();
    auto plan = run_args("plan");
    plan.insert(plan.end(), {"--net-prep", "agent"});
    auto p = migrate(plan);
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(p->exit.code, 0) << p->out << p->err;
    EXPECT_NE(p->out.find("[ok  ] guest agent"), std::string::npos) << p->out;
    std::filesystem::remove_all(only_run_dir());  // the plan's; only the run's stays

    auto args = run_args("run");
    args.insert(args.end(), {"--yes", "--net-prep", "agent", "--target-ip", truenas_ip(),
                             "--skip-ip-conflict-check"});
    auto r = migrate(args);
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->exit.code, 0) << r->err;
    const std::string run = only_run_dir();
    auto summary = json_file(run + "/summary.json");
    EXPECT_EQ(summary["state"], "succeeded");
    EXPECT_EQ(summary["network_prep"]["method"], "agent") << summary["network_prep"].dump();
    EXPECT_EQ(summary["network_prep"]["stack"], "netplan");
    EXPECT_NE(summary["network_prep"]["files_changed"].dump().find("/etc/netplan/50-vmlift.yaml"),
              std::string::npos)
        << summary["network_prep"].dump();
    auto journal = json_file(run + "/journal.json");
    EXPECT_NE(journal.dump().find("done in the guest through its agent"), std::string::npos);

    const std::string ours = read_all(guest_root() + "/etc/netplan/50-vmlift.yaml");
    EXPECT_NE(ours.find("macaddress: \"bc:24:11:00:01:01\""), std::string::npos) << ours;
    EXPECT_NE(ours.find("macaddress: \"bc:24:11:00:01:02\""), std::string::npos) << ours;
    EXPECT_NE(ours.find("set-name: ens19"), std::string::npos) << ours;
    EXPECT_NE(ours.find("198.18.250.77/24"), std::string::npos) << ours;
    EXPECT_FALSE(std::filesystem::exists(guest_root() + "/etc/netplan/00-installer-config.yaml"));
    EXPECT_EQ(read_all(guest_root() + "/etc/netplan/vmlift-backup/00-installer-config.yaml"),
              k_guest_netplan);
    EXPECT_TRUE(std::filesystem::exists(guest_root() +
                                        "/etc/cloud/cloud.cfg.d/99-disable-network-config.cfg"));
    EXPECT_NE(read_all(run + "/summary.md").find("ran: agent (netplan"), std::string::npos)
        << read_all(run + "/summary.md");

    auto rb = migrate({"rollback", run, "--start-source"});
    ASSERT_TRUE(rb.ok());
    ASSERT_EQ(rb->exit.code, 0) << rb->err;
    EXPECT_EQ(read_all(guest_root() + "/etc/netplan/00-installer-config.yaml"), k_guest_netplan);
    EXPECT_FALSE(std::filesystem::exists(guest_root() + "/etc/netplan/50-vmlift.yaml"));
    EXPECT_FALSE(std::filesystem::exists(guest_root() + "/etc/netplan/vmlift-backup"
                                                        "/00-installer-config.yaml"));
    EXPECT_FALSE(std::filesystem::exists(guest_root() +
                                         "/etc/cloud/cloud.cfg.d/99-disable-network-config.cfg"));
}

TEST_F(MigrateRun, PlanChecksEverythingAndChangesNothing) {
    start_pve();
    start_truenas();
    auto args = run_args("plan");
    auto map = std::find(args.begin(), args.end(), "vmbr0=br0,vmbr1=br1");
    ASSERT_NE(map, args.end());
    *map = "vmbr0=br0,vmbr1=nosuchbridge";
    auto r = migrate(args);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->exit.code, exit_code_for(Code::invalid_input)) << r->out << r->err;
    EXPECT_NE(r->out.find("[FAIL] bridge nosuchbridge"), std::string::npos) << r->out;
    EXPECT_NE(r->out.find("[ok  ] ssh source"), std::string::npos) << r->out;
    EXPECT_NE(r->out.find("[ok  ] target space"), std::string::npos) << r->out;
    EXPECT_NE(r->out.find("bootloader UEFI"), std::string::npos) << r->out;
    auto vms = truenas_call("vm.query");
    ASSERT_TRUE(vms.ok());
    EXPECT_TRUE(vms->empty());
    EXPECT_EQ(source_config().find("vmlift-migrated"), std::string::npos);
    EXPECT_FALSE(std::filesystem::exists(zvol_root() + "/tank/vms/web01-scsi0"));
}

// The cutover IP still answers after the source stopped (here: the TrueNAS
// host's own sshd), so the run refuses to start the target; rollback then
// removes everything the run created and starts the source again.
TEST_F(MigrateRun, FailedStartRollsBackToNothing) {
    start_pve();
    start_truenas();
    auto args = run_args("run");
    args.insert(args.end(), {"--yes", "--target-ip", truenas_ip()});
    auto r = migrate(args);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->exit.code, exit_code_for(Code::remote_failed)) << r->err;
    EXPECT_NE(r->err.find("still answers although the source is stopped"), std::string::npos)
        << r->err;
    const std::string run = only_run_dir();
    auto journal = json_file(run + "/journal.json");
    EXPECT_EQ(journal["state"], "failed");
    auto vms = truenas_call("vm.query");
    ASSERT_TRUE(vms.ok());
    ASSERT_EQ(vms->size(), 1u);
    EXPECT_EQ((*vms)[0]["status"]["state"], "STOPPED");  // never started
    EXPECT_NE(source_config().find("vmlift-migrated"), std::string::npos);

    auto rb = migrate({"rollback", run, "--start-source"});
    ASSERT_TRUE(rb.ok());
    EXPECT_EQ(rb->exit.code, 0) << rb->err;
    vms = truenas_call("vm.query");
    ASSERT_TRUE(vms.ok());
    EXPECT_TRUE(vms->empty()) << vms->dump();
    auto zvols = truenas_call("pool.dataset.query");
    ASSERT_TRUE(zvols.ok());
    for (const auto& z : *zvols) {
        EXPECT_NE(z.value("type", ""), "VOLUME") << z.dump();
    }
    std::string conf = source_config();
    EXPECT_EQ(conf.find("vmlift-migrated"), std::string::npos) << conf;
    EXPECT_EQ(json_file(run + "/journal.json")["state"], "rolled-back");
    EXPECT_NE(read_all(m_home.file("pve-vmlift/events.jsonl")).find("\"decision\":\"allowed\""),
              std::string::npos);
    // Rolling back twice changes nothing and still succeeds.
    auto again = migrate({"rollback", run});
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again->exit.code, 0) << again->err;
}

// The controller is killed in the middle of the disk copy; `resume` finishes
// the run, sending again at most 5% of what had already arrived.
TEST_F(MigrateRun, ResumeAfterTheControllerWasKilledDuringTheStream) {
    const uint64_t size = 256 * k_mib;
    start_pve(size, true);
    start_truenas();
    auto args = run_args("run");
    args.insert(args.end(),
                {"--yes", "--target-ip", truenas_ip(), "--skip-ip-conflict-check", "--net-prep",
                 "none", "--zstd-level", "0", "--transfer-mode", "relay"});
    auto proc = m_runner.start(spec_for(args));
    ASSERT_TRUE(proc.ok());
    const std::string zvol = zvol_root() + "/tank/vms/web01-scsi0";
    // Kill once a quarter of the disk has landed.
    bool killed = false;
    for (int i = 0; i < 1200 && !killed; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        if ((*proc)->try_wait()) {
            break;
        }
        std::error_code ec;
        struct stat st {};
        if (::stat(zvol.c_str(), &st) == 0 &&
            static_cast<uint64_t>(st.st_blocks) * 512 > size / 4) {
            ::kill((*proc)->pid(), SIGKILL);
            killed = true;
        }
    }
    ASSERT_TRUE(killed) << "the copy finished before it could be interrupted";
    (*proc)->wait();
    const std::string run = only_run_dir();
    EXPECT_EQ(json_file(run + "/journal.json")["stages"][7]["state"], "running");
    std::this_thread::sleep_for(std::chrono::milliseconds(500));  // remote agents notice EOF

    // What had already arrived intact, per 4 MiB chunk.
    uint64_t arrived = 0;
    {
        std::ifstream a(disk_path(), std::ios::binary), b(zvol, std::ios::binary);
        std::vector<char> ba(4 * k_mib), bb(4 * k_mib);
        for (uint64_t off = 0; off < size; off += 4 * k_mib) {
            a.read(ba.data(), static_cast<std::streamsize>(ba.size()));
            b.read(bb.data(), static_cast<std::streamsize>(bb.size()));
            if (b.gcount() == a.gcount() && ba == bb) {
                arrived += 4 * k_mib;
            }
        }
    }
    ASSERT_GT(arrived, 0u);
    auto resumed = migrate({"resume", run});
    ASSERT_TRUE(resumed.ok());
    ASSERT_EQ(resumed->exit.code, 0) << resumed->err;
    EXPECT_TRUE(same_prefix(disk_path(), zvol, size));
    auto journal = json_file(run + "/journal.json");
    EXPECT_EQ(journal["state"], "succeeded");
    const auto& s = journal["data"]["streams"]["scsi0"];
    EXPECT_TRUE(s["resumed"].get<bool>());
    uint64_t written = s["result"]["bytes_written"];
    uint64_t needed = size - arrived;
    EXPECT_LE(written, needed + size / 20) << "re-sent " << (written - needed) / k_mib << " MiB of "
                                           << arrived / k_mib << " MiB that had arrived";
}

}  // namespace
}  // namespace vmlift

namespace vmlift {
namespace {

TEST_F(MigrateRun, InstallHooksOnTrueNasSurvivesABootAndRegistersTheCronJob) {
    start_truenas();
    const std::string base = s_lab->disks("truenas") + "/hooks-" + std::to_string(::getpid());
    std::vector<std::string> args = {"--known-hosts",
                                     s_lab->known_hosts(),
                                     "--identity-file",
                                     s_lab->client_key(),
                                     "install-hooks",
                                     "truenas",
                                     "--target",
                                     "truenas://" + truenas_ip() + "/tank/vms",
                                     "--truenas-api-key-file",
                                     m_home.file("api-key"),
                                     "--truenas-fingerprint",
                                     m_tn_fp,
                                     "--bin-dir",
                                     base + "/bin",
                                     "--hook-path",
                                     base + "/libvirt/hooks/qemu.d/vmlift",
                                     "--cron-queue",
                                     "/mnt/tank/vms/.vmlift/queue"};
    for (int round = 0; round < 2; ++round) {  // a second install changes nothing
        auto r = migrate(args);
        ASSERT_TRUE(r.ok());
        ASSERT_EQ(r->exit.code, 0) << r->err;
    }
    const std::string hook = base + "/libvirt/hooks/qemu.d/vmlift";
    EXPECT_EQ(::access(hook.c_str(), X_OK), 0);
    auto scripts = truenas_call("initshutdownscript.query");
    ASSERT_TRUE(scripts.ok());
    ASSERT_EQ(scripts->size(), 1u) << scripts->dump();
    EXPECT_EQ((*scripts)[0]["when"], "POSTINIT");
    auto jobs = truenas_call("cronjob.query");
    ASSERT_TRUE(jobs.ok());
    ASSERT_EQ(jobs->size(), 1u) << jobs->dump();
    EXPECT_NE(
        (*jobs)[0]["command"].get<std::string>().find("cron --queue /mnt/tank/vms/.vmlift/queue"),
        std::string::npos);
    // A boot: /etc is fresh, the init script runs as TrueNAS runs it (sh -c).
    std::filesystem::remove(hook);
    auto boot = s_lab->exec("truenas", {"/bin/sh", "-c", (*scripts)[0]["command"]});
    ASSERT_TRUE(boot.ok());
    EXPECT_EQ(boot->exit.code, 0) << boot->err;
    EXPECT_EQ(::access(hook.c_str(), X_OK), 0);
    auto usage = s_lab->exec("truenas", {hook});
    ASSERT_TRUE(usage.ok());
    EXPECT_EQ(usage->exit.code, 2);  // the hook itself, asking for libvirt's arguments
    std::filesystem::remove_all(base);
}

TEST_F(MigrateRun, InstallHooksOnProxmoxUploadsTheHookscript) {
    const std::string snippets = m_disk + "/snippets";
    std::vector<std::string> args = {"--known-hosts",   s_lab->known_hosts(),
                                     "--identity-file", s_lab->client_key(),
                                     "install-hooks",   "pve",
                                     "--host",          pve_ip(),
                                     "--snippets-dir",  snippets};
    auto r = migrate(args);
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->exit.code, 0) << r->err;
    EXPECT_EQ(::access((snippets + "/vmlift-pve-hookscript").c_str(), X_OK), 0);
    EXPECT_NE(r->out.find("qm set VMID --hookscript local:snippets/vmlift-pve-hookscript"),
              std::string::npos)
        << r->out;
    // Attaching it needs qm, which only a real Proxmox node has: a clear error here.
    args.insert(args.end(), {"--vmid", "101"});
    auto attach = migrate(args);
    ASSERT_TRUE(attach.ok());
    EXPECT_NE(attach->exit.code, 0);
    EXPECT_NE(attach->err.find("qm"), std::string::npos) << attach->err;
}

TEST_F(MigrateRun, CronRunsTheQueueOneByOneAndReportsOnlyWhatHappened) {
    start_pve();
    start_truenas();
    const std::string queue = m_home.file("queue");
    std::filesystem::create_directories(queue);
    write_all(m_home.file("token"), std::string(k_secret) + "\n");
    write_all(queue + "/a-broken.conf", "no-such-option = 1\n");
    write_all(queue + "/b-web01.conf",
              "source = \"pve://" + pve_ip() + "/101\"\n" + "target = \"truenas://" + truenas_ip() +
                  "/tank/vms\"\n" +
                  "pve-token-id = \"root@pam!vmlift\"\n"
                  "pve-token-secret-file = \"" +
                  m_home.file("token") + "\"\npve-fingerprint = \"" + m_pve_fp +
                  "\"\ntruenas-api-key-file = \"" + m_home.file("api-key") +
                  "\"\ntruenas-fingerprint = \"" + m_tn_fp +
                  "\"\nbridge-map = \"vmbr0=br0,vmbr1=br1\"\ntarget-zvol-root = \"" + zvol_root() +
                  "\"\ntarget-nvram-dir = \"" + m_nvram + "\"\ntarget-state-dir = \"" +
                  m_home.file("tn-vmlift") + "\"\ntarget-ip = [\"" + truenas_ip() +
                  "\"]\nskip-ip-conflict-check = true\n");
    std::vector<std::string> cron = {"--known-hosts",
                                     s_lab->known_hosts(),
                                     "--identity-file",
                                     s_lab->client_key(),
                                     "--run-dir",
                                     m_runs.path(),
                                     "cron",
                                     "--queue",
                                     queue};
    auto r = migrate(cron);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->exit.code, 2) << r->out << r->err;  // the broken config's usage error
    EXPECT_NE(r->out.find("a-broken.conf: FAILED"), std::string::npos) << r->out;
    EXPECT_NE(r->out.find("b-web01.conf: migrated (" + m_runs.path()), std::string::npos)
        << r->out << read_all(queue + "/logs/b-web01.conf.log");
    EXPECT_TRUE(std::filesystem::exists(queue + "/failed/a-broken.conf"));
    EXPECT_TRUE(std::filesystem::exists(queue + "/done/b-web01.conf"));
    EXPECT_TRUE(same_prefix(disk_path(), zvol_root() + "/tank/vms/web01-scsi0", 64 * k_mib));
    // Nothing queued, the cutover still answers: silence and success.
    auto quiet = migrate(cron);
    ASSERT_TRUE(quiet.ok());
    EXPECT_EQ(quiet->exit.code, 0) << quiet->out;
    EXPECT_EQ(quiet->out, "");
    // The target goes away: the re-check says so.
    m_truenas->terminate(std::chrono::milliseconds(1000));
    ASSERT_TRUE(s_lab->mute("truenas").ok());
    auto lost = migrate(cron);
    ASSERT_TRUE(s_lab->unmute("truenas").ok());
    ASSERT_TRUE(lost.ok());
    EXPECT_EQ(lost->exit.code, exit_code_for(Code::unreachable)) << lost->out;
    EXPECT_NE(lost->out.find("web01 at " + truenas_ip() + " is not answering now"),
              std::string::npos)
        << lost->out;
}

}  // namespace
}  // namespace vmlift

// The Proxmox connector against the simulator over real HTTPS: migrate-vm
// inspect end to end, and the source-side actions through the library.
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include <gtest/gtest.h>

#include "connectors/http/curl_http.h"
#include "connectors/proxmox/pve_client.h"
#include "connectors/proxmox/pve_source.h"
#include "engine/clock.h"
#include "engine/process.h"
#include "tests/integration/pve_sim.h"
#include "tests/support/temp_dir.h"

namespace vmlift {
namespace {

using testing_support::PveSim;
using testing_support::TempDir;

constexpr const char* k_secret = "5f0e2c1a-7b3d-4e8f-9a6b-1c2d3e4f5a6b";
constexpr const char* k_password = "lab-root-pw";

void write(const std::string& path, const std::string& text, mode_t mode = 0644) {
    std::ofstream(path) << text;
    ::chmod(path.c_str(), mode);
}

void sparse(const std::string& path, off_t size) {
    std::ofstream(path).close();
    ASSERT_EQ(::truncate(path.c_str(), size), 0);
}

// Counts requests to /access/ticket (ticket renewal).
class CountingHttp : public HttpClient {
  public:
    explicit CountingHttp(HttpClient& inner) : m_inner(inner) {}
    Result<HttpResponse> send(const HttpRequest& r) override {
        if (r.path == "/access/ticket") {
            ++logins;
        }
        return m_inner.send(r);
    }
    int logins = 0;

  private:
    HttpClient& m_inner;
};

class NoSleep : public Sleeper {
  public:
    void sleep(std::chrono::milliseconds d) override {
        std::this_thread::sleep_for(std::min(d, std::chrono::milliseconds(100)));
    }
};

class PveConnector : public ::testing::Test {
  protected:
    void SetUp() override {
        std::string skip = PveSim::skip_reason();
        if (!skip.empty()) {
            GTEST_SKIP() << skip;
        }
        // VM 120: the constructed config (UEFI, TPM, cloud-init, pending).
        std::ifstream in(VMLIFT_SOURCE_DIR
                         "/tests/data/proxmox/constructed/120-uefi-tpm-cloudinit-pending.conf");
        std::stringstream conf;
        conf << in.rdbuf();
        write(m_dir.file("120.conf"), conf.str() + "");
        sparse(m_dir.file("vm-120-disk-1.raw"), 64 << 20);  // the config claims 20G
        sparse(m_dir.file("vm-120-disk-3.raw"), 512 << 20);
        sparse(m_dir.file("vm-120-disk-0.raw"), 4 << 20);
        sparse(m_dir.file("vm-120-disk-2.raw"), 4 << 20);
        // VM 130: plain, hookscript, no agent; 131 locked; 132 HA-managed.
        ::mkdir(m_dir.file("local").c_str(), 0755);
        ::mkdir(m_dir.file("local/snippets").c_str(), 0755);
        write(m_dir.file("local/snippets/hook.sh"),
              "#!/bin/sh\necho \"$1 $2\" >> " + m_dir.file("hook.log") + "\n[ -e " +
                  m_dir.file("hook.fail") +
                  " ] && [ \"$2\" = pre-start ] && exit 3\n"
                  "exit 0\n",
              0755);
        write(m_dir.file("130.conf"),
              "boot: order=scsi0\ncores: 1\nmemory: 1024\nname: db01\n"
              "net0: virtio=BC:24:11:00:01:30,bridge=vmbr0\nscsi0: "
              "local:130/vm-130-disk-0.raw,size=1G\n"
              "hookscript: local:snippets/hook.sh\ntags: prod\n");
        sparse(m_dir.file("vm-130-disk-0.raw"), 1 << 30);
        write(m_dir.file("131.conf"), "lock: backup\nmemory: 512\nname: locked\n");
        write(m_dir.file("132.conf"), "memory: 512\nname: ha01\n");
        nlohmann::json cluster = {
            {"nodes", {"pve1", "pve2"}},
            {"users", {{"root@pam", {{"password", k_password}, {"privs", {"*"}}}}}},
            {"tokens",
             {{"root@pam!vmlift", {{"secret", k_secret}, {"privs", {"*"}}}},
              {"audit@pve!ro", {{"secret", k_secret}, {"privs", {"Sys.Audit"}}}}}},
            {"storage",
             {{{"storage", "local"},
               {"type", "dir"},
               {"path", m_dir.file("local")},
               {"content", "images,snippets"}},
              {{"storage", "local-lvm"},
               {"type", "lvmthin"},
               {"vgname", "pve"},
               {"thinpool", "data"},
               {"content", "images"}}}},
            {"vms",
             {{{"vmid", 120},
               {"node", "pve2"},
               {"config", "120.conf"},
               {"status", "running"},
               {"agent",
                {{"interfaces",
                  {{{"name", "lo"}, {"hardware-address", "00:00:00:00:00:00"}},
                   {{"name", "ens18"},
                    {"hardware-address", "BC:24:11:AA:BB:01"},
                    {"ip-addresses",
                     {{{"ip-address", "198.18.5.10"}, {"ip-address-type", "ipv4"}, {"prefix", 24}},
                      {{"ip-address", "fe80::be24:11ff:feaa:bb01"},
                       {"ip-address-type", "ipv6"},
                       {"prefix", 64}}}}}}},
                 {"osinfo", {{"pretty-name", "Debian GNU/Linux 12 (bookworm)"}}},
                 {"exec", {{"cat /etc/hostname", {{"exitcode", 0}, {"out-data", "web01\n"}}}}}}},
               {"volumes",
                {{"local-lvm:vm-120-disk-1", "vm-120-disk-1.raw"},
                 {"local:120/vm-120-disk-3.raw", "vm-120-disk-3.raw"},
                 {"local-lvm:vm-120-disk-0", "vm-120-disk-0.raw"},
                 {"local-lvm:vm-120-disk-2", "vm-120-disk-2.raw"}}},
               {"shutdown_seconds", 0.5}},
              {{"vmid", 130},
               {"node", "pve1"},
               {"config", "130.conf"},
               {"status", "running"},
               {"volumes", {{"local:130/vm-130-disk-0.raw", "vm-130-disk-0.raw"}}},
               {"shutdown_seconds", 0.5}},
              {{"vmid", 131}, {"node", "pve1"}, {"config", "131.conf"}, {"status", "stopped"}},
              {{"vmid", 132},
               {"node", "pve1"},
               {"config", "132.conf"},
               {"status", "running"},
               {"ha", "started"}}}}};
        auto sim = PveSim::start(m_dir, cluster);
        ASSERT_TRUE(sim.ok()) << sim.status().to_string();
        m_sim = std::move(*sim);
        write(m_dir.file("secret"), std::string(k_secret) + "\n", 0600);
        write(m_dir.file("password"), std::string(k_password) + "\n", 0600);
    }

    Result<Captured> cli(std::vector<std::string> args, std::vector<std::string> env = {}) {
        ProcessSpec spec;
        spec.argv = {VMLIFT_MIGRATE_VM};
        spec.argv.insert(spec.argv.end(), args.begin(), args.end());
        spec.env = default_tool_env();
        spec.env.push_back("HOME=" + m_dir.path());
        spec.env.insert(spec.env.end(), env.begin(), env.end());
        spec.timeout = std::chrono::seconds(60);
        return run_captured(m_runner, spec);
    }

    std::vector<std::string> token_args() const {
        return {"--pve-token-id",     "root@pam!vmlift",   "--pve-token-secret-file",
                m_dir.file("secret"), "--pve-fingerprint", m_sim->fingerprint()};
    }

    // A library client with a pinned certificate.
    struct Api {
        explicit Api(PveSim& sim, proxmox::PveCredentials cred, const Clock& clock)
            : curl(make_options(sim)),
              counting(curl),
              retrying(counting, sleeper,
                       {3, std::chrono::milliseconds(10), std::chrono::milliseconds(20)}),
              client(retrying, clock, sleeper, std::move(cred)) {}
        static http::CurlOptions make_options(PveSim& sim) {
            http::CurlOptions o;
            o.base_url = sim.base_url();
            o.tls.mode = http::TlsMode::pinned;
            o.tls.fingerprint = sim.fingerprint();
            return o;
        }
        http::CurlHttpClient curl;
        CountingHttp counting;
        NoSleep sleeper;
        RetryingHttpClient retrying;
        proxmox::PveClient client;
    };
    proxmox::PveCredentials token() const { return {"root@pam!vmlift", k_secret, "", ""}; }
    proxmox::PveCredentials ticket() const { return {"", "", "root@pam", k_password}; }

    TempDir m_dir;
    std::unique_ptr<PveSim> m_sim;
    PosixProcessRunner m_runner;
    RealClock m_clock;
};

TEST_F(PveConnector, InspectReadsTheVmThroughTheApi) {
    auto args = token_args();
    args.insert(args.begin(), {"--json", "inspect", m_sim->url("120")});
    auto r = cli(args);
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->exit.code, 0) << r->err;
    auto spec = nlohmann::json::parse(r->out);
    EXPECT_EQ(spec["node"], "pve2");
    EXPECT_EQ(spec["name"], "web01");
    EXPECT_EQ(spec["status"], "running");
    EXPECT_EQ(spec["firmware"], "uefi");
    EXPECT_EQ(spec["secure_boot"], true);
    EXPECT_EQ(spec["vcpus"], 4);
    ASSERT_EQ(spec["disks"].size(), 4u);
    // Real size and path from the storage layer, not the config's size=20G.
    EXPECT_EQ(spec["disks"][0]["key"], "virtio0");
    EXPECT_EQ(spec["disks"][0]["size_bytes"], 64 << 20);
    EXPECT_EQ(spec["disks"][0]["host_path"], m_dir.file("vm-120-disk-1.raw"));
    EXPECT_EQ(spec["disks"][3]["role"], "tpm");
    ASSERT_EQ(spec["nics"].size(), 2u);
    EXPECT_EQ(spec["nics"][0]["ip_addresses"], nlohmann::json::array({"198.18.5.10/24"}));
    EXPECT_EQ(spec["guest_os"], "Debian GNU/Linux 12 (bookworm)");
    std::string warnings = spec["warnings"].dump();
    EXPECT_NE(warnings.find("pending changes not yet applied (cores, cpu, memory)"),
              std::string::npos)
        << warnings;
    EXPECT_EQ(r->err.find(k_secret), std::string::npos);
}

TEST_F(PveConnector, InspectByNameWithTicketLoginAndCaFile) {
    auto r = cli({"inspect", m_sim->url("db01"), "--pve-password-file", m_dir.file("password"),
                  "--pve-ca-file", m_sim->cert_file()});
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->exit.code, 0) << r->err;
    EXPECT_NE(r->out.find("VM 130 \"db01\" on node pve1 (running)"), std::string::npos) << r->out;
    EXPECT_NE(r->out.find("bc:24:11:00:01:30"), std::string::npos);
}

TEST_F(PveConnector, TlsFailuresAreHostKeyErrorsNamingTheFix) {
    // A different first byte (the fresh certificate's own may be AA).
    std::string wrong = (m_sim->fingerprint().rfind("AA:", 0) == 0 ? "BB:" : "AA:") +
                        m_sim->fingerprint().substr(3);
    auto pinned = cli({"inspect", m_sim->url("120"), "--pve-token-id", "root@pam!vmlift",
                       "--pve-fingerprint", wrong},
                      {std::string("VMLIFT_PVE_TOKEN_SECRET=") + k_secret});
    ASSERT_TRUE(pinned.ok());
    EXPECT_EQ(pinned->exit.code, 7) << pinned->err;
    EXPECT_NE(pinned->err.find(m_sim->fingerprint()), std::string::npos) << pinned->err;
    EXPECT_NE(pinned->err.find(wrong), std::string::npos);
    auto untrusted = cli({"inspect", m_sim->url("120"), "--pve-token-id", "root@pam!vmlift"},
                         {std::string("VMLIFT_PVE_TOKEN_SECRET=") + k_secret});
    ASSERT_TRUE(untrusted.ok());
    EXPECT_EQ(untrusted->exit.code, 7);
    EXPECT_NE(untrusted->err.find("not trusted"), std::string::npos) << untrusted->err;
    auto insecure =
        cli({"inspect", m_sim->url("120"), "--pve-token-id", "root@pam!vmlift", "--pve-insecure"},
            {std::string("VMLIFT_PVE_TOKEN_SECRET=") + k_secret});
    ASSERT_TRUE(insecure.ok());
    EXPECT_EQ(insecure->exit.code, 0) << insecure->err;
    EXPECT_NE(insecure->err.find("not checked"), std::string::npos);
}

TEST_F(PveConnector, AuthPermissionAndNotFoundErrors) {
    write(m_dir.file("bad"), "nope\n", 0600);
    auto args = token_args();
    args[3] = m_dir.file("bad");
    args.insert(args.begin(), {"inspect", m_sim->url("120")});
    auto bad = cli(args);
    ASSERT_TRUE(bad.ok());
    EXPECT_EQ(bad->exit.code, 6) << bad->err;
    EXPECT_NE(bad->err.find("check the API token id and secret"), std::string::npos) << bad->err;
    EXPECT_EQ(bad->err.find("nope"), std::string::npos);

    auto ro = cli({"inspect", m_sim->url("120"), "--pve-token-id", "audit@pve!ro",
                   "--pve-token-secret-file", m_dir.file("secret"), "--pve-fingerprint",
                   m_sim->fingerprint()});
    ASSERT_TRUE(ro.ok());
    EXPECT_EQ(ro->exit.code, 5) << ro->err;
    EXPECT_NE(ro->err.find("VM.Audit"), std::string::npos) << ro->err;

    auto args2 = token_args();
    args2.insert(args2.begin(), {"inspect", m_sim->url("999")});
    auto missing = cli(args2);
    ASSERT_TRUE(missing.ok());
    EXPECT_EQ(missing->exit.code, 4) << missing->err;
    EXPECT_NE(missing->err.find("no QEMU VM 999"), std::string::npos);

    // Nothing listens on port 1: unreachable (8), after the GET retries.
    auto down = cli({"inspect", "pve://127.0.0.1:1/120", "--pve-token-id", "root@pam!vmlift",
                     "--pve-token-secret-file", m_dir.file("secret"), "--pve-insecure"});
    ASSERT_TRUE(down.ok());
    EXPECT_EQ(down->exit.code, 8) << down->err;
    EXPECT_NE(down->err.find("cannot connect"), std::string::npos) << down->err;

    write(m_dir.file("badpw"), "wrong\n", 0600);
    auto login = cli({"inspect", m_sim->url("120"), "--pve-password-file", m_dir.file("badpw"),
                      "--pve-fingerprint", m_sim->fingerprint()});
    ASSERT_TRUE(login.ok());
    EXPECT_EQ(login->exit.code, 6);
    EXPECT_NE(login->err.find("login refused"), std::string::npos) << login->err;
}

TEST_F(PveConnector, ServerErrorsOnGetsAreRetriedWritesAreNot) {
    Api api(*m_sim, token(), m_clock);
    ASSERT_TRUE(m_sim
                    ->inject({{"method", "GET"},
                              {"path", "^/cluster/resources$"},
                              {"status", 500},
                              {"reason", "proxy loop"},
                              {"count", 2}})
                    .ok());
    proxmox::PveSource source(api.client, m_sim->url("130"));
    ASSERT_TRUE(source.locate("130").ok());  // third attempt succeeds
    ASSERT_TRUE(m_sim
                    ->inject({{"method", "POST"},
                              {"path", "/status/shutdown$"},
                              {"status", 500},
                              {"reason", "got timeout"},
                              {"count", 1}})
                    .ok());
    Status st = source.shutdown(std::chrono::seconds(10), false);
    EXPECT_EQ(st.code(), Code::remote_failed);
    EXPECT_NE(st.message().find(
                  "POST /nodes/pve1/qemu/130/status/shutdown failed (HTTP 500: got timeout)"),
              std::string::npos)
        << st.message();
    // Schema: an out-of-range parameter is the real 400 with its name.
    auto bad = api.client.post("/nodes/pve1/qemu/130/status/shutdown", {{"timeout", "-5"}});
    EXPECT_EQ(bad.status().code(), Code::invalid_input);
    EXPECT_NE(bad.status().message().find("timeout: value must have a minimum value of 0"),
              std::string::npos)
        << bad.status().message();
    auto unknown = api.client.post("/nodes/pve1/qemu/130/status/start", {{"bogus", "1"}});
    EXPECT_NE(unknown.status().message().find("bogus: property is not defined in schema"),
              std::string::npos)
        << unknown.status().message();
}

TEST_F(PveConnector, PowerActionsWaitForTasksAndRunTheHookscript) {
    Api api(*m_sim, ticket(), m_clock);
    proxmox::PveSource source(api.client, m_sim->url("130"));
    ASSERT_TRUE(source.locate("db01").ok());
    ASSERT_TRUE(source.shutdown(std::chrono::seconds(20), false).ok());
    auto state = m_sim->state();
    ASSERT_TRUE(state.ok());
    EXPECT_EQ((*state)["vms"]["130"]["status"], "stopped");
    ASSERT_TRUE(source.start().ok());
    // A failing pre-start hook aborts the start, and the error says so.
    write(m_dir.file("hook.fail"), "");
    ASSERT_TRUE(source.stop().ok());
    Status st = source.start();
    EXPECT_EQ(st.code(), Code::remote_failed);
    EXPECT_NE(st.message().find("hookscript error for 130 on pre-start"), std::string::npos)
        << st.message();
    state = m_sim->state();
    EXPECT_EQ((*state)["vms"]["130"]["status"], "stopped");
    std::ifstream log(m_dir.file("hook.log"));
    std::stringstream s;
    s << log.rdbuf();
    EXPECT_EQ(s.str(),
              "130 pre-stop\n130 post-stop\n130 pre-start\n130 post-start\n130 pre-stop\n"
              "130 post-stop\n130 pre-start\n");
}

TEST_F(PveConnector, MarkAndUnmarkRoundTripAndCatchConcurrentEdits) {
    Api api(*m_sim, token(), m_clock);
    proxmox::PveSource source(api.client, m_sim->url("130"));
    ASSERT_TRUE(source.locate("130").ok());
    ASSERT_TRUE(source.mark_migrated("moved to truenas://nas/tank (run 20261123-abcd)").ok());
    auto config = *m_sim->state();
    auto c = config["vms"]["130"]["config"];
    EXPECT_EQ(c["tags"], "prod;vmlift-migrated");
    EXPECT_EQ(c["onboot"], "0");
    EXPECT_EQ(c["description"], "vmlift: moved to truenas://nas/tank (run 20261123-abcd)");
    ASSERT_TRUE(source.unmark().ok());
    c = (*m_sim->state())["vms"]["130"]["config"];
    EXPECT_EQ(c["tags"], "prod");
    EXPECT_FALSE(c.contains("onboot"));
    EXPECT_FALSE(c.contains("description"));
    // A PUT with a stale digest fails (someone edited the VM meanwhile).
    auto stale =
        api.client.put("/nodes/pve1/qemu/130/config", {{"onboot", "0"}, {"digest", "0000"}});
    EXPECT_EQ(stale.status().code(), Code::remote_failed);
    EXPECT_NE(stale.status().message().find("detected modified configuration"), std::string::npos);
    // Snapshots.
    ASSERT_TRUE(source.snapshot_create("vmlift-pre", "before migration").ok());
    ASSERT_TRUE(source.snapshot_delete("vmlift-pre").ok());
    EXPECT_EQ(source.snapshot_delete("vmlift-pre").code(), Code::not_found);
}

TEST_F(PveConnector, LocksHaAndHookscriptRightsAreExplainedBeforeAnyChange) {
    Api api(*m_sim, token(), m_clock);
    for (const char* vm : {"131", "132"}) {
        proxmox::PveSource source(api.client, m_sim->url(vm));
        ASSERT_TRUE(source.locate(vm).ok());
        auto spec = source.inspect();
        ASSERT_TRUE(spec.ok()) << spec.status().message();
        Status st = source.check_actionable(*spec);
        EXPECT_EQ(st.code(), Code::invalid_input);
        EXPECT_NE(st.message().find(std::string(vm) == "131" ? "qm unlock 131"
                                                             : "ha-manager remove vm:132"),
                  std::string::npos)
            << st.message();
    }
    proxmox::PveSource locked(api.client, m_sim->url("131"));
    ASSERT_TRUE(locked.locate("131").ok());
    EXPECT_NE(locked.start().message().find("VM is locked (backup)"), std::string::npos);
    Status hook = locked.set_hookscript("local:snippets/hook.sh");
    EXPECT_EQ(hook.code(), Code::permission_denied);
    EXPECT_NE(hook.message().find("qm set 131 --hookscript"), std::string::npos);
    Api root(*m_sim, ticket(), m_clock);
    proxmox::PveSource as_root(root.client, m_sim->url("130"));
    ASSERT_TRUE(as_root.locate("130").ok());
    EXPECT_TRUE(as_root.set_hookscript("local:snippets/hook.sh").ok());
}

TEST_F(PveConnector, GuestAgentExecAndFileWrite) {
    Api api(*m_sim, token(), m_clock);
    proxmox::PveSource source(api.client, m_sim->url("120"));
    ASSERT_TRUE(source.locate("120").ok());
    auto r = source.agent_exec({"cat", "/etc/hostname"}, "", std::chrono::seconds(10));
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_EQ(r->exit_code, 0);
    EXPECT_EQ(r->out, "web01\n");
    ASSERT_TRUE(source.agent_file_write("/etc/netplan/99-vmlift.yaml", "network: {}\n").ok());
    auto state = m_sim->state();
    EXPECT_EQ((*state)["files_written"]["/etc/netplan/99-vmlift.yaml"], "network: {}\n");
    proxmox::PveSource no_agent(api.client, m_sim->url("130"));
    ASSERT_TRUE(no_agent.locate("130").ok());
    auto none = no_agent.agent_exec({"true"}, "", std::chrono::seconds(5));
    EXPECT_NE(none.status().message().find("No QEMU guest agent configured"), std::string::npos)
        << none.status().message();
}

TEST_F(PveConnector, TicketIsRenewedBeforeItExpires) {
    FakeClock clock;
    Api api(*m_sim, ticket(), clock);
    ASSERT_TRUE(api.client.get("/version").ok());
    ASSERT_TRUE(api.client.get("/nodes").ok());
    EXPECT_EQ(api.counting.logins, 1);
    clock.advance(std::chrono::minutes(91));
    ASSERT_TRUE(api.client.post("/nodes/pve1/qemu/130/status/stop").ok());  // CSRF token sent
    EXPECT_EQ(api.counting.logins, 2);
}

}  // namespace
}  // namespace vmlift

// The TrueNAS API layer against the simulator, one simulated release at a
// time: which API each release gets, login, and the error shapes.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "connectors/http/curl_http.h"
#include "connectors/truenas/jsonrpc.h"
#include "connectors/truenas/target.h"
#include "engine/process.h"
#include "tests/support/local_transport.h"
#include "tests/support/temp_dir.h"

namespace vmlift::truenas {
namespace {

using testing_support::read_all;

using testing_support::TempDir;

constexpr const char* k_key = "7-Zq1hV0kqk5g3sQeQ1oVQmSCbq0fQx1Jg2Pq1m2";

class TrueNasSim {
  public:
    static std::string skip_reason() {
        PosixProcessRunner r;
        ProcessSpec check;
        check.argv = {"/usr/bin/python3", "-c", "import websockets, jsonschema"};
        check.env = default_tool_env();
        auto c = run_captured(r, check);
        if (!c.ok() || c->exit.code != 0) {
            return "needs /usr/bin/python3 with python3-websockets and python3-jsonschema";
        }
        return {};
    }
    explicit TrueNasSim(const std::string& release, bool plain = false,
                        std::vector<std::string> extra = {}) {
        std::ofstream(m_dir.file("key")) << k_key << "\n";
        ProcessSpec spec;
        spec.argv = {"/usr/bin/python3", VMLIFT_SOURCE_DIR "/contrib/sim/truenas/truenas_sim.py",
                     "--release",        release,
                     "--schemas",        VMLIFT_SOURCE_DIR "/tests/data/truenas/api-schemas",
                     "--state",          m_dir.file("state"),
                     "--api-key-file",   m_dir.file("key")};
        if (plain) {
            spec.argv.push_back("--plain");
        }
        spec.argv.insert(spec.argv.end(), extra.begin(), extra.end());
        spec.env = default_tool_env();
        spec.stderr_redirect = Redirect::truncate_to(m_dir.file("sim.log"));
        auto p = m_runner.start(spec);
        if (p.ok()) {
            m_process = std::move(*p);
        }
        for (int i = 0; i < 300 && read_all(m_dir.file("state/port")).empty(); ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        std::string port = read_all(m_dir.file("state/port"));
        m_port = port.empty() ? 0 : std::stoi(port);
        std::string fp = read_all(m_dir.file("state/fingerprint"));
        m_fingerprint = fp.substr(0, fp.find('\n'));
    }
    ~TrueNasSim() {
        if (m_process) {
            m_process->terminate(std::chrono::milliseconds(1000));
        }
    }
    int port() const { return m_port; }
    http::TlsOptions tls() const { return {http::TlsMode::pinned, "", m_fingerprint}; }
    std::string log() const { return read_all(m_dir.file("sim.log")); }
    std::string zvol_file(const std::string& name) const {
        return m_dir.file("state/zvols/" + name);
    }
    Result<std::unique_ptr<TrueNasTarget>> target() const {
        TrueNasConnection c;
        c.host = "127.0.0.1";
        c.port = m_port;
        c.tls = tls();
        c.api_key = k_key;
        return TrueNasTarget::connect(c);
    }

    Result<ApiChoice> detect() {
        http::CurlOptions o;
        o.base_url = "https://127.0.0.1:" + std::to_string(m_port);
        o.tls = tls();
        http::CurlHttpClient client(o);
        auto r = client.send({HttpMethod::get, "/api/versions", {}, "", true});
        if (!r.ok()) {
            return r.status();
        }
        return choose_api(r->status, r->body);
    }

    Result<std::unique_ptr<JsonRpc>> rpc(const std::string& path, bool plain = false) {
        http::WsOptions o;
        o.url = std::string(plain ? "ws" : "wss") + "://127.0.0.1:" + std::to_string(m_port) + path;
        o.tls = tls();
        auto ws = http::WebSocket::connect(o);
        if (!ws.ok()) {
            return ws.status();
        }
        return std::make_unique<JsonRpc>(std::move(*ws), o.url, std::chrono::seconds(20));
    }

  private:
    TempDir m_dir;
    PosixProcessRunner m_runner;
    std::unique_ptr<Process> m_process;
    int m_port = 0;
    std::string m_fingerprint;
};

class TrueNasRpc : public ::testing::Test {
  protected:
    void SetUp() override {
        std::string skip = TrueNasSim::skip_reason();
        if (!skip.empty()) {
            GTEST_SKIP() << skip;
        }
    }
};

TEST_F(TrueNasRpc, EachReleaseGetsItsApiOrAClearRefusal) {
    struct Case {
        const char* release;
        ApiKind kind;
        const char* path;
        const char* version;
    };
    for (const Case& c : {Case{"25.04.2", ApiKind::jsonrpc, "/api/v25.04.2", "25.04.2.6"},
                          Case{"25.10", ApiKind::jsonrpc, "/api/v25.10.0", "25.10.6"},
                          Case{"26", ApiKind::jsonrpc, "/api/v25.10.0", "26.0.0"},
                          Case{"24.10", ApiKind::rest_v2, "/api/v2.0", ""}}) {
        TrueNasSim sim(c.release);
        ASSERT_GT(sim.port(), 0) << sim.log();
        auto api = sim.detect();
        ASSERT_TRUE(api.ok()) << c.release << ": " << api.status().message();
        EXPECT_EQ(api->kind, c.kind) << c.release;
        EXPECT_EQ(api->path, c.path) << c.release;
        if (c.kind != ApiKind::jsonrpc) {
            continue;
        }
        auto rpc = sim.rpc(api->path);
        ASSERT_TRUE(rpc.ok()) << rpc.status().message();
        ASSERT_TRUE(login_with_api_key(**rpc, "root", k_key).ok()) << c.release;
        auto version = (*rpc)->call("system.version_short");
        ASSERT_TRUE(version.ok()) << version.status().message();
        EXPECT_EQ(*version, c.version);
        EXPECT_TRUE(check_release(version->get<std::string>()).ok());
    }
    for (const char* old : {"25.04.0", "25.04.1"}) {
        TrueNasSim sim(old);
        auto api = sim.detect();
        EXPECT_EQ(api.status().code(), Code::invalid_input) << old;
        EXPECT_NE(api.status().message().find("upgrade to TrueNAS 25.04.2 or later"),
                  std::string::npos)
            << api.status().message();
    }
    EXPECT_FALSE(check_release("25.04.1").ok());
}

TEST_F(TrueNasRpc, LoginFailuresAndThePlainWsGuard) {
    TrueNasSim sim("25.10");
    auto rpc = sim.rpc("/api/v25.10.0");
    ASSERT_TRUE(rpc.ok());
    auto before = (*rpc)->call("system.version_short");
    EXPECT_EQ(before.status().code(), Code::permission_denied);
    EXPECT_NE(before.status().message().find("Not authenticated"), std::string::npos);
    Status wrong = login_with_api_key(**rpc, "root", "7-wrong");
    EXPECT_EQ(wrong.code(), Code::auth_failed);
    EXPECT_NE(wrong.message().find("AUTH_ERR"), std::string::npos) << wrong.message();
    EXPECT_EQ(wrong.message().find("7-wrong"), std::string::npos);

    // Where auth.login_ex does not exist, auth.login_with_api_key is used.
    auto old = sim.rpc("/api/v25.10.0");
    ASSERT_TRUE(old.ok());
    ASSERT_TRUE((*old)
                    ->call("sim.inject", {"auth.login_ex",
                                          {{"code", -32601}, {"message", "Method does not exist"}}})
                    .ok());
    ASSERT_TRUE(login_with_api_key(**old, "root", k_key).ok());
    EXPECT_TRUE((*old)->call("system.version_short").ok());

    // Plain ws:// to a remote host: refused before anything is sent.
    TrueNasSim plain("25.10", true);
    http::WsOptions o;
    o.url = "ws://127.0.0.1:" + std::to_string(plain.port()) + "/api/v25.10.0";
    auto ws = http::WebSocket::connect(o);
    ASSERT_TRUE(ws.ok()) << ws.status().message();
    JsonRpc remote(std::move(*ws), "ws://198.18.0.10/api/v25.10.0");
    Status refused = login_with_api_key(remote, "root", k_key);
    EXPECT_EQ(refused.code(), Code::invalid_input);
    EXPECT_NE(refused.message().find("use wss://"), std::string::npos);
    // Loopback over plain ws is allowed (what midclt on the box itself does).
    auto local = plain.rpc("/api/v25.10.0", true);
    ASSERT_TRUE(local.ok());
    EXPECT_TRUE(login_with_api_key(**local, "root", k_key).ok());
}

TEST_F(TrueNasRpc, ErrorsKeepTrueNasMeaning) {
    TrueNasSim sim("25.10");
    auto rpc = sim.rpc("/api/v25.10.0");
    ASSERT_TRUE(rpc.ok());
    ASSERT_TRUE(login_with_api_key(**rpc, "root", k_key).ok());
    auto missing = (*rpc)->call("vm.frobnicate");
    EXPECT_EQ(missing.status().code(), Code::not_found);
    EXPECT_NE(missing.status().message().find("no method vm.frobnicate"), std::string::npos);
    auto typed = (*rpc)->call("core.set_options", {{{"legacy_jobs", "no"}}});
    EXPECT_EQ(typed.status().code(), Code::invalid_input);
    EXPECT_NE(
        typed.status().message().find("legacy_jobs: Input should be a valid boolean (EINVAL)"),
        std::string::npos)
        << typed.status().message();
    auto ok = (*rpc)->call("core.set_options", {{{"legacy_jobs", false}}});
    ASSERT_TRUE(ok.ok()) << ok.status().message();
    EXPECT_EQ((*ok)["legacy_jobs"], false);
    ASSERT_TRUE((*rpc)
                    ->call("sim.inject", {"vm.query",
                                          {{"code", -32001},
                                           {"message", "Method call error"},
                                           {"errname", "ENOENT"},
                                           {"reason", "VM 7 does not exist"}}})
                    .ok());
    auto gone = (*rpc)->call("vm.query");
    EXPECT_EQ(gone.status().code(), Code::not_found);
    EXPECT_EQ(gone.status().message(), "vm.query failed: VM 7 does not exist (ENOENT)");
}

// The dry run's payloads, checked by the simulator's validator against each
// release's published schema; and the shapes of one release refused by another.
TEST_F(TrueNasRpc, ProvisionDryRunMatchesEachReleasesSchema) {
    PosixProcessRunner runner;
    auto run = [&](std::vector<std::string> argv, const std::string& input = {}) {
        ProcessSpec spec;
        spec.argv = std::move(argv);
        spec.env = default_tool_env();
        spec.timeout = std::chrono::seconds(60);
        auto r = run_captured(runner, spec, input);
        EXPECT_TRUE(r.ok());
        return r.ok() ? *r : Captured{};
    };
    TempDir dir;
    auto inspected = run({VMLIFT_MIGRATE_VM, "--json", "inspect", "--from-file",
                          VMLIFT_SOURCE_DIR
                          "/tests/data/proxmox/constructed/120-uefi-tpm-cloudinit-pending.conf"});
    ASSERT_EQ(inspected.exit.code, 0) << inspected.err;
    std::ofstream(dir.file("spec.json")) << inspected.out;
    std::ofstream(dir.file("pw")) << "display-pw\n";
    auto validate = [&](const std::string& release, const std::string& calls) {
        return run({"/usr/bin/python3", VMLIFT_SOURCE_DIR "/contrib/sim/truenas/truenas_sim.py",
                    "--release", release, "--schemas",
                    VMLIFT_SOURCE_DIR "/tests/data/truenas/api-schemas", "--validate-calls"},
                   calls);
    };
    std::map<std::string, std::string> outputs;
    for (const char* release : {"24.10", "25.04.2", "25.10", "26"}) {
        auto plan = run({VMLIFT_MIGRATE_VM, "--json", "provision", "--spec", dir.file("spec.json"),
                         "--target", "truenas://nas.lan/tank/vms", "--target-version", release,
                         "--run-id", "t1", "--bridge-map", "vmbr0=br0,vmbr1=br1", "--dry-run",
                         "--display", "--display-password-file", dir.file("pw")});
        ASSERT_EQ(plan.exit.code, 0) << plan.err;
        EXPECT_EQ(std::count(plan.out.begin(), plan.out.end(), '\n'), 2 + 1 + 2 + 2 + 1)
            << plan.out;
        auto checked = validate(release, plan.out);
        EXPECT_EQ(checked.exit.code, 0) << release << ":\n" << checked.out << checked.err;
        outputs[release] = plan.out;
    }
    // The validator is not a rubber stamp: each shape fails on the other API.
    auto cross = validate("25.10", outputs["24.10"]);
    EXPECT_EQ(cross.exit.code, 1);
    EXPECT_NE(cross.out.find("vm.device.create"), std::string::npos) << cross.out;
    auto back = validate("24.10", outputs["25.10"]);
    EXPECT_EQ(back.exit.code, 1);
    EXPECT_NE(back.out.find("'dtype' is a required property"), std::string::npos) << back.out;
    auto old = validate("25.04.1", outputs["25.10"]);
    EXPECT_NE(old.out.find("Method does not exist"), std::string::npos) << old.out;
    // And the command refuses what it cannot do.
    auto refused = run({VMLIFT_MIGRATE_VM, "provision", "--spec", dir.file("spec.json"), "--target",
                        "truenas://nas.lan/tank", "--target-version", "25.04.1", "--dry-run"});
    EXPECT_EQ(refused.exit.code, 3);
    EXPECT_NE(refused.err.find("upgrade to TrueNAS 25.04.2 or later"), std::string::npos);
}

VmSpec web01() {
    VmSpec s;
    s.source = "pve://pve1/120";
    s.vmid = 120;
    s.name = "web01";
    s.sockets = 1;
    s.cores = 2;
    s.vcpus = 2;
    s.memory_mib = 2048;
    s.firmware = Firmware::uefi;
    s.uuid = "5f1c8e42-1d6a-4f0e-9a51-0c7a3e9d2b11";
    s.disks = {{"scsi0", "scsi", "local-lvm:vm-120-disk-1", "local-lvm", "raw", 64ULL << 20, "",
                DiskRole::data, 0},
               {"scsi1", "scsi", "local-lvm:vm-120-disk-2", "local-lvm", "raw", 32ULL << 20, "",
                DiskRole::data, -1}};
    s.nics = {{"net0", "virtio", "bc:24:11:aa:bb:01", "vmbr0", -1, 0, {}},
              {"net1", "e1000", "bc:24:11:aa:bb:02", "vmbr1", -1, 0, {}}};
    return s;
}

ProvisionPlan plan_for(const VmSpec& spec, Release release, const std::string& run = "r1") {
    ProvisionOptions o;
    o.run_id = run;
    o.bridge_map = {{"vmbr0", "br0"}, {"vmbr1", "br1"}};
    auto plan = plan_provision(spec, *parse_truenas_url("truenas://nas/tank/vms"), release, o);
    EXPECT_TRUE(plan.ok()) << plan.status().message();
    return *plan;
}

TEST_F(TrueNasRpc, ProvisionIsIdempotentAndRollbackRemovesExactlyTheRunsObjects) {
    for (auto [release, rel] :
         {std::pair{"24.10", Release::v24_10}, std::pair{"25.04.2", Release::v25_04_2},
          std::pair{"25.10", Release::v25_10}, std::pair{"26", Release::v26}}) {
        TrueNasSim sim(release, false, {"--bridge", "br0", "--bridge", "br1", "--pool", "tank:1G"});
        auto target = sim.target();
        ASSERT_TRUE(target.ok()) << release << ": " << target.status().message() << sim.log();
        EXPECT_EQ((*target)->release(), rel);
        // Someone else's VM already has the name, and someone else's zvol sits beside ours.
        ASSERT_TRUE((*target)->call("vm.create", {{{"name", "web01"}, {"memory", 512}}}).ok());
        ASSERT_TRUE((*target)
                        ->call("pool.dataset.create", {{{"name", "tank/vms/other"},
                                                        {"type", "VOLUME"},
                                                        {"volsize", 16384},
                                                        {"sparse", true}}})
                        .ok());
        const auto plan = plan_for(web01(), rel);
        auto first = (*target)->provision(plan, *parse_truenas_url("truenas://nas/tank/vms"));
        ASSERT_TRUE(first.ok()) << release << ": " << first.status().message() << sim.log();
        EXPECT_EQ(first->vm_name, "web01_2");
        EXPECT_FALSE(first->vm_reused);
        EXPECT_EQ(first->zvols_created,
                  (std::vector<std::string>{"tank/vms/web01-scsi0", "tank/vms/web01-scsi1"}));
        EXPECT_EQ(first->devices_created, 4);
        EXPECT_TRUE(first->warnings.empty());
        // The zvols are real sparse files of the rounded size.
        struct stat st {};
        ASSERT_EQ(::stat(sim.zvol_file("tank/vms/web01-scsi0").c_str(), &st), 0);
        EXPECT_EQ(st.st_size, 64 << 20);
        auto vm = (*target)->call("vm.get_instance", {first->vm_id});
        ASSERT_TRUE(vm.ok());
        EXPECT_EQ((*vm)["autostart"], false);
        EXPECT_EQ((*vm)["devices"].size(), 4u);
        // A re-run of the same run finds everything and creates nothing.
        auto again = (*target)->provision(plan, *parse_truenas_url("truenas://nas/tank/vms"));
        ASSERT_TRUE(again.ok()) << again.status().message();
        EXPECT_TRUE(again->vm_reused);
        EXPECT_EQ(again->vm_id, first->vm_id);
        EXPECT_EQ(again->zvols_reused.size(), 2u);
        EXPECT_TRUE(again->zvols_created.empty());
        EXPECT_EQ(again->devices_created, 0);
        EXPECT_EQ(again->devices_reused, 4);
        // Power: start, state, stop (a job on every release).
        ASSERT_TRUE((*target)->start_vm(first->vm_id).ok());
        EXPECT_EQ(*(*target)->vm_state(first->vm_id), "RUNNING");
        std::vector<int> seen;
        (*target)->on_job_progress(
            [&seen](int percent, const std::string&) { seen.push_back(percent); });
        Status stopped = (*target)->stop_vm(first->vm_id, true);
        ASSERT_TRUE(stopped.ok()) << release << ": " << stopped.message();
        EXPECT_EQ(*(*target)->vm_state(first->vm_id), "STOPPED");
        ASSERT_FALSE(seen.empty()) << release << ": no job progress forwarded";
        EXPECT_EQ(seen.back(), 100);
        if (rel == Release::v25_10 || rel == Release::v26) {
            EXPECT_EQ(seen, (std::vector<int>{50, 100})) << "from the job notifications";
        }
        // Persistent hooks: created once, found again by the marker.
        TrueNasTarget::CronSchedule every5;
        auto cron = (*target)->ensure_cronjob(plan.marker, "/usr/local/bin/vmlift-cron", every5);
        ASSERT_TRUE(cron.ok()) << release << ": " << cron.status().message();
        EXPECT_EQ(*(*target)->ensure_cronjob(plan.marker, "/usr/local/bin/vmlift-cron", every5),
                  *cron);
        auto init = (*target)->ensure_init_script(plan.marker, "/usr/local/bin/vmlift-init",
                                                  TrueNasTarget::When::postinit);
        ASSERT_TRUE(init.ok()) << release << ": " << init.status().message();
        auto hooks = (*target)->hooks(plan.marker);
        ASSERT_TRUE(hooks.ok());
        EXPECT_EQ((*hooks)["cronjobs"].size(), 1u);
        EXPECT_EQ((*hooks)["cronjobs"][0]["schedule"]["minute"], "*/5");
        EXPECT_EQ((*hooks)["init_scripts"][0]["when"], "POSTINIT");
        // Rollback: ours go, the others stay.
        auto gone = (*target)->rollback(plan.marker);
        ASSERT_TRUE(gone.ok()) << gone.status().message();
        EXPECT_EQ(gone->hooks_deleted, 2);
        EXPECT_EQ(gone->vms_deleted, std::vector<std::string>{"web01_2"});
        EXPECT_EQ(gone->zvols_deleted.size(), 2u);
        auto left = (*target)->call("vm.query");
        ASSERT_EQ(left->size(), 1u);
        EXPECT_EQ((*left)[0]["name"], "web01");
        auto zvols = (*target)->call("pool.dataset.query", {{{"type", "=", "VOLUME"}}});
        ASSERT_EQ(zvols->size(), 1u);
        EXPECT_EQ((*zvols)[0]["id"], "tank/vms/other");
        EXPECT_NE(::stat(sim.zvol_file("tank/vms/web01-scsi0").c_str(), &st), 0);
    }
}

TEST_F(TrueNasRpc, ProvisionRefusesBadTargetsBeforeChangingAnything) {
    TrueNasSim sim("25.10", false, {"--bridge", "br0", "--pool", "tank:80M"});
    auto target = sim.target();
    ASSERT_TRUE(target.ok()) << target.status().message();
    const auto url = *parse_truenas_url("truenas://nas/tank/vms");
    VmSpec big = web01();
    big.sockets = 4;
    big.cores = 8;
    auto cpus = (*target)->provision(plan_for(big, Release::v25_10), url);
    EXPECT_EQ(cpus.status().code(), Code::invalid_input);
    EXPECT_NE(cpus.status().message().find("needs 32 vCPUs but this TrueNAS supports at most 16"),
              std::string::npos)
        << cpus.status().message();
    auto bridge = (*target)->provision(plan_for(web01(), Release::v25_10), url);
    EXPECT_EQ(bridge.status().code(), Code::invalid_input);
    EXPECT_NE(bridge.status().message().find(
                  "bridge 'br1' does not exist on TrueNAS (choices: br0, enp1s0)"),
              std::string::npos)
        << bridge.status().message();
    VmSpec one = web01();
    one.nics.pop_back();
    auto space = (*target)->provision(plan_for(one, Release::v25_10), url);
    EXPECT_EQ(space.status().code(), Code::invalid_input);
    EXPECT_NE(space.status().message().find("not enough space on pool tank"), std::string::npos)
        << space.status().message();
    EXPECT_TRUE((*target)->call("vm.query")->empty());  // nothing was created
    one.disks.pop_back();
    ASSERT_TRUE(
        (*target)
            ->call("pool.dataset.create",
                   {{{"name", "tank/vms/web01-scsi0"}, {"type", "VOLUME"}, {"volsize", 16384}}})
            .ok());
    auto taken = (*target)->provision(plan_for(one, Release::v25_10), url);
    EXPECT_EQ(taken.status().code(), Code::invalid_input);
    EXPECT_NE(taken.status().message().find("was not created by this run"), std::string::npos);
    TrueNasSim old("25.04.0");
    auto refused = old.target();
    EXPECT_EQ(refused.status().code(), Code::invalid_input);
    EXPECT_NE(refused.status().message().find("upgrade to TrueNAS 25.04.2"), std::string::npos);
    // 24.10 over REST: a wrong key is a clear auth error.
    TrueNasSim rest("24.10");
    TrueNasConnection c;
    c.host = "127.0.0.1";
    c.port = rest.port();
    c.tls = rest.tls();
    c.api_key = "7-wrong";
    auto denied = TrueNasTarget::connect(c);
    EXPECT_EQ(denied.status().code(), Code::auth_failed);
    EXPECT_NE(denied.status().message().find("system.version_short failed (HTTP 401"),
              std::string::npos)
        << denied.status().message();
}

TEST_F(TrueNasRpc, ProvisionCommandAgainstALiveServerAndItsRollback) {
    TrueNasSim sim("26", false, {"--bridge", "br0", "--noexec", "tank"});
    TempDir dir;
    std::ofstream(dir.file("key")) << k_key << "\n";
    std::ofstream(dir.file("spec.json")) << to_json(web01()).dump();
    PosixProcessRunner runner;
    auto cli = [&](std::vector<std::string> extra) {
        ProcessSpec spec;
        spec.argv = {VMLIFT_MIGRATE_VM,
                     "--json",
                     "provision",
                     "--target",
                     "truenas://127.0.0.1/tank/vms",
                     "--truenas-port",
                     std::to_string(sim.port()),
                     "--truenas-fingerprint",
                     sim.tls().fingerprint,
                     "--truenas-api-key-file",
                     dir.file("key"),
                     "--run-id",
                     "cli1"};
        spec.argv.insert(spec.argv.end(), extra.begin(), extra.end());
        spec.env = default_tool_env();
        spec.timeout = std::chrono::seconds(60);
        auto r = run_captured(runner, spec);
        EXPECT_TRUE(r.ok());
        EXPECT_EQ(r->out.find(k_key), std::string::npos);
        EXPECT_EQ(r->err.find(k_key), std::string::npos);
        return *r;
    };
    auto first = cli({"--spec", dir.file("spec.json"), "--bridge", "enp1s0"});
    ASSERT_EQ(first.exit.code, 0) << first.err;
    auto j = nlohmann::json::parse(first.out);
    ASSERT_EQ(j["warnings"].size(), 2u);  // both NICs on a physical interface
    EXPECT_NE(j["warnings"][0].get<std::string>().find("attaches to enp1s0, not a bridge"),
              std::string::npos);
    EXPECT_EQ(j["vm_name"], "web01");
    EXPECT_EQ(j["truenas_version"], "26.0.0");
    EXPECT_EQ(j["devices_created"], 4);
    auto again = cli({"--spec", dir.file("spec.json"), "--bridge", "enp1s0"});
    ASSERT_EQ(again.exit.code, 0) << again.err;
    EXPECT_EQ(nlohmann::json::parse(again.out)["vm_reused"], true);
    auto bad_bridge = cli({"--spec", dir.file("spec.json")});  // vmbr0 does not exist there
    EXPECT_EQ(bad_bridge.exit.code, 3);
    EXPECT_NE(bad_bridge.err.find("bridge 'vmbr0' does not exist"), std::string::npos)
        << bad_bridge.err;
    auto inventory = cli({"--inventory"});
    ASSERT_EQ(inventory.exit.code, 0) << inventory.err;
    auto inv = nlohmann::json::parse(inventory.out);
    EXPECT_EQ(inv["release"], "26");
    EXPECT_EQ(inv["max_vcpus"], 16);
    EXPECT_EQ(inv["datasets"][0],
              nlohmann::json({{"name", "tank"}, {"type", "FILESYSTEM"}, {"exec", "off"}}));
    EXPECT_EQ(inv["vms"][0]["name"], "web01");
    EXPECT_TRUE(inv["bootloaders"].contains("UEFI_CSM"));
    // A display's password comes from a file and never shows in the dry run.
    std::ofstream(dir.file("display")) << "sp1ce-secret\n";
    auto dry =
        cli({"--spec", dir.file("spec.json"), "--bridge", "enp1s0", "--dry-run", "--target-version",
             "24.10", "--display", "--display-password-file", dir.file("display"), "--force-size"});
    ASSERT_EQ(dry.exit.code, 0) << dry.err;
    EXPECT_EQ(dry.out.find("sp1ce-secret"), std::string::npos);
    EXPECT_NE(dry.out.find("\"dtype\":\"DISPLAY\""), std::string::npos) << dry.out;
    EXPECT_NE(dry.out.find("\"force_size\":true"), std::string::npos);
    auto nopw = cli({"--spec", dir.file("spec.json"), "--bridge", "enp1s0", "--dry-run",
                     "--target-version", "24.10", "--display"});
    EXPECT_EQ(nopw.exit.code, 3);
    EXPECT_NE(nopw.err.find("--display-password-file"), std::string::npos);
    auto undone = cli({"--rollback"});
    ASSERT_EQ(undone.exit.code, 0) << undone.err;
    auto u = nlohmann::json::parse(undone.out);
    EXPECT_EQ(u["vms_deleted"], nlohmann::json::array({"web01"}));
    EXPECT_EQ(u["zvols_deleted"].size(), 2u);
}

// `midclt` on the host, here the shim that talks to the simulator the way the
// real one talks to the local middleware; reached through the quoting path.
class MidcltHost : public testing_support::LocalTransport {
  public:
    MidcltHost(std::string url, std::string key_file)
        : m_url(std::move(url)), m_key_file(std::move(key_file)) {}
    Result<ExitStatus> exec(const std::vector<std::string>& argv, RunIo io,
                            ExecOptions options = {}) override {
        auto copy = argv;
        auto at = std::find(copy.begin(), copy.end(), "midclt");
        if (at != copy.end()) {
            size_t i = static_cast<size_t>(at - copy.begin());
            copy.erase(copy.begin(), copy.begin() + static_cast<long>(i) + 1);
            copy.insert(copy.begin(),
                        {"/usr/bin/python3", VMLIFT_SOURCE_DIR "/tests/support/midclt_shim.py",
                         "--url", m_url, "--key-file", m_key_file});
        }
        last_argv = argv;
        return LocalTransport::exec(copy, io, options);
    }
    std::vector<std::string> last_argv;

  private:
    std::string m_url, m_key_file;
};

TEST_F(TrueNasRpc, ProvisionThroughMidcltOverSsh) {
    TrueNasSim sim("25.10", true, {"--bridge", "br0", "--bridge", "br1"});
    TempDir dir;
    std::ofstream(dir.file("key")) << k_key << "\n";
    MidcltHost host("ws://127.0.0.1:" + std::to_string(sim.port()) + "/api/v25.10.0",
                    dir.file("key"));
    auto target = TrueNasTarget::over_ssh(host, Privilege::direct);
    ASSERT_TRUE(target.ok()) << target.status().message() << sim.log();
    EXPECT_EQ((*target)->version(), "25.10.6");
    const auto plan = plan_for(web01(), Release::v25_10, "ssh1");
    auto done = (*target)->provision(plan, *parse_truenas_url("truenas://nas/tank/vms"));
    ASSERT_TRUE(done.ok()) << done.status().message();
    EXPECT_EQ(done->devices_created, 4);
    // Each parameter travelled as one JSON argument.
    ASSERT_GE(host.last_argv.size(), 4u);
    EXPECT_EQ(host.last_argv[0], "midclt");
    EXPECT_EQ(host.last_argv[2], "vm.device.create");
    EXPECT_EQ(nlohmann::json::parse(host.last_argv[3])["attributes"]["dtype"], "NIC");
    // Validation errors keep their attribute and errno.
    auto taken = (*target)->call("vm.create", {{{"name", "web01"}, {"memory", 512}}});
    EXPECT_EQ(taken.status().code(), Code::invalid_input);
    EXPECT_NE(taken.status().message().find("vm_create.name: This name already exists. (EEXIST)"),
              std::string::npos)
        << taken.status().message();
    // Job methods wait through -j.
    ASSERT_TRUE((*target)->call("vm.start", {done->vm_id}).ok());
    ASSERT_TRUE((*target)->call("vm.stop", {done->vm_id, {{"force", true}}}).ok());
    EXPECT_EQ(host.last_argv[2], "-j");
    auto gone = (*target)->rollback(plan.marker);
    ASSERT_TRUE(gone.ok()) << gone.status().message();
    EXPECT_EQ(gone->zvols_deleted.size(), 2u);
}

TEST(TrueNasApiChoice, FromVersionLists) {
    EXPECT_EQ(choose_api(404, "")->kind, ApiKind::rest_v2);
    EXPECT_EQ(choose_api(200, R"(["v24.10","v25.04.0","v25.04.1","v25.04.2"])")->path,
              "/api/v25.04.2");
    EXPECT_EQ(choose_api(200, R"(["v25.04.2","v25.10.0","v26.0.0"])")->path, "/api/v25.10.0");
    EXPECT_EQ(choose_api(500, "").status().code(), Code::remote_failed);
    EXPECT_EQ(choose_api(200, "{}").status().code(), Code::remote_failed);
    Status v = rpc_error("vm.create", {{"code", -32602},
                                       {"message", "Invalid params"},
                                       {"data",
                                        {{"errname", "EINVAL"},
                                         {"reason",
                                          "[EEXIST] vm_create.name: This name already exists.\n"
                                          "[EINVAL] vm_create.memory: Input should be greater than "
                                          "or equal to 20\n"}}}});
    EXPECT_EQ(v.code(), Code::invalid_input);
    EXPECT_EQ(v.message(),
              "vm.create rejected its parameters: vm_create.name: This name already exists. "
              "(EEXIST); vm_create.memory: Input should be greater than or equal to 20 (EINVAL)");
}

}  // namespace
}  // namespace vmlift::truenas

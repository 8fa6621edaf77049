// The run's pieces that need no host: verify polling, the journal, options,
// the summary, and the stage driver over stateful fakes.
#include <gtest/gtest.h>

#include "engine/journal.h"
#include "engine/migration.h"
#include "engine/report.h"
#include "engine/verify.h"
#include "tests/support/temp_dir.h"

namespace vmlift {
namespace {

using testing_support::read_all;
using testing_support::TempDir;

// Answers as scripted; each probe costs the fake clock one second.
class ScriptedProber : public Prober {
  public:
    ScriptedProber(FakeClock& clock, std::vector<bool> answers)
        : m_clock(clock), m_answers(std::move(answers)) {}
    Result<bool> probe(const std::string& ip, int, ProbeMode, std::chrono::milliseconds) override {
        if (ip == "bad") {
            return Status(Code::invalid_input, "'bad' is not an address");
        }
        m_clock.advance(std::chrono::seconds(1));
        bool a = m_next < m_answers.size() ? m_answers[m_next] : m_answers.back();
        ++m_next;
        return a;
    }
    size_t calls() const { return m_next; }

  private:
    FakeClock& m_clock;
    std::vector<bool> m_answers;
    size_t m_next = 0;
};

class ClockSleeper : public Sleeper {
  public:
    explicit ClockSleeper(FakeClock& clock) : m_clock(clock) {}
    void sleep(std::chrono::milliseconds d) override { m_clock.advance(d); }

  private:
    FakeClock& m_clock;
};

TEST(Verify, PollsUntilTheTargetAnswers) {
    FakeClock clock;
    ClockSleeper sleeper(clock);
    ScriptedProber prober(clock, {false, false, false, true});
    VerifyRequest req;
    req.ip = "198.18.7.10";
    req.poll_interval = std::chrono::seconds(5);
    auto r = verify_reachability(prober, clock, sleeper, req);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_TRUE(r->satisfied);
    EXPECT_EQ(r->attempts, 4);
    EXPECT_DOUBLE_EQ(r->seconds, 4 * 1 + 3 * 5);
    EXPECT_EQ(r->to_json()["port"], 22);
}

TEST(Verify, TimesOutNamingTheAddressAndWhatWasExpected) {
    FakeClock clock;
    ClockSleeper sleeper(clock);
    ScriptedProber prober(clock, {true});
    VerifyRequest req;
    req.ip = "198.18.7.10";
    req.expect = Expect::unreachable;
    req.timeout = std::chrono::seconds(30);
    req.poll_interval = std::chrono::seconds(5);
    VerifyResult last;
    auto r = verify_reachability(prober, clock, sleeper, req, &last);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Code::timeout);
    EXPECT_NE(r.status().message().find("198.18.7.10 port 22 (tcp) was still answering after 30 s"),
              std::string::npos)
        << r.status().message();
    EXPECT_FALSE(last.satisfied);
    EXPECT_EQ(last.attempts, 6);  // at 1, 7, 13, 19, 25 and 31 s
    req.ip = "bad";
    EXPECT_EQ(verify_reachability(prober, clock, sleeper, req).status().code(),
              Code::invalid_input);
}

TEST(Verify, RealTcpProbeSeesAListenerAndARefusal) {
    RealProber prober;
    // Port 1 on loopback: nothing listens (refused, not an error).
    auto refused = prober.probe("127.0.0.1", 1, ProbeMode::tcp, std::chrono::milliseconds(500));
    ASSERT_TRUE(refused.ok());
    EXPECT_FALSE(*refused);
    EXPECT_EQ(prober.probe("not-an-ip", 22, ProbeMode::tcp, std::chrono::milliseconds(100))
                  .status()
                  .code(),
              Code::invalid_input);
    auto icmp = prober.probe("127.0.0.1", 0, ProbeMode::icmp, std::chrono::milliseconds(1000));
    if (!icmp.ok()) {
        GTEST_SKIP() << "no ICMP socket here: " << icmp.status().message();
    }
    EXPECT_TRUE(*icmp);
}

TEST(Journal, RecordsStagesAndSurvivesAReopen) {
    TempDir base;
    FakeClock clock;
    auto dir = RunDir::create(base.path(), clock);
    ASSERT_TRUE(dir.ok());
    auto j = Journal::create(*dir, clock, {{"source", "pve://h/101"}});
    ASSERT_TRUE(j.ok());
    ASSERT_TRUE(j->begin("inspect").ok());
    clock.advance(std::chrono::seconds(3));
    ASSERT_TRUE(j->finish("inspect", {{"name", "web01"}}).ok());
    ASSERT_TRUE(j->begin("plan").ok());
    ASSERT_TRUE(j->fail("plan", "no pool").ok());
    ASSERT_TRUE(j->skip("approve", "--yes").ok());
    ASSERT_TRUE(j->put("streams", {{"scsi0", {{"state", "started"}}}}).ok());
    ASSERT_TRUE(j->add_undo({{"action", "unmark-source"}}).ok());
    ASSERT_TRUE(j->mark_undone(0).ok());
    EXPECT_FALSE(j->mark_undone(5).ok());

    auto again = Journal::open(*dir, clock);
    ASSERT_TRUE(again.ok()) << again.status().to_string();
    EXPECT_EQ(again->run_id(), dir->id());
    EXPECT_EQ(again->state(), "failed");
    EXPECT_EQ(again->request()["source"], "pve://h/101");
    EXPECT_EQ(again->stage("inspect").state, StageState::done);
    EXPECT_DOUBLE_EQ(again->stage("inspect").seconds, 3);
    EXPECT_EQ(again->stage("inspect").result["name"], "web01");
    EXPECT_EQ(again->stage("plan").state, StageState::failed);
    EXPECT_EQ(again->stage("plan").error, "no pool");
    EXPECT_EQ(again->stage("approve").state, StageState::skipped);
    EXPECT_EQ(again->stage("stream").state, StageState::pending);
    EXPECT_EQ(again->data()["streams"]["scsi0"]["state"], "started");
    EXPECT_TRUE(again->undo()[0].contains("undone_at"));
}

TEST(Journal, RefusesADamagedOrForeignFile) {
    TempDir base;
    FakeClock clock;
    auto dir = RunDir::create(base.path(), clock);
    ASSERT_TRUE(dir.ok());
    EXPECT_EQ(Journal::open(*dir, clock).status().code(), Code::not_found);
    ASSERT_TRUE(dir->write_file("journal.json", "{\"format\": \"other\"}").ok());
    auto r = Journal::open(*dir, clock);
    EXPECT_EQ(r.status().code(), Code::invalid_input);
    EXPECT_NE(r.status().message().find("journal.json is damaged"), std::string::npos);
    ASSERT_TRUE(dir->write_file("journal.json", "{\"format\": \"vmlift-journal/1\"}").ok());
    EXPECT_EQ(Journal::open(*dir, clock).status().code(), Code::invalid_input);
}

TEST(MigrationOptions, RoundTripAndRefuseContradictions) {
    MigrationOptions o;
    o.zvol_names = {{"scsi0", "root"}};
    o.transfer_mode = StreamMode::relay;
    o.net_prep = NetPrep::none;
    o.post_cutover_cmd = {"/usr/local/bin/flip", "web01"};
    o.verify_mode = ProbeMode::icmp;
    auto back = MigrationOptions::from_json(o.to_json());
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(back->to_json(), o.to_json());
    auto j = o.to_json();
    j["use_dhcp"] = true;
    j["static_cidr"] = "10.0.0.5/24";
    EXPECT_EQ(MigrationOptions::from_json(j).status().code(), Code::invalid_input);
    j = o.to_json();
    j["net_prep"] = "magic";
    EXPECT_NE(
        MigrationOptions::from_json(j).status().message().find("agent, offline, auto or none"),
        std::string::npos);
}

TEST(MigrationOptions, CutoverIpsComeFromOptionsOrTheAgent) {
    VmSpec spec;
    NicSpec a;
    a.mac = "bc:24:11:00:00:01";
    a.ip_addresses = {"127.0.0.1/8", "198.18.9.20/24", "fe80::1/64", "169.254.3.3/16"};
    NicSpec b;
    b.mac = "bc:24:11:00:00:02";
    b.ip_addresses = {"198.18.10.20/24"};
    spec.nics = {a, b};
    MigrationOptions o;
    EXPECT_EQ(cutover_ips(spec, o), (std::vector<std::string>{"198.18.9.20", "198.18.10.20"}));
    o.static_cidr = "198.18.9.99/24";
    EXPECT_EQ(cutover_ips(spec, o), (std::vector<std::string>{"198.18.9.99"}));
    o.target_ips = {"198.18.9.50"};
    EXPECT_EQ(cutover_ips(spec, o), (std::vector<std::string>{"198.18.9.50"}));
    auto nics = guest_nics(spec, o);
    ASSERT_EQ(nics.size(), 2u);
    EXPECT_EQ(nics[0].addressing, Addressing::static_address);
    EXPECT_EQ(nics[0].addresses, (std::vector<std::string>{"198.18.9.99/24"}));
    EXPECT_EQ(nics[1].addressing, Addressing::keep);
}

TEST(Report, SummarisesAFinishedRunFromItsJournal) {
    TempDir base;
    FakeClock clock;
    auto dir = RunDir::create(base.path(), clock);
    ASSERT_TRUE(dir.ok());
    auto j =
        Journal::create(*dir, clock, {{"source", "pve://h/101"}, {"target", "truenas://t/tank"}});
    ASSERT_TRUE(j.ok());
    VmSpec spec;
    spec.name = "web01";
    spec.vmid = 101;
    spec.vcpus = 2;
    spec.memory_mib = 2048;
    spec.firmware = Firmware::uefi;
    DiskSpec d;
    d.key = "scsi0";
    d.size_bytes = 3ull << 30;  // past 2^31: sizes stay 64-bit all the way
    d.host_path = "/dev/pve/vm-101-disk-0";
    spec.disks = {d};
    NicSpec n;
    n.key = "net0";
    n.mac = "bc:24:11:00:00:01";
    n.bridge = "vmbr0";
    spec.nics = {n};
    ASSERT_TRUE(j->finish("inspect", to_json(spec)).ok());
    TargetPlan plan;
    plan.vm_name = "web01";
    plan.bootloader = "UEFI";
    plan.disks = {
        {"scsi0", DiskRole::data, 3ull << 30, "tank/web01-scsi0", "/dev/zvol/tank/web01-scsi0"}};
    plan.nics = {{"net0", "bc:24:11:00:00:01", "br0", "VIRTIO"}};
    ASSERT_TRUE(j->finish("plan", {{"target", plan.to_json()}, {"net_prep", "auto"}}).ok());
    ASSERT_TRUE(
        j->put("streams",
               {{"scsi0",
                 {{"state", "done"},
                  {"dst_path", "/dev/zvol/tank/web01-scsi0"},
                  {"result",
                   {{"bytes_sent", 1000}, {"zero_bytes_skipped", 2000}, {"digest", "ab12"}}}}}})
            .ok());
    ASSERT_TRUE(j->skip("guest-net", "no Linux root").ok());
    ASSERT_TRUE(j->put("source_stopped_epoch", 100.0).ok());
    ASSERT_TRUE(j->put("target_reachable_epoch", 142.5).ok());
    ASSERT_TRUE(j->set_state("succeeded").ok());
    ASSERT_TRUE(write_report(*j).ok());
    auto s = nlohmann::json::parse(read_all(dir->file("summary.json")));
    EXPECT_EQ(s["state"], "succeeded");
    EXPECT_EQ(s["source"]["name"], "web01");
    EXPECT_EQ(s["disks"][0]["bytes_sent"], 1000);
    EXPECT_TRUE(s["disks"][0]["verified"].get<bool>());
    EXPECT_TRUE(s["nics"][0]["mac_preserved"].get<bool>());
    EXPECT_EQ(s["nics"][0]["source_bridge"], "vmbr0");
    EXPECT_DOUBLE_EQ(s["downtime_seconds"].get<double>(), 42.5);
    EXPECT_EQ(s["network_prep"]["method"], "none");
    EXPECT_NE(s["warnings"].dump().find("not rewritten: no Linux root"), std::string::npos);
    std::string md = read_all(dir->file("summary.md"));
    EXPECT_NE(md.find("| downtime | 42.5 s"), std::string::npos) << md;
    EXPECT_NE(md.find("| scsi0 | data | 3.0 GiB |"), std::string::npos) << md;
    EXPECT_EQ(s["disks"][0]["size_bytes"], 3ull << 30);
    EXPECT_NE(md.find("| net0 | bc:24:11:00:00:01 | yes | vmbr0 → br0 | VIRTIO |"),
              std::string::npos)
        << md;
    EXPECT_NE(md.find("migrate-vm rollback " + dir->path() + " --start-source"), std::string::npos);
}

}  // namespace
}  // namespace vmlift

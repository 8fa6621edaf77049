// The in-guest rewrite through a guest agent. The "guest" is a folder on
// this machine and its agent runs commands here with the real sh, tar and
// base64, exactly as the engine hands them over (argv, stdin).
#include "engine/agent_net.h"

#include <sys/stat.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "tests/support/temp_dir.h"

namespace vmlift {
namespace {

namespace fs = std::filesystem;
using testing_support::read_all;
using testing_support::TempDir;
using testing_support::write_all;

constexpr const char* k_ubuntu = R"(network:
  ethernets:
    ens18:
      addresses:
      - 198.18.5.10/24
      routes:
      - to: default
        via: 198.18.5.1
  version: 2
)";

class LocalGuest : public GuestExec {
  public:
    std::string describe() const override { return "the test guest's agent"; }
    Result<GuestExecResult> exec(const std::vector<std::string>& argv,
                                 const std::string& input) override {
        calls.push_back(argv);
        inputs.push_back(input.size());
        if (fail_after >= 0 && static_cast<int>(calls.size()) > fail_after) {
            return Status(Code::unreachable, "QEMU guest agent is not running");
        }
        if (silent) {
            return GuestExecResult{0, "", "", false};  // an agent that runs nothing
        }
        ProcessSpec spec;
        spec.argv = argv;
        if (read_only && argv.size() > 4 && argv[2].find("staged=$2") != std::string::npos) {
            // What the guest's tar says when its root is read-only.
            spec.argv = {"sh", "-c",
                         "echo \"tar: etc/netplan/50-vmlift.yaml: Cannot open: "
                         "Read-only file system\" >&2; exit 5"};
        }
        spec.env = default_tool_env();
        auto r = run_captured(m_runner, spec, input);
        if (!r.ok()) {
            return r.status();
        }
        GuestExecResult out;
        out.exit_code = r->exit.code;
        out.out = r->out;
        out.err = r->err;
        return out;
    }
    std::vector<std::vector<std::string>> calls;
    std::vector<size_t> inputs;
    int fail_after = -1;
    bool read_only = false;
    bool silent = false;

  private:
    PosixProcessRunner m_runner;
};

class AgentNet : public ::testing::Test {
  protected:
    void SetUp() override {
        fs::create_directories(m_guest.file("etc/netplan"));
        fs::create_directories(m_guest.file("etc/cloud/cloud.cfg.d"));
        write_all(m_guest.file("etc/cloud/cloud.cfg"), "datasource_list: [NoCloud]\n");
        write_all(m_guest.file("etc/netplan/00-installer-config.yaml"), k_ubuntu);
        ::chmod(m_guest.file("etc/netplan/00-installer-config.yaml").c_str(), 0600);
    }
    AgentNetOptions options(const std::string& name = "w") {
        AgentNetOptions o;
        o.work_dir = m_work.file(name);
        o.guest_root = m_guest.path();
        o.record_undo = [this](const nlohmann::json& j) {
            undo.push_back(j);
            return Status();
        };
        return o;
    }
    std::vector<GuestNic> nics() {
        return {{"bc:24:11:aa:bb:01", "", Addressing::keep, {}, "", {}}};
    }

    TempDir m_guest;
    TempDir m_work;
    LocalGuest m_agent;
    PosixProcessRunner m_local;
    std::vector<nlohmann::json> undo;
};

TEST_F(AgentNet, RewritesTheRunningGuestsNetplanAndVerifiesIt) {
    auto r = rewrite_guest_net_via_agent(m_agent, m_local, nics(), options());
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_EQ((*r)["method_used"], "agent");
    EXPECT_EQ((*r)["method"], "netplan");
    EXPECT_EQ((*r)["verified"], true);
    const std::string ours = read_all(m_guest.file("etc/netplan/50-vmlift.yaml"));
    EXPECT_NE(ours.find("macaddress: \"bc:24:11:aa:bb:01\""), std::string::npos) << ours;
    EXPECT_NE(ours.find("set-name: ens18"), std::string::npos) << ours;
    EXPECT_NE(ours.find("198.18.5.10/24"), std::string::npos) << ours;
    EXPECT_FALSE(fs::exists(m_guest.file("etc/netplan/00-installer-config.yaml")));
    EXPECT_EQ(read_all(m_guest.file("etc/netplan/vmlift-backup/00-installer-config.yaml")),
              k_ubuntu);
    EXPECT_TRUE(fs::exists(m_guest.file("etc/cloud/cloud.cfg.d/99-disable-network-config.cfg")));
    EXPECT_TRUE(fs::exists(m_guest.file("etc/systemd/network/10-vmlift-ens18.link")));
    struct stat st {};
    ASSERT_EQ(::stat(m_guest.file("etc/netplan/50-vmlift.yaml").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    ASSERT_EQ(undo.size(), 1u);
    EXPECT_EQ(undo[0]["action"], "restore-guest-net");
    // Nothing is left staged in the guest's temp folder by name.
    for (const auto& argv : m_agent.calls) {
        for (const auto& a : argv) {
            EXPECT_EQ(a.find("198.18.5.10"), std::string::npos) << "config content in argv";
        }
    }
}

TEST_F(AgentNet, ASecondRunChangesNothing) {
    ASSERT_TRUE(rewrite_guest_net_via_agent(m_agent, m_local, nics(), options()).ok());
    const std::string ours = read_all(m_guest.file("etc/netplan/50-vmlift.yaml"));
    m_agent.calls.clear();
    undo.clear();
    auto r = rewrite_guest_net_via_agent(m_agent, m_local, nics(), options("w2"));
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_TRUE((*r)["files"].empty());
    EXPECT_EQ(m_agent.calls.size(), 1u) << "only the pull, no write";
    EXPECT_TRUE(undo.empty());
    EXPECT_EQ(read_all(m_guest.file("etc/netplan/50-vmlift.yaml")), ours);
}

TEST_F(AgentNet, LargeFilesAreStagedInPiecesThatFitTheAgentsInput) {
    std::string big = "# padding\n";
    while (big.size() < 20000) {
        big += "# " + std::string(70, 'x') + "\n";
    }
    write_all(m_guest.file("etc/netplan/00-installer-config.yaml"), big + k_ubuntu);
    auto o = options();
    o.max_input = 4096;
    auto r = rewrite_guest_net_via_agent(m_agent, m_local, nics(), o);
    ASSERT_TRUE(r.ok()) << r.status().message();
    size_t staged = 0;
    for (size_t i = 0; i < m_agent.inputs.size(); ++i) {
        EXPECT_LE(m_agent.inputs[i], 4096u);
        staged += m_agent.inputs[i] > 0 ? 1 : 0;
    }
    EXPECT_GE(staged, 7u) << "20 KiB of backup as base64 in 4 KiB pieces";
    EXPECT_EQ(read_all(m_guest.file("etc/netplan/vmlift-backup/00-installer-config.yaml")),
              big + k_ubuntu);
}

TEST_F(AgentNet, DryRunShowsTheDiffAndWritesNothing) {
    auto o = options();
    o.dry_run = true;
    auto r = rewrite_guest_net_via_agent(m_agent, m_local, nics(), o);
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_NE((*r)["diff"].get<std::string>().find("+++ b/etc/netplan/50-vmlift.yaml"),
              std::string::npos)
        << (*r)["diff"];
    EXPECT_FALSE(fs::exists(m_guest.file("etc/netplan/50-vmlift.yaml")));
    EXPECT_TRUE(fs::exists(m_guest.file("etc/netplan/00-installer-config.yaml")));
    EXPECT_EQ(m_agent.calls.size(), 1u);
    EXPECT_TRUE(undo.empty());
}

TEST_F(AgentNet, RestorePutsTheGuestBackAsItWas) {
    ASSERT_TRUE(rewrite_guest_net_via_agent(m_agent, m_local, nics(), options()).ok());
    ASSERT_EQ(undo.size(), 1u);
    auto s = restore_guest_net_via_agent(m_agent, m_local, undo[0]);
    ASSERT_TRUE(s.ok()) << s.message();
    EXPECT_EQ(read_all(m_guest.file("etc/netplan/00-installer-config.yaml")), k_ubuntu);
    EXPECT_FALSE(fs::exists(m_guest.file("etc/netplan/50-vmlift.yaml")));
    EXPECT_FALSE(fs::exists(m_guest.file("etc/netplan/vmlift-backup/00-installer-config.yaml")));
    EXPECT_FALSE(fs::exists(m_guest.file("etc/cloud/cloud.cfg.d/99-disable-network-config.cfg")));
    EXPECT_FALSE(fs::exists(m_guest.file("etc/systemd/network/10-vmlift-ens18.link")));
    struct stat st {};
    ASSERT_EQ(::stat(m_guest.file("etc/netplan/00-installer-config.yaml").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(AgentNet, ASymlinkInTheGuestsConfigIsRefusedBeforeAnyChange) {
    fs::create_symlink("/etc/passwd", m_guest.file("etc/netplan/01-evil.yaml"));
    auto r = rewrite_guest_net_via_agent(m_agent, m_local, nics(), options());
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Code::invalid_input);
    EXPECT_NE(r.status().message().find("/etc/netplan/01-evil.yaml"), std::string::npos)
        << r.status().message();
    EXPECT_NE(r.status().message().find("--net-prep offline"), std::string::npos);
    EXPECT_TRUE(undo.empty());
    EXPECT_TRUE(fs::exists(m_guest.file("etc/netplan/00-installer-config.yaml")));
}

TEST_F(AgentNet, AGuestWithoutNetworkConfigIsInvalidInput) {
    fs::remove_all(m_guest.file("etc"));
    fs::create_directories(m_guest.file("etc"));
    auto r = rewrite_guest_net_via_agent(m_agent, m_local, nics(), options());
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Code::invalid_input);
    EXPECT_NE(r.status().message().find("no network configuration"), std::string::npos)
        << r.status().message();
}

TEST_F(AgentNet, AnAgentThatStopsAnsweringMidwayLeavesTheOriginalsInPlace) {
    m_agent.fail_after = 2;  // the pull and mktemp work, staging fails
    auto r = rewrite_guest_net_via_agent(m_agent, m_local, nics(), options());
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Code::unreachable);
    EXPECT_NE(r.status().message().find("the test guest's agent"), std::string::npos)
        << r.status().message();
    EXPECT_TRUE(fs::exists(m_guest.file("etc/netplan/00-installer-config.yaml")));
    EXPECT_FALSE(fs::exists(m_guest.file("etc/netplan/50-vmlift.yaml")));
}

TEST_F(AgentNet, AnAgentThatAnswersNothingIsAClearError) {
    m_agent.silent = true;
    auto r = rewrite_guest_net_via_agent(m_agent, m_local, nics(), options());
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Code::remote_failed);
    EXPECT_NE(r.status().message().find("returned no output"), std::string::npos)
        << r.status().message();
    EXPECT_TRUE(undo.empty());
}

TEST_F(AgentNet, AFailingGuestCommandNamesItsError) {
    m_agent.read_only = true;  // the guest's root is mounted read-only
    auto r = rewrite_guest_net_via_agent(m_agent, m_local, nics(), options());
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Code::remote_failed) << r.status().message();
    EXPECT_NE(r.status().message().find("in the guest failed (exit 5): tar: "), std::string::npos)
        << r.status().message();
    EXPECT_TRUE(fs::exists(m_guest.file("etc/netplan/00-installer-config.yaml")))
        << "originals are removed only after the new files are in";
}

}  // namespace
}  // namespace vmlift

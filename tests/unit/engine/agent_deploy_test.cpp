// deploy_agent through a transport that runs the command line with
// /bin/sh -c here, as sshd would: one command installs, checks and runs the
// agent; stale run directories of killed controllers go on the way.
#include "engine/agent_deploy.h"

#include <sys/stat.h>
#include <utime.h>

#include <ctime>
#include <filesystem>

#include <gtest/gtest.h>

#include "tests/support/local_transport.h"
#include "tests/support/temp_dir.h"

namespace vmlift {
namespace {

namespace fs = std::filesystem;
using testing_support::LocalTransport;
using testing_support::read_all;
using testing_support::TempDir;
using testing_support::write_all;

class AgentDeploy : public ::testing::Test {
  protected:
    void SetUp() override {
        // A stand-in agent: a script that says how it was asked.
        m_agent = m_local.file("vmlift-agent");
        write_all(m_agent, "#!/bin/sh\necho \"agent $*\"\n");
        fs::create_directories(m_hosts.file("vmlift"));
    }
    void age(const std::string& path, int days) {
        struct utimbuf t {};
        t.actime = t.modtime = std::time(nullptr) - days * 86400;
        ASSERT_EQ(::utime(path.c_str(), &t), 0);
    }
    TempDir m_local;
    TempDir m_hosts;
    std::string m_agent;
    LocalTransport m_host;
};

TEST_F(AgentDeploy, InstallsChecksAndRunsTheAgentInOneCommand) {
    const std::string dir = m_hosts.file("vmlift/run-1");
    auto d = deploy_agent(m_host, m_agent, dir, {"info", "--path", "/dev/sda"});
    ASSERT_TRUE(d.ok()) << d.status().message();
    EXPECT_EQ(d->first_output, "agent info --path /dev/sda\n");
    EXPECT_EQ(d->path.rfind(dir + "/vmlift-agent-", 0), 0u) << d->path;
    EXPECT_EQ(read_all(d->path), read_all(m_agent));
    struct stat st {};
    ASSERT_EQ(::stat(dir.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    ASSERT_EQ(::stat(d->path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0755u);
    // Already there with the same SHA-256: left as it is.
    age(d->path, 1);
    ::stat(d->path.c_str(), &st);
    const auto before = st.st_mtime;
    auto again = deploy_agent(m_host, m_agent, dir);
    ASSERT_TRUE(again.ok()) << again.status().message();
    EXPECT_EQ(again->first_output, "agent --version\n");
    ::stat(d->path.c_str(), &st);
    EXPECT_EQ(st.st_mtime, before);
}

TEST_F(AgentDeploy, RemovesRunDirectoriesOfKilledControllersAfterAWeek) {
    const std::string stale = m_hosts.file("vmlift/run-old");
    const std::string recent = m_hosts.file("vmlift/run-recent");
    const std::string other = m_hosts.file("vmlift/state-abc.bin");
    fs::create_directories(stale);
    fs::create_directories(recent);
    write_all(stale + "/vmlift-agent-x", "old");
    write_all(other, "state");
    age(stale, 8);
    age(recent, 6);
    age(other, 30);
    auto d = deploy_agent(m_host, m_agent, m_hosts.file("vmlift/run-2"));
    ASSERT_TRUE(d.ok()) << d.status().message();
    EXPECT_FALSE(fs::exists(stale));
    EXPECT_TRUE(fs::exists(recent));
    EXPECT_TRUE(fs::exists(other)) << "only run-* directories are swept";
    remove_run_dir(m_host, m_hosts.file("vmlift/run-2"), {other});
    EXPECT_FALSE(fs::exists(m_hosts.file("vmlift/run-2")));
    EXPECT_FALSE(fs::exists(other));
}

TEST_F(AgentDeploy, WritesRunFilesAndDropsStalePathsInTheSameCommand) {
    const std::string dir = m_hosts.file("vmlift/run-4");
    const std::string state = m_hosts.file("vmlift/state-1.bin");
    const std::string kept = m_hosts.file("vmlift/state-2.bin");
    write_all(state, "old state");
    write_all(kept, "other disk");
    // Quotes, spaces, a leading dash and a newline survive the trip.
    const std::string line = "[198.18.1.11]:22 ssh-ed25519 AAAA 'x' \"y\" $HOME `id`\n-n\n";
    DeployExtras extras;
    extras.files.push_back({dir + "/known_hosts-1", line});
    extras.files.push_back({dir + "/empty", ""});
    extras.remove = {state, m_hosts.file("vmlift/missing.bin")};
    auto d = deploy_agent(m_host, m_agent, dir, {"info", "--path", "/dev/sdb"}, extras);
    ASSERT_TRUE(d.ok()) << d.status().message();
    EXPECT_EQ(d->first_output, "agent info --path /dev/sdb\n");
    EXPECT_EQ(read_all(dir + "/known_hosts-1"), line);
    EXPECT_EQ(read_all(dir + "/empty"), "");
    struct stat st {};
    ASSERT_EQ(::stat((dir + "/known_hosts-1").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    EXPECT_FALSE(fs::exists(state));
    EXPECT_TRUE(fs::exists(kept));

    // A file that cannot be written fails the deploy before the agent runs.
    DeployExtras bad;
    bad.files.push_back({dir + "/no-such-dir/known_hosts", "x"});
    auto failed = deploy_agent(m_host, m_agent, dir, {"info"}, bad);
    ASSERT_FALSE(failed.ok());
    EXPECT_EQ(failed.status().code(), Code::remote_failed);
    EXPECT_NE(failed.status().message().find("cannot write the run files"), std::string::npos)
        << failed.status().message();
}

TEST_F(AgentDeploy, AnAgentThatFailsIsNotMistakenForNoexec) {
    write_all(m_agent, "#!/bin/sh\necho 'no such path' >&2\nexit 3\n");
    auto d = deploy_agent(m_host, m_agent, m_hosts.file("vmlift/run-3"), {"info"});
    ASSERT_FALSE(d.ok());
    EXPECT_EQ(d.status().code(), Code::remote_failed);
    EXPECT_NE(d.status().message().find("no such path"), std::string::npos) << d.status().message();
    EXPECT_EQ(d.status().message().find("noexec"), std::string::npos);
}

}  // namespace
}  // namespace vmlift

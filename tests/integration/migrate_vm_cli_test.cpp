// The migrate-vm binary against real lab hosts: exit codes, output, secrets.
#include <signal.h>

#include <filesystem>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "engine/process.h"
#include "engine/status.h"
#include "tests/integration/lab.h"
#include "tests/support/temp_dir.h"

namespace vmlift {
namespace {

using testing_support::Lab;
using testing_support::read_file_or_empty;
using testing_support::TempDir;

class MigrateVmCli : public ::testing::Test {
  protected:
    void SetUp() override {
        std::string skip = Lab::skip_reason();
        if (!skip.empty()) {
            GTEST_SKIP() << skip;
        }
        auto lab = Lab::create({"src", "dst"});
        ASSERT_TRUE(lab.ok()) << lab.status().to_string();
        m_lab = std::move(*lab);
    }

    Result<Captured> run(std::vector<std::string> args, std::vector<std::string> extra_env = {}) {
        ProcessSpec spec;
        spec.argv = {VMLIFT_MIGRATE_VM};
        spec.argv.insert(spec.argv.end(), args.begin(), args.end());
        spec.env = default_tool_env();
        spec.env.push_back("HOME=" + m_home.path());
        spec.env.insert(spec.env.end(), extra_env.begin(), extra_env.end());
        spec.timeout = std::chrono::seconds(120);
        return run_captured(m_runner, spec);
    }

    std::unique_ptr<Lab> m_lab;
    TempDir m_home;
    TempDir m_runs;
    PosixProcessRunner m_runner;
};

TEST_F(MigrateVmCli, SshCheckVerifiesBothHostsAndWritesARunDirectory) {
    auto r = run({"--json", "--known-hosts", m_lab->known_hosts(), "--identity-file",
                  m_lab->client_key(), "--run-dir", m_runs.path(), "ssh-check", "--host",
                  m_lab->ip("src"), "--host", m_lab->ip("dst"), "--bytes", "8388608"});
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->exit.code, 0) << r->err;
    // stdout is JSON lines: progress, then the summary last.
    std::string last = r->out.substr(r->out.rfind('\n', r->out.size() - 2) + 1);
    auto summary = nlohmann::json::parse(last);
    EXPECT_EQ(summary["ok"], true);
    ASSERT_EQ(summary["hosts"].size(), 2u);
    for (const auto& host : summary["hosts"]) {
        EXPECT_EQ(host["bytes"], 8388608);
        EXPECT_EQ(host["digest_sent"], host["digest_received"]);
        EXPECT_NE(host["uname"].get<std::string>().find("Linux"), std::string::npos);
    }
    std::string run_dir = summary["run_dir"];
    EXPECT_EQ(read_file_or_empty(run_dir + "/status"), "succeeded\n");
    EXPECT_NE(read_file_or_empty(run_dir + "/log.txt").find("connected to root@"),
              std::string::npos);
    EXPECT_NE(r->out.find("\"event\":\"progress\""), std::string::npos);
}

TEST_F(MigrateVmCli, ChangedHostKeyExitsWithTheHostKeyCodeAndOneLine) {
    TempDir dir;
    std::string beta = read_file_or_empty(m_lab->dir() + "/hosts/dst/ssh_host_ed25519_key.pub");
    testing_support::write_all(dir.file("kh"),
                               m_lab->ip("src") + " " + beta.substr(0, beta.rfind(' ')) + "\n");
    for (const char* backend : {"openssh", "libssh2"}) {
        auto r = run({"--known-hosts", dir.file("kh"), "--identity-file", m_lab->client_key(),
                      "--ssh-backend", backend, "--run-dir", m_runs.path(), "ssh-check", "--host",
                      m_lab->ip("src")});
        ASSERT_TRUE(r.ok());
        EXPECT_EQ(r->exit.code, exit_code_for(Code::host_key)) << backend << ": " << r->err;
        EXPECT_NE(r->err.find("vmlift: error: host key of " + m_lab->ip("src") +
                              " does not match the one in " + dir.file("kh")),
                  std::string::npos)
            << r->err;
    }
}

TEST_F(MigrateVmCli, PasswordFromFileNeverReachesLogsOrOutput) {
    std::string password = m_lab->password();
    ASSERT_FALSE(password.empty());
    for (const char* backend : {"openssh", "libssh2"}) {
        auto r = run({"--json", "--known-hosts", m_lab->known_hosts(), "--password-file",
                      m_lab->password_file(), "--ssh-backend", backend, "--run-dir", m_runs.path(),
                      "-v", "ssh-check", "--host", m_lab->ip("dst"), "--bytes", "1024"});
        ASSERT_TRUE(r.ok());
        EXPECT_EQ(r->exit.code, 0) << backend << ": " << r->err;
        EXPECT_EQ(r->out.find(password), std::string::npos);
        EXPECT_EQ(r->err.find(password), std::string::npos);
    }
    for (const auto& e : std::filesystem::recursive_directory_iterator(m_runs.path())) {
        if (e.is_regular_file()) {
            EXPECT_EQ(read_file_or_empty(e.path()).find(password), std::string::npos) << e.path();
        }
    }
}

// A controller killed with SIGKILL must not leave ssh master processes behind.
TEST_F(MigrateVmCli, KilledControllerLeavesNoSshProcesses) {
    auto count_ssh_to = [](const std::string& ip) {
        int n = 0;
        for (const auto& e : std::filesystem::directory_iterator("/proc")) {
            std::string cmdline = read_file_or_empty(e.path().string() + "/cmdline");
            if (cmdline.rfind(std::string("ssh") + '\0', 0) == 0 &&
                cmdline.find(ip) != std::string::npos) {
                ++n;
            }
        }
        return n;
    };
    const std::string ip = m_lab->ip("src");
    ASSERT_EQ(count_ssh_to(ip), 0);
    ProcessSpec spec;
    spec.argv = {VMLIFT_MIGRATE_VM,
                 "--known-hosts",
                 m_lab->known_hosts(),
                 "--identity-file",
                 m_lab->client_key(),
                 "--run-dir",
                 m_runs.path(),
                 "ssh-check",
                 "--host",
                 ip,
                 "--bytes",
                 "100000000000"};
    spec.env = default_tool_env();
    spec.env.push_back("HOME=" + m_home.path());
    auto proc = m_runner.start(spec);
    ASSERT_TRUE(proc.ok());
    for (int i = 0; i < 100 && count_ssh_to(ip) < 2; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ASSERT_GE(count_ssh_to(ip), 1) << "the check never started streaming";
    ::kill((*proc)->pid(), SIGKILL);
    (*proc)->wait();
    int left = count_ssh_to(ip);
    for (int i = 0; i < 100 && left > 0; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        left = count_ssh_to(ip);
    }
    EXPECT_EQ(left, 0) << "ssh processes outlived the killed controller";
}

TEST_F(MigrateVmCli, UsageErrorsExitTwo) {
    auto r = run({"ssh-check"});
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->exit.code, 2);
    EXPECT_NE(r->err.find("--host"), std::string::npos) << r->err;
    r = run({"--ssh-backend", "telnet", "ssh-check", "--host", "x"});
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->exit.code, 2);
}

TEST_F(MigrateVmCli, UnreadablePasswordFileIsAnInputError) {
    auto r = run({"--password-file", "/nonexistent/pw", "--known-hosts", m_lab->known_hosts(),
                  "--run-dir", m_runs.path(), "ssh-check", "--host", m_lab->ip("src")});
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->exit.code, exit_code_for(Code::invalid_input)) << r->err;
    EXPECT_NE(r->err.find("--password-file /nonexistent/pw cannot be read"), std::string::npos)
        << r->err;
}

}  // namespace
}  // namespace vmlift

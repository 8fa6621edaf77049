#include <algorithm>
#include <fstream>

#include <gtest/gtest.h>

#include "connectors/ssh/openssh_transport.h"

namespace vmlift {
namespace {

SshOptions base_options() {
    SshOptions o;
    o.target = {"198.18.7.10", 2222, "migrator"};
    o.known_hosts_file = "/etc/vmlift/known_hosts";
    o.askpass_program = "/usr/lib/vmlift/vmlift-askpass";
    return o;
}

bool has_option(const std::vector<std::string>& argv, const std::string& value) {
    for (size_t i = 0; i + 1 < argv.size(); ++i) {
        if (argv[i] == "-o" && argv[i + 1] == value) {
            return true;
        }
    }
    return false;
}

FakeProcessRunner unused_runner() {
    return FakeProcessRunner([](const ProcessSpec&, RunIo) -> Result<ExitStatus> {
        return Status(Code::internal, "not expected");
    });
}

TEST(OpenSshArgv, StrictPolicyPinsKnownHostsAndNeverDisablesChecking) {
    auto runner = unused_runner();
    OpenSshTransport t(base_options(), runner);
    auto argv = t.client_argv("cat");
    EXPECT_TRUE(has_option(argv, "StrictHostKeyChecking=yes"));
    EXPECT_TRUE(has_option(argv, "UserKnownHostsFile=/etc/vmlift/known_hosts"));
    EXPECT_TRUE(has_option(argv, "GlobalKnownHostsFile=/dev/null"));
    EXPECT_TRUE(has_option(argv, "UpdateHostKeys=no"));
    EXPECT_TRUE(has_option(argv, "BatchMode=yes"));
    EXPECT_TRUE(has_option(argv, "PasswordAuthentication=no"));
    EXPECT_FALSE(has_option(argv, "StrictHostKeyChecking=no"));
    // Host and command come last, after "--".
    ASSERT_GE(argv.size(), 3u);
    EXPECT_EQ(argv[argv.size() - 3], "--");
    EXPECT_EQ(argv[argv.size() - 2], "198.18.7.10");
    EXPECT_EQ(argv.back(), "cat");
    EXPECT_NE(std::find(argv.begin(), argv.end(), "2222"), argv.end());
    EXPECT_NE(std::find(argv.begin(), argv.end(), "migrator"), argv.end());
}

TEST(OpenSshArgv, AcceptNewAndInsecureAreExplicit) {
    auto runner = unused_runner();
    SshOptions o = base_options();
    o.host_key_policy = HostKeyPolicy::accept_new;
    EXPECT_TRUE(has_option(OpenSshTransport(o, runner).client_argv("x"),
                           "StrictHostKeyChecking=accept-new"));
    o.host_key_policy = HostKeyPolicy::insecure_no_check;
    auto argv = OpenSshTransport(o, runner).client_argv("x");
    EXPECT_TRUE(has_option(argv, "StrictHostKeyChecking=no"));
    EXPECT_TRUE(has_option(argv, "UserKnownHostsFile=/dev/null"));
}

TEST(OpenSshArgv, SecretsNeverAppearInArgv) {
    auto runner = unused_runner();
    SshOptions o = base_options();
    o.auth.password = "pw-hunter2";
    o.auth.passphrase = "pp-hunter3";
    o.auth.identity_file = "/root/.ssh/id_ed25519";
    OpenSshTransport t(o, runner);
    for (const auto& argv : {t.client_argv("cat"), t.master_argv()}) {
        for (const auto& a : argv) {
            EXPECT_EQ(a.find("hunter"), std::string::npos) << a;
        }
        EXPECT_TRUE(has_option(argv, "PasswordAuthentication=yes"));
        EXPECT_TRUE(has_option(argv, "IdentitiesOnly=yes"));
    }
}

// The fake plays an ssh master that fails the way OpenSSH does; connect()
// must turn its stderr into the shared one-line errors.
Status connect_with_master_stderr(const std::string& stderr_text) {
    FakeProcessRunner runner([&](const ProcessSpec& spec, RunIo) -> Result<ExitStatus> {
        std::ofstream(spec.stderr_redirect.path) << stderr_text;
        return ExitStatus{ExitStatus::Kind::exited, 255, 0, false};
    });
    OpenSshTransport t(base_options(), runner);
    return t.connect();
}

TEST(OpenSshConnect, ClassifiesMasterFailures) {
    Status changed = connect_with_master_stderr(
        "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n"
        "@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n"
        "Offending ED25519 key in /etc/vmlift/known_hosts:1\n"
        "Host key verification failed.\n");
    EXPECT_EQ(changed.code(), Code::host_key);
    EXPECT_NE(changed.message().find("[198.18.7.10]:2222 does not match the one in "
                                     "/etc/vmlift/known_hosts"),
              std::string::npos)
        << changed.message();

    Status unknown = connect_with_master_stderr(
        "No ED25519 host key is known for [198.18.7.10]:2222 and you have requested strict "
        "checking.\nHost key verification failed.\n");
    EXPECT_EQ(unknown.code(), Code::host_key);
    EXPECT_NE(unknown.message().find("no host key for"), std::string::npos);

    Status denied = connect_with_master_stderr(
        "migrator@198.18.7.10: Permission denied (publickey,password).\n");
    EXPECT_EQ(denied.code(), Code::auth_failed);
    EXPECT_NE(denied.message().find("migrator@198.18.7.10:2222"), std::string::npos);

    Status timeout = connect_with_master_stderr(
        "ssh: connect to host 198.18.7.10 port 2222: Connection timed out\n");
    EXPECT_EQ(timeout.code(), Code::timeout);

    Status refused = connect_with_master_stderr(
        "ssh: connect to host 198.18.7.10 port 2222: Connection refused\n");
    EXPECT_EQ(refused.code(), Code::unreachable);
    EXPECT_NE(refused.message().find("Connection refused"), std::string::npos);
}

}  // namespace
}  // namespace vmlift

// The one fixture integration tests use to get real SSH hosts.
//
// Lab::create() runs contrib/lab/lab.sh to build network-namespace hosts
// with their own sshd (see that script for the layout); the destructor
// tears everything down, and labs left by a crashed test are collected by
// the next create. skip_reason() says why a lab cannot be built here (not
// root, a tool missing), for GTEST_SKIP.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/process.h"
#include "engine/transport.h"

namespace vmlift::testing_support {

class Lab {
  public:
    static std::string skip_reason();
    static Result<std::unique_ptr<Lab>> create(const std::vector<std::string>& hosts);
    ~Lab();
    Lab(const Lab&) = delete;
    Lab& operator=(const Lab&) = delete;

    const std::string& dir() const { return m_dir; }
    std::string ip(const std::string& host) const;
    std::string disks(const std::string& host) const;
    std::string controller_ip() const { return value("CONTROLLER_IP"); }

    std::string client_key() const { return m_dir + "/client/id_ed25519"; }
    std::string passphrase_key() const { return m_dir + "/client/id_ed25519_pp"; }
    std::string passphrase_file() const { return m_dir + "/client/passphrase"; }
    std::string wrong_key() const { return m_dir + "/client/wrong_key"; }
    std::string password_file() const { return m_dir + "/client/password"; }
    std::string known_hosts() const { return m_dir + "/client/known_hosts"; }
    // The secrets themselves, trailing newline stripped as the front end does.
    std::string passphrase() const { return secret_in(passphrase_file()); }
    std::string password() const { return secret_in(password_file()); }

    Status isolate(const std::string& a, const std::string& b) { return lab({"isolate", a, b}); }
    Status join(const std::string& a, const std::string& b) { return lab({"join", a, b}); }
    Status mute(const std::string& host) { return lab({"mute", host}); }
    Status unmute(const std::string& host) { return lab({"unmute", host}); }
    // Kills the host's SSH sessions; its sshd keeps listening.
    Status drop(const std::string& host) { return lab({"drop", host}); }
    // Runs argv as on the host: its network and mount namespaces.
    Result<Captured> exec(const std::string& host, const std::vector<std::string>& argv);

    // Key-authenticated options for `host` with strict host key checking.
    SshOptions ssh_options(const std::string& host) const;

  private:
    explicit Lab(std::string dir) : m_dir(std::move(dir)) {}
    Status lab(std::vector<std::string> args);
    std::string value(const std::string& key) const;
    static std::string secret_in(const std::string& path);

    std::string m_dir;
    std::map<std::string, std::string> m_env;
    PosixProcessRunner m_runner;
};

std::string read_file_or_empty(const std::string& path);

}  // namespace vmlift::testing_support

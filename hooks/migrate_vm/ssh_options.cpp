#include "hooks/migrate_vm/ssh_options.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace vmlift::cli {

Environment Environment::from_process() {
    Environment env;
    auto get = [](const char* name) -> std::optional<std::string> {
        const char* v = std::getenv(name);
        return v ? std::optional<std::string>(v) : std::nullopt;
    };
    env.home = get("HOME").value_or("/root");
    env.path = get("PATH").value_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    env.ssh_auth_sock = get("SSH_AUTH_SOCK").value_or("");
    env.ssh_passphrase = get("VMLIFT_SSH_PASSPHRASE");
    env.ssh_password = get("VMLIFT_SSH_PASSWORD");
    env.pve_token_secret = get("VMLIFT_PVE_TOKEN_SECRET");
    env.pve_password = get("VMLIFT_PVE_PASSWORD");
    env.truenas_api_key = get("VMLIFT_TRUENAS_API_KEY");
    char self[4096];
    ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        std::string path(self, static_cast<size_t>(n));
        env.self_dir = path.substr(0, path.rfind('/'));
    }
    return env;
}

void add_global_options(CLI::App& app, GlobalOptions& o) {
    app.add_option("--ssh-user", o.ssh_user, "SSH user on the hosts")->capture_default_str();
    app.add_option("--ssh-port", o.ssh_port, "SSH port on the hosts")
        ->check(CLI::Range(1, 65535))
        ->capture_default_str();
    app.add_option("--identity-file", o.identity_file, "private key for SSH (default: ssh-agent)");
    app.add_option("--known-hosts", o.known_hosts,
                   "known_hosts file (default: ~/.ssh/known_hosts)");
    app.add_option("--host-key-policy", o.host_key_policy,
                   "strict | accept-new | insecure-no-check")
        ->check(CLI::IsMember({"strict", "accept-new", "insecure-no-check"}))
        ->capture_default_str();
    app.add_option("--migration-key-path", o.migration_key_path,
                   "private key on the source host for direct host-to-host copies");
    app.add_option("--connect-timeout-sec", o.connect_timeout_sec, "SSH connect timeout")
        ->check(CLI::Range(1, 3600))
        ->capture_default_str();
    app.add_option("--task-timeout-sec", o.task_timeout_sec, "limit for one remote task")
        ->check(CLI::Range(1, 7 * 24 * 3600))
        ->capture_default_str();
    app.add_option("--keepalive-sec", o.keepalive_sec,
                   "SSH keepalive interval; 4 missed answers mean the link is lost")
        ->check(CLI::Range(1, 3600))
        ->capture_default_str();
    app.add_option("--ssh-backend", o.ssh_backend, "openssh | libssh2")
        ->check(CLI::IsMember({"openssh", "libssh2"}))
        ->capture_default_str();
    app.add_option("--passphrase-file", o.passphrase_file,
                   "file holding the identity file's passphrase (or VMLIFT_SSH_PASSPHRASE)");
    app.add_option("--password-file", o.password_file,
                   "file holding the SSH password (or VMLIFT_SSH_PASSWORD)");
    app.add_option("--ssh-config", o.ssh_config,
                   "ssh_config file for the OpenSSH backend (default: none is read)");
    app.add_option("--run-dir", o.run_dir, "where run directories are created")
        ->capture_default_str();
    app.add_flag("--json", o.json, "machine output: JSON lines on stdout");
    app.add_flag("-v,--verbose", o.verbose, "show debug messages");
}

Result<std::string> read_secret_file(const std::string& path, const char* option,
                                     Redactor& redactor) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return Status(Code::invalid_input, std::string(option) + " " + path + " cannot be read: " +
                                               std::strerror(errno) + "; give a readable file");
    }
    std::stringstream buf;
    buf << in.rdbuf();
    std::string secret = buf.str();
    if (!secret.empty() && secret.back() == '\n') {
        secret.pop_back();
    }
    if (!secret.empty() && secret.back() == '\r') {
        secret.pop_back();
    }
    if (secret.empty()) {
        return Status(Code::invalid_input, std::string(option) + " " + path + " is empty");
    }
    redactor.add_secret(secret);
    return secret;
}

Result<SshOptions> build_ssh_options(const GlobalOptions& o, const Environment& env,
                                     const std::string& host, Redactor& redactor) {
    SshOptions s;
    s.target.host = host;
    s.target.port = o.ssh_port;
    s.target.user = o.ssh_user;
    if (host.empty() || host.front() == '-') {
        return Status(Code::invalid_input, "host '" + host + "' is not a host name or address");
    }
    s.known_hosts_file = o.known_hosts.empty() ? env.home + "/.ssh/known_hosts" : o.known_hosts;
    auto policy = parse_host_key_policy(o.host_key_policy);
    if (!policy.ok()) {
        return policy.status();
    }
    s.host_key_policy = *policy;
    s.connect_timeout = std::chrono::seconds(o.connect_timeout_sec);
    s.keepalive_interval = std::chrono::seconds(o.keepalive_sec);
    s.auth.identity_file = o.identity_file;
    if (!o.identity_file.empty() && ::access(o.identity_file.c_str(), R_OK) != 0) {
        return Status(Code::invalid_input, "--identity-file " + o.identity_file +
                                               " cannot be read: " + std::strerror(errno));
    }
    s.auth.agent_socket = env.ssh_auth_sock;
    if (!o.passphrase_file.empty()) {
        auto secret = read_secret_file(o.passphrase_file, "--passphrase-file", redactor);
        if (!secret.ok()) {
            return secret.status();
        }
        s.auth.passphrase = *secret;
    } else if (env.ssh_passphrase) {
        redactor.add_secret(*env.ssh_passphrase);
        s.auth.passphrase = env.ssh_passphrase;
    }
    if (!o.password_file.empty()) {
        auto secret = read_secret_file(o.password_file, "--password-file", redactor);
        if (!secret.ok()) {
            return secret.status();
        }
        s.auth.password = *secret;
    } else if (env.ssh_password) {
        redactor.add_secret(*env.ssh_password);
        s.auth.password = env.ssh_password;
    }
    s.ssh_config_file = o.ssh_config;
    s.askpass_program = env.self_dir + "/vmlift-askpass";
    s.env = {"PATH=" + env.path, "LC_ALL=C", "HOME=" + env.home};
    return s;
}

}  // namespace vmlift::cli

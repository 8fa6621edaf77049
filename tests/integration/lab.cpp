#include "tests/integration/lab.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace vmlift::testing_support {
namespace {
const std::string k_script = std::string(VMLIFT_SOURCE_DIR) + "/contrib/lab/lab.sh";
}

std::string read_file_or_empty(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream buf;
    buf << in.rdbuf();
    return buf.str();
}

std::string Lab::skip_reason() {
    if (::geteuid() != 0) {
        return "the SSH lab needs root (network namespaces, sshd); run the tests as root";
    }
    for (const char* tool :
         {"ip", "sshd", "ssh", "ssh-keygen", "ssh-agent", "ssh-add", "unshare", "openssl", "ss"}) {
        if (!resolve_program(tool, default_tool_env()).ok()) {
            return std::string("the SSH lab needs '") + tool +
                   "'; install it with contrib/install-deps.sh";
        }
    }
    return {};
}

Result<std::unique_ptr<Lab>> Lab::create(const std::vector<std::string>& hosts) {
    char tmpl[] = "/tmp/vmlift-lab-XXXXXX";
    if (!::mkdtemp(tmpl)) {
        return Status(Code::io_error, "mkdtemp failed");
    }
    std::unique_ptr<Lab> lab(new Lab(tmpl));
    std::vector<std::string> args = {"create", "--owner-pid", std::to_string(::getpid())};
    args.insert(args.end(), hosts.begin(), hosts.end());
    VMLIFT_RETURN_IF_ERROR(lab->lab(args));
    std::ifstream in(lab->m_dir + "/lab.env");
    std::string line;
    while (std::getline(in, line)) {
        size_t eq = line.find('=');
        if (eq == std::string::npos) {
            continue;
        }
        std::string value = line.substr(eq + 1);
        if (value.size() >= 2 && value.front() == '"') {
            value = value.substr(1, value.size() - 2);
        }
        lab->m_env[line.substr(0, eq)] = value;
    }
    return lab;
}

Lab::~Lab() {
    (void)lab({"destroy"});
    std::error_code ec;
    std::filesystem::remove_all(m_dir, ec);
}

Status Lab::lab(std::vector<std::string> args) {
    ProcessSpec spec;
    spec.argv = {"/bin/bash", k_script, args.front(), "--dir", m_dir};
    spec.argv.insert(spec.argv.end(), args.begin() + 1, args.end());
    spec.env = default_tool_env();
    spec.timeout = std::chrono::seconds(60);
    auto r = run_captured(m_runner, spec);
    if (!r.ok()) {
        return r.status();
    }
    if (!r->exit.success()) {
        return Status(Code::internal,
                      "lab.sh " + args.front() + " failed (" + r->exit.describe() + "): " + r->err);
    }
    return {};
}

std::string Lab::value(const std::string& key) const {
    auto it = m_env.find(key);
    return it == m_env.end() ? std::string() : it->second;
}

std::string Lab::secret_in(const std::string& path) {
    std::string secret = read_file_or_empty(path);
    while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) {
        secret.pop_back();
    }
    return secret;
}

std::string Lab::ip(const std::string& host) const {
    return value("HOST_" + host + "_IP");
}

std::string Lab::disks(const std::string& host) const {
    return value("HOST_" + host + "_DISKS");
}

Result<Captured> Lab::exec(const std::string& host, const std::vector<std::string>& argv) {
    ProcessSpec spec;
    spec.argv = {"/bin/bash", k_script, "exec", "--dir", m_dir, host, "--"};
    spec.argv.insert(spec.argv.end(), argv.begin(), argv.end());
    spec.env = default_tool_env();
    spec.timeout = std::chrono::seconds(120);
    return run_captured(m_runner, spec);
}

SshOptions Lab::ssh_options(const std::string& host) const {
    SshOptions o;
    o.target.host = ip(host);
    o.target.port = 22;
    o.target.user = "root";
    o.auth.identity_file = client_key();
    o.known_hosts_file = known_hosts();
    o.host_key_policy = HostKeyPolicy::strict;
    o.connect_timeout = std::chrono::seconds(10);
    o.askpass_program = VMLIFT_ASKPASS;
    o.env = default_tool_env();
    return o;
}

}  // namespace vmlift::testing_support

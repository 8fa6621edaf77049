#include "engine/transport.h"

#include "engine/quote.h"

namespace vmlift {

const char* host_key_policy_name(HostKeyPolicy policy) {
    switch (policy) {
        case HostKeyPolicy::strict:
            return "strict";
        case HostKeyPolicy::accept_new:
            return "accept-new";
        case HostKeyPolicy::insecure_no_check:
            return "insecure-no-check";
    }
    return "strict";
}

Result<HostKeyPolicy> parse_host_key_policy(const std::string& text) {
    for (auto p :
         {HostKeyPolicy::strict, HostKeyPolicy::accept_new, HostKeyPolicy::insecure_no_check}) {
        if (text == host_key_policy_name(p)) {
            return p;
        }
    }
    return Status(Code::invalid_input, "unknown host key policy '" + text +
                                           "'; use strict, accept-new or insecure-no-check");
}

const char* ssh_backend_name(SshBackend backend) {
    return backend == SshBackend::openssh ? "openssh" : "libssh2";
}

Result<SshBackend> parse_ssh_backend(const std::string& text) {
    if (text == "openssh") {
        return SshBackend::openssh;
    }
    if (text == "libssh2") {
        return SshBackend::libssh2;
    }
    return Status(Code::invalid_input,
                  "unknown SSH backend '" + text + "'; use openssh or libssh2");
}

std::string SshTarget::describe() const {
    return user + "@" + host + ":" + std::to_string(port);
}

std::string SshTarget::known_hosts_name() const {
    return port == 22 ? host : "[" + host + "]:" + std::to_string(port);
}

Result<Captured> exec_captured(SshTransport& transport, const std::vector<std::string>& argv,
                               const std::string& input, ExecOptions options) {
    StringSource in(input);
    LimitedStringSink out(64 << 20);
    LimitedStringSink err(1 << 20);
    auto exit = transport.exec(argv, RunIo{&in, &out, &err}, options);
    if (!exit.ok()) {
        return exit.status();
    }
    return Captured{*exit, out.str(), err.str()};
}

Result<std::string> exec_checked(SshTransport& transport, const std::vector<std::string>& argv,
                                 const std::string& input, ExecOptions options) {
    auto captured = exec_captured(transport, argv, input, options);
    if (!captured.ok()) {
        return captured.status();
    }
    if (!captured->exit.success()) {
        std::string why = last_line(captured->err);
        return Status(Code::remote_failed,
                      "`" + argv.front() + "` on " + transport.target().describe() + " failed (" +
                          captured->exit.describe() + ")" + (why.empty() ? "" : ": " + why));
    }
    return std::move(captured->out);
}

Status host_key_changed_error(const SshTarget& target, const std::string& known_hosts_file) {
    return Status(Code::host_key,
                  "host key of " + target.known_hosts_name() + " does not match the one in " +
                      known_hosts_file + "; refusing to connect. If the host was reinstalled, " +
                      "verify its new key and remove the old one with: ssh-keygen -f " +
                      known_hosts_file + " -R " + shell_quote(target.known_hosts_name()));
}

Status host_key_unknown_error(const SshTarget& target, const std::string& known_hosts_file) {
    return Status(Code::host_key,
                  "no host key for " + target.known_hosts_name() + " in " + known_hosts_file +
                      "; add the verified key to that file or pass --host-key-policy accept-new");
}

Status auth_failed_error(const SshTarget& target, const std::string& detail) {
    return Status(Code::auth_failed, "authentication as " + target.describe() +
                                         " failed: " + detail +
                                         "; check --identity-file, the key's passphrase, "
                                         "ssh-agent or the password file, and the host's "
                                         "authorized_keys");
}

Status connect_timeout_error(const SshTarget& target, std::chrono::seconds timeout) {
    return Status(Code::timeout, "cannot connect to " + target.describe() + ": no answer within " +
                                     std::to_string(timeout.count()) +
                                     " s; check the address, routing and firewall, or raise "
                                     "--connect-timeout-sec");
}

Status unreachable_error(const SshTarget& target, const std::string& reason) {
    return Status(Code::unreachable, "cannot connect to " + target.describe() + ": " + reason +
                                         "; check that sshd runs there and the address and "
                                         "port are right");
}

Status connection_lost_error(const SshTarget& target, const std::string& reason) {
    return Status(Code::connection_lost, "SSH connection to " + target.describe() + " lost: " +
                                             reason + "; check the network, then resume the run");
}

}  // namespace vmlift

#include "engine/direct_route.h"

#include <cstdio>

#include <xxhash.h>

namespace vmlift {

std::string DirectRoute::host_for_src() const {
    return m_req.dst_host_for_src.empty() ? m_dst.target().host : m_req.dst_host_for_src;
}

std::vector<std::string> DirectRoute::ssh_argv() const {
    const SshTarget& t = m_dst.target();
    std::vector<std::string> argv = {
        "ssh",
        "-F",
        "/dev/null",
        "-T",
        "-p",
        std::to_string(t.port),
        "-l",
        t.user,
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "UserKnownHostsFile=" + m_known_hosts,
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "UpdateHostKeys=no",
        "-o",
        "ConnectTimeout=" + std::to_string(m_req.connect_timeout.count()),
        "-o",
        "ServerAliveInterval=15",
        "-o",
        "ServerAliveCountMax=4",
        "-o",
        "Compression=no",
        "-o",
        "Ciphers=aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com,"
        "aes128-ctr",
    };
    if (!m_req.migration_key_path.empty()) {
        argv.insert(argv.end(), {"-i", m_req.migration_key_path, "-o", "IdentitiesOnly=yes"});
    }
    argv.insert(argv.end(), {"--", host_for_src()});
    return argv;
}

std::optional<std::pair<std::string, std::string>> DirectRoute::known_hosts_file() const {
    if (m_req.mode == StreamMode::relay || m_req.dst_known_hosts_line.empty()) {
        return std::nullopt;
    }
    SshTarget named = m_dst.target();
    named.host = host_for_src();
    char name[32];
    std::snprintf(
        name, sizeof name, "%016llx",
        static_cast<unsigned long long>(XXH3_64bits(named.host.data(), named.host.size())));
    return std::make_pair(m_dir + "/known_hosts-" + name,
                          named.known_hosts_name() + " " + m_req.dst_known_hosts_line + "\n");
}

Status DirectRoute::prepare() {
    if (!m_known_hosts.empty()) {
        return {};
    }
    if (m_req.dst_known_hosts_line.empty()) {
        return Status(Code::host_key,
                      "direct mode needs the destination's host key, and the controller's "
                      "known_hosts has none for " +
                          m_dst.target().known_hosts_name() + "; add it or use --mode relay");
    }
    auto file = known_hosts_file();
    if (!file) {
        return {};
    }
    auto written = exec_checked(
        m_src,
        {"sh", "-c", "umask 077; mkdir -p \"$2\" && cat > \"$1\"", "vmlift-kh", file->first, m_dir},
        file->second);
    if (!written.ok()) {
        return written.status();
    }
    m_known_hosts = file->first;
    return {};
}

Status DirectRoute::choose(StreamResult& result) {
    if (m_req.mode == StreamMode::relay) {
        result.mode = StreamMode::relay;
        result.mode_reason = "requested with --mode relay";
        return {};
    }
    Status prepared = prepare();
    if (m_req.mode == StreamMode::direct) {
        VMLIFT_RETURN_IF_ERROR(prepared);
        result.mode = StreamMode::direct;
        result.mode_reason = "requested with --mode direct";
        return {};
    }
    if (!prepared.ok()) {
        result.mode = StreamMode::relay;
        result.mode_reason = prepared.message();
    } else {
        auto probe_argv = ssh_argv();
        for (auto& a : probe_argv) {
            if (a.rfind("ConnectTimeout=", 0) == 0) {
                a = "ConnectTimeout=" + std::to_string(m_req.probe_timeout.count());
            }
        }
        probe_argv.push_back("true");
        auto probe = exec_captured(m_src, probe_argv, {},
                                   ExecOptions{m_req.probe_timeout + std::chrono::seconds(10)});
        if (probe.ok() && probe->exit.success()) {
            result.mode = StreamMode::direct;
            result.mode_reason = "the source reached the destination over SSH";
        } else {
            result.mode = StreamMode::relay;
            result.mode_reason = "the source cannot reach the destination over SSH (" +
                                 (probe.ok() ? last_line(probe->err) : probe.status().message()) +
                                 "); relaying through the controller";
        }
    }
    m_log.info("stream",
               std::string("mode ") + stream_mode_name(result.mode) + ": " + result.mode_reason);
    return {};
}

void DirectRoute::cleanup() {
    if (!m_known_hosts.empty()) {
        (void)exec_captured(m_src, {"rm", "-f", m_known_hosts});
        m_known_hosts.clear();
    }
}

}  // namespace vmlift

#include "connectors/proxmox/pve_source.h"

#include <algorithm>
#include <regex>
#include <set>

#include "connectors/proxmox/qemu_config.h"
#include "connectors/proxmox/storage_cfg.h"

#include "engine/json_text.h"

namespace vmlift::proxmox {
namespace {

constexpr const char* k_tag = "vmlift-migrated";
constexpr const char* k_note_prefix = "vmlift: ";

std::vector<std::string> split_tags(const std::string& tags) {
    std::vector<std::string> out;
    std::string cur;
    for (char c : tags) {
        if (c == ';' || c == ',' || c == ' ') {
            if (!cur.empty()) {
                out.push_back(cur);
            }
            cur.clear();
        } else {
            cur += c;
        }
    }
    if (!cur.empty()) {
        out.push_back(cur);
    }
    return out;
}

std::string join_tags(const std::vector<std::string>& tags) {
    std::string out;
    for (const auto& t : tags) {
        out += (out.empty() ? "" : ";") + t;
    }
    return out;
}

}  // namespace

Result<PveUrl> parse_pve_url(const std::string& url) {
    static const std::regex re(
        R"(^pve://(?:([^@/]+)@)?([^:/@]+|\[[0-9a-fA-F:]+\])(?::(\d+))?/([^/]+)/?$)");
    std::smatch m;
    if (!std::regex_match(url, m, re)) {
        return Status(Code::invalid_input, "'" + url +
                                               "' is not a Proxmox source; expected "
                                               "pve://[USER@]HOST[:PORT]/VMID (or a VM name)");
    }
    PveUrl u;
    u.user = m[1].str();
    u.host = m[2].str();
    u.port = m[3].matched ? std::stoi(m[3].str()) : 8006;
    u.vm = m[4].str();
    if (u.port <= 0 || u.port > 65535) {
        return Status(Code::invalid_input, "port in '" + url + "' is out of range");
    }
    return u;
}

std::string PveSource::vm_path() const {
    return "/nodes/" + url_encode(m_node) + "/qemu/" + std::to_string(m_vmid);
}

Status PveSource::locate(const std::string& vm) {
    auto resources = m_api.get("/cluster/resources", {{"type", "vm"}});
    if (!resources.ok()) {
        return resources.status();
    }
    const bool by_id = !vm.empty() && std::all_of(vm.begin(), vm.end(), ::isdigit);
    std::vector<nlohmann::json> hits;
    for (const auto& r : *resources) {
        if (json_text(r, "type") != "qemu") {
            continue;
        }
        if ((by_id && json_text(r, "vmid") == vm) || (!by_id && json_text(r, "name") == vm)) {
            hits.push_back(r);
        }
    }
    if (hits.empty()) {
        return Status(Code::not_found, "no QEMU VM " + vm + " in the cluster (" + m_url +
                                           "); check the VMID or name (containers are not VMs)");
    }
    if (hits.size() > 1) {
        std::string ids;
        for (const auto& h : hits) {
            ids += (ids.empty() ? "" : ", ") + json_text(h, "vmid");
        }
        return Status(Code::invalid_input,
                      "several VMs are named " + vm + " (" + ids + "); give the VMID instead");
    }
    m_node = json_text(hits[0], "node");
    m_vmid = std::stoi(json_text(hits[0], "vmid"));
    return {};
}

Result<VmSpec> PveSource::inspect() {
    auto config_json = m_api.get(vm_path() + "/config", {{"current", "1"}});
    if (!config_json.ok()) {
        return config_json.status();
    }
    auto config = config_map_from_json(*config_json);
    if (!config.ok()) {
        return config.status();
    }
    auto storage_list = m_api.get("/storage");
    if (!storage_list.ok()) {
        return storage_list.status();
    }
    StorageTable storage;
    for (const auto& s : *storage_list) {
        StorageDef def;
        def.id = json_text(s, "storage");
        def.type = json_text(s, "type");
        for (const auto& [k, v] : s.items()) {
            def.props[k] = v.is_string() ? v.get<std::string>() : v.dump();
        }
        storage.add(std::move(def));
    }
    VmSpec spec = vm_spec_from_config(*config, {m_url, m_vmid, m_node, &storage, true});

    if (auto pending = m_api.get(vm_path() + "/pending"); pending.ok() && pending->is_array()) {
        std::string keys;
        for (const auto& p : *pending) {
            if (p.contains("pending") || p.contains("delete")) {
                keys += (keys.empty() ? "" : ", ") + json_text(p, "key");
            }
        }
        if (!keys.empty()) {
            spec.warnings.push_back("pending changes not yet applied (" + keys +
                                    "): the current configuration is what migrates");
        }
    } else if (!pending.ok()) {
        return pending.status();
    }

    auto status = m_api.get(vm_path() + "/status/current");
    if (!status.ok()) {
        return status.status();
    }
    spec.status = json_text(*status, "status");
    if (json_text(*status, "qmpstatus") == "paused" ||
        json_text(*status, "qmpstatus") == "prelaunch") {
        spec.status = "paused";
    }
    if (status->contains("ha") && json_text((*status)["ha"], "managed") == "1") {
        spec.ha_state = json_text((*status)["ha"], "state");
        if (spec.ha_state.empty()) {
            spec.ha_state = "managed";
        }
    }
    if (spec.lock.empty()) {
        spec.lock = json_text(*status, "lock");
    }
    if (json_text(*status, "agent") == "1") {
        spec.agent = true;  // status/current reports the configured agent
    }

    // Real sizes and host paths from the storage layer.
    for (auto& disk : spec.disks) {
        if (disk.storage.empty()) {
            continue;
        }
        auto content = m_api.get("/nodes/" + url_encode(m_node) + "/storage/" +
                                 url_encode(disk.storage) + "/content/" + url_encode(disk.volume));
        if (!content.ok()) {
            if (content.status().code() == Code::not_found) {
                spec.warnings.push_back(disk.key + ": volume " + disk.volume +
                                        " is not on storage " + disk.storage + " of " + m_node);
                continue;
            }
            return content.status();
        }
        if (auto size = json_text(*content, "size"); !size.empty()) {
            disk.size_bytes = std::stoull(size);
        }
        if (auto path = json_text(*content, "path"); !path.empty()) {
            disk.host_path = path;
        }
        if (auto format = json_text(*content, "format"); !format.empty()) {
            disk.format = format;
        }
    }
    // The guest agent, when the VM runs one.
    if (spec.agent && spec.status == "running") {
        auto ifaces = m_api.get(vm_path() + "/agent/network-get-interfaces");
        if (ifaces.ok() && ifaces->contains("result")) {
            for (const auto& iface : (*ifaces)["result"]) {
                auto mac = normalize_mac(json_text(iface, "hardware-address"));
                if (!mac) {
                    continue;
                }
                for (auto& nic : spec.nics) {
                    if (nic.mac != *mac || !iface.contains("ip-addresses")) {
                        continue;
                    }
                    for (const auto& ip : iface["ip-addresses"]) {
                        std::string addr = json_text(ip, "ip-address");
                        if (addr.empty() || addr.rfind("fe80:", 0) == 0) {
                            continue;
                        }
                        nic.ip_addresses.push_back(addr + "/" + json_text(ip, "prefix"));
                    }
                }
            }
        } else {
            spec.warnings.push_back(
                "the guest agent is enabled but did not answer (" +
                (ifaces.ok() ? std::string("no result") : ifaces.status().message()) +
                "): no guest IP addresses; give --target-ip");
        }
        if (auto os = m_api.get(vm_path() + "/agent/get-osinfo");
            os.ok() && os->contains("result")) {
            spec.guest_os = json_text((*os)["result"], "pretty-name");
        }
    }
    return spec;
}

Status PveSource::check_actionable(const VmSpec& spec) const {
    if (!spec.lock.empty()) {
        return Status(Code::invalid_input,
                      "VM " + std::to_string(m_vmid) + " is locked (" + spec.lock +
                          "): wait for that operation to finish, or run 'qm unlock " +
                          std::to_string(m_vmid) + "' on " + m_node + " if it is stale");
    }
    if (!spec.ha_state.empty()) {
        return Status(Code::invalid_input,
                      "VM " + std::to_string(m_vmid) + " is managed by HA (state " + spec.ha_state +
                          "): HA would restart it after shutdown; remove it from HA first "
                          "(ha-manager remove vm:" +
                          std::to_string(m_vmid) + ")");
    }
    if (spec.status == "paused") {
        return Status(Code::invalid_input,
                      "VM " + std::to_string(m_vmid) + " is paused: resume it (qm resume " +
                          std::to_string(m_vmid) + ") so it can shut down cleanly, or stop it");
    }
    return {};
}

Status PveSource::run_task(const Result<nlohmann::json>& upid, std::chrono::seconds timeout) {
    if (!upid.ok()) {
        return upid.status();
    }
    if (!upid->is_string()) {
        return {};  // synchronous call (some PUTs answer null)
    }
    return m_api.wait_task(upid->get<std::string>(), timeout);
}

Status PveSource::shutdown(std::chrono::seconds timeout, bool force) {
    HttpFields form = {{"timeout", std::to_string(timeout.count())}};
    if (force) {
        form.emplace_back("forceStop", "1");
    }
    return run_task(m_api.post(vm_path() + "/status/shutdown", form),
                    timeout + std::chrono::seconds(30));
}

Status PveSource::stop() {
    return run_task(m_api.post(vm_path() + "/status/stop"), std::chrono::seconds(120));
}

Status PveSource::start() {
    return run_task(m_api.post(vm_path() + "/status/start"), std::chrono::seconds(300));
}

Status PveSource::mark_migrated(const std::string& note) {
    auto config = m_api.get(vm_path() + "/config");
    if (!config.ok()) {
        return config.status();
    }
    auto tags = split_tags(json_text(*config, "tags"));
    if (std::find(tags.begin(), tags.end(), k_tag) == tags.end()) {
        tags.push_back(k_tag);
    }
    std::string description = json_text(*config, "description");
    std::string line = k_note_prefix + note;
    if (description.find(line) == std::string::npos) {
        description += (description.empty() ? "" : "\n") + line;
    }
    HttpFields form = {{"tags", join_tags(tags)},
                       {"onboot", "0"},
                       {"description", description},
                       {"digest", json_text(*config, "digest")}};
    return run_task(m_api.put(vm_path() + "/config", form), std::chrono::seconds(60));
}

Status PveSource::unmark() {
    auto config = m_api.get(vm_path() + "/config");
    if (!config.ok()) {
        return config.status();
    }
    auto tags = split_tags(json_text(*config, "tags"));
    tags.erase(std::remove(tags.begin(), tags.end(), k_tag), tags.end());
    std::string description;
    std::string rest = json_text(*config, "description");
    size_t pos = 0;
    while (pos <= rest.size()) {
        size_t nl = rest.find('\n', pos);
        std::string l = rest.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
        if (l.rfind(k_note_prefix, 0) != 0) {
            description += (description.empty() ? "" : "\n") + l;
        }
        if (nl == std::string::npos) {
            break;
        }
        pos = nl + 1;
    }
    HttpFields form = {{"digest", json_text(*config, "digest")}};
    std::vector<std::string> deletes;
    if (tags.empty()) {
        deletes.push_back("tags");
    } else {
        form.emplace_back("tags", join_tags(tags));
    }
    if (description.empty()) {
        deletes.push_back("description");
    } else {
        form.emplace_back("description", description);
    }
    deletes.push_back("onboot");  // back to Proxmox's default
    std::string del;
    for (const auto& d : deletes) {
        del += (del.empty() ? "" : ",") + d;
    }
    form.emplace_back("delete", del);
    return run_task(m_api.put(vm_path() + "/config", form), std::chrono::seconds(60));
}

Status PveSource::snapshot_create(const std::string& name, const std::string& description) {
    return run_task(
        m_api.post(vm_path() + "/snapshot", {{"snapname", name}, {"description", description}}),
        std::chrono::seconds(600));
}

Status PveSource::snapshot_delete(const std::string& name) {
    return run_task(m_api.del(vm_path() + "/snapshot/" + url_encode(name)),
                    std::chrono::seconds(600));
}

Status PveSource::set_hookscript(const std::string& volume) {
    if (m_api.user() != "root@pam" || !m_api.uses_ticket()) {
        return Status(Code::permission_denied,
                      "setting a hookscript through the API needs root@pam with a password "
                      "(Proxmox refuses it to tokens and other users); run 'qm set " +
                          std::to_string(m_vmid) + " --hookscript " + volume + "' on " + m_node +
                          " over SSH instead");
    }
    return run_task(m_api.put(vm_path() + "/config", {{"hookscript", volume}}),
                    std::chrono::seconds(60));
}

Result<AgentExecResult> PveSource::agent_exec(const std::vector<std::string>& argv,
                                              const std::string& input,
                                              std::chrono::seconds timeout) {
    if (argv.empty()) {
        return Status(Code::invalid_input, "agent exec: empty command");
    }
    HttpFields form;
    for (const auto& a : argv) {
        form.emplace_back("command", a);
    }
    if (!input.empty()) {
        form.emplace_back("input-data", input);
    }
    auto started = m_api.post(vm_path() + "/agent/exec", form);
    if (!started.ok()) {
        return started.status();
    }
    std::string pid = json_text(*started, "pid");
    if (pid.empty()) {
        return Status(Code::remote_failed, "agent exec of " + argv[0] + ": no pid in the answer");
    }
    auto waited = std::chrono::milliseconds(0);
    for (;;) {
        auto status = m_api.get(vm_path() + "/agent/exec-status", {{"pid", pid}});
        if (!status.ok()) {
            return status.status();
        }
        if (json_text(*status, "exited") == "1" || json_text(*status, "exited") == "true") {
            AgentExecResult r;
            std::string code = json_text(*status, "exitcode");
            r.exit_code = code.empty() ? -1 : std::stoi(code);
            r.out = json_text(*status, "out-data");
            r.err = json_text(*status, "err-data");
            const std::string truncated = json_text(*status, "out-truncated");
            r.out_truncated = truncated == "1" || truncated == "true";
            return r;
        }
        if (waited >= timeout) {
            return Status(Code::timeout, "agent exec of " + argv[0] + " still running after " +
                                             std::to_string(timeout.count()) + " s");
        }
        m_api.sleeper().sleep(std::chrono::milliseconds(200));
        waited += std::chrono::milliseconds(200);
    }
}

Status PveSource::agent_file_write(const std::string& path, const std::string& content) {
    auto r = m_api.post(vm_path() + "/agent/file-write", {{"file", path}, {"content", content}});
    return r.ok() ? Status() : r.status();
}

Status set_hookscript_over_ssh(SshTransport& node, int vmid, const std::string& volume) {
    auto r = exec_checked(node, {"qm", "set", std::to_string(vmid), "--hookscript", volume});
    if (!r.ok()) {
        return Status(r.status().code(), "qm set " + std::to_string(vmid) + " --hookscript " +
                                             volume + " on " + node.target().host + ": " +
                                             r.status().message());
    }
    return {};
}

}  // namespace vmlift::proxmox

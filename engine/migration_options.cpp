// MigrationOptions, TargetPlan and the small helpers of migration.h.
#include <arpa/inet.h>

#include "engine/migration.h"

namespace vmlift {

const char* net_prep_name(NetPrep prep) {
    switch (prep) {
        case NetPrep::agent:
            return "agent";
        case NetPrep::offline:
            return "offline";
        case NetPrep::automatic:
            return "auto";
        case NetPrep::none:
            return "none";
    }
    return "auto";
}

Result<NetPrep> parse_net_prep(const std::string& text) {
    for (NetPrep p : {NetPrep::agent, NetPrep::offline, NetPrep::automatic, NetPrep::none}) {
        if (text == net_prep_name(p)) {
            return p;
        }
    }
    return Status(Code::invalid_input,
                  "--net-prep '" + text + "': use agent, offline, auto or none");
}

namespace {
Result<StreamMode> parse_mode(const std::string& text) {
    if (text == "direct") {
        return StreamMode::direct;
    }
    if (text == "relay") {
        return StreamMode::relay;
    }
    if (text == "auto") {
        return StreamMode::automatic;
    }
    return Status(Code::invalid_input, "--transfer-mode '" + text + "': use auto, direct or relay");
}
}  // namespace

nlohmann::json MigrationOptions::to_json() const {
    return {{"target_name", target_name},
            {"zvol_names", zvol_names},
            {"bridge", bridge},
            {"bridge_map", bridge_map},
            {"firmware_override", firmware_override},
            {"target_ips", target_ips},
            {"use_dhcp", use_dhcp},
            {"static_cidr", static_cidr},
            {"gateway", gateway},
            {"transfer_mode",
             transfer_mode == StreamMode::automatic ? "auto" : stream_mode_name(transfer_mode)},
            {"offline_vg_name", offline_vg_name},
            {"offline_lv_name", offline_lv_name},
            {"net_prep", net_prep_name(net_prep)},
            {"shutdown_timeout_sec", shutdown_timeout_sec},
            {"force_stop", force_stop},
            {"yes", yes},
            {"post_cutover_cmd", post_cutover_cmd},
            {"verify_port", verify_port},
            {"verify_mode", verify_mode == ProbeMode::tcp ? "tcp" : "icmp"},
            {"verify_timeout_sec", verify_timeout_sec},
            {"verify_poll_sec", verify_poll_sec},
            {"skip_ip_conflict_check", skip_ip_conflict_check},
            {"zstd_level", zstd_level},
            {"agent_dir", agent_dir},
            {"target_state_dir", target_state_dir}};
}

Result<MigrationOptions> MigrationOptions::from_json(const nlohmann::json& j) {
    MigrationOptions o;
    try {
        o.target_name = j.value("target_name", o.target_name);
        o.zvol_names = j.value("zvol_names", o.zvol_names);
        o.bridge = j.value("bridge", o.bridge);
        o.bridge_map = j.value("bridge_map", o.bridge_map);
        o.firmware_override = j.value("firmware_override", o.firmware_override);
        o.target_ips = j.value("target_ips", o.target_ips);
        o.use_dhcp = j.value("use_dhcp", o.use_dhcp);
        o.static_cidr = j.value("static_cidr", o.static_cidr);
        o.gateway = j.value("gateway", o.gateway);
        auto mode = parse_mode(j.value("transfer_mode", std::string("auto")));
        if (!mode.ok()) {
            return mode.status();
        }
        o.transfer_mode = *mode;
        o.offline_vg_name = j.value("offline_vg_name", o.offline_vg_name);
        o.offline_lv_name = j.value("offline_lv_name", o.offline_lv_name);
        auto prep = parse_net_prep(j.value("net_prep", std::string("auto")));
        if (!prep.ok()) {
            return prep.status();
        }
        o.net_prep = *prep;
        o.shutdown_timeout_sec = j.value("shutdown_timeout_sec", o.shutdown_timeout_sec);
        o.force_stop = j.value("force_stop", o.force_stop);
        o.yes = j.value("yes", o.yes);
        o.post_cutover_cmd = j.value("post_cutover_cmd", o.post_cutover_cmd);
        o.verify_port = j.value("verify_port", o.verify_port);
        auto vmode = parse_probe_mode(j.value("verify_mode", std::string("tcp")));
        if (!vmode.ok()) {
            return vmode.status();
        }
        o.verify_mode = *vmode;
        o.verify_timeout_sec = j.value("verify_timeout_sec", o.verify_timeout_sec);
        o.verify_poll_sec = j.value("verify_poll_sec", o.verify_poll_sec);
        o.skip_ip_conflict_check = j.value("skip_ip_conflict_check", o.skip_ip_conflict_check);
        o.zstd_level = j.value("zstd_level", o.zstd_level);
        o.agent_dir = j.value("agent_dir", o.agent_dir);
        o.target_state_dir = j.value("target_state_dir", o.target_state_dir);
    } catch (const nlohmann::json::exception& e) {
        return Status(Code::invalid_input, std::string("run options: ") + e.what());
    }
    if (o.firmware_override != "" && o.firmware_override != "UEFI" &&
        o.firmware_override != "UEFI_CSM") {
        return Status(Code::invalid_input,
                      "--firmware-override '" + o.firmware_override + "': use UEFI or UEFI_CSM");
    }
    if (o.use_dhcp && !o.static_cidr.empty()) {
        return Status(Code::invalid_input, "give --use-dhcp or --static-cidr, not both");
    }
    if (!o.gateway.empty() && o.static_cidr.empty()) {
        return Status(Code::invalid_input, "--gateway goes with --static-cidr");
    }
    if (o.verify_port < 1 || o.verify_port > 65535) {
        return Status(Code::invalid_input, "--verify-port must be 1..65535");
    }
    return o;
}

nlohmann::json TargetPlan::to_json() const {
    nlohmann::json disks_j = nlohmann::json::array();
    for (const auto& d : disks) {
        disks_j.push_back({{"key", d.key},
                           {"role", to_string(d.role)},
                           {"size_bytes", d.size_bytes},
                           {"name", d.name},
                           {"device_path", d.device_path}});
    }
    nlohmann::json nics_j = nlohmann::json::array();
    for (const auto& n : nics) {
        nics_j.push_back(
            {{"key", n.key}, {"mac", n.mac}, {"bridge", n.bridge}, {"model", n.model}});
    }
    return {{"vm_name", vm_name},
            {"bootloader", bootloader},
            {"firmware_overridden", firmware_overridden},
            {"disks", disks_j},
            {"nics", nics_j},
            {"notes", notes},
            {"calls", calls}};
}

Result<TargetPlan> TargetPlan::from_json(const nlohmann::json& j) {
    TargetPlan p;
    try {
        p.vm_name = j.at("vm_name").get<std::string>();
        p.bootloader = j.at("bootloader").get<std::string>();
        p.firmware_overridden = j.value("firmware_overridden", false);
        for (const auto& d : j.at("disks")) {
            TargetDisk t;
            t.key = d.at("key").get<std::string>();
            std::string role = d.at("role").get<std::string>();
            t.role = role == "efivars" ? DiskRole::efivars
                     : role == "tpm"   ? DiskRole::tpm
                                       : DiskRole::data;
            t.size_bytes = d.at("size_bytes").get<uint64_t>();
            t.name = d.at("name").get<std::string>();
            t.device_path = d.value("device_path", "");
            p.disks.push_back(t);
        }
        for (const auto& n : j.at("nics")) {
            p.nics.push_back({n.at("key").get<std::string>(), n.at("mac").get<std::string>(),
                              n.at("bridge").get<std::string>(), n.value("model", "")});
        }
        p.notes = j.value("notes", std::vector<std::string>{});
        p.calls = j.value("calls", nlohmann::json::array());
    } catch (const nlohmann::json::exception& e) {
        return Status(Code::invalid_input, std::string("plan.json: ") + e.what());
    }
    return p;
}

std::vector<std::string> cutover_ips(const VmSpec& spec, const MigrationOptions& options) {
    if (!options.target_ips.empty()) {
        return options.target_ips;
    }
    std::vector<std::string> out;
    if (!options.static_cidr.empty()) {
        out.push_back(options.static_cidr.substr(0, options.static_cidr.find('/')));
        return out;
    }
    for (const auto& nic : spec.nics) {
        for (const auto& cidr : nic.ip_addresses) {
            std::string ip = cidr.substr(0, cidr.find('/'));
            in_addr a{};
            if (::inet_pton(AF_INET, ip.c_str(), &a) != 1) {
                continue;  // IPv6: the agent's v4 address is the one admins verify
            }
            uint32_t host = ntohl(a.s_addr);
            if ((host >> 24) == 127 || (host >> 16) == 0xa9fe) {
                continue;  // loopback, link-local
            }
            out.push_back(ip);
        }
    }
    return out;
}

std::vector<GuestNic> guest_nics(const VmSpec& spec, const MigrationOptions& options) {
    std::vector<GuestNic> out;
    for (size_t i = 0; i < spec.nics.size(); ++i) {
        GuestNic g;
        g.mac = spec.nics[i].mac;
        g.slot_name = spec.nics[i].slot_name;
        g.slot_from = spec.nics[i].key;
        if (i == 0 && options.use_dhcp) {
            g.addressing = Addressing::dhcp;
        } else if (i == 0 && !options.static_cidr.empty()) {
            g.addressing = Addressing::static_address;
            g.addresses = {options.static_cidr};
            g.gateway = options.gateway;
        }
        out.push_back(g);
    }
    return out;
}

}  // namespace vmlift

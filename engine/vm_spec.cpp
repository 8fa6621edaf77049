#include "engine/vm_spec.h"

#include <cctype>

namespace vmlift {

const char* to_string(DiskRole role) {
    switch (role) {
        case DiskRole::efivars:
            return "efivars";
        case DiskRole::tpm:
            return "tpm";
        case DiskRole::data:
            break;
    }
    return "data";
}

const char* to_string(Firmware firmware) {
    return firmware == Firmware::uefi ? "uefi" : "bios";
}

std::optional<std::string> normalize_mac(const std::string& mac) {
    if (mac.size() != 17) {
        return std::nullopt;
    }
    std::string out;
    for (size_t i = 0; i < mac.size(); ++i) {
        char c = mac[i];
        if (i % 3 == 2) {
            if (c != ':' && c != '-') {
                return std::nullopt;
            }
            out += ':';
        } else {
            if (!std::isxdigit(static_cast<unsigned char>(c))) {
                return std::nullopt;
            }
            out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        }
    }
    return out;
}

nlohmann::json to_json(const VmSpec& spec) {
    nlohmann::json disks = nlohmann::json::array();
    for (const auto& d : spec.disks) {
        disks.push_back({{"key", d.key},
                         {"bus", d.bus},
                         {"volume", d.volume},
                         {"storage", d.storage},
                         {"format", d.format},
                         {"size_bytes", d.size_bytes},
                         {"host_path", d.host_path},
                         {"role", to_string(d.role)},
                         {"boot_index", d.boot_index}});
    }
    nlohmann::json nics = nlohmann::json::array();
    for (const auto& n : spec.nics) {
        nics.push_back({{"key", n.key},
                        {"model", n.model},
                        {"mac", n.mac},
                        {"bridge", n.bridge},
                        {"vlan", n.vlan < 0 ? nlohmann::json(nullptr) : nlohmann::json(n.vlan)},
                        {"mtu", n.mtu == 0 ? nlohmann::json(nullptr) : nlohmann::json(n.mtu)},
                        {"ip_addresses", n.ip_addresses},
                        {"slot_name", n.slot_name}});
    }
    return {{"source", spec.source},
            {"vmid", spec.vmid},
            {"name", spec.name},
            {"node", spec.node},
            {"status", spec.status},
            {"vcpus", spec.vcpus},
            {"sockets", spec.sockets},
            {"cores", spec.cores},
            {"memory_mib", spec.memory_mib},
            {"firmware", to_string(spec.firmware)},
            {"secure_boot", spec.secure_boot},
            {"machine", spec.machine},
            {"os_type", spec.os_type},
            {"cpu", spec.cpu},
            {"uuid", spec.uuid},
            {"agent", spec.agent},
            {"boot_order", spec.boot_order},
            {"disks", disks},
            {"nics", nics},
            {"guest_os", spec.guest_os},
            {"lock", spec.lock},
            {"ha_state", spec.ha_state},
            {"digest", spec.digest},
            {"warnings", spec.warnings}};
}

namespace {

// Reads j[key] into out; a missing or null key keeps the default.
template <typename T>
Status get(const nlohmann::json& j, const char* key, T& out, const std::string& where) {
    if (!j.contains(key) || j[key].is_null()) {
        return {};
    }
    try {
        out = j[key].get<T>();
    } catch (const nlohmann::json::exception&) {
        return Status(Code::invalid_input, where + "." + key + " has the wrong type");
    }
    return {};
}

}  // namespace

Result<VmSpec> vm_spec_from_json(const nlohmann::json& j) {
    if (!j.is_object() || !j.contains("vmid") || !j.contains("disks") || !j.contains("nics")) {
        return Status(Code::invalid_input, "vm spec: not an object with vmid, disks and nics");
    }
    VmSpec s;
    const std::string w = "vm spec";
    VMLIFT_RETURN_IF_ERROR(get(j, "source", s.source, w));
    VMLIFT_RETURN_IF_ERROR(get(j, "vmid", s.vmid, w));
    VMLIFT_RETURN_IF_ERROR(get(j, "name", s.name, w));
    VMLIFT_RETURN_IF_ERROR(get(j, "node", s.node, w));
    VMLIFT_RETURN_IF_ERROR(get(j, "status", s.status, w));
    VMLIFT_RETURN_IF_ERROR(get(j, "vcpus", s.vcpus, w));
    VMLIFT_RETURN_IF_ERROR(get(j, "sockets", s.sockets, w));
    VMLIFT_RETURN_IF_ERROR(get(j, "cores", s.cores, w));
    VMLIFT_RETURN_IF_ERROR(get(j, "memory_mib", s.memory_mib, w));
    std::string firmware = "bios";
    VMLIFT_RETURN_IF_ERROR(get(j, "firmware", firmware, w));
    if (firmware != "bios" && firmware != "uefi") {
        return Status(Code::invalid_input, "vm spec.firmware must be bios or uefi");
    }
    s.firmware = firmware == "uefi" ? Firmware::uefi : Firmware::bios;
    VMLIFT_RETURN_IF_ERROR(get(j, "secure_boot", s.secure_boot, w));
    VMLIFT_RETURN_IF_ERROR(get(j, "machine", s.machine, w));
    VMLIFT_RETURN_IF_ERROR(get(j, "os_type", s.os_type, w));
    VMLIFT_RETURN_IF_ERROR(get(j, "cpu", s.cpu, w));
    VMLIFT_RETURN_IF_ERROR(get(j, "uuid", s.uuid, w));
    VMLIFT_RETURN_IF_ERROR(get(j, "agent", s.agent, w));
    VMLIFT_RETURN_IF_ERROR(get(j, "boot_order", s.boot_order, w));
    VMLIFT_RETURN_IF_ERROR(get(j, "guest_os", s.guest_os, w));
    VMLIFT_RETURN_IF_ERROR(get(j, "lock", s.lock, w));
    VMLIFT_RETURN_IF_ERROR(get(j, "ha_state", s.ha_state, w));
    VMLIFT_RETURN_IF_ERROR(get(j, "digest", s.digest, w));
    VMLIFT_RETURN_IF_ERROR(get(j, "warnings", s.warnings, w));
    if (!j["disks"].is_array() || !j["nics"].is_array()) {
        return Status(Code::invalid_input, "vm spec: disks and nics must be arrays");
    }
    for (size_t i = 0; i < j["disks"].size(); ++i) {
        const auto& d = j["disks"][i];
        const std::string where = "vm spec.disks[" + std::to_string(i) + "]";
        DiskSpec disk;
        VMLIFT_RETURN_IF_ERROR(get(d, "key", disk.key, where));
        VMLIFT_RETURN_IF_ERROR(get(d, "bus", disk.bus, where));
        VMLIFT_RETURN_IF_ERROR(get(d, "volume", disk.volume, where));
        VMLIFT_RETURN_IF_ERROR(get(d, "storage", disk.storage, where));
        VMLIFT_RETURN_IF_ERROR(get(d, "format", disk.format, where));
        VMLIFT_RETURN_IF_ERROR(get(d, "size_bytes", disk.size_bytes, where));
        VMLIFT_RETURN_IF_ERROR(get(d, "host_path", disk.host_path, where));
        VMLIFT_RETURN_IF_ERROR(get(d, "boot_index", disk.boot_index, where));
        std::string role = "data";
        VMLIFT_RETURN_IF_ERROR(get(d, "role", role, where));
        if (role == "efivars") {
            disk.role = DiskRole::efivars;
        } else if (role == "tpm") {
            disk.role = DiskRole::tpm;
        } else if (role != "data") {
            return Status(Code::invalid_input, where + ".role must be data, efivars or tpm");
        }
        if (disk.key.empty()) {
            return Status(Code::invalid_input, where + ".key is missing");
        }
        s.disks.push_back(std::move(disk));
    }
    for (size_t i = 0; i < j["nics"].size(); ++i) {
        const auto& n = j["nics"][i];
        const std::string where = "vm spec.nics[" + std::to_string(i) + "]";
        NicSpec nic;
        VMLIFT_RETURN_IF_ERROR(get(n, "key", nic.key, where));
        VMLIFT_RETURN_IF_ERROR(get(n, "model", nic.model, where));
        VMLIFT_RETURN_IF_ERROR(get(n, "mac", nic.mac, where));
        VMLIFT_RETURN_IF_ERROR(get(n, "bridge", nic.bridge, where));
        VMLIFT_RETURN_IF_ERROR(get(n, "vlan", nic.vlan, where));
        VMLIFT_RETURN_IF_ERROR(get(n, "mtu", nic.mtu, where));
        VMLIFT_RETURN_IF_ERROR(get(n, "ip_addresses", nic.ip_addresses, where));
        if (n.contains("slot_name") && n["slot_name"].is_string()) {
            nic.slot_name = n["slot_name"].get<std::string>();  // absent in older journals
        }
        s.nics.push_back(std::move(nic));
    }
    return s;
}

}  // namespace vmlift

#include "connectors/proxmox/storage_cfg.h"

#include <sstream>

namespace vmlift::proxmox {
namespace {

std::string trim(const std::string& s) {
    size_t b = s.find_first_not_of(" \t\r");
    if (b == std::string::npos) {
        return {};
    }
    size_t e = s.find_last_not_of(" \t\r");
    return s.substr(b, e - b + 1);
}

}  // namespace

const StorageDef* StorageTable::find(const std::string& id) const {
    auto it = m_defs.find(id);
    return it == m_defs.end() ? nullptr : &it->second;
}

std::optional<std::string> StorageTable::host_path(const std::string& storage,
                                                   const std::string& volname,
                                                   std::string* why) const {
    const StorageDef* def = find(storage);
    if (!def) {
        *why = "storage '" + storage + "' is not defined";
        return std::nullopt;
    }
    auto prop = [def](const char* key) {
        auto it = def->props.find(key);
        return it == def->props.end() ? std::string() : it->second;
    };
    const std::string& t = def->type;
    if (t == "dir" || t == "nfs" || t == "cifs" || t == "glusterfs" || t == "btrfs" ||
        t == "cephfs") {
        std::string path = prop("path");
        if (path.empty() && (t == "nfs" || t == "cifs")) {
            path = "/mnt/pve/" + storage;
        }
        if (path.empty()) {
            *why = "storage '" + storage + "' has no path";
            return std::nullopt;
        }
        return path + "/images/" + volname;
    }
    if (t == "lvm" || t == "lvmthin") {
        std::string vg = prop("vgname");
        if (vg.empty()) {
            *why = "storage '" + storage + "' has no vgname";
            return std::nullopt;
        }
        return "/dev/" + vg + "/" + volname;
    }
    if (t == "zfspool") {
        std::string pool = prop("pool");
        if (pool.empty()) {
            *why = "storage '" + storage + "' has no pool";
            return std::nullopt;
        }
        return "/dev/zvol/" + pool + "/" + volname;
    }
    if (t == "rbd" && prop("krbd") == "1") {
        std::string pool = prop("pool").empty() ? "rbd" : prop("pool");
        return "/dev/rbd/" + pool + "/" + volname;
    }
    *why = "storage '" + storage + "' is of type " + t +
           ", which has no block device on the node (map it first, e.g. krbd for rbd)";
    return std::nullopt;
}

Result<StorageTable> parse_storage_cfg(const std::string& text) {
    StorageTable table;
    std::istringstream in(text);
    std::string line;
    StorageDef current;
    bool open = false;
    int number = 0;
    while (std::getline(in, line)) {
        ++number;
        std::string t = trim(line);
        if (t.empty() || t[0] == '#') {
            continue;
        }
        bool indented = line[0] == ' ' || line[0] == '\t';
        if (!indented) {
            size_t colon = t.find(':');
            if (colon == std::string::npos) {
                return Status(Code::invalid_input, "storage.cfg line " + std::to_string(number) +
                                                       ": expected 'TYPE: ID', got '" + t + "'");
            }
            if (open) {
                table.add(std::move(current));
            }
            current = StorageDef{};
            current.type = trim(t.substr(0, colon));
            current.id = trim(t.substr(colon + 1));
            open = true;
            continue;
        }
        if (!open) {
            return Status(Code::invalid_input, "storage.cfg line " + std::to_string(number) +
                                                   ": property outside a storage section");
        }
        size_t space = t.find_first_of(" \t");
        std::string key = space == std::string::npos ? t : t.substr(0, space);
        std::string value = space == std::string::npos ? "1" : trim(t.substr(space));
        current.props[key] = value;
    }
    if (open) {
        table.add(std::move(current));
    }
    return table;
}

StorageTable default_storage_table() {
    StorageTable t;
    t.add({"local", "dir", {{"path", "/var/lib/vz"}}});
    t.add({"local-lvm", "lvmthin", {{"vgname", "pve"}, {"thinpool", "data"}}});
    t.add({"local-zfs", "zfspool", {{"pool", "rpool/data"}}});
    return t;
}

}  // namespace vmlift::proxmox

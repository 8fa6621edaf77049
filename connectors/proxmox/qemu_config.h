// Proxmox qemu-server VM configuration: the file format of
// /etc/pve/qemu-server/VMID.conf, its property strings, and the mapping of a
// configuration onto the engine's VmSpec.
//
// Contract
//   parse_qemu_config() reads the text of a config file: `key: value` lines,
//   leading `#` lines (the description, URL-decoded as qemu-server writes
//   it), and sections `[snapshot]`, `[PENDING]`, `[special:cloudinit]`. The
//   top section is the current configuration; a `delete:` line in [PENDING]
//   lists keys pending removal. Like qemu-server it skips a line it cannot
//   parse (and a repeated key keeps its last value), recording a warning
//   naming the line; it fails with invalid_input only when the text holds
//   no configuration key at all.
//   parse_property_string() splits `a,b=c,d=e` the way PVE does: the first
//   value without `=` goes to `default_key`.
//   parse_disk_size() reads PVE's DiskSize (`104858K`, `4G`, a bare number
//   is bytes).
//   vm_spec_from_config() maps a current configuration (from a file or from
//   the API's config?current=1, as strings) onto a VmSpec. Disks, NICs,
//   firmware, machine, CPU, memory, boot order follow qm.conf(5) and its
//   defaults; CD-ROMs, cloud-init drives, unusedN, passthrough devices,
//   hostpci/usb and unknown keys become warnings, never errors. Host paths
//   are resolved through `storage` when given (see storage_cfg.h).
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include "connectors/proxmox/storage_cfg.h"

#include "engine/status.h"
#include "engine/vm_spec.h"

namespace vmlift::proxmox {

using ConfigMap = std::map<std::string, std::string>;

struct QemuConfig {
    ConfigMap current;
    std::string description;
    ConfigMap pending;                        // [PENDING] values
    std::vector<std::string> pending_delete;  // [PENDING] delete: keys
    std::map<std::string, ConfigMap> snapshots;
    ConfigMap cloudinit;  // [special:cloudinit]
    std::vector<std::string> warnings;
};

Result<QemuConfig> parse_qemu_config(const std::string& text);

// `a,b=c` with the first bare value under default_key ("" when none is
// allowed: then it is stored under its own text with an empty value).
std::map<std::string, std::string> parse_property_string(const std::string& value,
                                                         const std::string& default_key);

std::optional<uint64_t> parse_disk_size(const std::string& text);

// True for keys that hold a drive: ide0-3, sata0-5, scsi0-30, virtio0-15,
// efidisk0, tpmstate0.
bool is_drive_key(const std::string& key);

struct SpecContext {
    std::string source;  // pve://host/101 or file:/path
    int vmid = 0;
    std::string node;
    const StorageTable* storage = nullptr;  // host paths; nullptr: none resolved
    bool sizes_from_storage = false;        // the caller reads real sizes: no warning for size=
};

VmSpec vm_spec_from_config(const ConfigMap& config, const SpecContext& context);

// The API's config object ({"key": value}): strings kept, numbers and
// booleans written as qemu-server writes them ("1"/"0" for booleans).
// invalid_input when `data` is not an object.
Result<ConfigMap> config_map_from_json(const nlohmann::json& data);

}  // namespace vmlift::proxmox

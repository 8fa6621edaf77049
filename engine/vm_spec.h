// The source VM as the engine sees it: what inspect produces and every later
// stage reads. Vendor-neutral; connectors fill it.
//
// Contract
//   Plain structs. to_json() gives the stable JSON form printed by
//   `inspect --json` and kept in the journal; field names are fixed (other
//   tools rely on them), sizes are bytes, MACs lowercase colon hex, memory
//   MiB. from_json() reads that form back (the journal) and fails with
//   invalid_input naming the field when a required one is missing or has
//   the wrong type.
// Thread safety: values; no shared state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/status.h"

namespace vmlift {

enum class DiskRole { data, efivars, tpm };
enum class Firmware { bios, uefi };

struct DiskSpec {
    std::string key;      // the source's device key: scsi0, virtio1, efidisk0, tpmstate0
    std::string bus;      // scsi, virtio, sata, ide, efi, tpm
    std::string volume;   // the source's volume id, e.g. local-lvm:vm-101-disk-0
    std::string storage;  // the storage id ("" for a raw path)
    std::string format;   // raw, qcow2, vmdk ("" when unknown)
    uint64_t size_bytes = 0;
    std::string host_path;  // path on the source host ("" when not a local path)
    DiskRole role = DiskRole::data;
    int boot_index = -1;  // position in boot_order, -1 when not bootable
};

struct NicSpec {
    std::string key;    // net0
    std::string model;  // virtio, e1000, vmxnet3, rtl8139, ...
    std::string mac;    // lowercase colon hex
    std::string bridge;
    int vlan = -1;                          // -1: untagged
    int mtu = 0;                            // 0: the bridge's
    std::vector<std::string> ip_addresses;  // CIDR, from the guest agent
    // The name the guest's kernel gives this NIC by the source hypervisor's
    // slot convention (Proxmox net0..net5 sit in PCI slots 18..23: ens18..
    // ens23); "" when there is no such convention.
    std::string slot_name = {};
};

struct VmSpec {
    std::string source;  // pve://host/101, or file:/path/101.conf
    int vmid = 0;
    std::string name;
    std::string node;
    std::string status;  // running, stopped, paused, unknown
    int vcpus = 1;
    int sockets = 1;
    int cores = 1;
    uint64_t memory_mib = 512;
    Firmware firmware = Firmware::bios;
    bool secure_boot = false;
    std::string machine;  // i440fx, q35, or a pinned type such as pc-q35-8.1
    std::string os_type;  // l26, win11, ...
    std::string cpu;
    std::string uuid;    // SMBIOS uuid
    bool agent = false;  // the guest agent is enabled in the config
    std::vector<std::string> boot_order;
    std::vector<DiskSpec> disks;
    std::vector<NicSpec> nics;
    std::string guest_os;  // pretty name from the guest agent ("" unknown)
    std::string lock;      // the source's lock (backup, migrate, ...), "" none
    std::string ha_state;  // "" when not HA-managed
    std::string digest;    // the config digest, to catch concurrent edits
    std::vector<std::string> warnings;
};

const char* to_string(DiskRole role);
const char* to_string(Firmware firmware);

nlohmann::json to_json(const VmSpec& spec);
Result<VmSpec> vm_spec_from_json(const nlohmann::json& j);

// Lowercase colon hex when `mac` is six hex pairs (any case, ':' or '-');
// nullopt otherwise.
std::optional<std::string> normalize_mac(const std::string& mac);

}  // namespace vmlift

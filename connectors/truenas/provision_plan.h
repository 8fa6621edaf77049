// The TrueNAS calls that provision a VmSpec: zvols, the VM, its DISK and NIC
// devices, in the shapes of one TrueNAS release. Pure: no connection.
//
// Contract
//   parse_truenas_url() reads truenas://HOST/POOL[/DATASET...].
//   parse_release() reads --target-version: 24.10, 25.04.2, 25.10, 26 (and
//   patch levels of those); 25.04.0 and 25.04.1 are refused (no libvirt
//   VMs), anything else is invalid_input listing the supported ones.
//   plan_provision() returns the calls in order:
//     pool.dataset.create  one sparse VOLUME per data disk, volsize rounded up
//                          to volblocksize, comments = the run marker;
//     vm.create            name made legal for ^[a-zA-Z_0-9]+$, sockets →
//                          vcpus, cores → cores, threads 1, memory MiB,
//                          bootloader UEFI (OVMF source) or UEFI_CSM (SeaBIOS),
//                          secure boot only when the source had it and the
//                          release has the field, the source's SMBIOS uuid,
//                          autostart false, the marker in the description;
//     vm.device.create     DISK (VIRTIO for virtio/scsi buses, AHCI for
//                          sata/ide) on /dev/zvol/..., in boot order; NIC
//                          (VIRTIO for virtio models, else E1000) with the
//                          source MAC on the mapped bridge; with `display`, a
//                          SPICE DISPLAY bound to 127.0.0.1 (24.10 needs its
//                          password; later releases take it when given).
//   Device payloads carry `dtype` at the top level on 24.10 and inside
//   `attributes` from 25.04.2 on. The VM's id, unknown until vm.create has
//   run, appears as the string "${vm.id}" in device calls. EFI vars and TPM
//   state are not zvols; they are listed in `notes` for the later stages.
//   24.10 calls also name their REST route (rest_method, rest_path).
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/status.h"
#include "engine/vm_spec.h"

namespace vmlift::truenas {

enum class Release { v24_10, v25_04_2, v25_10, v26 };
const char* to_string(Release release);
Result<Release> parse_release(const std::string& text);

struct TargetUrl {
    std::string host;
    std::string pool;     // tank
    std::string dataset;  // tank/vms (== pool when none given)
};
Result<TargetUrl> parse_truenas_url(const std::string& url);

struct ProvisionOptions {
    std::string run_id;
    std::string target_name;                        // "" = from the source name
    std::map<std::string, std::string> zvol_names;  // disk key → zvol name
    std::string default_bridge;                     // "" = the source bridge's name
    std::map<std::string, std::string> bridge_map;  // source bridge → target
    uint64_t volblocksize = 16384;
    bool force_size = false;       // pass force_size (only when asked)
    bool display = false;          // add a SPICE DISPLAY device
    std::string display_password;  // required by 24.10; a secret (never logged)
};

struct ApiCall {
    std::string method;
    nlohmann::json params;    // the positional parameters
    std::string rest_method;  // 24.10: POST
    std::string rest_path;    // 24.10: /api/v2.0/vm/device
    nlohmann::json to_json() const;
};

struct ProvisionPlan {
    std::string vm_name;
    std::string marker;
    std::vector<ApiCall> calls;
    std::vector<std::string> notes;
};

Result<ProvisionPlan> plan_provision(const VmSpec& spec, const TargetUrl& target, Release release,
                                     const ProvisionOptions& options);

// A name TrueNAS accepts for a VM: [a-zA-Z_0-9]+, other characters become '_'.
std::string legal_vm_name(const std::string& name);
// The /dev/zvol path TrueNAS gives a zvol (spaces become '+').
std::string zvol_device_path(const std::string& zvol);

}  // namespace vmlift::truenas

// What the hook binaries decide: the Proxmox hookscript refuses to start a
// VM that vmlift marked as migrated; the libvirt qemu hook refuses to start
// a domain whose disks belong to a run that has not verified them, and asks
// for a background verify when one starts. Both record every event.
//
// Contract
//   Disk claims: a run writes STATE_DIR/disks/<escaped disk path>.json on
//   the target host before it copies a disk ({"path", "run_id", "state":
//   "copying"}) and rewrites it with "state": "verified" (and the cutover
//   IP, port and mode) once the disk's digests matched. claim_json() and
//   claim_file() give the content and the name; read_claim() reads one back
//   (nullopt when the disk has no claim: not ours, always allowed).
//   pve_hook(): in `pre-start`, a VM whose config (PVE_CONFIG_DIR/<vmid>.conf,
//   main section) carries the tag vmlift-migrated is refused with exit 1 and
//   a line saying why and how to override (migrate-vm rollback, removing
//   the tag, or the file STATE_DIR/allow-start/<vmid>). Every phase is
//   appended to STATE_DIR/events.jsonl. Anything else exits 0.
//   libvirt_hook(): in `prepare`/`begin`, a disk claimed in any state other
//   than verified is refused with exit 1; in `started`, every verified
//   claim with a cutover IP yields a verify to launch in the background.
//   Events are recorded as for Proxmox. An unreadable claim is refused
//   (fail safe: a disk we cannot vouch for does not boot).
// Thread safety: none needed; each hook call is its own process.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/clock.h"
#include "engine/status.h"

namespace vmlift {

struct HookPaths {
    std::string state_dir = "/var/lib/vmlift";
    std::string pve_config_dir = "/etc/pve/qemu-server";
};

struct DiskClaim {
    std::string path;
    std::string run_id;
    std::string state;  // copying, verified
    std::string cutover_ip;
    int port = 22;
    std::string mode = "tcp";
};

std::string claim_file(const std::string& state_dir, const std::string& disk_path);
nlohmann::json claim_json(const DiskClaim& claim);
Result<std::optional<DiskClaim>> read_claim(const std::string& state_dir,
                                            const std::string& disk_path);

struct HookOutcome {
    int exit_code = 0;
    std::string message;                  // for the hook's stderr (the task log)
    std::vector<DiskClaim> verify_after;  // libvirt `started`: verifies to launch
};

HookOutcome pve_hook(const HookPaths& paths, const std::string& vmid, const std::string& phase,
                     const Clock& clock);
HookOutcome libvirt_hook(const HookPaths& paths, const std::string& domain,
                         const std::string& operation, const std::string& sub_operation,
                         const std::vector<std::string>& disk_paths, const Clock& clock);

// Appends one event line to STATE_DIR/events.jsonl (best effort).
void record_hook_event(const std::string& state_dir, const nlohmann::json& event);

}  // namespace vmlift

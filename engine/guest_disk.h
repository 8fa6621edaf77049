// Reaching the root filesystem of a copied guest disk on this machine,
// without device-mapper: partitions and LVM logical volumes become loop
// devices with offsets, the root is mounted, and everything is undone after.
//
// Contract
//   GuestRoot::open() takes an image file or block device (never the
//   source: callers pass the copy). It reads the partition table (GPT or
//   MBR, `sfdisk --json`; none means the whole disk), attaches each
//   partition as a loop device with offset and size limit, and asks `blkid`
//   what it holds. An LVM physical volume's metadata is read with `pvck
//   --dump metadata` (read-only: nothing is activated, so a guest VG named
//   like one of the host's, ubuntu-vg, is harmless); each single-segment
//   linear LV becomes another loop device at its offset. With vg/lv names
//   only that LV is used, and a multi-segment or non-linear one is
//   refused with a clear error; without them every ext2/3/4 or xfs
//   filesystem is tried (read-write, xfs with nouuid) until one holds
//   /etc/os-release and an /etc/fstab that mounts it at "/".
//   Failures are invalid_input (no root, wrong --vg-name, unusable LV)
//   or io_error naming the tool, and leave nothing behind.
//   An NBD export (nbd_uri) is connected first and disconnected last.
//   Teardown (close(), or the destructor) unmounts and detaches in reverse
//   order. Every loop and mount is recorded in a state file under
//   state_dir first; clean_leftovers() removes what a run that died left.
// Thread safety: one instance per disk; `cancelled` is polled between steps.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/guest_net.h"
#include "engine/log.h"
#include "engine/process.h"
#include "engine/status.h"

namespace vmlift {

struct GuestDiskOptions {
    std::string device;  // image file or block device holding the copied disk
    // Instead of `device`: an NBD export of the copy (nbd://HOST:PORT[/NAME]).
    // With the nbd kernel module (`nbd_device` present in /sys/block) it is
    // connected with `qemu-nbd --connect`; otherwise `nbdfuse` (libnbd-bin)
    // shows it as a file under state_dir, which a loop device then reads.
    std::string nbd_uri;
    std::string nbd_device = "/dev/nbd0";
    // Activate LVM through device-mapper when the kernel has it
    // (/dev/mapper/control); false: always map LVs with loop devices.
    bool use_device_mapper = true;
    std::string vg_name;
    std::string lv_name;
    std::string mount_point;  // "" = a temporary directory
    std::string state_dir = "/run/vmlift/guest-disk";
    std::function<bool()> cancelled;
};

// One segment of a logical volume.
struct LvmSegment {
    uint64_t lv_offset = 0;  // bytes from the start of the LV
    uint64_t length = 0;
    std::string type;  // "striped" for linear
    int stripes = 0;
    std::string pv;       // pv0
    uint64_t offset = 0;  // bytes from the start of that PV
};

// One logical volume found in LVM metadata.
struct LvmExtent {
    std::string vg;
    std::string vg_id;  // the VG's UUID
    int vg_pvs = 0;     // physical volumes the VG spans
    std::string lv;
    int segments = 0;
    std::string type;  // "striped" for linear
    int stripes = 0;
    uint64_t offset = 0;  // bytes from the start of the PV
    uint64_t length = 0;
    std::vector<LvmSegment> segs;
};
// Parses the text of `pvck --dump metadata` (one VG).
Result<std::vector<LvmExtent>> parse_lvm_metadata(const std::string& text);

// Reaching a guest VG's LVs through device-mapper, where the kernel has it.
// Without a name collision: `vgchange -ay` (and `-an` after) for the guest's
// VG under `--config` whose global_filter admits only the guest's PV device
// (so the host's own filter, e.g. Proxmox's that hides nbd devices, and the
// host's VGs are not involved), LVs at /dev/mapper/VG-LV. When the host has
// a VG of the same name and another UUID (two `ubuntu-vg`s), LVM would
// clash on the device names, so the guest's LVs are mapped with `dmsetup
// create` under names of their own (vmlift-TAG-VG-LV), each linear segment
// one table line, and never activated through LVM. Striped or other segment
// types, and VGs spanning more than this PV, are invalid_input.
struct DmPlan {
    bool collision = false;
    std::vector<std::vector<std::string>> activate;
    std::vector<std::vector<std::string>> deactivate;  // run in this order
    std::map<std::string, std::string> devices;        // "vg/lv" -> device path
    // dmsetup name -> table; the caller writes each to table_dir/NAME.table
    // before running `activate`.
    std::map<std::string, std::string> tables;
};
// Whether this kernel has device-mapper (/dev/mapper/control).
bool device_mapper_available();
// host_vgs: "name:uuid" lines as `vgs --noheadings --separator : -o
// vg_name,vg_uuid` prints them on the host.
Result<DmPlan> plan_dm_activation(const std::vector<LvmExtent>& lvs, const std::string& pv_device,
                                  const std::string& host_vgs, const std::string& tag,
                                  const std::string& table_dir);

class GuestRoot {
  public:
    static Result<std::unique_ptr<GuestRoot>> open(ProcessRunner& runner, Logger& log,
                                                   const GuestDiskOptions& options);
    ~GuestRoot();
    GuestRoot(const GuestRoot&) = delete;
    GuestRoot& operator=(const GuestRoot&) = delete;

    const std::string& root() const { return m_mount; }
    const std::string& description() const {
        return m_description;
    }  // "ubuntu-vg/ubuntu-lv (ext4)"
    Status close();

    // Undoes what dead runs left (their state files name their loops and mounts).
    static void clean_leftovers(ProcessRunner& runner, Logger& log, const std::string& state_dir);

  private:
    GuestRoot(ProcessRunner& runner, Logger& log, GuestDiskOptions options)
        : m_runner(runner), m_log(log), m_options(std::move(options)) {}
    Status connect_nbd();
    Result<std::string> attach(uint64_t offset, uint64_t length);
    Status mount(const std::string& device, const std::string& type);
    void unmount();
    void save_state();
    Result<std::string> run(const std::vector<std::string>& argv);

    ProcessRunner& m_runner;
    Logger& m_log;
    GuestDiskOptions m_options;
    std::vector<std::string> m_loops;
    std::string m_nbd_device;                             // kernel client connected
    std::string m_fuse_mount;                             // nbdfuse mount point
    std::vector<std::vector<std::string>> m_dm_teardown;  // device-mapper, in order
    std::unique_ptr<Process> m_nbdfuse;
    std::string m_mount;
    bool m_mounted = false;
    bool m_temp_dir = false;
    std::string m_description;
    std::string m_state_file;
};

// The whole edit on this machine: open the root, plan the network rewrite,
// apply it unless dry_run, tear down. Returns the plan's JSON plus "root",
// "dry_run" and, for a dry run, "diff". Used by migrate-vm locally and by
// vmlift-agent on a tool host.
Result<nlohmann::json> edit_guest_disk(ProcessRunner& runner, Logger& log,
                                       const GuestDiskOptions& options,
                                       const std::vector<GuestNic>& nics, bool dry_run);

}  // namespace vmlift

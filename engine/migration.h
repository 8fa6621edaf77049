// `migrate-vm run` as a straight list of stages over one journal
// (DESIGN.md "The job, as stages"): inspect, plan, preflight, approve,
// provision, net-prep-agent, shutdown, stream, guest-net, mark-source, start,
// verify, post-cutover, report.
//
// Contract
//   The engine knows no vendor API: a MigrationSource (Proxmox, later a
//   physical machine) and a MigrationTarget (TrueNAS) are passed in, built
//   by the front end from the run's request. run_migration() runs every
//   stage the journal does not already record as done or skipped, in order,
//   so the same call starts a run and resumes one (a stage found running or
//   failed is re-run; every stage is idempotent; an interrupted disk copy
//   continues from the receiver's confirmed chunks). With `until_preflight`
//   it stops after preflight (`migrate-vm plan`), changing nothing.
//   Guarantees: nothing changes before preflight passed and the run was
//   approved; the source is only read, shut down, marked and unmarked,
//   never deleted, and its disks are never opened for writing (the one
//   change inside it is the in-guest network rewrite of net-prep agent or
//   auto, made by the running guest itself through its agent, matched by
//   MAC so it holds on Proxmox too, with the originals kept in the guest's
//   vmlift-backup folders and put back by rollback); the target VM is never started before every
//   disk's copy finished with matching digests; each change is journaled
//   with its undo before the next one starts.
//   rollback_migration() walks the undo records backwards: stops the target
//   VM, deletes what the run created on the target (and only that),
//   unmarks the source and, when asked, starts it again (and then restores
//   an in-guest network rewrite through the agent; a stopped source keeps
//   it, as it is valid there too).
//   Errors: the failing stage's Status, with the stage name in front; the
//   journal says the same.
// Thread safety: none; one run at a time per journal.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/agent_net.h"
#include "engine/guest_net.h"
#include "engine/journal.h"
#include "engine/log.h"
#include "engine/process.h"
#include "engine/progress.h"
#include "engine/stream.h"
#include "engine/transport.h"
#include "engine/verify.h"
#include "engine/vm_spec.h"

namespace vmlift {

enum class NetPrep { agent, offline, automatic, none };
const char* net_prep_name(NetPrep prep);
Result<NetPrep> parse_net_prep(const std::string& text);

// The options of one run; stored in the journal so resume sees the same.
struct MigrationOptions {
    std::string target_name;
    std::map<std::string, std::string> zvol_names;  // disk key → zvol name
    std::string bridge;
    std::map<std::string, std::string> bridge_map;
    std::string firmware_override;  // "", UEFI, UEFI_CSM
    std::vector<std::string> target_ips;
    bool use_dhcp = false;
    std::string static_cidr;
    std::string gateway;
    StreamMode transfer_mode = StreamMode::automatic;
    std::string offline_vg_name;
    std::string offline_lv_name;
    NetPrep net_prep = NetPrep::automatic;
    int shutdown_timeout_sec = 180;
    bool force_stop = false;
    bool yes = false;
    std::vector<std::string> post_cutover_cmd;
    int verify_port = 22;
    ProbeMode verify_mode = ProbeMode::tcp;
    int verify_timeout_sec = 300;
    int verify_poll_sec = 5;
    bool skip_ip_conflict_check = false;
    int zstd_level = 1;
    std::string agent_dir = "/var/tmp/vmlift";
    // Where the target host keeps disk claims for its libvirt hook (hook_guard.h).
    std::string target_state_dir = "/var/lib/vmlift";

    nlohmann::json to_json() const;
    static Result<MigrationOptions> from_json(const nlohmann::json& j);
};

struct TargetDisk {
    std::string key;  // the source disk's key
    DiskRole role = DiskRole::data;
    uint64_t size_bytes = 0;  // what the target gets (rounded up)
    std::string name;         // zvol name, or the file for EFI vars / TPM
    std::string device_path;  // on the target host; "" until provisioned
};

struct TargetNic {
    std::string key;
    std::string mac;
    std::string bridge;
    std::string model;
};

struct TargetPlan {
    std::string vm_name;
    std::string bootloader;  // UEFI, UEFI_CSM
    bool firmware_overridden = false;
    std::vector<TargetDisk> disks;
    std::vector<TargetNic> nics;
    std::vector<std::string> notes;
    nlohmann::json calls = nlohmann::json::array();  // the API calls provision will make
    nlohmann::json to_json() const;
    static Result<TargetPlan> from_json(const nlohmann::json& j);
};

// One preflight finding; a failed non-warning check stops the run.
struct Check {
    std::string name;
    bool passed = true;
    bool warning = false;  // reported, never fatal
    std::string detail;
};

struct ProvisionedVm {
    int vm_id = 0;
    std::string vm_name;
    std::map<std::string, std::string> disk_paths;  // disk key → path on the target host
    nlohmann::json details;
};

class MigrationSource {
  public:
    virtual ~MigrationSource() = default;
    virtual std::string describe() const = 0;  // pve://host/101
    virtual Result<VmSpec> inspect() = 0;
    virtual void preflight(const VmSpec& spec, std::vector<Check>& checks) = 0;
    virtual Result<bool> running() = 0;
    virtual Status shutdown(std::chrono::seconds timeout, bool force) = 0;
    virtual Status start() = 0;
    virtual Status mark_migrated(const std::string& note) = 0;
    virtual Status unmark() = 0;
    // The running guest's agent, for the in-guest network rewrite; null when
    // the source has none.
    virtual GuestExec* guest_exec() { return nullptr; }
};

class MigrationTarget {
  public:
    virtual ~MigrationTarget() = default;
    virtual std::string describe() const = 0;  // truenas://host/pool
    virtual Result<TargetPlan> plan(const VmSpec& spec, const MigrationOptions& options,
                                    const std::string& run_id) = 0;
    virtual void preflight(const TargetPlan& plan, std::vector<Check>& checks) = 0;
    virtual Result<ProvisionedVm> provision(const VmSpec& spec, const MigrationOptions& options,
                                            const std::string& run_id) = 0;
    virtual Status start_vm(int vm_id) = 0;
    virtual Status stop_vm(int vm_id) = 0;
    virtual Result<std::string> vm_state(int vm_id) = 0;
    virtual Result<nlohmann::json> rollback(const std::string& run_id) = 0;
};

// Everything with a side effect that a run uses, built by the front end.
struct MigrationEnv {
    MigrationEnv(MigrationSource& source_, MigrationTarget& target_, SshTransport& source_host_,
                 SshTransport& target_host_, ProcessRunner& runner_, const Clock& clock_,
                 Sleeper& sleeper_, Prober& prober_, Logger& log_)
        : source(source_),
          target(target_),
          source_host(source_host_),
          target_host(target_host_),
          runner(runner_),
          clock(clock_),
          sleeper(sleeper_),
          prober(prober_),
          log(log_) {}
    MigrationSource& source;
    MigrationTarget& target;
    SshTransport& source_host;
    SshTransport& target_host;
    ProcessRunner& runner;
    const Clock& clock;
    Sleeper& sleeper;
    Prober& prober;
    Logger& log;
    std::string local_agent;                 // vmlift-agent on the controller
    std::string target_known_hosts;          // "<type> <key>" the controller trusts for the target
    std::string target_address_from_source;  // "" = the target host's name
    std::string migration_key_path;
    std::chrono::seconds connect_timeout{15};
    std::chrono::seconds task_timeout{7200};
    // Asks the user to go ahead; false refuses. Not called with options.yes.
    std::function<bool(const std::string& summary)> approve;
    // Progress for one disk copy (label, total bytes); may return null.
    std::function<std::unique_ptr<ProgressReporter>(const std::string&, uint64_t)> progress;
};

struct RunControl {
    bool until_preflight = false;  // migrate-vm plan
};

Status run_migration(MigrationEnv& env, Journal& journal, const MigrationOptions& options,
                     const RunControl& control = {});

struct RollbackOptions {
    bool start_source = false;
    ProcessRunner* local = nullptr;  // for restoring an in-guest network rewrite
    int agent_wait_sec = 120;        // how long a just-started source's agent may take
};
// Needs no SSH: only the source's and the target's APIs.
Status rollback_migration(MigrationSource& source, MigrationTarget& target, Journal& journal,
                          Logger& log, const RollbackOptions& options);

// The cutover IPs: the ones given, else every IPv4 address the guest agent
// reported on the NICs (without prefix, loopback and link-local skipped).
std::vector<std::string> cutover_ips(const VmSpec& spec, const MigrationOptions& options);

// Per NIC, what the guest-network rewrite does: the first NIC takes
// --use-dhcp / --static-cidr / --gateway; the others keep their own config.
std::vector<GuestNic> guest_nics(const VmSpec& spec, const MigrationOptions& options);

}  // namespace vmlift

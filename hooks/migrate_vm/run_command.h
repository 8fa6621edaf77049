// `migrate-vm run | plan | resume | rollback | status`: the whole migration
// over a journal (engine/migration.h), and the commands that continue, undo
// and show a run.
#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "hooks/migrate_vm/context.h"
#include "hooks/migrate_vm/pve_options.h"
#include "hooks/migrate_vm/truenas_options.h"

namespace vmlift::cli {

struct RunOptions {
    std::string config_file;  // consumed by expand_config(); kept for --help
    std::string source;       // pve://[USER@]HOST[:PORT]/VMID
    std::string target;       // truenas://HOST/POOL[/DATASET]
    PveOptions pve;
    TrueNasOptions truenas;
    std::string source_ssh_host;             // default: the source URL's host
    std::string target_ssh_host;             // default: the target URL's host
    std::string target_address_from_source;  // default: the target SSH host
    std::string target_zvol_root = "/dev/zvol";
    std::string target_nvram_dir = "/var/db/system/vm/nvram";
    std::string target_tpm_dir = "/var/db/system/vm/tpm";
    std::string target_name;
    std::vector<std::string> zvols;  // KEY=NAME
    std::string bridge;
    std::string bridge_map;
    std::string firmware_override;
    std::vector<std::string> target_ips;
    bool use_dhcp = false;
    std::string static_cidr;
    std::string gateway;
    std::string transfer_mode = "auto";
    std::string offline_vg_name;
    std::string offline_lv_name;
    std::string net_prep = "auto";
    int shutdown_timeout = 180;
    bool force_stop = false;
    bool yes = false;
    std::string post_cutover_cmd;
    int verify_port = 22;
    std::string verify_mode = "tcp";
    int verify_timeout = 300;
    int verify_poll = 5;
    bool skip_ip_conflict_check = false;
    int zstd_level = 1;
    std::string agent_dir = "/var/tmp/vmlift";
    std::string target_state_dir = "/var/lib/vmlift";
};

struct RunDirOptions {
    std::string run;  // the run directory
    bool start_source = false;
};

void add_run_commands(CLI::App& app, RunOptions& run, RunOptions& plan, RunDirOptions& dir);
int run_run(Context& ctx, RunOptions& options, bool plan_only);
int run_resume(Context& ctx, const RunDirOptions& options);
int run_rollback(Context& ctx, const RunDirOptions& options);
int run_status(Context& ctx, const RunDirOptions& options);

}  // namespace vmlift::cli

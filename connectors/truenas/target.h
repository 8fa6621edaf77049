// A live TrueNAS as the target of a migration: connect, provision a plan
// idempotently, and roll back exactly what a run created.
//
// Contract
//   connect() asks GET /api/versions which API the server speaks (see
//   jsonrpc.h), opens the WebSocket with the same TLS policy, logs in with
//   the API key, checks system.version_short, and on 25.10+ turns legacy job
//   handling off (core.set_options) and checks the answer. A 24.10 server
//   gets the same calls over REST (rest.h) with the key as a Bearer token.
//   call() runs one method; job methods return their result when the job
//   ends: directly on 25.10+, by polling core.get_jobs on older releases
//   (FAILED/ABORTED become remote_failed with the job's error).
//   provision() runs a ProvisionPlan. Before changing anything it checks
//   every NIC's bridge against vm.device.nic_attach_choices (warning when
//   the choice is not a bridge: the host then cannot reach the guest) and
//   the zvols' total size against the pool's free space. Then, idempotently: a zvol
//   that exists with this run's marker is reused, one that exists without
//   it is an error (nothing of someone else's is touched); a VM with the
//   marker in its description is reused, a name taken by another VM gets
//   _2, _3...; devices already on the VM (same zvol path, same MAC) are
//   reused. The result says what was created and what was reused.
//   rollback() deletes the VMs whose description carries the marker (never
//   their zvols through vm.delete), then the zvols whose comments carry it,
//   then cron jobs and init/shutdown scripts that carry it, and nothing
//   else; it reports what it deleted. preflight also refuses a topology
//   over vm.maximum_supported_vcpus.
// Thread safety: none.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "connectors/http/websocket.h"
#include "connectors/truenas/jsonrpc.h"
#include "connectors/truenas/midclt.h"
#include "connectors/truenas/provision_plan.h"
#include "engine/http.h"

namespace vmlift::truenas {

struct TrueNasConnection {
    std::string host;
    int port = 443;
    http::TlsOptions tls;
    std::string user = "root";
    std::string api_key;
    std::chrono::seconds timeout{120};
};

struct ProvisionResult {
    int vm_id = 0;
    std::string vm_name;
    bool vm_reused = false;
    std::vector<std::string> zvols_created;
    std::vector<std::string> zvols_reused;
    int devices_created = 0;
    int devices_reused = 0;
    std::vector<std::string> warnings;
    nlohmann::json to_json() const;
};

struct RollbackResult {
    std::vector<std::string> vms_deleted;
    std::vector<std::string> zvols_deleted;
    int hooks_deleted = 0;
};

class TrueNasTarget {
  public:
    static Result<std::unique_ptr<TrueNasTarget>> connect(const TrueNasConnection& connection);
    // The same, with every call through `midclt call` on the host over SSH
    // (`host` must outlive the target).
    static Result<std::unique_ptr<TrueNasTarget>> over_ssh(SshTransport& host, Privilege privilege);

    Release release() const { return m_release; }
    // Called with a job's progress (percent, description) while a job method
    // runs: from core.get_jobs polls, or from the server's job notifications.
    void on_job_progress(std::function<void(int, const std::string&)> callback) {
        m_on_progress = std::move(callback);
    }
    const std::string& version() const { return m_version; }
    Result<nlohmann::json> call(const std::string& method,
                                const nlohmann::json& params = nlohmann::json::array());
    Result<ProvisionResult> provision(const ProvisionPlan& plan, const TargetUrl& target);
    Result<RollbackResult> rollback(const std::string& marker);

    // Hooks that outlive a run: cron jobs and init/shutdown scripts, found
    // again by `marker` in their description/comment (created once, reused).
    struct CronSchedule {
        std::string minute = "*/5", hour = "*", dom = "*", month = "*", dow = "*";
    };
    Result<int> ensure_cronjob(const std::string& marker, const std::string& command,
                               const CronSchedule& schedule, const std::string& user = "root");
    enum class When { preinit, postinit, shutdown };
    Result<int> ensure_init_script(const std::string& marker, const std::string& command,
                                   When when);
    Result<nlohmann::json> hooks(
        const std::string& marker);  // {"cronjobs":[...],"init_scripts":[...]}
    Status delete_hooks(const std::string& marker);

    // The VM's power: start, stop (a job: waits), status ("RUNNING", ...).
    Status start_vm(int id);
    Status stop_vm(int id, bool force);
    Result<std::string> vm_state(int id);
    Status delete_vm(int id);

    // What the target has: {version, system, pools[{name, free}],
    // datasets[{name, type, exec}], interfaces[{name, type}], nic_attach_choices,
    // max_vcpus, bootloaders, ovmf_choices, vms[{id, name, state}]}.
    Result<nlohmann::json> inventory();

  private:
    TrueNasTarget() = default;
    Status preflight(const ProvisionPlan& plan, const TargetUrl& target,
                     std::vector<std::string>& warnings);
    Status finish_connect();
    std::unique_ptr<HttpClient> m_http;  // REST (24.10) only
    std::unique_ptr<ApiTransport> m_rpc;
    Release m_release = Release::v25_10;
    std::string m_version;
    bool m_legacy_jobs = true;
    bool m_midclt = false;
    std::function<void(int, const std::string&)> m_on_progress;
    void forward_progress(const nlohmann::json& job);
};

}  // namespace vmlift::truenas

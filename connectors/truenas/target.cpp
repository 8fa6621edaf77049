#include "connectors/truenas/target.h"

#include <set>
#include <thread>

#include "connectors/http/curl_http.h"
#include "connectors/truenas/midclt.h"
#include "connectors/truenas/rest.h"
#include "engine/json_text.h"

namespace vmlift::truenas {
namespace {

// Dataset properties come as {"value": ...} objects from pool.dataset.query.
std::string property_text(const nlohmann::json& dataset, const char* key) {
    if (!dataset.contains(key)) {
        return {};
    }
    const auto& v = dataset[key];
    if (v.is_object()) {
        return json_text(v, "value");
    }
    return v.is_string() ? v.get<std::string>() : std::string();
}

nlohmann::json filter_eq(const std::string& key, const nlohmann::json& value) {
    return nlohmann::json::array(
        {nlohmann::json::array({nlohmann::json::array({key, "=", value})})});
}

nlohmann::json with_vm_id(nlohmann::json params, int vm_id) {
    for (auto& p : params) {
        if (p.is_object() && p.contains("vm") && p["vm"] == "${vm.id}") {
            p["vm"] = vm_id;
        }
    }
    return params;
}

}  // namespace

nlohmann::json ProvisionResult::to_json() const {
    return {{"vm_id", vm_id},
            {"vm_name", vm_name},
            {"vm_reused", vm_reused},
            {"zvols_created", zvols_created},
            {"zvols_reused", zvols_reused},
            {"devices_created", devices_created},
            {"devices_reused", devices_reused},
            {"warnings", warnings}};
}

Result<std::unique_ptr<TrueNasTarget>> TrueNasTarget::connect(const TrueNasConnection& c) {
    const std::string authority = c.host + ":" + std::to_string(c.port);
    http::CurlOptions curl;
    curl.base_url = "https://" + authority;
    curl.tls = c.tls;
    http::CurlHttpClient client(curl);
    auto versions = client.send({HttpMethod::get, "/api/versions", {}, "", true});
    if (!versions.ok()) {
        return versions.status();
    }
    auto api = choose_api(versions->status, versions->body);
    if (!api.ok()) {
        return api.status();
    }
    std::unique_ptr<TrueNasTarget> t(new TrueNasTarget());
    if (api->kind == ApiKind::rest_v2) {
        http::CurlOptions rest = curl;
        rest.base_url = "https://" + authority + "/api/v2.0";
        rest.request_timeout = c.timeout;
        t->m_http = std::make_unique<http::CurlHttpClient>(rest);
        t->m_rpc = std::make_unique<RestApi>(*t->m_http, c.api_key);
    } else {
        http::WsOptions ws;
        ws.url = "wss://" + authority + api->path;
        ws.tls = c.tls;
        auto socket = http::WebSocket::connect(ws);
        if (!socket.ok()) {
            return socket.status();
        }
        auto rpc = std::make_unique<JsonRpc>(std::move(*socket), ws.url, c.timeout);
        TrueNasTarget* self = t.get();
        rpc->on_notification = [self](const nlohmann::json& n) {
            // {"method":"collection_update","params":{"collection":"core.get_jobs",
            //  "fields":{"progress":{...}}}}
            if (json_text(n, "method") != "collection_update" || !n.contains("params")) {
                return;
            }
            const auto& p = n["params"];
            if (json_text(p, "collection") == "core.get_jobs" && p.contains("fields")) {
                self->forward_progress(p["fields"]);
            }
        };
        VMLIFT_RETURN_IF_ERROR(login_with_api_key(*rpc, c.user, c.api_key));
        t->m_rpc = std::move(rpc);
    }
    VMLIFT_RETURN_IF_ERROR(t->finish_connect());
    return t;
}

Result<std::unique_ptr<TrueNasTarget>> TrueNasTarget::over_ssh(SshTransport& host,
                                                               Privilege privilege) {
    std::unique_ptr<TrueNasTarget> t(new TrueNasTarget());
    t->m_rpc = std::make_unique<MidcltApi>(host, privilege);
    t->m_midclt = true;
    VMLIFT_RETURN_IF_ERROR(t->finish_connect());
    return t;
}

// Version check and job handling, whatever the transport.
Status TrueNasTarget::finish_connect() {
    auto version = m_rpc->call("system.version_short");
    if (!version.ok()) {
        return version.status();
    }
    m_version = version->is_string() ? version->get<std::string>() : version->dump();
    VMLIFT_RETURN_IF_ERROR(check_release(m_version));
    auto release = parse_release(m_version);
    if (!release.ok()) {
        return release.status();
    }
    m_release = *release;
    if (m_midclt) {
        m_legacy_jobs = false;  // midclt -j waits for jobs; options are per connection
        return {};
    }
    if (m_release == Release::v25_10 || m_release == Release::v26) {
        auto options =
            m_rpc->call("core.set_options", nlohmann::json::array({{{"legacy_jobs", false}}}));
        if (!options.ok()) {
            return options.status();
        }
        if (!options->is_object() || options->value("legacy_jobs", true) != false) {
            return Status(Code::remote_failed,
                          "core.set_options did not turn legacy job handling off");
        }
        m_legacy_jobs = false;
    }
    return {};
}

Result<nlohmann::json> TrueNasTarget::call(const std::string& method,
                                           const nlohmann::json& params) {
    auto r = m_rpc->call(method, params);
    if (!r.ok() || !m_legacy_jobs || !truenas_job_methods().count(method)) {
        return r;
    }
    if (!r->is_number_integer()) {
        return Status(Code::remote_failed, method + " did not answer a job id");
    }
    const long long id = r->get<long long>();
    auto delay = std::chrono::milliseconds(200);
    for (;;) {
        auto jobs = m_rpc->call("core.get_jobs", filter_eq("id", id));
        if (!jobs.ok()) {
            return jobs.status();
        }
        if (!jobs->is_array() || jobs->empty()) {
            return Status(Code::remote_failed,
                          method + ": job " + std::to_string(id) + " vanished");
        }
        const auto& job = (*jobs)[0];
        forward_progress(job);
        std::string state = json_text(job, "state");
        if (state == "SUCCESS") {
            return job.contains("result") ? job["result"] : nlohmann::json();
        }
        if (state == "FAILED" || state == "ABORTED") {
            return Status(Code::remote_failed, method + ": job " + std::to_string(id) + " " +
                                                   state + ": " + json_text(job, "error"));
        }
        std::this_thread::sleep_for(delay);
        delay = std::min(delay * 2, std::chrono::milliseconds(2000));
    }
}

Status TrueNasTarget::preflight(const ProvisionPlan& plan, const TargetUrl& target,
                                std::vector<std::string>& warnings) {
    for (const auto& c : plan.calls) {
        if (c.method != "vm.create") {
            continue;
        }
        const auto& vm = c.params[0];
        const int wanted = vm.value("vcpus", 1) * vm.value("cores", 1) * vm.value("threads", 1);
        auto max = call("vm.maximum_supported_vcpus");
        if (max.ok() && max->is_number_integer() && wanted > max->get<int>()) {
            return Status(Code::invalid_input, "the VM needs " + std::to_string(wanted) +
                                                   " vCPUs but this TrueNAS "
                                                   "supports at most " +
                                                   std::to_string(max->get<int>()) +
                                                   "; lower the source's sockets or cores first");
        }
    }
    std::set<std::string> bridges;
    if (auto ifaces = call("interface.query"); ifaces.ok() && ifaces->is_array()) {
        for (const auto& i : *ifaces) {
            if (json_text(i, "type") == "BRIDGE") {
                bridges.insert(json_text(i, "name"));
            }
        }
    }
    auto choices = call("vm.device.nic_attach_choices");
    if (!choices.ok()) {
        return choices.status();
    }
    uint64_t needed = 0;
    for (const auto& c : plan.calls) {
        if (c.method == "vm.device.create") {
            const auto& p = c.params[0];
            const auto& a = p["attributes"];
            std::string dtype = p.contains("dtype") ? json_text(p, "dtype") : json_text(a, "dtype");
            if (dtype != "NIC") {
                continue;
            }
            std::string bridge = json_text(a, "nic_attach");
            if (!choices->contains(bridge)) {
                std::string list;
                for (const auto& [k, v] : choices->items()) {
                    list += (list.empty() ? "" : ", ") + k;
                }
                return Status(Code::invalid_input,
                              "bridge '" + bridge + "' does not exist on TrueNAS (choices: " +
                                  list + "); create it or map it with --bridge-map SRC=DST");
            }
            if (!bridges.count(bridge)) {
                warnings.push_back("NIC " + json_text(a, "mac") + " attaches to " + bridge +
                                   ", not a bridge: the TrueNAS host itself cannot reach the "
                                   "guest through it (macvtap)");
            }
        } else if (c.method == "pool.dataset.create") {
            needed += c.params[0].value("volsize", uint64_t{0});
        }
    }
    auto pools = call("pool.query", filter_eq("name", target.pool));
    if (!pools.ok()) {
        return pools.status();
    }
    if (!pools->is_array() || pools->empty()) {
        return Status(Code::not_found, "pool '" + target.pool + "' does not exist on TrueNAS");
    }
    const uint64_t free = (*pools)[0].value("free", uint64_t{0});
    if (needed > free) {
        return Status(Code::invalid_input, "not enough space on pool " + target.pool +
                                               ": the disks need " + std::to_string(needed) +
                                               " bytes, " + std::to_string(free) +
                                               " are free; free space or choose another pool");
    }
    return {};
}

Result<ProvisionResult> TrueNasTarget::provision(const ProvisionPlan& plan,
                                                 const TargetUrl& target) {
    ProvisionResult result;
    VMLIFT_RETURN_IF_ERROR(preflight(plan, target, result.warnings));
    std::vector<nlohmann::json> existing_devices;
    for (const auto& c : plan.calls) {
        if (c.method == "pool.dataset.create") {
            const std::string name = json_text(c.params[0], "name");
            auto found = call("pool.dataset.query", filter_eq("id", name));
            if (!found.ok()) {
                return found.status();
            }
            if (found->is_array() && !found->empty()) {
                if (property_text((*found)[0], "comments") != plan.marker) {
                    return Status(Code::invalid_input,
                                  "zvol " + name +
                                      " already exists and was not created by this "
                                      "run; name the disk's zvol with --zvol KEY=NAME");
                }
                result.zvols_reused.push_back(name);
                continue;
            }
            auto created = call(c.method, c.params);
            if (!created.ok()) {
                return created.status();
            }
            result.zvols_created.push_back(name);
        } else if (c.method == "vm.create") {
            nlohmann::json params = c.params;
            std::string base = json_text(params[0], "name");
            for (int n = 1;; ++n) {
                std::string name = n == 1 ? base : base + "_" + std::to_string(n);
                auto found = call("vm.query", filter_eq("name", name));
                if (!found.ok()) {
                    return found.status();
                }
                if (found->is_array() && !found->empty()) {
                    if (json_text((*found)[0], "description").rfind(plan.marker + ":", 0) == 0) {
                        result.vm_id = (*found)[0].value("id", 0);
                        result.vm_name = name;
                        result.vm_reused = true;
                        for (const auto& d :
                             (*found)[0].value("devices", nlohmann::json::array())) {
                            existing_devices.push_back(d);
                        }
                        break;
                    }
                    continue;  // taken by someone else's VM: try the next name
                }
                params[0]["name"] = name;
                auto created = call(c.method, params);
                if (!created.ok()) {
                    return created.status();
                }
                result.vm_id = created->value("id", 0);
                result.vm_name = name;
                break;
            }
        } else if (c.method == "vm.device.create") {
            const auto& a = c.params[0]["attributes"];
            bool present = false;
            for (const auto& d : existing_devices) {
                const auto& da = d.contains("attributes") ? d["attributes"] : nlohmann::json();
                if ((a.contains("path") && json_text(da, "path") == json_text(a, "path")) ||
                    (a.contains("mac") && json_text(da, "mac") == json_text(a, "mac"))) {
                    present = true;
                }
            }
            if (present) {
                ++result.devices_reused;
                continue;
            }
            auto created = call(c.method, with_vm_id(c.params, result.vm_id));
            if (!created.ok()) {
                return created.status();
            }
            ++result.devices_created;
        } else {
            auto r = call(c.method, c.params);
            if (!r.ok()) {
                return r.status();
            }
        }
    }
    return result;
}

Result<int> TrueNasTarget::ensure_cronjob(const std::string& marker, const std::string& command,
                                          const CronSchedule& schedule, const std::string& user) {
    auto found = call("cronjob.query", filter_eq("description", marker));
    if (!found.ok()) {
        return found.status();
    }
    if (found->is_array() && !found->empty()) {
        return (*found)[0].value("id", 0);
    }
    auto created = call("cronjob.create", nlohmann::json::array({{{"user", user},
                                                                  {"command", command},
                                                                  {"description", marker},
                                                                  {"enabled", true},
                                                                  {"schedule",
                                                                   {{"minute", schedule.minute},
                                                                    {"hour", schedule.hour},
                                                                    {"dom", schedule.dom},
                                                                    {"month", schedule.month},
                                                                    {"dow", schedule.dow}}}}}));
    if (!created.ok()) {
        return created.status();
    }
    return created->value("id", 0);
}

Result<int> TrueNasTarget::ensure_init_script(const std::string& marker, const std::string& command,
                                              When when) {
    auto found = call("initshutdownscript.query", filter_eq("comment", marker));
    if (!found.ok()) {
        return found.status();
    }
    if (found->is_array() && !found->empty()) {
        return (*found)[0].value("id", 0);
    }
    const char* when_text = when == When::preinit    ? "PREINIT"
                            : when == When::postinit ? "POSTINIT"
                                                     : "SHUTDOWN";
    auto created =
        call("initshutdownscript.create", nlohmann::json::array({{{"type", "COMMAND"},
                                                                  {"command", command},
                                                                  {"when", when_text},
                                                                  {"enabled", true},
                                                                  {"timeout", 30},
                                                                  {"comment", marker}}}));
    if (!created.ok()) {
        return created.status();
    }
    return created->value("id", 0);
}

Result<nlohmann::json> TrueNasTarget::hooks(const std::string& marker) {
    auto cron = call("cronjob.query", filter_eq("description", marker));
    if (!cron.ok()) {
        return cron.status();
    }
    auto init = call("initshutdownscript.query", filter_eq("comment", marker));
    if (!init.ok()) {
        return init.status();
    }
    return nlohmann::json{{"cronjobs", *cron}, {"init_scripts", *init}};
}

Status TrueNasTarget::delete_hooks(const std::string& marker) {
    auto all = hooks(marker);
    if (!all.ok()) {
        return all.status();
    }
    for (const auto& c : (*all)["cronjobs"]) {
        auto r = call("cronjob.delete", nlohmann::json::array({c.value("id", 0)}));
        if (!r.ok()) {
            return r.status();
        }
    }
    for (const auto& i : (*all)["init_scripts"]) {
        auto r = call("initshutdownscript.delete", nlohmann::json::array({i.value("id", 0)}));
        if (!r.ok()) {
            return r.status();
        }
    }
    return {};
}

void TrueNasTarget::forward_progress(const nlohmann::json& job) {
    if (!m_on_progress || !job.is_object() || !job.contains("progress") ||
        !job["progress"].is_object()) {
        return;
    }
    const auto& progress = job["progress"];
    int percent = progress.contains("percent") && progress["percent"].is_number()
                      ? static_cast<int>(progress["percent"].get<double>())
                      : 0;
    m_on_progress(percent, json_text(progress, "description"));
}

Status TrueNasTarget::start_vm(int id) {
    auto r = call("vm.start", nlohmann::json::array({id}));
    return r.ok() ? Status() : r.status();
}

Status TrueNasTarget::stop_vm(int id, bool force) {
    auto r = call("vm.stop",
                  nlohmann::json::array({id, {{"force", force}, {"force_after_timeout", true}}}));
    return r.ok() ? Status() : r.status();
}

Result<std::string> TrueNasTarget::vm_state(int id) {
    auto r = call("vm.status", nlohmann::json::array({id}));
    if (!r.ok()) {
        return r.status();
    }
    return json_text(*r, "state");
}

Status TrueNasTarget::delete_vm(int id) {
    auto r = call("vm.delete", nlohmann::json::array({id, {{"zvols", false}}}));
    return r.ok() ? Status() : r.status();
}

Result<nlohmann::json> TrueNasTarget::inventory() {
    nlohmann::json out = {{"version", m_version}, {"release", to_string(m_release)}};
    struct Item {
        const char* key;
        const char* method;
    };
    for (const Item& item :
         {Item{"system", "system.info"}, Item{"pools", "pool.query"},
          Item{"datasets", "pool.dataset.query"}, Item{"interfaces", "interface.query"},
          Item{"nic_attach_choices", "vm.device.nic_attach_choices"},
          Item{"max_vcpus", "vm.maximum_supported_vcpus"},
          Item{"bootloaders", "vm.bootloader_options"},
          Item{"ovmf_choices", "vm.bootloader_ovmf_choices"}, Item{"vms", "vm.query"}}) {
        auto r = call(item.method);
        if (!r.ok()) {
            return Status(r.status().code(), "inventory: " + r.status().message());
        }
        out[item.key] = *r;
    }
    nlohmann::json pools = nlohmann::json::array();
    for (const auto& p : out["pools"]) {
        pools.push_back({{"name", json_text(p, "name")}, {"free", p.value("free", uint64_t{0})}});
    }
    out["pools"] = pools;
    nlohmann::json datasets = nlohmann::json::array();
    for (const auto& d : out["datasets"]) {
        datasets.push_back({{"name", json_text(d, "id")},
                            {"type", json_text(d, "type")},
                            {"exec", property_text(d, "exec")}});
    }
    out["datasets"] = datasets;
    nlohmann::json ifaces = nlohmann::json::array();
    for (const auto& i : out["interfaces"]) {
        ifaces.push_back({{"name", json_text(i, "name")}, {"type", json_text(i, "type")}});
    }
    out["interfaces"] = ifaces;
    nlohmann::json vms = nlohmann::json::array();
    for (const auto& v : out["vms"]) {
        vms.push_back({{"id", v.value("id", 0)},
                       {"name", json_text(v, "name")},
                       {"state", v.contains("status") ? json_text(v["status"], "state") : ""}});
    }
    out["vms"] = vms;
    return out;
}

Result<RollbackResult> TrueNasTarget::rollback(const std::string& marker) {
    RollbackResult result;
    auto vms = call("vm.query");
    if (!vms.ok()) {
        return vms.status();
    }
    for (const auto& vm : *vms) {
        if (json_text(vm, "description").rfind(marker + ":", 0) != 0) {
            continue;
        }
        const int id = vm.value("id", 0);
        if (vm.contains("status") && json_text(vm["status"], "state") == "RUNNING") {
            auto stopped = call("vm.stop", nlohmann::json::array({id, {{"force", true}}}));
            if (!stopped.ok()) {
                return stopped.status();
            }
        }
        auto deleted = call("vm.delete", nlohmann::json::array({id, {{"zvols", false}}}));
        if (!deleted.ok()) {
            return deleted.status();
        }
        result.vms_deleted.push_back(json_text(vm, "name"));
    }
    auto datasets = call("pool.dataset.query");
    if (!datasets.ok()) {
        return datasets.status();
    }
    for (const auto& ds : *datasets) {
        if (property_text(ds, "comments") != marker) {
            continue;
        }
        std::string name = json_text(ds, "id");
        auto deleted = call("pool.dataset.delete", nlohmann::json::array({name}));
        if (!deleted.ok()) {
            return deleted.status();
        }
        result.zvols_deleted.push_back(name);
    }
    auto leftover = hooks(marker);
    if (!leftover.ok()) {
        return leftover.status();
    }
    result.hooks_deleted =
        static_cast<int>((*leftover)["cronjobs"].size() + (*leftover)["init_scripts"].size());
    VMLIFT_RETURN_IF_ERROR(delete_hooks(marker));
    return result;
}

}  // namespace vmlift::truenas

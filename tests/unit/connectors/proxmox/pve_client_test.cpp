// PveClient and PveSource against a stateful fake HTTP server that answers
// with the reference response bodies in tests/data (real shapes), plus the
// retry wrapper.
#include "connectors/proxmox/pve_client.h"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <gtest/gtest.h>

#include "connectors/proxmox/pve_source.h"
#include "engine/clock.h"
#include "tests/support/local_transport.h"
#include "tests/support/temp_dir.h"

namespace vmlift::proxmox {
namespace {

using testing_support::read_all;

const std::string k_ref = VMLIFT_TEST_DATA "/proxmox/api-responses/go-proxmox/";

struct Answer {
    int status = 200;
    std::string reason = "OK";
    std::string body;
};

// Routes "METHOD path-without-query" to queued answers (the last one repeats).
class FakeHttp : public HttpClient {
  public:
    void on(const std::string& key, Answer a) { m_routes[key].push_back(std::move(a)); }
    void on_file(const std::string& key, const std::string& file, int status = 200) {
        on(key, {status, status == 200 ? "OK" : "error", read_all(k_ref + file)});
    }
    Result<HttpResponse> send(const HttpRequest& r) override {
        requests.push_back(r);
        std::string key =
            std::string(to_string(r.method)) + " " + r.path.substr(0, r.path.find('?'));
        auto it = m_routes.find(key);
        if (it == m_routes.end()) {
            if (unreachable) {
                return Status(Code::unreachable, "connection refused");
            }
            return HttpResponse{501, "Method not implemented", {}, "{\"data\":null}"};
        }
        Answer a = it->second.front();
        if (it->second.size() > 1) {
            it->second.erase(it->second.begin());
        }
        return HttpResponse{a.status, a.reason, {}, a.body};
    }
    std::vector<HttpRequest> requests;
    bool unreachable = false;

  private:
    std::map<std::string, std::vector<Answer>> m_routes;
};

class RecordingSleeper : public Sleeper {
  public:
    void sleep(std::chrono::milliseconds d) override { sleeps.push_back(d.count()); }
    std::vector<long long> sleeps;
};

PveCredentials token() {
    return {"root@pam!vmlift", "s3cr3t", "", ""};
}

TEST(PveReference, EveryResponseBodyParses) {
    size_t n = 0;
    for (const auto& e : std::filesystem::directory_iterator(k_ref)) {
        auto j = nlohmann::json::parse(read_all(e.path()), nullptr, false);
        ASSERT_FALSE(j.is_discarded()) << e.path();
        EXPECT_TRUE(j.contains("data")) << e.path();
        ++n;
    }
    EXPECT_EQ(n, 33u);
    auto cluster = nlohmann::json::parse(
        read_all(VMLIFT_TEST_DATA "/proxmox/api-responses/prometheus-pve-exporter/cluster.json"));
    EXPECT_TRUE(cluster.is_object());
}

TEST(PveSource, InspectFromReferenceBodies) {
    FakeHttp http;
    FakeClock clock;
    RecordingSleeper sleeper;
    http.on_file("GET /cluster/resources", "GET_cluster_resources.pve8x.json");
    http.on_file("GET /nodes/node2/qemu/100/config", "GET_qemu_config.pve8x.json");
    http.on_file("GET /nodes/node2/qemu/100/pending", "GET_qemu_pending.pve9x.json");
    http.on_file("GET /nodes/node2/qemu/100/status/current",
                 "GET_qemu_status_current.running.pve8x.json");
    http.on_file("GET /storage", "GET_storage.pve8x.json");
    http.on_file("GET /nodes/node2/storage/local-lvm/content/local-lvm%3Avm-100-disk-0",
                 "GET_nodes_node_storage_local_content_volume.pve9x.json");
    http.on_file("GET /nodes/node2/qemu/100/agent/network-get-interfaces",
                 "GET_qemu_agent_network-get-interfaces.pve9x.json");
    http.on_file("GET /nodes/node2/qemu/100/agent/get-osinfo",
                 "GET_qemu_agent_get-osinfo.pve9x.json");
    PveClient api(http, clock, sleeper, token());
    PveSource source(api, "pve://pve.example/100");
    ASSERT_TRUE(source.locate("100").ok());
    EXPECT_EQ(source.node(), "node2");
    auto spec = source.inspect();
    ASSERT_TRUE(spec.ok()) << spec.status().message();
    EXPECT_EQ(spec->name, "test-vm");
    EXPECT_EQ(spec->status, "running");
    EXPECT_EQ(spec->memory_mib, 2048u);
    ASSERT_EQ(spec->disks.size(), 1u);
    EXPECT_EQ(spec->disks[0].size_bytes, 654311424u);  // from the storage layer
    EXPECT_EQ(spec->disks[0].host_path, "/var/lib/vz/template/iso/debian-12.iso");
    ASSERT_EQ(spec->nics.size(), 1u);
    EXPECT_EQ(spec->nics[0].mac, "bc:24:11:2e:c5:4a");
    EXPECT_EQ(spec->nics[0].ip_addresses, std::vector<std::string>{"10.0.0.10/24"});
    EXPECT_EQ(spec->guest_os, "Debian GNU/Linux 12 (bookworm)");
    std::string w;
    for (const auto& x : spec->warnings) {
        w += x + "\n";
    }
    EXPECT_NE(w.find("pending changes not yet applied (cores)"), std::string::npos) << w;
    // The token travels in the header only.
    EXPECT_EQ(http.requests[0].headers.back().second, "PVEAPIToken=root@pam!vmlift=s3cr3t");
    // Names: unique names resolve, duplicates and containers do not.
    EXPECT_TRUE(source.locate("server1").ok());
    EXPECT_EQ(source.vmid(), 100);
    EXPECT_EQ(source.locate("no-such-vm").code(), Code::not_found);
}

TEST(PveClient, ErrorsKeepProxmoxMeaning) {
    FakeHttp http;
    FakeClock clock;
    RecordingSleeper sleeper;
    http.on_file("GET /cluster/nextid", "GET_cluster_nextid.400-error.pve8x.json", 400);
    http.on("GET /nodes/doesntexist/status",
            {500,
             "hostname lookup 'doesntexist' failed - failed to get address info for: "
             "doesntexist: Name or service not known",
             read_all(k_ref + "GET_nodes_doesntexist_status.500-error.pve8x.json")});
    http.on("GET /nodes/node1/qemu/999/config",
            {500, "Configuration file 'nodes/node1/qemu-server/999.conf' does not exist",
             "{\"data\":null,\"message\":\"Configuration file 'nodes/node1/qemu-server/999.conf' "
             "does not exist\\n\"}"});
    http.on("POST /nodes/node1/qemu/100/status/start",
            {403, "Permission check failed (/vms/100, VM.PowerMgmt)", "{\"data\":null}"});
    http.on("GET /version", {401, "authentication failure", "{\"data\":null}"});
    PveClient api(http, clock, sleeper, token());
    auto bad = api.get("/cluster/nextid", {{"vmid", "200"}});
    EXPECT_EQ(bad.status().code(), Code::invalid_input);
    EXPECT_NE(bad.status().message().find("vmid: VM 200 already exists"), std::string::npos)
        << bad.status().message();
    auto host = api.get("/nodes/doesntexist/status");
    EXPECT_EQ(host.status().code(), Code::remote_failed);
    EXPECT_NE(host.status().message().find("hostname lookup 'doesntexist' failed"),
              std::string::npos);
    auto missing = api.get("/nodes/node1/qemu/999/config");
    EXPECT_EQ(missing.status().code(), Code::not_found);
    auto denied = api.post("/nodes/node1/qemu/100/status/start");
    EXPECT_EQ(denied.status().code(), Code::permission_denied);
    EXPECT_NE(denied.status().message().find("VM.PowerMgmt"), std::string::npos);
    auto auth = api.get("/version");
    EXPECT_EQ(auth.status().code(), Code::auth_failed);
    for (const auto* s : {&bad, &host, &missing, &auth}) {
        EXPECT_EQ(s->status().message().find('\n'), std::string::npos);
        EXPECT_EQ(s->status().message().find("s3cr3t"), std::string::npos);
    }
}

TEST(PveClient, WaitTaskPollsTheNodeOfTheUpid) {
    FakeHttp http;
    FakeClock clock;
    RecordingSleeper sleeper;
    const std::string ok = "UPID:node1:00000002:00000002:00000002:test:completed:root@pam:";
    const std::string failed = "UPID:node1:00000003:00000003:00000003:test:failed:root@pam:";
    http.on_file("GET /nodes/node1/tasks/" + url_encode(ok) + "/status",
                 "GET_tasks_upid_status.running.pve8x.json");
    http.on_file("GET /nodes/node1/tasks/" + url_encode(ok) + "/status",
                 "GET_tasks_upid_status.ok.pve8x.json");
    http.on_file("GET /nodes/node1/tasks/" + url_encode(failed) + "/status",
                 "GET_tasks_upid_status.failed.pve8x.json");
    http.on_file("GET /nodes/node1/tasks/" + url_encode(failed) + "/log",
                 "GET_tasks_upid_log.pve8x.json");
    PveClient api(http, clock, sleeper, token());
    EXPECT_TRUE(api.wait_task(ok, std::chrono::seconds(60)).ok());
    EXPECT_EQ(sleeper.sleeps.size(), 1u);
    Status st = api.wait_task(failed, std::chrono::seconds(60));
    EXPECT_EQ(st.code(), Code::remote_failed);
    EXPECT_NE(st.message().find("failed: some error occurred (log: processing step 2 | processing "
                                "step 3 | task completed successfully)"),
              std::string::npos)
        << st.message();
    EXPECT_EQ(api.wait_task("not-a-upid", std::chrono::seconds(1)).code(), Code::invalid_input);
}

TEST(RetryingHttpClient, RetriesIdempotentRequestsOnlyWithBackoff) {
    FakeHttp http;
    RecordingSleeper sleeper;
    http.on("GET /x", {503, "busy", ""});
    http.on("GET /x", {503, "busy", ""});
    http.on("GET /x", {200, "OK", "{}"});
    http.on("POST /y", {503, "busy", ""});
    RetryingHttpClient retry(http, sleeper,
                             {4, std::chrono::milliseconds(500), std::chrono::milliseconds(800)});
    HttpRequest get{HttpMethod::get, "/x", {}, "", true};
    auto r = retry.send(get);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(sleeper.sleeps, (std::vector<long long>{500, 800}));
    HttpRequest post{HttpMethod::post, "/y", {}, "", false};
    sleeper.sleeps.clear();
    EXPECT_EQ(retry.send(post)->status, 503);
    EXPECT_TRUE(sleeper.sleeps.empty());
    http.unreachable = true;
    HttpRequest down{HttpMethod::get, "/down", {}, "", true};
    EXPECT_EQ(retry.send(down).status().code(), Code::unreachable);
    EXPECT_EQ(sleeper.sleeps.size(), 3u);  // 4 attempts
}

// Runs `qm` as a script in a temp dir, through the real quoting path.
class FakeQmNode : public testing_support::LocalTransport {
  public:
    explicit FakeQmNode(std::string qm) : m_qm(std::move(qm)) {}
    Result<ExitStatus> exec(const std::vector<std::string>& argv, RunIo io,
                            ExecOptions options = {}) override {
        auto copy = argv;
        if (!copy.empty() && copy[0] == "qm") {
            copy[0] = m_qm;
        }
        return LocalTransport::exec(copy, io, options);
    }

  private:
    std::string m_qm;
};

TEST(PveSource, HookscriptOverSshRunsQmSet) {
    testing_support::TempDir dir;
    const std::string qm = dir.file("qm");
    {
        std::ofstream out(qm);
        out << "#!/bin/sh\nprintf '%s|' \"$@\" > " << dir.file("args") << "\n"
            << "[ \"$2\" = 999 ] && { echo \"Configuration file 'nodes/pve1/qemu-server/999.conf' "
               "does not exist\" >&2; exit 2; }\nexit 0\n";
    }
    ::chmod(qm.c_str(), 0755);
    FakeQmNode node(qm);
    ASSERT_TRUE(set_hookscript_over_ssh(node, 130, "local:snippets/vmlift guard.sh").ok());
    EXPECT_EQ(read_all(dir.file("args")), "set|130|--hookscript|local:snippets/vmlift guard.sh|");
    Status st = set_hookscript_over_ssh(node, 999, "local:snippets/x.sh");
    EXPECT_FALSE(st.ok());
    EXPECT_NE(st.message().find("999.conf' does not exist"), std::string::npos) << st.message();
}

TEST(PveUrl, ParsesUserHostPortAndVm) {
    auto u = parse_pve_url("pve://admin@pve@10.0.0.5:8443/101");
    EXPECT_FALSE(u.ok());  // one @ for the user part only
    auto v = parse_pve_url("pve://root@pam@pve1/web01");
    EXPECT_FALSE(v.ok());
    auto w = parse_pve_url("pve://pve1.lan:8443/101");
    ASSERT_TRUE(w.ok());
    EXPECT_EQ(w->host, "pve1.lan");
    EXPECT_EQ(w->port, 8443);
    EXPECT_EQ(w->vm, "101");
    auto x = parse_pve_url("pve://admin@pve1/web01");
    ASSERT_TRUE(x.ok());
    EXPECT_EQ(x->user, "admin");
    EXPECT_EQ(x->port, 8006);
    EXPECT_FALSE(parse_pve_url("truenas://x/y").ok());
}

}  // namespace
}  // namespace vmlift::proxmox

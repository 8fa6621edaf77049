#include "tests/integration/pve_sim.h"

#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "connectors/http/curl_http.h"

namespace vmlift::testing_support {

std::string PveSim::skip_reason() {
    if (::access("/usr/bin/python3", X_OK) != 0) {
        return "needs /usr/bin/python3 for the Proxmox simulator (apt install python3)";
    }
    if (::access("/usr/bin/openssl", X_OK) != 0) {
        return "needs /usr/bin/openssl for the simulator's certificate (apt install openssl)";
    }
    return {};
}

Result<std::unique_ptr<PveSim>> PveSim::start(TempDir& dir, const nlohmann::json& cluster,
                                              double auth_delay) {
    auto sim = std::unique_ptr<PveSim>(new PveSim());
    sim->m_state = dir.file("sim-state");
    {
        std::ofstream out(dir.file("cluster.json"));
        out << cluster.dump(2);
    }
    ProcessSpec spec;
    spec.argv = {"/usr/bin/python3",
                 VMLIFT_SOURCE_DIR "/contrib/sim/pve/pve_sim.py",
                 "--cluster",
                 dir.file("cluster.json"),
                 "--schema",
                 VMLIFT_SOURCE_DIR "/tests/data/proxmox/api-schema/pve-api-schema-subset.json",
                 "--state",
                 sim->m_state,
                 "--listen",
                 "127.0.0.1:0",
                 "--auth-delay",
                 std::to_string(auth_delay)};
    spec.env = default_tool_env();
    spec.stderr_redirect = Redirect::truncate_to(dir.file("sim.log"));
    auto p = sim->m_runner.start(spec);
    if (!p.ok()) {
        return p.status();
    }
    sim->m_process = std::move(*p);
    for (int i = 0; i < 300; ++i) {
        std::string port = read_all(sim->m_state + "/port");
        if (!port.empty()) {
            sim->m_port = std::stoi(port);
            std::string fp = read_all(sim->m_state + "/fingerprint");
            sim->m_fingerprint = fp.substr(0, fp.find('\n'));
            return sim;
        }
        if (auto exit = sim->m_process->try_wait()) {
            return Status(Code::internal, "the Proxmox simulator exited before listening");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return Status(Code::timeout, "the Proxmox simulator did not start in 15 s");
}

PveSim::~PveSim() {
    if (m_process) {
        m_process->terminate(std::chrono::milliseconds(2000));
    }
}

std::string PveSim::url(const std::string& vm) const {
    return "pve://127.0.0.1:" + std::to_string(m_port) + "/" + vm;
}

std::string PveSim::base_url() const {
    return "https://127.0.0.1:" + std::to_string(m_port) + "/api2/json";
}

Result<nlohmann::json> PveSim::control(const std::string& method, const std::string& path,
                                       const std::string& body) {
    http::CurlOptions o;
    o.base_url = "https://127.0.0.1:" + std::to_string(m_port);
    o.tls.mode = http::TlsMode::pinned;
    o.tls.fingerprint = m_fingerprint;
    http::CurlHttpClient client(o);
    HttpRequest r;
    r.method = method == "POST" ? HttpMethod::post : HttpMethod::get;
    r.path = path;
    r.body = body;
    r.headers = {{"Content-Type", "application/json"}};
    auto response = client.send(r);
    if (!response.ok()) {
        return response.status();
    }
    return nlohmann::json::parse(response->body)["data"];
}

Status PveSim::inject(const nlohmann::json& injection) {
    auto r = control("POST", "/_sim/inject", injection.dump());
    return r.ok() ? Status() : r.status();
}

Result<nlohmann::json> PveSim::state() {
    return control("GET", "/_sim/state", "");
}

}  // namespace vmlift::testing_support

// Runs contrib/sim/pve/pve_sim.py for a test: a cluster built in a temp
// directory, HTTPS on 127.0.0.1 with a fresh self-signed certificate.
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/process.h"
#include "engine/status.h"
#include "tests/support/temp_dir.h"

namespace vmlift::testing_support {

class PveSim {
  public:
    // Empty when the simulator can run here, else why not.
    static std::string skip_reason();
    // `cluster` as in pve_sim.py's docstring; files it names are relative
    // to dir() (write them there before calling start()).
    static Result<std::unique_ptr<PveSim>> start(TempDir& dir, const nlohmann::json& cluster,
                                                 double auth_delay = 0.2);
    ~PveSim();

    int port() const { return m_port; }
    std::string url(const std::string& vm) const;  // pve://127.0.0.1:PORT/VM
    std::string base_url() const;                  // https://127.0.0.1:PORT/api2/json
    const std::string& fingerprint() const { return m_fingerprint; }
    std::string cert_file() const { return m_state + "/cert.pem"; }
    // One-shot error: {"method","path" (regex),"status","reason","body","count"}.
    Status inject(const nlohmann::json& injection);
    Result<nlohmann::json> state();

  private:
    Result<nlohmann::json> control(const std::string& method, const std::string& path,
                                   const std::string& body);
    PosixProcessRunner m_runner;
    std::unique_ptr<Process> m_process;
    std::string m_state;
    std::string m_fingerprint;
    int m_port = 0;
};

}  // namespace vmlift::testing_support

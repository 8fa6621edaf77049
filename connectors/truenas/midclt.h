// TrueNAS calls through `midclt call` over SSH, for hosts where only SSH is
// reachable. Works on every release: midclt talks to the local middleware.
//
// Contract
//   MidcltApi::call() runs `[sudo -n] midclt call [-j] METHOD PARAM...` on
//   the host (each parameter one JSON argument, built from argv through the
//   one quoting function), with -j for job methods so midclt waits for the
//   job. stdout is the JSON result (empty means null). A non-zero exit
//   becomes one line naming the method: validation lines ("[EINVAL]
//   attr: message") are invalid_input, "[ENOENT] ..." not_found,
//   "[EACCES]/[EPERM]" permission_denied, a missing midclt not_found with
//   the fix, anything else remote_failed with midclt's last line.
// Thread safety: as the transport's.
#pragma once

#include <set>
#include <string>

#include "connectors/truenas/jsonrpc.h"
#include "engine/transport.h"

namespace vmlift::truenas {

enum class Privilege { direct, sudo };

class MidcltApi : public ApiTransport {
  public:
    MidcltApi(SshTransport& host, Privilege privilege) : m_host(host), m_privilege(privilege) {}
    Result<nlohmann::json> call(const std::string& method,
                                const nlohmann::json& params = nlohmann::json::array()) override;

  private:
    SshTransport& m_host;
    Privilege m_privilege;
};

// Job methods (midclt needs -j to wait for them).
const std::set<std::string>& truenas_job_methods();

}  // namespace vmlift::truenas

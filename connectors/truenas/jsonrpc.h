// TrueNAS SCALE's API: which one a server speaks, and JSON-RPC 2.0 over a
// WebSocket for the releases that have it (25.04.2 and later).
//
// Contract
//   choose_api() reads the answer to `GET /api/versions`: 404 means a 24.10
//   server (REST /api/v2.0 only); a list of versions picks the pinned API,
//   /api/v25.10.0 when the server has it (25.10 and 26), else /api/v25.04.2;
//   a list without either is 25.04.0 or 25.04.1, which have no libvirt VMs:
//   refused (invalid_input) with the message to upgrade to 25.04.2 or later.
//   check_release() does the same refusal from system.version_short.
//   JsonRpc::call() sends one request and returns its result; notifications
//   that arrive meanwhile (job progress: collection_update of core.get_jobs)
//   go to on_notification. Errors keep TrueNAS's meaning, as one line that
//   names the method:
//     -32602  invalid_input, every "[ERRNO] attribute: message" listed;
//     -32001  by errname: ENOENT not_found, EACCES/EPERM permission_denied,
//             EEXIST/EINVAL invalid_input, else remote_failed; with reason;
//     -32601  not_found ("this TrueNAS release has no method X");
//     others  remote_failed with the server's message.
//   No answer within the timeout is Code::timeout. Calls are sequential, so
//   at most one is in flight (well under the server's limit of 10).
//   login_with_api_key() uses auth.login_ex (API_KEY_PLAIN) and falls back
//   to auth.login_with_api_key where login_ex does not exist. AUTH_ERR is
//   auth_failed; EXPIRED says the key was revoked. It refuses, before
//   sending anything, to send a key over plain ws:// to a non-loopback host
//   (TrueNAS revokes keys seen that way).
// Thread safety: none.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "connectors/http/websocket.h"
#include "engine/status.h"

namespace vmlift::truenas {

enum class ApiKind { rest_v2, jsonrpc };

struct ApiChoice {
    ApiKind kind = ApiKind::jsonrpc;
    std::string path;  // "/api/v2.0", "/api/v25.04.2" or "/api/v25.10.0"
};

Result<ApiChoice> choose_api(int http_status, const std::string& body);
Status check_release(const std::string& version_short);

// The Status for a JSON-RPC error object returned by `method`.
Status rpc_error(const std::string& method, const nlohmann::json& error);

// One TrueNAS API call, whatever carries it (JSON-RPC, REST, midclt).
class ApiTransport {
  public:
    virtual ~ApiTransport() = default;
    virtual Result<nlohmann::json> call(const std::string& method,
                                        const nlohmann::json& params = nlohmann::json::array()) = 0;
};

class JsonRpc : public ApiTransport {
  public:
    JsonRpc(std::unique_ptr<http::WebSocket> ws, std::string url,
            std::chrono::seconds timeout = std::chrono::seconds(120))
        : m_ws(std::move(ws)), m_url(std::move(url)), m_timeout(timeout) {}

    Result<nlohmann::json> call(const std::string& method,
                                const nlohmann::json& params = nlohmann::json::array()) override;
    std::function<void(const nlohmann::json&)> on_notification;
    const std::string& url() const { return m_url; }

  private:
    std::unique_ptr<http::WebSocket> m_ws;
    std::string m_url;
    std::chrono::seconds m_timeout;
    long long m_next_id = 1;
};

Status login_with_api_key(JsonRpc& rpc, const std::string& username, const std::string& key);

}  // namespace vmlift::truenas

#include "connectors/truenas/jsonrpc.h"

#include <algorithm>
#include <sstream>

#include "engine/json_text.h"

namespace vmlift::truenas {
namespace {

std::string trim(const std::string& s) {
    size_t b = s.find_first_not_of(" \t\r\n");
    size_t e = s.find_last_not_of(" \t\r\n");
    return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

}  // namespace

Result<ApiChoice> choose_api(int http_status, const std::string& body) {
    if (http_status == 404) {
        return ApiChoice{ApiKind::rest_v2, "/api/v2.0"};
    }
    if (http_status != 200) {
        return Status(Code::remote_failed, "GET /api/versions answered HTTP " +
                                               std::to_string(http_status) +
                                               "; is this a TrueNAS SCALE server?");
    }
    auto j = nlohmann::json::parse(body, nullptr, false);
    if (!j.is_array()) {
        return Status(Code::remote_failed, "GET /api/versions did not answer a list of versions");
    }
    std::vector<std::string> versions;
    for (const auto& v : j) {
        if (v.is_string()) {
            versions.push_back(v.get<std::string>());
        }
    }
    auto has = [&](const char* v) {
        return std::find(versions.begin(), versions.end(), v) != versions.end();
    };
    if (has("v25.10.0")) {
        return ApiChoice{ApiKind::jsonrpc, "/api/v25.10.0"};
    }
    if (has("v25.04.2")) {
        return ApiChoice{ApiKind::jsonrpc, "/api/v25.04.2"};
    }
    std::string list;
    for (const auto& v : versions) {
        list += (list.empty() ? "" : ", ") + v;
    }
    return Status(Code::invalid_input,
                  "this TrueNAS (API " + list +
                      ") is 25.04.0 or 25.04.1, which have no libvirt VMs; upgrade to "
                      "TrueNAS 25.04.2 or later");
}

Status check_release(const std::string& version_short) {
    if (version_short.rfind("25.04.0", 0) == 0 || version_short.rfind("25.04.1", 0) == 0) {
        return Status(Code::invalid_input,
                      "TrueNAS " + version_short +
                          " has no libvirt VMs; upgrade to TrueNAS 25.04.2 or later");
    }
    return {};
}

Status rpc_error(const std::string& method, const nlohmann::json& error) {
    int code = error.value("code", 0);
    const nlohmann::json data = error.contains("data") ? error["data"] : nlohmann::json();
    std::string errname = json_text(data, "errname");
    std::string reason = trim(json_text(data, "reason"));
    std::string message = trim(json_text(error, "message"));
    if (code == -32602) {
        // "[EEXIST] vm_create.name: This name already exists.\n[EINVAL] ..."
        std::string listed;
        std::istringstream lines(reason);
        std::string line;
        while (std::getline(lines, line)) {
            line = trim(line);
            if (line.empty()) {
                continue;
            }
            std::string err;
            if (line[0] == '[') {
                size_t close = line.find(']');
                err = line.substr(1, close - 1);
                line = trim(line.substr(close + 1));
            }
            listed += (listed.empty() ? "" : "; ") + line + (err.empty() ? "" : " (" + err + ")");
        }
        return Status(Code::invalid_input,
                      method + " rejected its parameters: " + (listed.empty() ? message : listed));
    }
    if (code == -32601) {
        return Status(Code::not_found, "this TrueNAS release has no method " + method);
    }
    if (code == -32001) {
        Code c = errname == "ENOENT"                          ? Code::not_found
                 : errname == "EACCES" || errname == "EPERM"  ? Code::permission_denied
                 : errname == "EEXIST" || errname == "EINVAL" ? Code::invalid_input
                                                              : Code::remote_failed;
        return Status(c, method + " failed: " + (reason.empty() ? message : reason) +
                             (errname.empty() ? "" : " (" + errname + ")"));
    }
    return Status(Code::remote_failed, method + " failed: " + message +
                                           (reason.empty() ? "" : " (" + reason + ")") +
                                           " [JSON-RPC " + std::to_string(code) + "]");
}

Result<nlohmann::json> JsonRpc::call(const std::string& method, const nlohmann::json& params) {
    const long long id = m_next_id++;
    nlohmann::json request = {
        {"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", params}};
    VMLIFT_RETURN_IF_ERROR(m_ws->send_text(request.dump()));
    const auto deadline = std::chrono::steady_clock::now() + m_timeout;
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            return Status(Code::timeout, method + ": no answer from " + m_url + " within " +
                                             std::to_string(m_timeout.count()) + " s");
        }
        auto message = m_ws->receive(left);
        if (!message.ok()) {
            if (message.status().code() == Code::timeout) {
                continue;
            }
            return Status(message.status().code(), method + ": " + message.status().message());
        }
        auto j = nlohmann::json::parse(message->data, nullptr, false);
        if (!j.is_object()) {
            return Status(Code::remote_failed, method +
                                                   ": the server sent something that is "
                                                   "not JSON-RPC");
        }
        if (!j.contains("id") || j["id"].is_null()) {
            if (j.contains("method") && on_notification) {
                on_notification(j);
            } else if (j.contains("error")) {
                return rpc_error(method, j["error"]);  // e.g. a parse error without an id
            }
            continue;
        }
        if (!j["id"].is_number_integer() || j["id"].get<long long>() != id) {
            continue;  // an answer to an earlier, abandoned call
        }
        if (j.contains("error") && !j["error"].is_null()) {
            return rpc_error(method, j["error"]);
        }
        return j.contains("result") ? j["result"] : nlohmann::json();
    }
}

Status login_with_api_key(JsonRpc& rpc, const std::string& username, const std::string& key) {
    auto url = http::parse_ws_url(rpc.url());
    if (!url.ok()) {
        return url.status();
    }
    if (!url->tls && !http::is_loopback_host(url->host)) {
        return Status(Code::invalid_input,
                      "refusing to send the API key over plain ws:// to " + url->host +
                          " (TrueNAS revokes keys sent unencrypted); use wss://");
    }
    auto r = rpc.call("auth.login_ex",
                      nlohmann::json::array({{{"mechanism", "API_KEY_PLAIN"},
                                              {"username", username},
                                              {"api_key", key},
                                              {"login_options", {{"user_info", false}}}}}));
    if (!r.ok() && r.status().code() == Code::not_found) {
        auto old = rpc.call("auth.login_with_api_key", nlohmann::json::array({key}));
        if (!old.ok()) {
            return old.status();
        }
        if (*old != true) {
            return Status(Code::auth_failed, "TrueNAS refused the API key; check the key file");
        }
        return {};
    }
    if (!r.ok()) {
        return r.status();
    }
    std::string type = json_text(*r, "response_type");
    if (type == "SUCCESS") {
        return {};
    }
    if (type == "EXPIRED") {
        return Status(Code::auth_failed,
                      "TrueNAS says the API key has expired or was revoked; create a new key");
    }
    return Status(Code::auth_failed, "TrueNAS refused the API key for user " + username + " (" +
                                         (type.empty() ? "no answer" : type) +
                                         "); check the user and the key file");
}

}  // namespace vmlift::truenas

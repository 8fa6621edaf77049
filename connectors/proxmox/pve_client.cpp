#include "connectors/proxmox/pve_client.h"

#include <sstream>

namespace vmlift::proxmox {
namespace {

constexpr auto k_ticket_renew = std::chrono::minutes(90);

std::string path_with_query(const std::string& path, const HttpFields& query) {
    return query.empty() ? path : path + "?" + form_encode(query);
}

std::string first_line(const std::string& s) {
    std::string line = s.substr(0, s.find('\n'));
    while (!line.empty() && (line.back() == ' ' || line.back() == '\r')) {
        line.pop_back();
    }
    return line;
}

}  // namespace

Result<Upid> parse_upid(const std::string& text) {
    // UPID:node:pid:pstart:starttime:type:id:user:
    std::vector<std::string> parts;
    std::stringstream in(text);
    std::string part;
    while (std::getline(in, part, ':')) {
        parts.push_back(part);
    }
    if (parts.size() < 8 || parts[0] != "UPID" || parts[1].empty()) {
        return Status(Code::invalid_input, "'" + text + "' is not a Proxmox task id (UPID)");
    }
    Upid u;
    u.node = parts[1];
    u.type = parts[5];
    u.id = parts[6];
    u.user = parts[7];
    return u;
}

PveClient::PveClient(HttpClient& http, const Clock& clock, Sleeper& sleeper,
                     PveCredentials credentials)
    : m_http(http), m_clock(clock), m_sleeper(sleeper), m_credentials(std::move(credentials)) {}

const std::string& PveClient::user() const {
    if (!m_credentials.token_id.empty()) {
        return m_credentials.token_id;
    }
    return m_credentials.user;
}

Result<nlohmann::json> PveClient::get(const std::string& path, const HttpFields& query) {
    return call(HttpMethod::get, path_with_query(path, query), {});
}
Result<nlohmann::json> PveClient::post(const std::string& path, const HttpFields& form) {
    return call(HttpMethod::post, path, form);
}
Result<nlohmann::json> PveClient::put(const std::string& path, const HttpFields& form) {
    return call(HttpMethod::put, path, form);
}
Result<nlohmann::json> PveClient::del(const std::string& path, const HttpFields& query) {
    return call(HttpMethod::del, path_with_query(path, query), {});
}

Status PveClient::login() {
    if (m_credentials.user.empty() || m_credentials.password.empty()) {
        return Status(Code::invalid_input,
                      "no Proxmox credentials: give an API token (--pve-token-id and "
                      "--pve-token-secret-file) or a user and --pve-password-file");
    }
    HttpRequest r;
    r.method = HttpMethod::post;
    r.path = "/access/ticket";
    r.headers = {{"Content-Type", "application/x-www-form-urlencoded"}};
    r.body = form_encode({{"username", m_credentials.user}, {"password", m_credentials.password}});
    auto response = m_http.send(r);
    if (!response.ok()) {
        return response.status();
    }
    if (response->status != 200) {
        return error_for(r, *response);
    }
    try {
        auto j = nlohmann::json::parse(response->body);
        m_ticket = j.at("data").at("ticket").get<std::string>();
        m_csrf = j.at("data").at("CSRFPreventionToken").get<std::string>();
    } catch (const nlohmann::json::exception&) {
        return Status(Code::remote_failed, "POST /access/ticket: the answer has no ticket");
    }
    m_ticket_time = m_clock.steady();
    return {};
}

Result<nlohmann::json> PveClient::call(HttpMethod method, const std::string& path,
                                       const HttpFields& fields) {
    HttpRequest r;
    r.method = method;
    r.path = path;
    r.idempotent = method == HttpMethod::get;
    if (!fields.empty()) {
        r.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
        r.body = form_encode(fields);
    }
    if (!m_credentials.token_id.empty()) {
        r.headers.emplace_back("Authorization", "PVEAPIToken=" + m_credentials.token_id + "=" +
                                                    m_credentials.token_secret);
    } else {
        if (m_ticket.empty() || m_clock.steady() - m_ticket_time >= k_ticket_renew) {
            VMLIFT_RETURN_IF_ERROR(login());
        }
        r.headers.emplace_back("Cookie", "PVEAuthCookie=" + m_ticket);
        if (method != HttpMethod::get) {
            r.headers.emplace_back("CSRFPreventionToken", m_csrf);
        }
    }
    auto response = m_http.send(r);
    if (!response.ok()) {
        return Status(response.status().code(), std::string(to_string(method)) + " " + path + ": " +
                                                    response.status().message());
    }
    if (response->status != 200) {
        return error_for(r, *response);
    }
    try {
        auto j = nlohmann::json::parse(response->body);
        if (!j.is_object() || !j.contains("data")) {
            return Status(Code::remote_failed,
                          std::string(to_string(method)) + " " + path + ": answer has no data");
        }
        return j["data"];
    } catch (const nlohmann::json::exception&) {
        return Status(Code::remote_failed,
                      std::string(to_string(method)) + " " + path + ": the answer is not JSON");
    }
}

Status PveClient::error_for(const HttpRequest& request, const HttpResponse& response) const {
    std::string path = request.path.substr(0, request.path.find('?'));
    std::string what = std::string(to_string(request.method)) + " " + path;
    std::string message = first_line(response.reason);
    nlohmann::json body;
    try {
        body = nlohmann::json::parse(response.body);
    } catch (const nlohmann::json::exception&) {
    }
    if (body.is_object() && body.contains("message") && body["message"].is_string()) {
        message = first_line(body["message"].get<std::string>());
    }
    std::string detail =
        " (HTTP " + std::to_string(response.status) + (message.empty() ? "" : ": " + message) + ")";
    switch (response.status) {
        case 400: {
            std::string params;
            if (body.is_object() && body.contains("errors") && body["errors"].is_object()) {
                for (const auto& [name, text] : body["errors"].items()) {
                    params += (params.empty() ? "" : "; ") + name + ": " +
                              first_line(text.is_string() ? text.get<std::string>() : text.dump());
                }
            }
            return Status(Code::invalid_input, what + " rejected its parameters" +
                                                   (params.empty() ? detail : " (" + params + ")") +
                                                   "; check the values given for them");
        }
        case 401:
            if (path == "/access/ticket") {
                return Status(Code::auth_failed,
                              what + ": login refused" + detail +
                                  "; check the user (USER@REALM) and the password file");
            }
            return Status(Code::auth_failed, what + ": not authenticated" + detail +
                                                 "; check the API token id and secret");
        case 403:
            return Status(Code::permission_denied,
                          what + ": permission denied" + detail + "; grant " + user() +
                              " the privilege named there (Datacenter → Permissions)");
        default:
            break;
    }
    if (message.find("does not exist") != std::string::npos ||
        message.find("no such") != std::string::npos || response.status == 404) {
        return Status(Code::not_found, what + ": not found" + detail);
    }
    return Status(Code::remote_failed, what + " failed" + detail);
}

Status PveClient::wait_task(const std::string& upid, std::chrono::seconds timeout,
                            const std::function<void(const std::string&)>& on_poll) {
    auto parsed = parse_upid(upid);
    if (!parsed.ok()) {
        return parsed.status();
    }
    const std::string base = "/nodes/" + url_encode(parsed->node) + "/tasks/" + url_encode(upid);
    const auto deadline = m_clock.steady() + timeout;
    auto delay = std::chrono::milliseconds(250);
    for (;;) {
        auto status = get(base + "/status");
        if (!status.ok()) {
            return status.status();
        }
        std::string state = status->value("status", "");
        if (on_poll) {
            on_poll(state);
        }
        if (state == "stopped") {
            std::string exit = status->value("exitstatus", "");
            if (exit == "OK" || exit.rfind("WARNINGS:", 0) == 0) {
                return {};
            }
            std::string tail;
            if (auto log = get(base + "/log", {{"start", "0"}, {"limit", "500"}});
                log.ok() && log->is_array()) {
                size_t n = log->size();
                for (size_t i = n > 3 ? n - 3 : 0; i < n; ++i) {
                    tail += (tail.empty() ? "" : " | ") + (*log)[i].value("t", "");
                }
            }
            return Status(Code::remote_failed,
                          "task " + parsed->type + " " + parsed->id + " on " + parsed->node +
                              " failed: " + (exit.empty() ? "no exit status" : exit) +
                              (tail.empty() ? "" : " (log: " + tail + ")"));
        }
        if (m_clock.steady() >= deadline) {
            return Status(Code::timeout, "task " + parsed->type + " " + parsed->id + " on " +
                                             parsed->node + " still running after " +
                                             std::to_string(timeout.count()) + " s (" + upid + ")");
        }
        m_sleeper.sleep(delay);
        delay = std::min(delay * 2, std::chrono::milliseconds(2000));
    }
}

}  // namespace vmlift::proxmox

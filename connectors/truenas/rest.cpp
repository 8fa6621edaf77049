#include "connectors/truenas/rest.h"

#include <algorithm>
#include <set>

#include "engine/json_text.h"

namespace vmlift::truenas {
namespace {

std::string slashed(std::string s) {
    std::replace(s.begin(), s.end(), '.', '/');
    return s;
}

std::string id_text(const nlohmann::json& id) {
    return url_encode(id.is_string() ? id.get<std::string>() : id.dump());
}

}  // namespace

Result<RestRoute> rest_route(const std::string& method, const nlohmann::json& params) {
    const size_t dot = method.rfind('.');
    if (dot == std::string::npos) {
        return Status(Code::invalid_input, "'" + method + "' is not a TrueNAS method name");
    }
    const std::string service = "/" + slashed(method.substr(0, dot));
    const std::string verb = method.substr(dot + 1);
    const nlohmann::json none = nlohmann::json();
    const nlohmann::json& p0 = params.size() > 0 ? params[0] : none;
    const nlohmann::json& p1 = params.size() > 1 ? params[1] : none;
    // Filterable methods take their filters as query parameters.
    const bool filterable = verb == "query" || method == "core.get_jobs";
    if (filterable) {
        std::string query;
        if (p0.is_array()) {
            for (const auto& f : p0) {
                if (!f.is_array() || f.size() != 3 || f[1] != "=") {
                    return Status(Code::invalid_input,
                                  method + ": only equality filters travel over REST");
                }
                query += (query.empty() ? "?" : "&") + url_encode(f[0].get<std::string>()) + "=" +
                         url_encode(f[2].is_string() ? f[2].get<std::string>() : f[2].dump());
            }
        }
        return RestRoute{HttpMethod::get,
                         verb == "query" ? service + query : service + "/" + verb + query, ""};
    }
    if (verb == "get_instance") {
        return RestRoute{HttpMethod::get, service + "/id/" + id_text(p0), ""};
    }
    if (verb == "create") {
        return RestRoute{HttpMethod::post, service, p0.dump()};
    }
    if (verb == "update") {
        return RestRoute{HttpMethod::put, service + "/id/" + id_text(p0), p1.dump()};
    }
    if (verb == "delete") {
        return RestRoute{HttpMethod::del, service + "/id/" + id_text(p0),
                         p1.is_null() ? "" : p1.dump()};
    }
    static const std::set<std::string> item_methods = {"vm.start", "vm.stop", "vm.restart",
                                                       "vm.status", "vm.poweroff"};
    if (item_methods.count(method)) {
        return RestRoute{HttpMethod::post, service + "/id/" + id_text(p0) + "/" + verb,
                         p1.is_null() ? "" : p1.dump()};
    }
    if (params.empty()) {
        return RestRoute{HttpMethod::get, service + "/" + verb, ""};
    }
    return RestRoute{HttpMethod::post, service + "/" + verb,
                     params.size() == 1 ? p0.dump() : params.dump()};
}

Result<nlohmann::json> RestApi::call(const std::string& method, const nlohmann::json& params) {
    auto route = rest_route(method, params);
    if (!route.ok()) {
        return route.status();
    }
    HttpRequest r;
    r.method = route->method;
    r.path = route->path;
    r.body = route->body;
    r.idempotent = route->method == HttpMethod::get;
    r.headers = {{"Authorization", "Bearer " + m_key}};
    if (!r.body.empty()) {
        r.headers.emplace_back("Content-Type", "application/json");
    }
    auto response = m_http.send(r);
    if (!response.ok()) {
        return Status(response.status().code(), method + ": " + response.status().message());
    }
    auto body = nlohmann::json::parse(response->body, nullptr, false);
    const int status = response->status;
    if (status == 200) {
        if (body.is_discarded()) {
            return Status(Code::remote_failed, method + ": the answer is not JSON");
        }
        return body;
    }
    std::string message = json_text(body, "message");
    if (message.empty()) {
        message = response->reason;
    }
    if (status == 422 && body.is_object()) {
        std::string listed;
        for (const auto& [attr, errors] : body.items()) {
            if (!errors.is_array()) {
                continue;
            }
            for (const auto& e : errors) {
                listed += (listed.empty() ? "" : "; ") + attr + ": " + json_text(e, "message") +
                          " (errno " + json_text(e, "errno") + ")";
            }
        }
        return Status(Code::invalid_input,
                      method + " rejected its parameters: " + (listed.empty() ? message : listed));
    }
    const std::string detail = method + " failed (HTTP " + std::to_string(status) +
                               (message.empty() ? "" : ": " + message) + ")";
    switch (status) {
        case 401:
            return Status(Code::auth_failed, detail + "; check the API key and its user");
        case 403:
            return Status(Code::permission_denied, detail);
        case 404:
            return Status(Code::not_found, detail);
        default:
            return Status(Code::remote_failed, detail);
    }
}

}  // namespace vmlift::truenas

// The Proxmox VE API (https://HOST:8006/api2/json) over an HttpClient.
//
// Contract
//   Auth: an API token (header `Authorization: PVEAPIToken=USER@REALM!ID=SECRET`)
//   or a ticket from POST /access/ticket (cookie PVEAuthCookie plus the
//   CSRFPreventionToken header on writes), renewed after 90 minutes of its
//   two hours. Secrets are held here only and never put in messages.
//   get/post/put/del return the `data` member of the answer. Errors keep
//   Proxmox's meaning, as one line naming the call:
//     400  invalid_input, with every parameter of the `errors` object;
//     401  auth_failed (the server delays these 3 s: callers do not loop);
//     403  permission_denied, with the privilege the server named;
//     500  "... does not exist" → not_found; otherwise remote_failed.
//   The message is the JSON `message` when present, else the HTTP reason
//   phrase. GETs are marked idempotent (retried by a RetryingHttpClient
//   underneath); writes never are.
//   wait_task() polls /nodes/{node}/tasks/{upid}/status on the node named
//   in the UPID until it stops; exit status `OK` or `WARNINGS: n` is success,
//   anything else remote_failed with the exit status and the log's last
//   lines; past `timeout` it is Code::timeout (the task keeps running).
// Thread safety: none; one client per thread.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/clock.h"
#include "engine/http.h"
#include "engine/status.h"

namespace vmlift::proxmox {

struct PveCredentials {
    // Either a token ...
    std::string token_id;  // USER@REALM!TOKENID
    std::string token_secret;
    // ... or a user and password for ticket login.
    std::string user;  // USER@REALM
    std::string password;
};

struct Upid {
    std::string node;
    std::string type;
    std::string id;
    std::string user;
};

// Parses UPID:node:pid:pstart:starttime:type:id:user: ; nullopt-like error
// (invalid_input) when it is not one.
Result<Upid> parse_upid(const std::string& upid);

class PveClient {
  public:
    PveClient(HttpClient& http, const Clock& clock, Sleeper& sleeper, PveCredentials credentials);

    Result<nlohmann::json> get(const std::string& path, const HttpFields& query = {});
    Result<nlohmann::json> post(const std::string& path, const HttpFields& form = {});
    Result<nlohmann::json> put(const std::string& path, const HttpFields& form = {});
    Result<nlohmann::json> del(const std::string& path, const HttpFields& query = {});

    // Progress: called with each poll's status ("running", "stopped").
    Status wait_task(const std::string& upid, std::chrono::seconds timeout,
                     const std::function<void(const std::string&)>& on_poll = {});

    bool uses_ticket() const { return m_credentials.token_id.empty(); }
    Sleeper& sleeper() { return m_sleeper; }
    const std::string& user() const;

  private:
    Result<nlohmann::json> call(HttpMethod method, const std::string& path,
                                const HttpFields& fields);
    Status login();
    Status error_for(const HttpRequest& request, const HttpResponse& response) const;

    HttpClient& m_http;
    const Clock& m_clock;
    Sleeper& m_sleeper;
    PveCredentials m_credentials;
    std::string m_ticket;
    std::string m_csrf;
    std::chrono::steady_clock::time_point m_ticket_time{};
};

}  // namespace vmlift::proxmox

// HTTP as the engine sees it: one request in, one response out.
//
// Contract
//   HttpClient::send() performs one request against the client's base URL
//   (request.path is appended, query included). It returns a response for
//   every answer the server gave, whatever its status; an error Status only
//   when no answer arrived: unreachable (refused, DNS, no route), timeout,
//   host_key (TLS certificate or pinned fingerprint refused), connection_lost.
//   RetryingHttpClient wraps any client: requests marked idempotent are
//   retried with exponential backoff (policy.first_delay doubling up to
//   policy.max_delay, policy.attempts in all) on unreachable, timeout and
//   connection_lost, and on answers with status >= 500; nothing else is
//   retried. The last answer or error is returned.
//   form_encode() percent-encodes key=value pairs (RFC 3986 unreserved kept).
// Thread safety: implementations say; RetryingHttpClient adds none.
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "engine/status.h"

namespace vmlift {

enum class HttpMethod { get, post, put, del };
const char* to_string(HttpMethod method);

using HttpFields = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
    HttpMethod method = HttpMethod::get;
    std::string path;  // appended to the base URL, query string included
    HttpFields headers;
    std::string body;
    bool idempotent = false;  // may be retried
};

struct HttpResponse {
    int status = 0;
    std::string reason;  // the status line's reason phrase (Proxmox puts its message here)
    HttpFields headers;  // names lowercased
    std::string body;
    std::string header(const std::string& lowercase_name) const;
};

class HttpClient {
  public:
    virtual ~HttpClient() = default;
    virtual Result<HttpResponse> send(const HttpRequest& request) = 0;
};

// Waits; the fake records instead of sleeping.
class Sleeper {
  public:
    virtual ~Sleeper() = default;
    virtual void sleep(std::chrono::milliseconds duration) = 0;
};

class RealSleeper : public Sleeper {
  public:
    void sleep(std::chrono::milliseconds duration) override;
};

struct RetryPolicy {
    int attempts = 4;
    std::chrono::milliseconds first_delay{500};
    std::chrono::milliseconds max_delay{8000};
};

class RetryingHttpClient : public HttpClient {
  public:
    RetryingHttpClient(HttpClient& inner, Sleeper& sleeper, RetryPolicy policy = {})
        : m_inner(inner), m_sleeper(sleeper), m_policy(policy) {}
    Result<HttpResponse> send(const HttpRequest& request) override;

  private:
    HttpClient& m_inner;
    Sleeper& m_sleeper;
    RetryPolicy m_policy;
};

std::string url_encode(const std::string& text);
std::string form_encode(const HttpFields& fields);

}  // namespace vmlift

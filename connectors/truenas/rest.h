// TrueNAS 24.10's REST API (/api/v2.0, `Authorization: Bearer KEY`) behind
// the same call(method, params) as JSON-RPC, following the middleware's own
// mapping (restful.py):
//   X.query [filters]          GET    /X?field=value        (equality filters;
//                                                          core.get_jobs alike)
//   X.get_instance [id]        GET    /X/id/{id}
//   X.create [data]            POST   /X
//   X.update [id, data]        PUT    /X/id/{id}
//   X.delete [id, options]     DELETE /X/id/{id}            (options as body)
//   vm.start|stop|... [id,o]   POST   /vm/id/{id}/{method}  (item methods)
//   other methods              GET when they take no argument, else POST
//                              /a/b/method with the argument as the body
// (dots become slashes). Errors: 422 lists every attribute with its errno
// (invalid_input), 401 auth_failed, 403 permission_denied, 404 not_found,
// others remote_failed with the server's message; each names the method.
// Thread safety: none.
#pragma once

#include <string>

#include "connectors/truenas/jsonrpc.h"
#include "engine/http.h"

namespace vmlift::truenas {

struct RestRoute {
    HttpMethod method = HttpMethod::get;
    std::string path;  // below /api/v2.0, query string included
    std::string body;  // JSON, "" for none
};

// The route of one call (pure; exposed for tests).
Result<RestRoute> rest_route(const std::string& method, const nlohmann::json& params);

class RestApi : public ApiTransport {
  public:
    RestApi(HttpClient& http, std::string api_key) : m_http(http), m_key(std::move(api_key)) {}
    Result<nlohmann::json> call(const std::string& method,
                                const nlohmann::json& params = nlohmann::json::array()) override;

  private:
    HttpClient& m_http;
    std::string m_key;
};

}  // namespace vmlift::truenas

// Internal to connectors/http: the TLS policy of a CURL handle and the
// error a failed connection becomes. Shared by the HTTP and WebSocket
// clients so both verify certificates the same way.
#pragma once

#include <curl/curl.h>

#include <string>

#include "connectors/http/curl_http.h"
#include "engine/status.h"

namespace vmlift::http {

struct PinState {
    std::string expected;  // normalized fingerprint
    std::string seen;      // the leaf's fingerprint, for the error
};

// curl_global_init, once per process (thread-safe).
void curl_init_once();

// Sets CURLOPT_SSL_* for `tls`; `pin` must outlive the handle's transfers.
void apply_tls(CURL* curl, const TlsOptions& tls, PinState* pin);

// A failed curl_easy_perform as a one-line Status naming `where`.
Status curl_error(CURLcode rc, const std::string& where, const TlsOptions& tls,
                  const PinState& pin);

}  // namespace vmlift::http

// HttpClient over libcurl (OpenSSL), with the TLS policies our connectors
// share: system CAs, a CA file, a pinned SHA-256 fingerprint of the leaf
// certificate, or an explicit insecure mode.
//
// Contract
//   CurlHttpClient sends to base_url (e.g. https://pve:8006/api2/json).
//   TLS:
//     system    verify the chain against the system CAs and the host name;
//     ca_file   the same against one CA file (e.g. Proxmox's pve-root-ca.pem);
//     pinned    accept exactly the leaf certificate whose SHA-256 fingerprint
//               is `fingerprint` (uppercase colon hex, as Proxmox clients pin;
//               any case and ':' optional on input); chain and host name are
//               not checked. The check runs inside the handshake, before any
//               request byte (and so any credential) is sent.
//     insecure  no checks at all; the caller must warn.
//   A refused certificate is Code::host_key; a pin mismatch names both
//   fingerprints. Connection failures map to unreachable/timeout/
//   connection_lost (see http.h). The response's reason phrase comes from the
//   status line. Secrets in headers never reach logs from here.
//   normalize_fingerprint() returns the uppercase colon form, or "" when the
//   text is not 32 hex bytes.
// Thread safety: one client per thread (a CURL handle is reused between
//   requests to keep the connection).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "engine/http.h"

namespace vmlift::http {

enum class TlsMode { system, ca_file, pinned, insecure };

struct TlsOptions {
    TlsMode mode = TlsMode::system;
    std::string ca_file;
    std::string fingerprint;  // pinned mode
};

struct CurlOptions {
    std::string base_url;
    TlsOptions tls;
    std::chrono::seconds connect_timeout{15};
    std::chrono::seconds request_timeout{120};
};

class CurlHttpClient : public HttpClient {
  public:
    explicit CurlHttpClient(CurlOptions options);
    ~CurlHttpClient() override;
    CurlHttpClient(const CurlHttpClient&) = delete;
    CurlHttpClient& operator=(const CurlHttpClient&) = delete;
    Result<HttpResponse> send(const HttpRequest& request) override;

  private:
    struct Impl;
    std::unique_ptr<Impl> m_impl;
};

std::string normalize_fingerprint(const std::string& text);

}  // namespace vmlift::http

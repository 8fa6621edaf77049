#include "connectors/http/curl_tls.h"

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <mutex>

namespace vmlift::http {
namespace {

std::string hex_fingerprint(const unsigned char* md, unsigned int len) {
    static const char* hex = "0123456789ABCDEF";
    std::string out;
    for (unsigned int i = 0; i < len; ++i) {
        if (i) {
            out += ':';
        }
        out += hex[md[i] >> 4];
        out += hex[md[i] & 15];
    }
    return out;
}

// Replaces OpenSSL's chain verification: accept exactly the pinned leaf.
int verify_pinned(X509_STORE_CTX* ctx, void* arg) {
    auto* pin = static_cast<PinState*>(arg);
    X509* leaf = X509_STORE_CTX_get0_cert(ctx);
    if (!leaf) {
        return 0;
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (X509_digest(leaf, EVP_sha256(), md, &len) != 1) {
        return 0;
    }
    pin->seen = hex_fingerprint(md, len);
    return pin->seen == pin->expected ? 1 : 0;
}

CURLcode ssl_ctx_hook(CURL*, void* ssl_ctx, void* arg) {
    SSL_CTX_set_cert_verify_callback(static_cast<SSL_CTX*>(ssl_ctx), verify_pinned, arg);
    return CURLE_OK;
}

}  // namespace

void curl_init_once() {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

void apply_tls(CURL* curl, const TlsOptions& tls, PinState* pin) {
    switch (tls.mode) {
        case TlsMode::system:
            curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
            curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
            break;
        case TlsMode::ca_file:
            curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
            curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
            curl_easy_setopt(curl, CURLOPT_CAINFO, tls.ca_file.c_str());
            break;
        case TlsMode::pinned:
            curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
            curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
            curl_easy_setopt(curl, CURLOPT_SSL_CTX_FUNCTION, ssl_ctx_hook);
            curl_easy_setopt(curl, CURLOPT_SSL_CTX_DATA, pin);
            // A new handshake for every pinned connection, so the check runs.
            curl_easy_setopt(curl, CURLOPT_SSL_SESSIONID_CACHE, 0L);
            break;
        case TlsMode::insecure:
            curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
            curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
            break;
    }
}

Status curl_error(CURLcode rc, const std::string& where, const TlsOptions& tls,
                  const PinState& pin) {
    std::string what = curl_easy_strerror(rc);
    if (tls.mode == TlsMode::pinned && !pin.seen.empty() && pin.seen != pin.expected) {
        return Status(Code::host_key, where + ": the server's certificate fingerprint is " +
                                          pin.seen + ", not the pinned " + pin.expected +
                                          "; check the host, then update the pin");
    }
    switch (rc) {
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_CERTPROBLEM:
            return Status(Code::host_key,
                          where + ": TLS certificate not trusted (" + what +
                              "); give the CA file or pin the certificate's fingerprint");
        case CURLE_OPERATION_TIMEDOUT:
            return Status(Code::timeout, where + ": timed out (" + what + ")");
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_CONNECT:
            return Status(Code::unreachable, where + ": cannot connect (" + what +
                                                 "); check the host, port and firewall");
        case CURLE_SSL_CONNECT_ERROR:
            return Status(Code::host_key, where + ": TLS handshake failed (" + what + ")");
        default:
            return Status(Code::connection_lost, where + ": " + what);
    }
}

}  // namespace vmlift::http

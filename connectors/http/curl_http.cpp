#include "connectors/http/curl_http.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cctype>
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

struct PinState {
    std::string expected;  // normalized
    std::string seen;      // the leaf's fingerprint, for the error
};

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

size_t on_body(char* data, size_t size, size_t n, void* arg) {
    static_cast<std::string*>(arg)->append(data, size * n);
    return size * n;
}

size_t on_header(char* data, size_t size, size_t n, void* arg) {
    auto* response = static_cast<HttpResponse*>(arg);
    std::string line(data, size * n);
    while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) {
        line.pop_back();
    }
    if (line.rfind("HTTP/", 0) == 0) {
        // A new status line (after a 100 Continue or a redirect): start over.
        response->headers.clear();
        size_t a = line.find(' ');
        size_t b = a == std::string::npos ? a : line.find(' ', a + 1);
        response->reason = b == std::string::npos ? "" : line.substr(b + 1);
        return size * n;
    }
    size_t colon = line.find(':');
    if (colon != std::string::npos) {
        std::string name = line.substr(0, colon);
        for (auto& c : name) {
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        }
        size_t v = line.find_first_not_of(' ', colon + 1);
        response->headers.emplace_back(name, v == std::string::npos ? "" : line.substr(v));
    }
    return size * n;
}

void global_init() {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

}  // namespace

std::string normalize_fingerprint(const std::string& text) {
    std::string hex;
    for (char c : text) {
        if (c == ':') {
            continue;
        }
        if (!std::isxdigit(static_cast<unsigned char>(c))) {
            return {};
        }
        hex += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    if (hex.size() != 64) {
        return {};
    }
    std::string out;
    for (size_t i = 0; i < hex.size(); i += 2) {
        if (i) {
            out += ':';
        }
        out += hex.substr(i, 2);
    }
    return out;
}

struct CurlHttpClient::Impl {
    CurlOptions options;
    CURL* curl = nullptr;
    PinState pin;
};

CurlHttpClient::CurlHttpClient(CurlOptions options) : m_impl(std::make_unique<Impl>()) {
    global_init();
    m_impl->options = std::move(options);
    m_impl->pin.expected = normalize_fingerprint(m_impl->options.tls.fingerprint);
    m_impl->curl = curl_easy_init();
}

CurlHttpClient::~CurlHttpClient() {
    if (m_impl->curl) {
        curl_easy_cleanup(m_impl->curl);
    }
}

Result<HttpResponse> CurlHttpClient::send(const HttpRequest& request) {
    CURL* c = m_impl->curl;
    if (!c) {
        return Status(Code::internal, "libcurl could not be initialised");
    }
    const CurlOptions& o = m_impl->options;
    if (o.tls.mode == TlsMode::pinned && m_impl->pin.expected.empty()) {
        return Status(Code::invalid_input, "the pinned fingerprint '" + o.tls.fingerprint +
                                               "' is not a SHA-256 fingerprint (32 hex bytes)");
    }
    curl_easy_reset(c);
    const std::string url = o.base_url + request.path;
    HttpResponse response;
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https,http");
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(o.connect_timeout.count() * 1000));
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(o.request_timeout.count() * 1000));
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &response.body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &response);
    switch (o.tls.mode) {
        case TlsMode::system:
            curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
            curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
            break;
        case TlsMode::ca_file:
            curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
            curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
            curl_easy_setopt(c, CURLOPT_CAINFO, o.tls.ca_file.c_str());
            break;
        case TlsMode::pinned:
            curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
            curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
            curl_easy_setopt(c, CURLOPT_SSL_CTX_FUNCTION, ssl_ctx_hook);
            curl_easy_setopt(c, CURLOPT_SSL_CTX_DATA, &m_impl->pin);
            // A new handshake for every pinned connection, so the check runs.
            curl_easy_setopt(c, CURLOPT_SSL_SESSIONID_CACHE, 0L);
            break;
        case TlsMode::insecure:
            curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
            curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
            break;
    }
    struct curl_slist* headers = nullptr;
    for (const auto& [name, value] : request.headers) {
        headers = curl_slist_append(headers, (name + ": " + value).c_str());
    }
    headers = curl_slist_append(headers, "Expect:");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    switch (request.method) {
        case HttpMethod::get:
            curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
            break;
        case HttpMethod::post:
            curl_easy_setopt(c, CURLOPT_POST, 1L);
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(request.body.size()));
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, request.body.c_str());
            break;
        case HttpMethod::put:
        case HttpMethod::del:
            curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, to_string(request.method));
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(request.body.size()));
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, request.body.c_str());
            break;
    }
    m_impl->pin.seen.clear();
    CURLcode rc = curl_easy_perform(c);
    curl_slist_free_all(headers);
    if (rc != CURLE_OK) {
        std::string what = curl_easy_strerror(rc);
        if (o.tls.mode == TlsMode::pinned && !m_impl->pin.seen.empty() &&
            m_impl->pin.seen != m_impl->pin.expected) {
            return Status(Code::host_key,
                          o.base_url + ": the server's certificate fingerprint is " +
                              m_impl->pin.seen + ", not the pinned " + m_impl->pin.expected +
                              "; check the host, then update the pin");
        }
        switch (rc) {
            case CURLE_PEER_FAILED_VERIFICATION:
            case CURLE_SSL_CACERT_BADFILE:
            case CURLE_SSL_CERTPROBLEM:
                return Status(Code::host_key,
                              o.base_url + ": TLS certificate not trusted (" + what +
                                  "); give the CA file or pin the certificate's fingerprint");
            case CURLE_OPERATION_TIMEDOUT:
                return Status(Code::timeout, o.base_url + ": timed out (" + what + ")");
            case CURLE_COULDNT_RESOLVE_HOST:
            case CURLE_COULDNT_CONNECT:
                return Status(Code::unreachable, o.base_url + ": cannot connect (" + what +
                                                     "); check the host, port and firewall");
            case CURLE_SSL_CONNECT_ERROR:
                return Status(Code::host_key, o.base_url + ": TLS handshake failed (" + what + ")");
            default:
                return Status(Code::connection_lost, o.base_url + ": " + what);
        }
    }
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    response.status = static_cast<int>(status);
    return response;
}

}  // namespace vmlift::http

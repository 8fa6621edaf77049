#include "connectors/http/curl_http.h"

#include "connectors/http/curl_tls.h"

#include <curl/curl.h>

#include <cctype>
#include <mutex>

namespace vmlift::http {
namespace {

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
    curl_init_once();
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
    apply_tls(c, o.tls, &m_impl->pin);
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
        return curl_error(rc, o.base_url, o.tls, m_impl->pin);
    }
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    response.status = static_cast<int>(status);
    return response;
}

}  // namespace vmlift::http

#include "engine/http.h"

#include <algorithm>
#include <thread>

namespace vmlift {

const char* to_string(HttpMethod method) {
    switch (method) {
        case HttpMethod::post:
            return "POST";
        case HttpMethod::put:
            return "PUT";
        case HttpMethod::del:
            return "DELETE";
        case HttpMethod::get:
            break;
    }
    return "GET";
}

std::string HttpResponse::header(const std::string& lowercase_name) const {
    for (const auto& [name, value] : headers) {
        if (name == lowercase_name) {
            return value;
        }
    }
    return {};
}

void RealSleeper::sleep(std::chrono::milliseconds duration) {
    std::this_thread::sleep_for(duration);
}

Result<HttpResponse> RetryingHttpClient::send(const HttpRequest& request) {
    auto delay = m_policy.first_delay;
    for (int attempt = 1;; ++attempt) {
        auto result = m_inner.send(request);
        bool retry = false;
        if (!result.ok()) {
            Code c = result.status().code();
            retry = c == Code::unreachable || c == Code::timeout || c == Code::connection_lost;
        } else {
            retry = result->status >= 500;
        }
        if (!retry || !request.idempotent || attempt >= m_policy.attempts) {
            return result;
        }
        m_sleeper.sleep(delay);
        delay = std::min(delay * 2, m_policy.max_delay);
    }
}

std::string url_encode(const std::string& text) {
    static const char* hex = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : text) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

std::string form_encode(const HttpFields& fields) {
    std::string out;
    for (const auto& [key, value] : fields) {
        if (!out.empty()) {
            out += '&';
        }
        out += url_encode(key) + "=" + url_encode(value);
    }
    return out;
}

}  // namespace vmlift

#include "engine/redact.h"

#include <algorithm>
#include <regex>

namespace vmlift {
namespace {

constexpr const char* k_mask = "***";

// Each pattern keeps group 1 (the key) and masks what follows it.
const std::vector<std::regex>& shape_patterns() {
    static const std::vector<std::regex> patterns = [] {
        const auto flags = std::regex::ECMAScript | std::regex::icase;
        return std::vector<std::regex>{
            // Proxmox API token header: PVEAPIToken=user@realm!tokenid=SECRET
            std::regex(R"re((PVEAPIToken=[^=\s]+=)[^\s"',;]+)re", flags),
            // HTTP authorization with any scheme.
            std::regex(R"re((Authorization:\s*[A-Za-z]+\s+)[^\s"',;]+)re", flags),
            // JSON members: "password": "X"
            std::regex(
                R"re(("(?:password|passwd|passphrase|secret|api_key|apikey|token)"\s*:\s*")[^"]*)re",
                flags),
            // key=value and key: value in text and URLs.
            std::regex(
                R"re(((?:^|[\s?&;,])(?:password|passwd|passphrase|secret|api_key|apikey|token)\s*[=:]\s*)[^\s&;,"']+)re",
                flags),
            // Private key material pasted anywhere.
            std::regex(
                R"re((-----BEGIN [A-Z ]*PRIVATE KEY-----)[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----)re"),
            // --password VALUE on a logged command line.
            std::regex(R"re((--(?:password|passphrase|secret|api-key|token)[ =])[^\s]+)re", flags),
        };
    }();
    return patterns;
}

}  // namespace

void Redactor::add_secret(std::string secret) {
    if (secret.empty()) {
        return;
    }
    std::lock_guard lock(m_mutex);
    if (std::find(m_secrets.begin(), m_secrets.end(), secret) != m_secrets.end()) {
        return;
    }
    m_secrets.push_back(std::move(secret));
    std::stable_sort(
        m_secrets.begin(), m_secrets.end(),
        [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
}

std::string Redactor::redact(std::string_view text) const {
    std::string out(text);
    {
        std::lock_guard lock(m_mutex);
        for (const auto& secret : m_secrets) {
            size_t pos = 0;
            while ((pos = out.find(secret, pos)) != std::string::npos) {
                out.replace(pos, secret.size(), k_mask);
                pos += 3;
            }
        }
    }
    for (const auto& pattern : shape_patterns()) {
        out = std::regex_replace(out, pattern, std::string("$1") + k_mask);
    }
    return out;
}

}  // namespace vmlift

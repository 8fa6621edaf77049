// Secret redaction for everything that is logged, reported or put in errors.
//
// Contract
//   A Redactor knows two kinds of secret:
//   - literal values registered with add_secret(): passwords, API keys,
//     passphrases and any path the user gave as a secret. Every occurrence
//     is replaced by "***" (longest first, so a secret containing another
//     is fully hidden). Empty strings are ignored.
//   - shapes that are secret whatever their value: "PVEAPIToken=U@R!ID=X",
//     "Authorization: Bearer X", "password=X", "--password X", the same keys
//     in JSON ("password": "X") and PEM private key blocks; the value is
//     replaced by "***".
//   redact() never makes text longer than needed and never throws.
// Thread safety: add_secret and redact may be called from any thread.
#pragma once

#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace vmlift {

class Redactor {
  public:
    void add_secret(std::string secret);
    std::string redact(std::string_view text) const;

  private:
    mutable std::mutex m_mutex;
    std::vector<std::string> m_secrets;  // longest first
};

}  // namespace vmlift

#include "hooks/migrate_vm/pve_options.h"

#include "hooks/migrate_vm/ssh_options.h"

namespace vmlift::cli {

void add_pve_options(CLI::App& cmd, PveOptions& o) {
    cmd.add_option("--pve-token-id", o.token_id,
                   "Proxmox API token id USER@REALM!TOKENID (secret from --pve-token-secret-file "
                   "or VMLIFT_PVE_TOKEN_SECRET)");
    cmd.add_option("--pve-token-secret-file", o.token_secret_file,
                   "file holding the API token secret");
    cmd.add_option("--pve-password-file", o.password_file,
                   "file holding the password for ticket login (or VMLIFT_PVE_PASSWORD); the user "
                   "is the URL's USER@ (default root@pam)");
    cmd.add_option("--pve-ca-file", o.ca_file,
                   "CA file for the Proxmox certificate (pve-root-ca.pem)");
    cmd.add_option("--pve-fingerprint", o.fingerprint,
                   "pin the Proxmox certificate's SHA-256 fingerprint (AA:BB:...)");
    cmd.add_flag("--pve-insecure", o.insecure,
                 "do not verify the Proxmox certificate at all (warns; avoid)");
}

Result<std::unique_ptr<PveConnection>> connect_pve(Context& ctx, const PveOptions& o,
                                                   const std::string& source_url) {
    auto url = proxmox::parse_pve_url(source_url);
    if (!url.ok()) {
        return url.status();
    }
    auto conn = std::make_unique<PveConnection>();
    conn->url = *url;
    http::CurlOptions curl;
    std::string host = url->host;
    curl.base_url = "https://" + host + ":" + std::to_string(url->port) + "/api2/json";
    curl.connect_timeout = std::chrono::seconds(ctx.global.connect_timeout_sec);
    int modes =
        (o.ca_file.empty() ? 0 : 1) + (o.fingerprint.empty() ? 0 : 1) + (o.insecure ? 1 : 0);
    if (modes > 1) {
        return Status(Code::invalid_input,
                      "give only one of --pve-ca-file, --pve-fingerprint and --pve-insecure");
    }
    if (!o.fingerprint.empty()) {
        curl.tls.mode = http::TlsMode::pinned;
        curl.tls.fingerprint = o.fingerprint;
        if (http::normalize_fingerprint(o.fingerprint).empty()) {
            return Status(Code::invalid_input,
                          "--pve-fingerprint '" + o.fingerprint +
                              "' is not a SHA-256 fingerprint (32 hex bytes, e.g. AB:CD:...)");
        }
    } else if (!o.ca_file.empty()) {
        curl.tls.mode = http::TlsMode::ca_file;
        curl.tls.ca_file = o.ca_file;
    } else if (o.insecure) {
        curl.tls.mode = http::TlsMode::insecure;
        ctx.logger.warn("pve",
                        "--pve-insecure: the Proxmox certificate is not checked; anyone on "
                        "the path can read the credentials");
    }
    proxmox::PveCredentials cred;
    if (!o.token_id.empty()) {
        cred.token_id = o.token_id;
        if (!o.token_secret_file.empty()) {
            auto s = read_secret_file(o.token_secret_file, "--pve-token-secret-file", ctx.redactor);
            if (!s.ok()) {
                return s.status();
            }
            cred.token_secret = *s;
        } else if (ctx.env.pve_token_secret && !ctx.env.pve_token_secret->empty()) {
            cred.token_secret = *ctx.env.pve_token_secret;
            ctx.redactor.add_secret(cred.token_secret);
        } else {
            return Status(Code::invalid_input,
                          "--pve-token-id needs its secret: "
                          "--pve-token-secret-file or VMLIFT_PVE_TOKEN_SECRET");
        }
    } else {
        cred.user = url->user.empty() ? "root@pam" : url->user;
        if (cred.user.find('@') == std::string::npos) {
            cred.user += "@pam";
        }
        if (!o.password_file.empty()) {
            auto s = read_secret_file(o.password_file, "--pve-password-file", ctx.redactor);
            if (!s.ok()) {
                return s.status();
            }
            cred.password = *s;
        } else if (ctx.env.pve_password && !ctx.env.pve_password->empty()) {
            cred.password = *ctx.env.pve_password;
            ctx.redactor.add_secret(cred.password);
        } else {
            return Status(Code::invalid_input,
                          "no Proxmox credentials: give --pve-token-id with "
                          "--pve-token-secret-file, or --pve-password-file (or set "
                          "VMLIFT_PVE_TOKEN_SECRET / VMLIFT_PVE_PASSWORD)");
        }
    }
    conn->curl = std::make_unique<http::CurlHttpClient>(curl);
    conn->retrying = std::make_unique<RetryingHttpClient>(*conn->curl, conn->sleeper);
    conn->client =
        std::make_unique<proxmox::PveClient>(*conn->retrying, ctx.clock, conn->sleeper, cred);
    return conn;
}

}  // namespace vmlift::cli

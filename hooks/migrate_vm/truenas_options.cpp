#include "hooks/migrate_vm/truenas_options.h"

#include "connectors/ssh/ssh_factory.h"
#include "hooks/migrate_vm/ssh_options.h"

namespace vmlift::cli {

void add_truenas_options(CLI::App& cmd, TrueNasOptions& o) {
    cmd.add_option("--truenas-user", o.user, "user owning the API key")->capture_default_str();
    cmd.add_option("--truenas-port", o.port, "HTTPS port of the TrueNAS API")
        ->capture_default_str();
    cmd.add_option("--truenas-api-key-file", o.api_key_file,
                   "file holding the API key (or VMLIFT_TRUENAS_API_KEY)");
    cmd.add_option("--truenas-ca-file", o.ca_file, "CA file for the TrueNAS certificate");
    cmd.add_option("--truenas-fingerprint", o.fingerprint,
                   "pin the TrueNAS certificate's SHA-256 fingerprint");
    cmd.add_flag("--truenas-via-ssh", o.via_ssh,
                 "make every call with `midclt call` over SSH (the global SSH options; sudo "
                 "when --ssh-user is not root) instead of the HTTPS API");
    cmd.add_flag("--truenas-insecure", o.insecure, "do not verify the TrueNAS certificate (warns)");
}

namespace {

Result<TrueNasSession> connect_via_ssh(Context& ctx, const truenas::TargetUrl& url) {
    auto ssh_options = build_ssh_options(ctx.global, ctx.env, url.host, ctx.redactor);
    if (!ssh_options.ok()) {
        return ssh_options.status();
    }
    auto backend = parse_ssh_backend(ctx.global.ssh_backend);
    if (!backend.ok()) {
        return backend.status();
    }
    TrueNasSession session;
    session.ssh = make_ssh_transport(*backend, *ssh_options, ctx.runner);
    VMLIFT_RETURN_IF_ERROR(session.ssh->connect());
    auto privilege =
        ssh_options->target.user == "root" ? truenas::Privilege::direct : truenas::Privilege::sudo;
    auto target = truenas::TrueNasTarget::over_ssh(*session.ssh, privilege);
    if (!target.ok()) {
        return target.status();
    }
    session.target = std::move(*target);
    return session;
}

}  // namespace

Result<TrueNasSession> connect_truenas(Context& ctx, const TrueNasOptions& o,
                                       const truenas::TargetUrl& url) {
    if (o.via_ssh) {
        return connect_via_ssh(ctx, url);
    }
    truenas::TrueNasConnection c;
    c.host = url.host;
    c.port = o.port;
    c.user = o.user;
    int modes =
        (o.ca_file.empty() ? 0 : 1) + (o.fingerprint.empty() ? 0 : 1) + (o.insecure ? 1 : 0);
    if (modes > 1) {
        return Status(Code::invalid_input,
                      "give only one of --truenas-ca-file, "
                      "--truenas-fingerprint and --truenas-insecure");
    }
    if (!o.fingerprint.empty()) {
        c.tls = {http::TlsMode::pinned, "", o.fingerprint};
    } else if (!o.ca_file.empty()) {
        c.tls = {http::TlsMode::ca_file, o.ca_file, ""};
    } else if (o.insecure) {
        c.tls = {http::TlsMode::insecure, "", ""};
        ctx.logger.warn("truenas",
                        "--truenas-insecure: the TrueNAS certificate is not checked; "
                        "anyone on the path can take the API key");
    }
    if (!o.api_key_file.empty()) {
        auto key = read_secret_file(o.api_key_file, "--truenas-api-key-file", ctx.redactor);
        if (!key.ok()) {
            return key.status();
        }
        c.api_key = *key;
    } else if (ctx.env.truenas_api_key && !ctx.env.truenas_api_key->empty()) {
        c.api_key = *ctx.env.truenas_api_key;
        ctx.redactor.add_secret(c.api_key);
    } else {
        return Status(
            Code::invalid_input,
            "no TrueNAS API key: give --truenas-api-key-file or set VMLIFT_TRUENAS_API_KEY");
    }
    auto target = truenas::TrueNasTarget::connect(c);
    if (!target.ok()) {
        return target.status();
    }
    TrueNasSession session;
    session.target = std::move(*target);
    return session;
}

}  // namespace vmlift::cli

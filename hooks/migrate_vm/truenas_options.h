// The TrueNAS connection options every command that talks to TrueNAS shares,
// and a connected target built from them (HTTPS API, or midclt over SSH).
#pragma once

#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "connectors/truenas/target.h"
#include "hooks/migrate_vm/context.h"

namespace vmlift::cli {

struct TrueNasOptions {
    std::string user = "root";
    int port = 443;
    std::string api_key_file;  // or VMLIFT_TRUENAS_API_KEY
    std::string ca_file;
    std::string fingerprint;
    bool insecure = false;
    bool via_ssh = false;
};

void add_truenas_options(CLI::App& cmd, TrueNasOptions& options);

// A connected target and, with --truenas-via-ssh, the SSH connection it uses.
struct TrueNasSession {
    std::unique_ptr<SshTransport> ssh;
    std::unique_ptr<truenas::TrueNasTarget> target;
};

Result<TrueNasSession> connect_truenas(Context& ctx, const TrueNasOptions& options,
                                       const truenas::TargetUrl& url);

}  // namespace vmlift::cli

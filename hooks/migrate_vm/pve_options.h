// The Proxmox connection options every command that talks to Proxmox shares,
// and building a connected client from them.
#pragma once

#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "connectors/http/curl_http.h"
#include "connectors/proxmox/pve_client.h"
#include "connectors/proxmox/pve_source.h"
#include "hooks/migrate_vm/context.h"

namespace vmlift::cli {

struct PveOptions {
    std::string token_id;           // USER@REALM!TOKENID
    std::string token_secret_file;  // or VMLIFT_PVE_TOKEN_SECRET
    std::string password_file;      // or VMLIFT_PVE_PASSWORD (ticket login)
    std::string ca_file;
    std::string fingerprint;
    bool insecure = false;
};

void add_pve_options(CLI::App& cmd, PveOptions& options);

// Everything a connected Proxmox client needs, kept alive together.
struct PveConnection {
    std::unique_ptr<http::CurlHttpClient> curl;
    std::unique_ptr<RetryingHttpClient> retrying;
    RealSleeper sleeper;
    std::unique_ptr<proxmox::PveClient> client;
    proxmox::PveUrl url;
};

Result<std::unique_ptr<PveConnection>> connect_pve(Context& ctx, const PveOptions& options,
                                                   const std::string& source_url);

}  // namespace vmlift::cli

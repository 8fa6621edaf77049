// `migrate-vm verify`: poll an IP until it is (or is not) answering.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "hooks/migrate_vm/context.h"

namespace vmlift::cli {

struct VerifyOptions {
    std::string ip;
    int port = 22;
    std::string mode = "tcp";
    std::string expect = "reachable";
    int timeout_sec = 300;
    int poll_interval_sec = 5;
};

void add_verify_command(CLI::App& app, VerifyOptions& options);
int run_verify(Context& ctx, const VerifyOptions& options);

}  // namespace vmlift::cli

// `migrate-vm stream`: copy one disk between two hosts (see engine/stream.h).
#pragma once

#include <CLI/CLI.hpp>

#include "engine/stream.h"
#include "hooks/migrate_vm/context.h"

namespace vmlift::cli {

struct StreamOptions {
    std::string src_host;
    std::string dst_host;
    std::string src_user;
    std::string dst_user;
    std::string mode = "auto";
    std::string transport = "agent";
    std::string dst_address_from_src;
    StreamRequest request;
};

void add_stream_command(CLI::App& app, StreamOptions& options);
int run_stream_command(Context& ctx, StreamOptions& options);

}  // namespace vmlift::cli

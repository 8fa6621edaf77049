// Front-end SSH options: argv/env → SshOptions.
//
// Contract
//   add_global_options() registers the options every subcommand shares
//   (names are part of the CLI contract; see README). build_ssh_options()
//   turns them and the process environment into SshOptions for one host:
//   secrets come only from files (--passphrase-file, --password-file) or the
//   environment (VMLIFT_SSH_PASSPHRASE, VMLIFT_SSH_PASSWORD), are registered
//   with the Redactor, and never come from argv.
//   Errors: invalid_input naming the option and the fix.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "engine/redact.h"
#include "engine/transport.h"

namespace vmlift::cli {

struct GlobalOptions {
    std::string ssh_user = "root";
    int ssh_port = 22;
    std::string identity_file;
    std::string known_hosts;
    std::string migration_key_path;
    int connect_timeout_sec = 15;
    int task_timeout_sec = 7200;
    int keepalive_sec = 15;
    std::string ssh_backend = "openssh";
    std::string host_key_policy = "strict";
    std::string passphrase_file;
    std::string password_file;
    std::string ssh_config;
    std::string run_dir = "runs";
    bool json = false;
    bool verbose = false;
};

// What the front end read from its environment, once, at start.
struct Environment {
    std::string home;
    std::string path;
    std::string ssh_auth_sock;
    std::optional<std::string> ssh_passphrase;    // VMLIFT_SSH_PASSPHRASE
    std::optional<std::string> ssh_password;      // VMLIFT_SSH_PASSWORD
    std::optional<std::string> pve_token_secret;  // VMLIFT_PVE_TOKEN_SECRET
    std::optional<std::string> pve_password;      // VMLIFT_PVE_PASSWORD
    std::optional<std::string> truenas_api_key;   // VMLIFT_TRUENAS_API_KEY
    std::string self_dir;                         // directory of this executable
    static Environment from_process();
};

void add_global_options(CLI::App& app, GlobalOptions& options);

Result<SshOptions> build_ssh_options(const GlobalOptions& options, const Environment& env,
                                     const std::string& host, Redactor& redactor);

// Reads a secret file (one trailing newline stripped) and registers it.
Result<std::string> read_secret_file(const std::string& path, const char* option,
                                     Redactor& redactor);

}  // namespace vmlift::cli

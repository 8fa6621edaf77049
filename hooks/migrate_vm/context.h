// What every migrate-vm subcommand gets from main(): the real side-effect
// implementations and the parsed global options. Built once in main().
#pragma once

#include <iostream>

#include "engine/clock.h"
#include "engine/log.h"
#include "engine/process.h"
#include "engine/progress.h"
#include "engine/redact.h"
#include "hooks/migrate_vm/ssh_options.h"

namespace vmlift::cli {

struct Context {
    GlobalOptions global;
    Environment env;
    RealClock clock;
    Redactor redactor;
    PosixProcessRunner runner;
    Logger logger{clock, redactor};
    bool stderr_is_terminal = false;

    // Where and how progress is drawn (see README "Progress").
    ProgressStyle progress_style() const {
        if (global.json) {
            return ProgressStyle::json;
        }
        return stderr_is_terminal ? ProgressStyle::terminal : ProgressStyle::json;
    }
    std::ostream& progress_stream() const { return global.json ? std::cout : std::cerr; }
};

}  // namespace vmlift::cli

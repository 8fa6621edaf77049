// `run|plan --config FILE`: the file gives any of the subcommand's long
// options; the command line wins.
//
// Contract
//   expand_config() finds `--config FILE` (or --config=FILE) after the
//   `run` or `plan` subcommand, reads FILE, and returns argv with the file's
//   options inserted right after the subcommand name, leaving out every
//   option the command line already gives. The file holds `name = value`
//   lines (TOML's subset: # comments, "quoted strings", true/false, numbers,
//   and [ "a", "b" ] arrays for repeatable options); name is the long option
//   without its dashes. `name = true` becomes the flag, false leaves it out.
//   Errors: invalid_input naming the file and line.
#pragma once

#include <string>
#include <vector>

#include "engine/status.h"

namespace vmlift::cli {

Result<std::vector<std::string>> expand_config(const std::vector<std::string>& argv);

}  // namespace vmlift::cli

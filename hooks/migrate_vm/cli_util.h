// Small argv helpers the migrate-vm subcommands share.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "engine/status.h"

namespace vmlift::cli {

// "a,b,,c" → {"a", "b", "c"} (empty items dropped).
std::vector<std::string> split(const std::string& s, char sep);

// {"K=V", ...} → {K: V}; an item without KEY=VALUE is invalid_input naming `option`.
Result<std::map<std::string, std::string>> key_value_pairs(const std::vector<std::string>& items,
                                                           const char* option);

}  // namespace vmlift::cli

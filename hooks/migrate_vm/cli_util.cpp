#include "hooks/migrate_vm/cli_util.h"

#include <sstream>

namespace vmlift::cli {

std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> out;
    std::stringstream in(s);
    std::string item;
    while (std::getline(in, item, sep)) {
        if (!item.empty()) {
            out.push_back(item);
        }
    }
    return out;
}

Result<std::map<std::string, std::string>> key_value_pairs(const std::vector<std::string>& items,
                                                           const char* option) {
    std::map<std::string, std::string> out;
    for (const auto& item : items) {
        size_t eq = item.find('=');
        if (eq == std::string::npos || eq == 0 || eq + 1 == item.size()) {
            return Status(Code::invalid_input,
                          std::string(option) + " '" + item + "' is not KEY=VALUE");
        }
        out[item.substr(0, eq)] = item.substr(eq + 1);
    }
    return out;
}

}  // namespace vmlift::cli

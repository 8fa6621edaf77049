#include "hooks/migrate_vm/trusted_key.h"

#include <sstream>

namespace vmlift::cli {

// "<type> <key>" of the first known_hosts entry for `target`, found by
// ssh-keygen -F (which also matches hashed entries); empty when none.
std::string trusted_key_line(Context& ctx, const SshOptions& options) {
    ProcessSpec spec;
    spec.argv = {"ssh-keygen", "-F", options.target.known_hosts_name(), "-f",
                 options.known_hosts_file};
    spec.env = default_tool_env();
    spec.timeout = std::chrono::seconds(10);
    auto found = run_captured(ctx.runner, spec);
    if (!found.ok() || !found->exit.success()) {
        return {};
    }
    std::istringstream lines(found->out);
    std::string line;
    while (std::getline(lines, line)) {
        if (line.empty() || line[0] == '#' || line[0] == '@') {
            continue;
        }
        std::istringstream fields(line);
        std::string name, type, key;
        if (fields >> name >> type >> key) {
            return type + " " + key;
        }
    }
    return {};
}

}  // namespace vmlift::cli

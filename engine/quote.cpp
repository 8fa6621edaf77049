#include "engine/quote.h"

namespace vmlift {
namespace {

bool is_safe_char(unsigned char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
        return true;
    }
    switch (c) {
        case '_':
        case '-':
        case '.':
        case '/':
        case ':':
        case ',':
        case '+':
        case '@':
        case '%':
            return true;
        default:
            return false;
    }
}

}  // namespace

std::string shell_quote(std::string_view arg) {
    if (arg.empty()) {
        return "''";
    }
    bool safe = true;
    for (unsigned char c : arg) {
        safe = safe && is_safe_char(c);
    }
    // A leading '-' is harmless to the shell; '=' is excluded from the safe
    // set so a word is never read as an assignment. '~' is not in the safe
    // set, so tilde expansion cannot happen.
    if (safe) {
        return std::string(arg);
    }
    std::string out;
    out.reserve(arg.size() + 8);
    out.push_back('\'');
    for (char c : arg) {
        if (c == '\'') {
            out += "'\\''";
        } else {
            out.push_back(c);
        }
    }
    out.push_back('\'');
    return out;
}

Result<std::string> shell_join(const std::vector<std::string>& argv) {
    if (argv.empty()) {
        return Status(Code::invalid_input, "cannot build a command line from an empty argv");
    }
    std::string line;
    for (size_t i = 0; i < argv.size(); ++i) {
        if (argv[i].find('\0') != std::string::npos) {
            return Status(Code::invalid_input, "argument " + std::to_string(i) +
                                                   " contains a NUL byte, which no "
                                                   "command line can carry");
        }
        if (i > 0) {
            line.push_back(' ');
        }
        line += shell_quote(argv[i]);
    }
    return line;
}

}  // namespace vmlift

#include "hooks/migrate_vm/config_file.h"

#include <fstream>
#include <set>
#include <sstream>

namespace vmlift::cli {
namespace {

std::string trim(const std::string& s) {
    size_t b = s.find_first_not_of(" \t\r");
    size_t e = s.find_last_not_of(" \t\r");
    return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// One scalar: "quoted" (with \" and \\ escapes) or bare.
Result<std::string> scalar(const std::string& text, const std::string& where) {
    if (text.size() >= 2 && text.front() == '"' && text.back() == '"') {
        std::string out;
        for (size_t i = 1; i + 1 < text.size(); ++i) {
            if (text[i] == '\\' && i + 2 < text.size()) {
                ++i;
            }
            out += text[i];
        }
        return out;
    }
    if (text.find('"') != std::string::npos || text.empty()) {
        return Status(Code::invalid_input, where + ": cannot read the value " + text);
    }
    return text;
}

Result<std::vector<std::string>> values(const std::string& text, const std::string& where) {
    std::vector<std::string> out;
    if (text.size() >= 2 && text.front() == '[' && text.back() == ']') {
        std::string inner = text.substr(1, text.size() - 2);
        std::string item;
        bool quoted = false;
        for (size_t i = 0; i <= inner.size(); ++i) {
            char c = i < inner.size() ? inner[i] : ',';
            if (c == '"' && (i == 0 || inner[i - 1] != '\\')) {
                quoted = !quoted;
            }
            if (c == ',' && !quoted) {
                std::string t = trim(item);
                if (!t.empty()) {
                    auto v = scalar(t, where);
                    if (!v.ok()) {
                        return v.status();
                    }
                    out.push_back(*v);
                }
                item.clear();
            } else {
                item += c;
            }
        }
        return out;
    }
    auto v = scalar(text, where);
    if (!v.ok()) {
        return v.status();
    }
    out.push_back(*v);
    return out;
}

}  // namespace

Result<std::vector<std::string>> expand_config(const std::vector<std::string>& argv) {
    size_t sub = 0;
    for (size_t i = 1; i < argv.size(); ++i) {
        if (argv[i] == "run" || argv[i] == "plan") {
            sub = i;
            break;
        }
    }
    if (sub == 0) {
        return argv;
    }
    std::string file;
    std::vector<std::string> rest;
    std::set<std::string> given;
    for (size_t i = sub + 1; i < argv.size(); ++i) {
        const std::string& a = argv[i];
        if (a == "--config" && i + 1 < argv.size()) {
            file = argv[++i];
            continue;
        }
        if (a.rfind("--config=", 0) == 0) {
            file = a.substr(9);
            continue;
        }
        if (a.rfind("--", 0) == 0) {
            given.insert(a.substr(
                2, a.find('=') == std::string::npos ? std::string::npos : a.find('=') - 2));
        }
        rest.push_back(a);
    }
    if (file.empty()) {
        return argv;
    }
    std::ifstream in(file);
    if (!in) {
        return Status(Code::invalid_input, "--config " + file + " cannot be read");
    }
    std::vector<std::string> from_file;
    std::string line;
    int n = 0;
    while (std::getline(in, line)) {
        ++n;
        const std::string where = file + ":" + std::to_string(n);
        std::string t = trim(line);
        if (t.empty() || t[0] == '#') {
            continue;
        }
        size_t eq = t.find('=');
        if (eq == std::string::npos) {
            return Status(Code::invalid_input, where + ": expected `name = value`");
        }
        std::string name = trim(t.substr(0, eq));
        std::string value = trim(t.substr(eq + 1));
        if (name.rfind("--", 0) == 0) {
            name = name.substr(2);
        }
        for (auto& c : name) {
            c = c == '_' ? '-' : c;
        }
        if (given.count(name)) {
            continue;  // the command line wins
        }
        if (value == "true") {
            from_file.push_back("--" + name);
            continue;
        }
        if (value == "false") {
            continue;
        }
        auto vs = values(value, where);
        if (!vs.ok()) {
            return vs.status();
        }
        for (const auto& v : *vs) {
            from_file.insert(from_file.end(), {"--" + name, v});
        }
    }
    std::vector<std::string> out(argv.begin(), argv.begin() + static_cast<long>(sub) + 1);
    out.insert(out.end(), from_file.begin(), from_file.end());
    out.insert(out.end(), rest.begin(), rest.end());
    return out;
}

}  // namespace vmlift::cli

#include "connectors/truenas/midclt.h"

#include <regex>
#include <sstream>

#include "engine/io.h"

namespace vmlift::truenas {

const std::set<std::string>& truenas_job_methods() {
    static const std::set<std::string> m = {"vm.stop", "vm.restart", "cronjob.run"};
    return m;
}

Result<nlohmann::json> MidcltApi::call(const std::string& method, const nlohmann::json& params) {
    std::vector<std::string> argv;
    if (m_privilege == Privilege::sudo) {
        argv = {"sudo", "-n"};
    }
    argv.insert(argv.end(), {"midclt", "call"});
    if (truenas_job_methods().count(method)) {
        argv.push_back("-j");
    }
    argv.push_back(method);
    for (const auto& p : params) {
        argv.push_back(p.dump());
    }
    auto r = exec_captured(m_host, argv);
    if (!r.ok()) {
        return r.status();
    }
    const std::string& host = m_host.target().host;
    if (r->exit.kind != ExitStatus::Kind::exited || r->exit.code != 0) {
        const std::string err = r->err + r->out;
        if (r->exit.code == 127 || err.find("midclt: not found") != std::string::npos ||
            err.find("midclt: command not found") != std::string::npos) {
            return Status(Code::not_found, "midclt is not installed on " + host +
                                               "; is it a TrueNAS host? (use the API instead)");
        }
        if (err.find("sudo: a password is required") != std::string::npos) {
            return Status(Code::permission_denied,
                          "sudo on " + host +
                              " asks for a password; allow midclt without one "
                              "(NOPASSWD) or connect as root");
        }
        static const std::regex line_re(R"(\[(E[A-Z]+)\] ([^:\n]+): ([^\n]*))");
        std::string listed;
        std::string first_errno;
        for (std::sregex_iterator it(err.begin(), err.end(), line_re), end; it != end; ++it) {
            if (first_errno.empty()) {
                first_errno = (*it)[1].str();
            }
            listed += (listed.empty() ? "" : "; ") + (*it)[2].str() + ": " + (*it)[3].str() + " (" +
                      (*it)[1].str() + ")";
        }
        if (!listed.empty()) {
            Code c = first_errno == "ENOENT"                             ? Code::not_found
                     : first_errno == "EACCES" || first_errno == "EPERM" ? Code::permission_denied
                                                                         : Code::invalid_input;
            return Status(c, method + " (midclt on " + host + ") failed: " + listed);
        }
        if (err.find("Method does not exist") != std::string::npos) {
            return Status(Code::not_found, "this TrueNAS release has no method " + method);
        }
        return Status(Code::remote_failed,
                      method + " (midclt on " + host + ") failed: " + last_line(err));
    }
    std::string out = r->out;
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) {
        out.pop_back();
    }
    if (out.empty()) {
        return nlohmann::json();
    }
    auto j = nlohmann::json::parse(out, nullptr, false);
    if (j.is_discarded()) {
        // Job output may start with progress lines; the result is the last line.
        auto last = nlohmann::json::parse(last_line(out), nullptr, false);
        if (last.is_discarded()) {
            return Status(Code::remote_failed,
                          method + " (midclt on " + host + "): the output is not JSON");
        }
        return last;
    }
    return j;
}

}  // namespace vmlift::truenas

#include "engine/queue.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "engine/io.h"
#include "engine/run_dir.h"

namespace vmlift {
namespace fs = std::filesystem;

namespace {

std::string run_dir_in(const std::string& log) {
    const std::string needle = "run directory ";
    size_t at = log.find(needle);
    if (at == std::string::npos) {
        return {};
    }
    size_t end = log.find('\n', at);
    return log.substr(at + needle.size(),
                      end == std::string::npos ? std::string::npos : end - at - needle.size());
}

}  // namespace

Result<QueueReport> run_queue(ProcessRunner& runner, const std::string& queue_dir,
                              const std::vector<std::string>& run_argv,
                              std::chrono::seconds job_timeout) {
    QueueReport report;
    for (const char* sub : {"running", "done", "failed", "logs"}) {
        VMLIFT_RETURN_IF_ERROR(make_dirs(queue_dir + "/" + sub, 0700));
    }
    int lock = ::open((queue_dir + "/.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock < 0) {
        return Status(Code::io_error, "cannot open " + queue_dir + "/.lock");
    }
    if (::flock(lock, LOCK_EX | LOCK_NB) != 0) {
        ::close(lock);
        return report;  // another cron run is busy with the queue
    }
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(queue_dir + "/running", ec)) {
        fs::path to = fs::path(queue_dir) / "failed" / e.path().filename();
        fs::rename(e.path(), to, ec);
        report.lines.push_back(e.path().filename().string() +
                               ": was interrupted by an earlier cron run; moved to failed/ (see "
                               "logs/" +
                               e.path().filename().string() +
                               ".log for its run directory, "
                               "then migrate-vm resume or rollback)");
        if (report.exit_code == 0) {
            report.exit_code = exit_code_for(Code::cancelled);
        }
    }
    std::vector<fs::path> jobs;
    for (const auto& e : fs::directory_iterator(queue_dir, ec)) {
        if (e.is_regular_file() && e.path().extension() == ".conf") {
            jobs.push_back(e.path());
        }
    }
    std::sort(jobs.begin(), jobs.end());
    for (const auto& job : jobs) {
        const std::string name = job.filename().string();
        const fs::path running = fs::path(queue_dir) / "running" / name;
        fs::rename(job, running, ec);
        if (ec) {
            report.lines.push_back(name + ": cannot move to running/: " + ec.message());
            continue;
        }
        const std::string log = queue_dir + "/logs/" + name + ".log";
        ProcessSpec spec;
        spec.argv = run_argv;
        spec.argv.insert(spec.argv.end(), {"--config", running.string(), "--yes"});
        spec.env = default_tool_env();
        std::ofstream(log, std::ios::trunc).close();
        spec.stdout_redirect = Redirect::append_to(log);
        spec.stderr_redirect = Redirect::append_to(log);
        spec.timeout = job_timeout;
        auto exit = runner.run(spec, {});
        ++report.jobs_run;
        std::string text;
        {
            std::ifstream in(log);
            std::stringstream s;
            s << in.rdbuf();
            text = s.str();
        }
        const bool ok = exit.ok() && exit->success();
        fs::rename(running, fs::path(queue_dir) / (ok ? "done" : "failed") / name, ec);
        const std::string dir = run_dir_in(text);
        if (ok) {
            report.lines.push_back(name + ": migrated" + (dir.empty() ? "" : " (" + dir + ")"));
        } else {
            int code = exit.ok() ? (exit->code == 0 ? 1 : exit->code) : 1;
            report.lines.push_back(name + ": FAILED (" +
                                   (exit.ok() ? exit->describe() : exit.status().message()) +
                                   "): " + last_line(text) + (dir.empty() ? "" : "; run " + dir));
            if (report.exit_code == 0) {
                report.exit_code = code;
            }
        }
    }
    ::close(lock);
    return report;
}

void reverify_recent(Prober& prober, const std::string& runs_dir, int days, QueueReport& report) {
    std::error_code ec;
    const auto now = fs::file_time_type::clock::now();
    for (const auto& e : fs::directory_iterator(runs_dir, ec)) {
        const fs::path summary = e.path() / "summary.json";
        auto when = fs::last_write_time(summary, ec);
        if (ec || now - when > std::chrono::hours(24 * days)) {
            ec.clear();
            continue;
        }
        std::ifstream in(summary);
        auto s = nlohmann::json::parse(in, nullptr, false);
        if (!s.is_object() || s.value("state", "") != "succeeded") {
            continue;
        }
        for (const auto& r : s.value("reachability", nlohmann::json::array())) {
            auto mode = parse_probe_mode(r.value("mode", "tcp"));
            int port = r["port"].is_number() ? r["port"].get<int>() : 22;
            auto answered =
                prober.probe(r.value("ip", ""), port, mode.ok() ? *mode : ProbeMode::tcp,
                             std::chrono::milliseconds(3000));
            if (!answered.ok() || !*answered) {
                report.lines.push_back(
                    "run " + s.value("run_id", "") + ": " + s["target"].value("vm_name", "") +
                    " at " + r.value("ip", "") + " is not answering now (" +
                    (answered.ok() ? "no reply" : answered.status().message()) + ")");
                if (report.exit_code == 0) {
                    report.exit_code = exit_code_for(Code::unreachable);
                }
            }
        }
    }
}

}  // namespace vmlift

#include "engine/agent_net.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "engine/base64.h"

namespace vmlift {
namespace {

namespace fs = std::filesystem;

// Everything plan_guest_net() reads, relative to the guest's root.
const std::vector<std::string> k_pulled = {
    "etc/netplan",
    "etc/NetworkManager/system-connections",
    "etc/NetworkManager/vmlift-backup",
    "etc/systemd/network",
    "etc/systemd/vmlift-backup",
    "etc/sysconfig/network-scripts",
    "etc/sysconfig/vmlift-backup",
    "etc/network/interfaces",
    "etc/network/interfaces.d",
    "etc/network/vmlift-backup",
    "etc/cloud/cloud.cfg",
    "etc/cloud/cloud.cfg.d",
};

// $1: the root; the rest: paths under it. Keeps the paths that exist, tars
// them and prints the archive as base64. Exit 4: none exists.
constexpr const char* k_pull_script =
    "root=$1; shift\n"
    "cd \"$root\" || exit 3\n"
    "for p in \"$@\"; do shift; if [ -e \"$p\" ] || [ -L \"$p\" ]; then set -- \"$@\" \"$p\"; "
    "fi; done\n"
    "[ $# -gt 0 ] || { echo 'no network configuration folder exists' >&2; exit 4; }\n"
    "t=$(mktemp) || exit 3\n"
    "tar -cf \"$t\" \"$@\" && base64 \"$t\"; rc=$?\n"
    "rm -f \"$t\"\n"
    "exit $rc\n";

// $1: the root; $2: the staged base64 of a tar; the rest: files to remove
// after unpacking. The originals are removed only once the tar is in.
constexpr const char* k_apply_script =
    "root=$1; staged=$2; shift 2\n"
    "cd \"$root\" || exit 3\n"
    "if ! base64 -d \"$staged\" > \"$staged.tar\" || ! tar -xf \"$staged.tar\"; then\n"
    "  rm -f \"$staged\" \"$staged.tar\"; exit 5\n"
    "fi\n"
    "rc=0\n"
    "if [ $# -gt 0 ]; then rm -f -- \"$@\" || rc=6; fi\n"
    "rm -f \"$staged\" \"$staged.tar\"\n"
    "sync\n"
    "exit $rc\n";

constexpr const char* k_append_script = "cat >> \"$1\"";

std::string first_line(const std::string& s) {
    std::string t = s.substr(0, s.find('\n'));
    return t.empty() ? "no output" : t;
}

Result<GuestExecResult> guest_run(GuestExec& guest, const std::string& what,
                                  const std::vector<std::string>& argv,
                                  const std::string& input = {}) {
    auto r = guest.exec(argv, input);
    if (!r.ok()) {
        return Status(r.status().code(),
                      what + " through " + guest.describe() + ": " + r.status().message());
    }
    if (r->exit_code != 0) {
        return Status(Code::remote_failed, what + " in the guest failed (exit " +
                                               std::to_string(r->exit_code) +
                                               "): " + first_line(r->err));
    }
    if (r->truncated) {
        return Status(Code::remote_failed,
                      what + ": the guest agent truncated the output; use --net-prep offline");
    }
    return r;
}

Status local_tar(ProcessRunner& local, const std::vector<std::string>& args) {
    ProcessSpec spec;
    spec.argv = {"tar"};
    spec.argv.insert(spec.argv.end(), args.begin(), args.end());
    spec.env = default_tool_env();
    spec.timeout = std::chrono::seconds(120);
    auto r = run_captured(local, spec);
    if (!r.ok()) {
        return Status(r.status().code(), "tar on this machine: " + r.status().message());
    }
    if (!r->exit.success()) {
        return Status(Code::io_error,
                      "tar on this machine: " + r->exit.describe() + ": " + first_line(r->err));
    }
    return {};
}

Status write_file(const fs::path& path, const std::string& data) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << data;
    out.close();
    if (!out) {
        return Status(Code::io_error, "cannot write " + path.string());
    }
    return {};
}

// Anything but folders and regular files is refused: a symbolic link from
// the guest could make the planner read or write this machine's files.
Status only_plain_files(const fs::path& dir) {
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
         it.increment(ec)) {
        auto st = it->symlink_status(ec);
        if (ec) {
            break;
        }
        if (st.type() != fs::file_type::directory && st.type() != fs::file_type::regular) {
            return Status(Code::invalid_input,
                          "/" + it->path().lexically_relative(dir).string() +
                              " in the guest is not a regular file (a symbolic link?); the "
                              "in-guest rewrite does not follow it: use --net-prep offline");
        }
    }
    if (ec) {
        return Status(Code::io_error, "cannot read " + dir.string() + ": " + ec.message());
    }
    return {};
}

// Pulls the guest's configuration into `into` (fresh).
Status pull(GuestExec& guest, ProcessRunner& local, const std::string& guest_root,
            const fs::path& into) {
    std::vector<std::string> argv = {"sh", "-c", k_pull_script, "sh", guest_root};
    argv.insert(argv.end(), k_pulled.begin(), k_pulled.end());
    auto r = guest.exec(argv, "");
    if (!r.ok()) {
        return Status(r.status().code(), "reading the guest's network configuration through " +
                                             guest.describe() + ": " + r.status().message());
    }
    if (r->exit_code == 4) {
        return Status(Code::invalid_input,
                      "the guest has no network configuration vmlift knows (netplan, "
                      "NetworkManager, systemd-networkd, ifcfg, ifupdown)");
    }
    if (r->exit_code != 0) {
        return Status(Code::remote_failed,
                      "reading the guest's network configuration failed (exit " +
                          std::to_string(r->exit_code) + "): " + first_line(r->err));
    }
    if (r->truncated) {
        return Status(Code::remote_failed,
                      "the guest agent truncated the network configuration; "
                      "use --net-prep offline");
    }
    auto tar = base64_decode(r->out);
    if (!tar.ok()) {
        return Status(Code::remote_failed,
                      "the guest's archive is not valid base64: " + tar.status().message());
    }
    if (tar->empty()) {
        return Status(Code::remote_failed,
                      "the guest agent ran the command but returned no output (no archive of "
                      "the network configuration)");
    }
    std::error_code ec;
    fs::remove_all(into, ec);
    fs::create_directories(into, ec);
    if (ec) {
        return Status(Code::io_error, "cannot create " + into.string() + ": " + ec.message());
    }
    const fs::path file = into.string() + ".tar";
    VMLIFT_RETURN_IF_ERROR(write_file(file, *tar));
    VMLIFT_RETURN_IF_ERROR(local_tar(local, {"-C", into.string(), "-xf", file.string()}));
    return only_plain_files(into);
}

// Stages `tar_bytes` in the guest and unpacks it at the root, then removes
// `remove` (relative paths).
Status push(GuestExec& guest, const std::string& guest_root, const std::string& tar_bytes,
            const std::vector<std::string>& remove, size_t max_input) {
    auto staged = guest_run(guest, "mktemp", {"mktemp"});
    if (!staged.ok()) {
        return staged.status();
    }
    std::string stage = staged->out.substr(0, staged->out.find('\n'));
    if (stage.empty() || stage.front() != '/') {
        return Status(Code::remote_failed, "mktemp in the guest printed no path");
    }
    const std::string text = base64_encode(tar_bytes);
    const size_t piece = std::max<size_t>(max_input / 4 * 4, 4);
    for (size_t at = 0; at < text.size(); at += piece) {
        VMLIFT_RETURN_IF_ERROR(guest_run(guest, "staging the new files",
                                         {"sh", "-c", k_append_script, "sh", stage},
                                         text.substr(at, piece))
                                   .status());
    }
    std::vector<std::string> argv = {"sh", "-c", k_apply_script, "sh", guest_root, stage};
    argv.insert(argv.end(), remove.begin(), remove.end());
    return guest_run(guest, "writing the new network configuration", argv).status();
}

Result<std::string> read_all(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return Status(Code::io_error, "cannot read " + path.string());
    }
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// A tar (ustar, root-owned, 512-byte records) of `paths` under `dir`.
Result<std::string> make_tar(ProcessRunner& local, const fs::path& dir,
                             const std::vector<std::string>& paths, const fs::path& out) {
    std::vector<std::string> args = {
        "-C", dir.string(), "--format=ustar", "--owner=0", "--group=0", "--numeric-owner", "-b",
        "1",  "-cf",        out.string(),     "--"};
    args.insert(args.end(), paths.begin(), paths.end());
    VMLIFT_RETURN_IF_ERROR(local_tar(local, args));
    return read_all(out);
}

}  // namespace

Result<nlohmann::json> rewrite_guest_net_via_agent(GuestExec& guest, ProcessRunner& local,
                                                   std::vector<GuestNic> nics,
                                                   const AgentNetOptions& options) {
    const fs::path work(options.work_dir);
    std::error_code ec;
    fs::create_directories(work, ec);
    if (ec) {
        return Status(Code::io_error, "cannot create " + work.string() + ": " + ec.message());
    }
    ::chmod(work.c_str(), 0700);
    const fs::path before = work / "before";
    const fs::path after = work / "after";
    VMLIFT_RETURN_IF_ERROR(pull(guest, local, options.guest_root, before));
    fs::remove_all(after, ec);
    fs::copy(before, after, fs::copy_options::recursive, ec);
    if (ec) {
        return Status(Code::io_error, "cannot copy " + before.string() + ": " + ec.message());
    }
    auto plan = plan_guest_net(after.string(), std::move(nics));
    if (!plan.ok()) {
        return plan.status();
    }
    nlohmann::json result = plan->to_json();
    result["method_used"] = "agent";
    result["root"] = "/ (the running guest, through its agent)";
    if (options.dry_run) {
        result["diff"] = unified_diff(*plan);
        return result;
    }
    if (plan->changes.empty()) {
        result["verified"] = true;
        return result;
    }
    VMLIFT_RETURN_IF_ERROR(apply_guest_net(after.string(), *plan));

    std::vector<std::string> written;   // new and rewritten files, backups
    std::vector<std::string> removed;   // originals now in a backup folder
    std::vector<std::string> created;   // what did not exist before: restore removes it
    std::vector<std::string> restored;  // originals restore writes back
    for (const auto& c : plan->changes) {
        if (c.after) {
            written.push_back(c.path);
            (c.before ? restored : created).push_back(c.path);
        } else {
            removed.push_back(c.path);
            restored.push_back(c.path);
            if (!fs::exists(before / c.moved_to)) {
                written.push_back(c.moved_to);
                created.push_back(c.moved_to);
            }
        }
    }
    auto tar = make_tar(local, after, written, work / "push.tar");
    if (!tar.ok()) {
        return tar.status();
    }
    if (options.record_undo) {
        VMLIFT_RETURN_IF_ERROR(options.record_undo({{"action", "restore-guest-net"},
                                                    {"work_dir", work.string()},
                                                    {"guest_root", options.guest_root},
                                                    {"restore", restored},
                                                    {"remove", created}}));
    }
    VMLIFT_RETURN_IF_ERROR(push(guest, options.guest_root, *tar, removed, options.max_input));

    const fs::path check = work / "check";
    VMLIFT_RETURN_IF_ERROR(pull(guest, local, options.guest_root, check));
    auto again = plan_guest_net(check.string(), plan->nics);
    if (!again.ok()) {
        return Status(Code::remote_failed,
                      "after the in-guest rewrite: " + again.status().message());
    }
    if (!again->changes.empty()) {
        return Status(Code::remote_failed, "the in-guest rewrite did not stick: /" +
                                               again->changes.front().path +
                                               " still differs after writing it");
    }
    result["verified"] = true;
    return result;
}

Status restore_guest_net_via_agent(GuestExec& guest, ProcessRunner& local,
                                   const nlohmann::json& record, size_t max_input) {
    const fs::path work(record.value("work_dir", std::string()));
    const fs::path before = work / "before";
    std::vector<std::string> restore = record.value("restore", std::vector<std::string>());
    std::vector<std::string> remove = record.value("remove", std::vector<std::string>());
    std::string tar;
    if (!restore.empty()) {
        auto t = make_tar(local, before, restore, work / "restore.tar");
        if (!t.ok()) {
            return t.status();
        }
        tar = *t;
    } else {
        // An empty archive: two zero records.
        tar.assign(1024, '\0');
    }
    return push(guest, record.value("guest_root", std::string("/")), tar, remove, max_input);
}

}  // namespace vmlift

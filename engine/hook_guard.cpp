#include "engine/hook_guard.h"

#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "engine/run_dir.h"

namespace vmlift {
namespace {

constexpr const char* k_tag = "vmlift-migrated";

// The main section's value of `key` in a qemu-server config ("" when unset).
std::string config_value(const std::string& text, const std::string& key) {
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        if (!line.empty() && line[0] == '[') {
            break;  // snapshots and pending: not the running config
        }
        if (line.rfind(key + ":", 0) == 0) {
            std::string v = line.substr(key.size() + 1);
            size_t b = v.find_first_not_of(" \t");
            return b == std::string::npos ? "" : v.substr(b);
        }
    }
    return {};
}

bool has_tag(const std::string& tags, const std::string& tag) {
    std::string item;
    for (char c : tags + ";") {
        if (c == ';' || c == ',' || c == ' ') {
            if (item == tag) {
                return true;
            }
            item.clear();
        } else {
            item += c;
        }
    }
    return false;
}

bool exists(const std::string& path) {
    return ::access(path.c_str(), F_OK) == 0;
}

}  // namespace

void record_hook_event(const std::string& state_dir, const nlohmann::json& event) {
    if (!make_dirs(state_dir, 0700).ok()) {
        return;
    }
    std::string line = event.dump() + "\n";
    int fd = ::open((state_dir + "/events.jsonl").c_str(),
                    O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd >= 0) {
        (void)!::write(fd, line.data(), line.size());  // one write: lines never interleave
        ::close(fd);
    }
}

std::string claim_file(const std::string& state_dir, const std::string& disk_path) {
    std::string name;
    for (char c : disk_path) {
        bool plain =
            std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
        if (plain) {
            name += c;
        } else if (c == '/') {
            name += "%2F";
        } else {
            char buf[4];
            std::snprintf(buf, sizeof buf, "%%%02X", static_cast<unsigned char>(c));
            name += buf;
        }
    }
    return state_dir + "/disks/" + name + ".json";
}

nlohmann::json claim_json(const DiskClaim& c) {
    return {{"path", c.path},   {"run_id", c.run_id},
            {"state", c.state}, {"cutover_ip", c.cutover_ip},
            {"port", c.port},   {"mode", c.mode}};
}

Result<std::optional<DiskClaim>> read_claim(const std::string& state_dir,
                                            const std::string& disk_path) {
    const std::string file = claim_file(state_dir, disk_path);
    std::ifstream in(file);
    if (!in) {
        if (!exists(file)) {
            return std::optional<DiskClaim>();
        }
        return Status(Code::io_error, "cannot read " + file);
    }
    std::stringstream text;
    text << in.rdbuf();
    auto j = nlohmann::json::parse(text.str(), nullptr, false);
    if (!j.is_object()) {
        return Status(Code::invalid_input, file + " is damaged");
    }
    DiskClaim c;
    c.path = j.value("path", disk_path);
    c.run_id = j.value("run_id", "");
    c.state = j.value("state", "");
    c.cutover_ip = j.value("cutover_ip", "");
    c.port = j.value("port", 22);
    c.mode = j.value("mode", "tcp");
    return std::optional<DiskClaim>(c);
}

HookOutcome pve_hook(const HookPaths& paths, const std::string& vmid, const std::string& phase,
                     const Clock& clock) {
    HookOutcome out;
    nlohmann::json event = {
        {"time", iso8601_utc(clock.wall())}, {"hook", "pve"}, {"vmid", vmid}, {"phase", phase}};
    if (phase == "pre-start") {
        std::ifstream in(paths.pve_config_dir + "/" + vmid + ".conf");
        std::stringstream text;
        text << in.rdbuf();
        const std::string conf = text.str();
        const bool marked = has_tag(config_value(conf, "tags"), k_tag);
        const std::string override_file = paths.state_dir + "/allow-start/" + vmid;
        if (marked && !exists(override_file)) {
            out.exit_code = 1;
            out.message = "vmlift: VM " + vmid +
                          " was migrated by vmlift and must not start here: its MAC and IP now "
                          "live on the target. Undo the migration with `migrate-vm rollback RUN "
                          "--start-source`, or remove the tag " +
                          k_tag + ", or create " + override_file + " to start it anyway";
            event["decision"] = "refused";
        } else {
            event["decision"] = marked ? "allowed (override file)" : "allowed";
        }
    }
    record_hook_event(paths.state_dir, event);
    return out;
}

HookOutcome libvirt_hook(const HookPaths& paths, const std::string& domain,
                         const std::string& operation, const std::string& sub_operation,
                         const std::vector<std::string>& disk_paths, const Clock& clock) {
    HookOutcome out;
    nlohmann::json event = {{"time", iso8601_utc(clock.wall())},
                            {"hook", "libvirt"},
                            {"domain", domain},
                            {"operation", operation},
                            {"sub_operation", sub_operation}};
    const bool starting = operation == "prepare" || operation == "start";
    for (const auto& disk : disk_paths) {
        auto claim = read_claim(paths.state_dir, disk);
        if (!claim.ok()) {
            if (starting) {
                out.exit_code = 1;
                out.message = "vmlift: domain " + domain +
                              " not started: " + claim.status().message() + "; fix or remove it";
            }
            continue;
        }
        if (!claim->has_value()) {
            continue;  // not a disk vmlift copied
        }
        const DiskClaim& c = **claim;
        if (starting && c.state != "verified") {
            out.exit_code = 1;
            out.message = "vmlift: domain " + domain + " not started: its disk " + disk +
                          " belongs to vmlift run " + c.run_id + ", which has not verified it (" +
                          c.state +
                          "); a half-copied disk must not boot. Finish the run with `migrate-vm "
                          "resume`, or delete " +
                          claim_file(paths.state_dir, disk) + " if the disk is no longer vmlift's";
        }
        if (operation == "started" && c.state == "verified" && !c.cutover_ip.empty()) {
            out.verify_after.push_back(c);
        }
    }
    event["decision"] = out.exit_code == 0 ? "allowed" : "refused";
    if (!out.verify_after.empty()) {
        event["verify"] = out.verify_after.front().cutover_ip;
    }
    record_hook_event(paths.state_dir, event);
    return out;
}

}  // namespace vmlift

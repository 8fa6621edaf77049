#include "engine/guest_disk.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "engine/io.h"

namespace vmlift {
namespace {

namespace fs = std::filesystem;

// LVM's text metadata → JSON: sections become objects, `key = value` members.
class LvmText {
  public:
    explicit LvmText(const std::string& text) : m_s(text) {}

    Result<nlohmann::json> parse() {
        nlohmann::json root = nlohmann::json::object();
        VMLIFT_RETURN_IF_ERROR(members(root, false));
        return root;
    }

  private:
    void skip() {
        while (m_i < m_s.size()) {
            if (std::isspace(static_cast<unsigned char>(m_s[m_i]))) {
                ++m_i;
            } else if (m_s[m_i] == '#') {
                while (m_i < m_s.size() && m_s[m_i] != '\n') {
                    ++m_i;
                }
            } else {
                break;
            }
        }
    }
    std::string word() {
        size_t b = m_i;
        while (m_i < m_s.size() && (std::isalnum(static_cast<unsigned char>(m_s[m_i])) ||
                                    std::strchr("_-.+", m_s[m_i]))) {
            ++m_i;
        }
        return m_s.substr(b, m_i - b);
    }
    Result<nlohmann::json> value() {
        skip();
        if (m_i >= m_s.size()) {
            return Status(Code::invalid_input, "LVM metadata ends early");
        }
        if (m_s[m_i] == '"') {
            // LVM escapes quotes and backslashes inside strings (a
            // description quoting the command line that wrote it, say).
            std::string v;
            for (size_t i = m_i + 1; i < m_s.size(); ++i) {
                if (m_s[i] == '\\' && i + 1 < m_s.size()) {
                    v += m_s[++i];
                } else if (m_s[i] == '"') {
                    m_i = i + 1;
                    return nlohmann::json(v);
                } else {
                    v += m_s[i];
                }
            }
            return Status(Code::invalid_input, "LVM metadata: unterminated string");
        }
        if (m_s[m_i] == '[') {
            ++m_i;
            nlohmann::json arr = nlohmann::json::array();
            for (;;) {
                skip();
                if (m_i < m_s.size() && m_s[m_i] == ']') {
                    ++m_i;
                    return arr;
                }
                auto v = value();
                if (!v.ok()) {
                    return v.status();
                }
                arr.push_back(*v);
                skip();
                if (m_i < m_s.size() && m_s[m_i] == ',') {
                    ++m_i;
                }
            }
        }
        std::string w = word();
        if (w.empty()) {
            return Status(Code::invalid_input,
                          "LVM metadata: unexpected '" + std::string(1, m_s[m_i]) + "'");
        }
        bool number = std::all_of(w.begin(), w.end(), [](char c) { return std::isdigit(c); });
        return number ? nlohmann::json(std::stoull(w)) : nlohmann::json(w);
    }
    Status members(nlohmann::json& into, bool nested) {
        for (;;) {
            skip();
            if (m_i >= m_s.size()) {
                return nested ? Status(Code::invalid_input, "LVM metadata: missing '}'") : Status();
            }
            if (m_s[m_i] == '}') {
                if (!nested) {
                    return Status(Code::invalid_input, "LVM metadata: stray '}'");
                }
                ++m_i;
                return {};
            }
            std::string key = word();
            if (key.empty()) {
                return Status(Code::invalid_input, "LVM metadata: expected a name");
            }
            skip();
            if (m_i < m_s.size() && m_s[m_i] == '{') {
                ++m_i;
                nlohmann::json section = nlohmann::json::object();
                VMLIFT_RETURN_IF_ERROR(members(section, true));
                into[key] = section;
            } else if (m_i < m_s.size() && m_s[m_i] == '=') {
                ++m_i;
                auto v = value();
                if (!v.ok()) {
                    return v.status();
                }
                into[key] = *v;
            } else {
                return Status(Code::invalid_input,
                              "LVM metadata: expected '=' or '{' after " + key);
            }
        }
    }
    const std::string& m_s;
    size_t m_i = 0;
};

}  // namespace

Result<std::vector<LvmExtent>> parse_lvm_metadata(const std::string& text) {
    // pvck prints a header line and "---" before the metadata text.
    std::string body = text;
    size_t at = 0;
    while (at < text.size()) {
        size_t nl = text.find('\n', at);
        std::string line = text.substr(at, nl == std::string::npos ? std::string::npos : nl - at);
        line.erase(0, line.find_first_not_of(" \t"));
        if (line.rfind("---", 0) == 0 && line.find_first_not_of('-') == std::string::npos) {
            body = nl == std::string::npos ? std::string() : text.substr(nl + 1);
            break;
        }
        if (nl == std::string::npos) {
            break;
        }
        at = nl + 1;
    }
    // ... and another "---" after it.
    for (size_t pos = 0; pos < body.size();) {
        size_t nl = body.find('\n', pos);
        std::string line = body.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
        line.erase(0, line.find_first_not_of(" \t"));
        if (!line.empty() && line.find_first_not_of('-') == std::string::npos) {
            body.resize(pos);
            break;
        }
        if (nl == std::string::npos) {
            break;
        }
        pos = nl + 1;
    }
    auto parsed = LvmText(body).parse();
    if (!parsed.ok()) {
        return parsed.status();
    }
    std::vector<LvmExtent> out;
    for (const auto& [vg, v] : parsed->items()) {
        if (!v.is_object() || !v.contains("extent_size")) {
            continue;
        }
        const uint64_t extent = v["extent_size"].get<uint64_t>() * 512;
        const std::string vg_id = v.value("id", std::string());
        const int vg_pvs =
            v.contains("physical_volumes") ? static_cast<int>(v["physical_volumes"].size()) : 0;
        std::map<std::string, uint64_t> pe_start;
        if (v.contains("physical_volumes")) {
            for (const auto& [pv, pvv] : v["physical_volumes"].items()) {
                pe_start[pv] = pvv.value("pe_start", uint64_t{0}) * 512;
            }
        }
        if (!v.contains("logical_volumes")) {
            continue;
        }
        for (const auto& [lv, lvv] : v["logical_volumes"].items()) {
            LvmExtent e;
            e.vg = vg;
            e.vg_id = vg_id;
            e.vg_pvs = vg_pvs;
            e.lv = lv;
            e.segments = static_cast<int>(lvv.value("segment_count", uint64_t{0}));
            if (lvv.contains("segment1")) {
                const auto& seg = lvv["segment1"];
                e.type = seg.value("type", std::string());
                e.stripes = static_cast<int>(seg.value("stripe_count", uint64_t{0}));
                const auto& stripes = seg.contains("stripes") ? seg["stripes"] : nlohmann::json();
                if (stripes.is_array() && stripes.size() >= 2 && stripes[0].is_string() &&
                    stripes[1].is_number()) {
                    e.offset = pe_start[stripes[0].get<std::string>()] +
                               stripes[1].get<uint64_t>() * extent;
                }
                e.length = seg.value("extent_count", uint64_t{0}) * extent;
            }
            for (int n = 1; n <= e.segments; ++n) {
                const std::string key = "segment" + std::to_string(n);
                if (!lvv.contains(key) || !lvv[key].is_object()) {
                    break;
                }
                const auto& seg = lvv[key];
                LvmSegment s;
                s.lv_offset = seg.value("start_extent", uint64_t{0}) * extent;
                s.length = seg.value("extent_count", uint64_t{0}) * extent;
                s.type = seg.value("type", std::string());
                s.stripes = static_cast<int>(seg.value("stripe_count", uint64_t{0}));
                const auto& st = seg.contains("stripes") ? seg["stripes"] : nlohmann::json();
                if (st.is_array() && st.size() >= 2 && st[0].is_string() && st[1].is_number()) {
                    s.pv = st[0].get<std::string>();
                    s.offset = pe_start[s.pv] + st[1].get<uint64_t>() * extent;
                }
                e.segs.push_back(s);
            }
            out.push_back(e);
        }
    }
    return out;
}

namespace {

// LVM's device-mapper names double every '-' of the VG and LV names.
std::string dm_escape(const std::string& s) {
    std::string out;
    for (char c : s) {
        out += c;
        if (c == '-') {
            out += '-';
        }
    }
    return out;
}

std::string dm_safe(const std::string& s) {
    std::string out;
    for (char c : s) {
        const bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' ||
                        c == '+' || c == '-';
        out += ok ? c : '_';
    }
    return out;
}

std::string trim(const std::string& s) {
    const size_t a = s.find_first_not_of(" \t\r");
    const size_t b = s.find_last_not_of(" \t\r");
    return a == std::string::npos ? std::string() : s.substr(a, b - a + 1);
}

}  // namespace

Result<DmPlan> plan_dm_activation(const std::vector<LvmExtent>& lvs, const std::string& pv_device,
                                  const std::string& host_vgs, const std::string& tag,
                                  const std::string& table_dir) {
    if (lvs.empty()) {
        return Status(Code::invalid_input, "no logical volume on " + pv_device);
    }
    const std::string& vg = lvs.front().vg;
    if (lvs.front().vg_pvs > 1) {
        return Status(Code::invalid_input, "volume group " + vg + " spans " +
                                               std::to_string(lvs.front().vg_pvs) +
                                               " physical volumes and only one is on this disk");
    }
    DmPlan plan;
    std::istringstream in(host_vgs);
    std::string line;
    while (std::getline(in, line)) {
        line = trim(line);
        const size_t colon = line.find(':');
        if (colon != std::string::npos && line.substr(0, colon) == vg &&
            line.substr(colon + 1) != lvs.front().vg_id) {
            plan.collision = true;
        }
    }
    if (!plan.collision) {
        const std::string config = "devices { global_filter = [ \"a|^" + pv_device +
                                   "$|\", \"r|.*|\" ] use_devicesfile = 0 }";
        plan.activate.push_back({"vgchange", "--activate", "y", "--config", config, vg});
        plan.deactivate.push_back({"vgchange", "--activate", "n", "--config", config, vg});
        for (const auto& lv : lvs) {
            plan.devices[lv.vg + "/" + lv.lv] =
                "/dev/mapper/" + dm_escape(vg) + "-" + dm_escape(lv.lv);
        }
        return plan;
    }
    for (const auto& lv : lvs) {
        std::string table;
        for (const auto& s : lv.segs) {
            if (s.type != "striped" || s.stripes != 1 || s.pv.empty()) {
                return Status(Code::invalid_input,
                              lv.vg + "/" + lv.lv + " has a " + s.type +
                                  " segment; the host has its own VG " + vg +
                                  ", so the guest's is mapped without LVM, which only "
                                  "handles linear segments");
            }
            table += std::to_string(s.lv_offset / 512) + " " + std::to_string(s.length / 512) +
                     " linear " + pv_device + " " + std::to_string(s.offset / 512) + "\n";
        }
        if (table.empty()) {
            continue;
        }
        const std::string name =
            "vmlift-" + dm_safe(tag) + "-" + dm_safe(vg) + "-" + dm_safe(lv.lv);
        plan.tables[name] = table;
        plan.activate.push_back({"dmsetup", "create", name, table_dir + "/" + name + ".table"});
        plan.deactivate.insert(plan.deactivate.begin(), {"dmsetup", "remove", name});
        plan.devices[lv.vg + "/" + lv.lv] = "/dev/mapper/" + name;
    }
    return plan;
}

Result<std::string> GuestRoot::run(const std::vector<std::string>& argv) {
    ProcessSpec spec;
    spec.argv = argv;
    spec.env = default_tool_env();
    spec.timeout = std::chrono::seconds(120);
    auto r = run_captured(m_runner, spec);
    if (!r.ok()) {
        return r.status();
    }
    if (r->exit.kind != ExitStatus::Kind::exited || r->exit.code != 0) {
        return Status(Code::io_error, argv[0] + " failed: " + last_line(r->err + r->out));
    }
    return r->out;
}

void GuestRoot::save_state() {
    if (m_state_file.empty()) {
        std::error_code ec;
        fs::create_directories(m_options.state_dir, ec);
        m_state_file = m_options.state_dir + "/" + std::to_string(::getpid()) + ".json";
    }
    nlohmann::json j = {{"pid", ::getpid()},
                        {"loops", m_loops},
                        {"mount", m_mounted ? m_mount : ""},
                        {"nbd_device", m_nbd_device},
                        {"fuse_mount", m_fuse_mount},
                        {"dm_teardown", m_dm_teardown}};
    std::ofstream(m_state_file) << j.dump() << "\n";
}

namespace {

// `path` is in /proc/mounts (octal escapes for spaces and the like).
bool is_mount_point(const std::string& path) {
    std::ifstream in("/proc/mounts");
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream w(line);
        std::string dev, mp;
        if (w >> dev >> mp && mp == path) {
            return true;
        }
    }
    return false;
}

}  // namespace

bool device_mapper_available() {
    std::error_code ec;
    return fs::exists("/dev/mapper/control", ec);
}

Status GuestRoot::connect_nbd() {
    const std::string& uri = m_options.nbd_uri;
    const std::string& dev = m_options.nbd_device;
    std::error_code ec;
    if (!dev.empty() && fs::exists("/sys/block/" + fs::path(dev).filename().string(), ec)) {
        auto r = run({"qemu-nbd", "--connect=" + dev, "--format=raw", uri});
        if (!r.ok()) {
            return Status(r.status().code(),
                          "cannot connect " + dev + " to " + uri + ": " + r.status().message());
        }
        m_nbd_device = dev;
        save_state();
        m_options.device = dev;
        return {};
    }
    // No nbd module: nbdfuse shows the export as the file DIR/disk.
    const std::string dir = m_options.state_dir + "/nbd-" + std::to_string(::getpid());
    fs::create_directories(dir, ec);
    if (ec) {
        return Status(Code::io_error, "cannot create " + dir + ": " + ec.message());
    }
    const std::string pid_file = dir + ".pid";
    const std::string log_file = dir + ".log";
    fs::remove(pid_file, ec);
    ProcessSpec spec;
    spec.argv = {"nbdfuse", "-P", pid_file, dir + "/disk", uri};
    spec.env = default_tool_env();
    spec.stderr_redirect = Redirect::truncate_to(log_file);
    auto p = m_runner.start(spec);
    if (!p.ok()) {
        return Status(p.status().code(),
                      "neither the nbd kernel module (" + dev +
                          ") nor nbdfuse (libnbd-bin) is available: " + p.status().message());
    }
    m_nbdfuse = std::move(*p);
    m_fuse_mount = dir;
    save_state();
    for (int i = 0; i < 300; ++i) {
        if (fs::file_size(pid_file, ec) > 0 && !ec) {
            m_options.device = dir + "/disk";
            return {};
        }
        if (m_nbdfuse->try_wait()) {
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    std::string why;
    {
        std::ifstream in(log_file);
        std::string line;
        while (std::getline(in, line)) {
            if (!line.empty()) {
                why = line;
            }
        }
    }
    return Status(Code::unreachable, "cannot reach the NBD export " + uri +
                                         " (nbdfuse: " + (why.empty() ? "no answer in 30 s" : why) +
                                         "); check --nbd-host/--nbd-port and the server");
}

Result<std::string> GuestRoot::attach(uint64_t offset, uint64_t length) {
    auto out = run({"losetup", "--find", "--show", "--offset", std::to_string(offset),
                    "--sizelimit", std::to_string(length), m_options.device});
    if (!out.ok()) {
        return out.status();
    }
    std::string dev = last_line(*out);
    m_loops.push_back(dev);
    save_state();
    return dev;
}

Status GuestRoot::mount(const std::string& device, const std::string& type) {
    std::vector<std::string> argv = {"mount", "-t", type};
    if (type == "xfs") {
        argv.insert(argv.end(), {"-o", "nouuid"});
    }
    argv.push_back(device);
    argv.push_back(m_mount);
    auto r = run(argv);
    if (!r.ok()) {
        return r.status();
    }
    m_mounted = true;
    save_state();
    return {};
}

void GuestRoot::unmount() {
    if (m_mounted) {
        (void)run({"umount", m_mount});
        m_mounted = false;
        save_state();
    }
}

Status GuestRoot::close() {
    Status first;
    if (m_mounted) {
        auto r = run({"umount", m_mount});
        if (!r.ok()) {
            first = r.status();
        } else {
            m_mounted = false;
        }
    }
    for (const auto& cmd : m_dm_teardown) {
        auto r = run(cmd);
        if (!r.ok() && first.ok()) {
            first = r.status();
        }
    }
    if (!m_dm_teardown.empty() && first.ok()) {
        std::error_code ec;
        const std::string prefix = "vmlift-" + std::to_string(::getpid()) + "-";
        for (const auto& e : fs::directory_iterator(m_options.state_dir, ec)) {
            const std::string name = e.path().filename().string();
            if (name.rfind(prefix, 0) == 0 && e.path().extension() == ".table") {
                fs::remove(e.path(), ec);
            }
        }
    }
    m_dm_teardown.clear();
    for (auto it = m_loops.rbegin(); it != m_loops.rend(); ++it) {
        auto r = run({"losetup", "-d", *it});
        if (!r.ok() && first.ok()) {
            first = r.status();
        }
    }
    m_loops.clear();
    if (!m_fuse_mount.empty()) {
        // The loop devices let go of the file asynchronously: retry briefly.
        Status st;
        for (int i = 0; i < 50 && is_mount_point(m_fuse_mount); ++i) {
            auto r = run({"fusermount3", "-u", m_fuse_mount});
            st = r.ok() ? Status() : r.status();
            if (st.ok()) {
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        if (m_nbdfuse) {
            for (int i = 0; i < 50 && !m_nbdfuse->try_wait(); ++i) {
                std::this_thread::sleep_for(std::chrono::milliseconds(100));
            }
            (void)m_nbdfuse->terminate(std::chrono::milliseconds(2000));
            m_nbdfuse.reset();
        }
        if (st.ok()) {
            std::error_code ec;
            fs::remove(m_fuse_mount, ec);
            fs::remove(m_fuse_mount + ".pid", ec);
            fs::remove(m_fuse_mount + ".log", ec);
            m_fuse_mount.clear();
        } else if (first.ok()) {
            first = st;
        }
    }
    if (!m_nbd_device.empty()) {
        auto r = run({"qemu-nbd", "--disconnect", m_nbd_device});
        if (r.ok()) {
            m_nbd_device.clear();
        } else if (first.ok()) {
            first = r.status();
        }
    }
    if (m_temp_dir && !m_mount.empty()) {
        std::error_code ec;
        fs::remove(m_mount, ec);
        m_temp_dir = false;
    }
    if (!m_state_file.empty() && first.ok()) {
        std::error_code ec;
        fs::remove(m_state_file, ec);
    }
    return first;
}

GuestRoot::~GuestRoot() {
    (void)close();
}

void GuestRoot::clean_leftovers(ProcessRunner& runner, Logger& log, const std::string& state_dir) {
    std::error_code ec;
    if (!fs::is_directory(state_dir, ec)) {
        return;
    }
    for (const auto& e : fs::directory_iterator(state_dir, ec)) {
        if (e.path().extension() != ".json" || !e.is_regular_file(ec)) {
            continue;  // nbdfuse mount points and their pid and log files
        }
        std::ifstream in(e.path());
        auto j = nlohmann::json::parse(in, nullptr, false);
        if (!j.is_object()) {
            continue;
        }
        const int pid = j.value("pid", 0);
        if (pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM)) {
            continue;  // that run is still going
        }
        GuestRoot dead(runner, log, {});
        dead.m_mount = j.value("mount", std::string());
        dead.m_mounted = !dead.m_mount.empty();
        dead.m_loops = j.value("loops", std::vector<std::string>{});
        dead.m_nbd_device = j.value("nbd_device", std::string());
        dead.m_fuse_mount = j.value("fuse_mount", std::string());
        dead.m_dm_teardown = j.value("dm_teardown", std::vector<std::vector<std::string>>{});
        dead.m_state_file = e.path().string();
        log.warn("guest-disk", "cleaning up after a run that died: " + j.dump());
        (void)dead.close();
        fs::remove(e.path(), ec);
    }
}

Result<std::unique_ptr<GuestRoot>> GuestRoot::open(ProcessRunner& runner, Logger& log,
                                                   const GuestDiskOptions& requested) {
    clean_leftovers(runner, log, requested.state_dir);
    std::unique_ptr<GuestRoot> g(new GuestRoot(runner, log, requested));
    if (!requested.nbd_uri.empty()) {
        VMLIFT_RETURN_IF_ERROR(g->connect_nbd());
    }
    const GuestDiskOptions& options = g->m_options;  // device set by connect_nbd()
    auto cancelled = [&] { return options.cancelled && options.cancelled(); };
    struct stat st {};
    if (::stat(options.device.c_str(), &st) != 0) {
        return Status(Code::not_found, "guest disk " + options.device + " does not exist");
    }
    uint64_t size = static_cast<uint64_t>(st.st_size);
    if (S_ISBLK(st.st_mode)) {
        auto bytes = g->run({"blockdev", "--getsize64", options.device});
        if (!bytes.ok()) {
            return bytes.status();
        }
        size = std::stoull(last_line(*bytes));
    }
    if (options.mount_point.empty()) {
        char tmpl[] = "/tmp/vmlift-guest-XXXXXX";
        if (!::mkdtemp(tmpl)) {
            return Status(Code::io_error, "cannot create a mount point under /tmp");
        }
        g->m_mount = tmpl;
        g->m_temp_dir = true;
    } else {
        g->m_mount = options.mount_point;
        std::error_code ec;
        fs::create_directories(g->m_mount, ec);
    }

    // Partitions (sectors), or the whole disk.
    struct Part {
        uint64_t offset, length;
        std::string name;
    };
    std::vector<Part> parts;
    ProcessSpec sfdisk;
    sfdisk.argv = {"sfdisk", "--json", options.device};
    sfdisk.env = default_tool_env();
    auto table = run_captured(runner, sfdisk);
    if (table.ok() && table->exit.code == 0) {
        auto j = nlohmann::json::parse(table->out, nullptr, false);
        if (j.contains("partitiontable")) {
            const auto& pt = j["partitiontable"];
            const uint64_t sector = pt.value("sectorsize", uint64_t{512});
            int n = 0;
            for (const auto& p : pt.value("partitions", nlohmann::json::array())) {
                ++n;
                parts.push_back({p.value("start", uint64_t{0}) * sector,
                                 p.value("size", uint64_t{0}) * sector,
                                 "partition " + std::to_string(n)});
            }
        }
    }
    if (parts.empty()) {
        parts.push_back({0, size, "the whole disk"});
    }

    struct Candidate {
        std::string device, type, what;
    };
    std::vector<Candidate> candidates;
    std::vector<std::string> vgs_seen;
    std::vector<std::string> notes;
    for (const auto& p : parts) {
        if (cancelled()) {
            return Status(Code::cancelled, "interrupted; everything was undone");
        }
        auto loop = g->attach(p.offset, p.length);
        if (!loop.ok()) {
            return loop.status();
        }
        auto type = g->run({"blkid", "-p", "-o", "value", "-s", "TYPE", *loop});
        std::string t = type.ok() ? last_line(*type) : "";
        if (t == "LVM2_member") {
            auto meta = g->run({"pvck", "--dump", "metadata", *loop});
            if (!meta.ok()) {
                return meta.status();
            }
            auto lvs = parse_lvm_metadata(*meta);
            if (!lvs.ok()) {
                return Status(lvs.status().code(),
                              p.name + " of " + options.device + ": " + lvs.status().message());
            }
            const bool wanted_vg =
                !lvs->empty() && (options.vg_name.empty() || lvs->front().vg == options.vg_name);
            std::optional<DmPlan> dm;
            if (wanted_vg && options.use_device_mapper && device_mapper_available()) {
                auto host_vgs =
                    g->run({"vgs", "--noheadings", "--separator", ":", "-o", "vg_name,vg_uuid"});
                auto plan = plan_dm_activation(*lvs, *loop, host_vgs.ok() ? *host_vgs : "",
                                               std::to_string(::getpid()), options.state_dir);
                if (!plan.ok()) {
                    return Status(plan.status().code(), p.name + " of " + options.device + ": " +
                                                            plan.status().message());
                }
                for (const auto& [dm_name, dm_table] : plan->tables) {
                    std::ofstream(options.state_dir + "/" + dm_name + ".table") << dm_table;
                }
                // Recorded before anything is activated, so teardown and a
                // later run's cleanup know it.
                g->m_dm_teardown.insert(g->m_dm_teardown.begin(), plan->deactivate.begin(),
                                        plan->deactivate.end());
                g->save_state();
                for (const auto& cmd : plan->activate) {
                    VMLIFT_RETURN_IF_ERROR(g->run(cmd).status());
                }
                log.info("guest-disk",
                         std::string(plan->collision
                                         ? "the host has its own volume group " + lvs->front().vg +
                                               ": the guest's LVs are mapped with dmsetup "
                                               "under vmlift- names"
                                         : "activated the guest's volume group " + lvs->front().vg +
                                               " with a filter that admits only " + *loop));
                dm = std::move(*plan);
            }
            for (const auto& lv : *lvs) {
                if (std::find(vgs_seen.begin(), vgs_seen.end(), lv.vg) == vgs_seen.end()) {
                    vgs_seen.push_back(lv.vg);
                }
                if (!options.vg_name.empty() && lv.vg != options.vg_name) {
                    continue;
                }
                if (!options.lv_name.empty() && lv.lv != options.lv_name) {
                    continue;
                }
                const std::string name = lv.vg + "/" + lv.lv;
                if (dm) {
                    const auto dev = dm->devices.find(name);
                    if (dev == dm->devices.end()) {
                        continue;
                    }
                    auto lv_type =
                        g->run({"blkid", "-p", "-o", "value", "-s", "TYPE", dev->second});
                    candidates.push_back(
                        {dev->second, lv_type.ok() ? last_line(*lv_type) : "", name});
                    continue;
                }
                if (lv.segments != 1 || lv.type != "striped" || lv.stripes != 1) {
                    std::string why = name + " has " + std::to_string(lv.segments) +
                                      " segment(s) of type " + lv.type +
                                      "; without device-mapper only single linear segments can "
                                      "be mapped";
                    if (!options.lv_name.empty()) {
                        return Status(Code::invalid_input, why);
                    }
                    notes.push_back(why);
                    continue;
                }
                auto lv_loop = g->attach(p.offset + lv.offset, lv.length);
                if (!lv_loop.ok()) {
                    return lv_loop.status();
                }
                auto lv_type = g->run({"blkid", "-p", "-o", "value", "-s", "TYPE", *lv_loop});
                candidates.push_back({*lv_loop, lv_type.ok() ? last_line(*lv_type) : "", name});
            }
        } else if (options.vg_name.empty()) {
            candidates.push_back({*loop, t, p.name});
        }
    }
    if (!options.vg_name.empty() &&
        std::find(vgs_seen.begin(), vgs_seen.end(), options.vg_name) == vgs_seen.end()) {
        std::string found;
        for (const auto& v : vgs_seen) {
            found += (found.empty() ? "" : ", ") + v;
        }
        return Status(Code::invalid_input,
                      "volume group " + options.vg_name + " is not on " + options.device +
                          " (found: " + (found.empty() ? "none" : found) + ")");
    }
    std::string tried;
    for (const auto& c : candidates) {
        if (cancelled()) {
            return Status(Code::cancelled, "interrupted; everything was undone");
        }
        if (c.type != "ext4" && c.type != "ext3" && c.type != "ext2" && c.type != "xfs") {
            tried += (tried.empty() ? "" : ", ") + c.what + " (" +
                     (c.type.empty() ? "no filesystem" : c.type) + ")";
            continue;
        }
        VMLIFT_RETURN_IF_ERROR(g->mount(c.device, c.type));
        std::string fstab;
        {
            std::ifstream in(g->m_mount + "/etc/fstab");
            std::stringstream s;
            s << in.rdbuf();
            fstab = s.str();
        }
        bool root_entry = false;
        std::istringstream lines(fstab);
        std::string line;
        while (std::getline(lines, line)) {
            std::istringstream w(line);
            std::string spec, mp;
            if ((w >> spec >> mp) && spec[0] != '#' && mp == "/") {
                root_entry = true;
            }
        }
        if (fs::exists(g->m_mount + "/etc/os-release") && root_entry) {
            g->m_description = c.what + " (" + c.type + ")";
            log.info("guest-disk",
                     "root filesystem: " + g->m_description + " on " + options.device);
            return g;
        }
        g->unmount();
        tried += (tried.empty() ? "" : ", ") + c.what + " (" + c.type + ", not a root)";
    }
    for (const auto& n : notes) {
        tried += (tried.empty() ? "" : "; ") + n;
    }
    return Status(Code::invalid_input,
                  "no Linux root filesystem (with /etc/os-release and an fstab entry for /) on " +
                      options.device + "; checked: " + (tried.empty() ? "nothing usable" : tried) +
                      (options.vg_name.empty() ? "" : "; check --vg-name/--lv-name"));
}

Result<nlohmann::json> edit_guest_disk(ProcessRunner& runner, Logger& log,
                                       const GuestDiskOptions& options,
                                       const std::vector<GuestNic>& nics, bool dry_run) {
    auto root = GuestRoot::open(runner, log, options);
    if (!root.ok()) {
        return root.status();
    }
    auto plan = plan_guest_net((*root)->root(), nics);
    if (!plan.ok()) {
        return plan.status();
    }
    if (!dry_run) {
        VMLIFT_RETURN_IF_ERROR(apply_guest_net((*root)->root(), *plan));
    }
    VMLIFT_RETURN_IF_ERROR((*root)->close());
    if (options.cancelled && options.cancelled()) {
        return Status(Code::cancelled, "interrupted; the disk was unmounted");
    }
    nlohmann::json j = plan->to_json();
    j["root"] = (*root)->description();
    j["dry_run"] = dry_run;
    if (dry_run) {
        j["diff"] = unified_diff(*plan);
    }
    return j;
}

}  // namespace vmlift

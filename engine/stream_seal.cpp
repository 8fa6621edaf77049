#include "engine/stream_seal.h"

#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "engine/run_dir.h"

namespace vmlift::stream {
namespace {

constexpr char k_seal_tag[] = "vmlift-seal 1 ";

std::optional<std::string> read_small(const std::string& path) {
    std::ifstream in(path);
    if (!in) {
        return std::nullopt;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::string trimmed(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) {
        s.pop_back();
    }
    return s;
}

std::string time_text(const struct timespec& t) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%lld.%09ld", static_cast<long long>(t.tv_sec), t.tv_nsec);
    return buf;
}

std::string file_identity(const struct stat& st) {
    return "dev=" + std::to_string(st.st_dev) + " ino=" + std::to_string(st.st_ino) +
           " size=" + std::to_string(st.st_size) + " mtime=" + time_text(st.st_mtim) +
           " ctime=" + time_text(st.st_ctim);
}

// Writes and discards through /sys/dev/block/<dir>: fields 5 and 7 (write
// I/Os, sectors) and 12 and 14 (discard I/Os, sectors) of its stat file.
Status block_counters(const std::filesystem::path& sysdir, std::set<std::string>& seen,
                      std::string& out) {
    std::error_code ec;
    auto real = std::filesystem::canonical(sysdir, ec);
    if (ec) {
        return Status(Code::io_error, "cannot resolve " + sysdir.string());
    }
    if (!seen.insert(real.string()).second) {
        return {};
    }
    auto stat = read_small((real / "stat").string());
    if (!stat) {
        return Status(Code::io_error, "cannot read " + (real / "stat").string());
    }
    std::istringstream fields(*stat);
    std::vector<std::string> v;
    for (std::string f; fields >> f;) {
        v.push_back(f);
    }
    if (v.size() < 7) {
        return Status(Code::io_error, "unexpected " + (real / "stat").string());
    }
    // With I/O accounting off the counters stand still: nothing to trust.
    if (auto iostats = read_small((real / "queue" / "iostats").string());
        iostats && trimmed(*iostats) == "0") {
        return Status(Code::invalid_input,
                      real.filename().string() + " has I/O accounting off (queue/iostats)");
    }
    out += " " + real.filename().string() + "=" + v[4] + "," + v[6];
    if (v.size() >= 14) {
        out += "," + v[11] + "," + v[13];
    }
    // A loop device: its backing file is the real destination.
    if (auto backing = read_small((real / "loop" / "backing_file").string())) {
        struct stat bst {};
        if (::stat(trimmed(*backing).c_str(), &bst) != 0) {
            return Status(Code::io_error, "cannot stat the backing file of " + real.string());
        }
        out += " backing(" + file_identity(bst) + ")";
    }
    // A partition: writes to its disk can reach it too.
    if (std::filesystem::exists(real / "partition", ec)) {
        VMLIFT_RETURN_IF_ERROR(block_counters(real.parent_path(), seen, out));
    }
    // Device mapper, md and the like: the devices underneath.
    if (std::filesystem::is_directory(real / "slaves", ec)) {
        for (const auto& slave : std::filesystem::directory_iterator(real / "slaves", ec)) {
            VMLIFT_RETURN_IF_ERROR(block_counters(slave.path(), seen, out));
        }
    }
    return {};
}

Result<std::pair<std::string, ChunkState>> load_seal(const std::string& seal_path,
                                                     std::string* why) {
    auto data = read_small(seal_path);
    if (!data) {
        *why = "no seal";
        return Status(Code::not_found, *why);
    }
    const auto eol = data->find('\n');
    if (data->rfind(k_seal_tag, 0) != 0 || eol == std::string::npos) {
        *why = "not a vmlift seal";
        return Status(Code::invalid_input, *why);
    }
    std::string identity = data->substr(sizeof k_seal_tag - 1, eol - (sizeof k_seal_tag - 1));
    auto state = ChunkState::parse(data->substr(eol + 1));
    if (!state.ok()) {
        *why = "damaged seal: " + state.status().message();
        return state.status();
    }
    if (state->confirmed_count() != state->count()) {
        *why = "incomplete seal";
        return Status(Code::invalid_input, *why);
    }
    return std::make_pair(std::move(identity), std::move(*state));
}

}  // namespace

Result<std::string> destination_identity(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        return Status(Code::not_found, "cannot stat " + path);
    }
    if (S_ISREG(st.st_mode)) {
        return "file " + file_identity(st);
    }
    if (!S_ISBLK(st.st_mode)) {
        return Status(Code::invalid_input, path + " is neither a file nor a block device");
    }
    uint64_t size = 0;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || ::ioctl(fd, BLKGETSIZE64, &size) != 0) {
        if (fd >= 0) {
            ::close(fd);
        }
        return Status(Code::io_error, "cannot get the size of " + path);
    }
    ::close(fd);
    auto boot = read_small("/proc/sys/kernel/random/boot_id");
    if (!boot) {
        return Status(Code::io_error, "cannot read this boot's id");
    }
    std::string out = "block rdev=" + std::to_string(major(st.st_rdev)) + ":" +
                      std::to_string(minor(st.st_rdev)) + " size=" + std::to_string(size) +
                      " boot=" + trimmed(*boot);
    std::set<std::string> seen;
    VMLIFT_RETURN_IF_ERROR(block_counters("/sys/dev/block/" + std::to_string(major(st.st_rdev)) +
                                              ":" + std::to_string(minor(st.st_rdev)),
                                          seen, out));
    return out;
}

Status write_seal(const std::string& seal_path, const std::string& dst_path,
                  const ChunkState& hashes) {
    auto identity = destination_identity(dst_path);
    if (!identity.ok()) {
        return identity.status();
    }
    return write_file_atomic(seal_path, k_seal_tag + *identity + "\n" + hashes.serialize(), 0600);
}

std::optional<ChunkState> read_seal_any(const std::string& seal_path, const std::string& dst_path,
                                        std::string* why) {
    std::string ignored;
    why = why ? why : &ignored;
    auto loaded = load_seal(seal_path, why);
    if (!loaded.ok()) {
        return std::nullopt;
    }
    auto now = destination_identity(dst_path);
    if (!now.ok()) {
        *why = now.status().message();
        return std::nullopt;
    }
    if (*now != loaded->first) {
        *why = "the destination changed since the seal (" + *now + " != " + loaded->first + ")";
        return std::nullopt;
    }
    return std::move(loaded->second);
}

std::optional<ChunkState> read_seal(const std::string& seal_path, const std::string& dst_path,
                                    uint64_t size, uint32_t block_size, std::string* why) {
    std::string ignored;
    why = why ? why : &ignored;
    auto seal = read_seal_any(seal_path, dst_path, why);
    if (seal && (seal->size() != size || seal->block_size() != block_size)) {
        *why = "the seal describes another geometry";
        return std::nullopt;
    }
    return seal;
}

void drop_seal(const std::string& seal_path) {
    if (!seal_path.empty()) {
        ::unlink(seal_path.c_str());
    }
}

}  // namespace vmlift::stream

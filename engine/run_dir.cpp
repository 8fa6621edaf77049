#include "engine/run_dir.h"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace vmlift {
namespace {

Status io_fail(const std::string& what, const std::string& path) {
    return Status(Code::io_error, what + " " + path + ": " + std::strerror(errno));
}

std::string random_hex(size_t bytes) {
    unsigned char buf[16] = {};
    size_t n = bytes < sizeof buf ? bytes : sizeof buf;
    if (::getrandom(buf, n, 0) != static_cast<ssize_t>(n)) {
        // getrandom cannot fail for small requests after boot; fall back to pid.
        unsigned v = static_cast<unsigned>(::getpid());
        std::memcpy(buf, &v, sizeof v < n ? sizeof v : n);
    }
    static const char* k_hex = "0123456789abcdef";
    std::string out;
    for (size_t i = 0; i < n; ++i) {
        out.push_back(k_hex[buf[i] >> 4]);
        out.push_back(k_hex[buf[i] & 15]);
    }
    return out;
}

std::string dir_of(const std::string& path) {
    size_t slash = path.rfind('/');
    if (slash == std::string::npos) {
        return ".";
    }
    return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

Status make_dirs(const std::string& path, unsigned mode) {
    if (path.empty()) {
        return Status(Code::invalid_input, "empty directory path");
    }
    std::string partial;
    size_t pos = 0;
    while (pos != std::string::npos) {
        pos = path.find('/', pos + 1);
        partial = path.substr(0, pos);
        if (partial.empty()) {
            continue;
        }
        if (::mkdir(partial.c_str(), static_cast<mode_t>(mode)) != 0 && errno != EEXIST) {
            return io_fail("cannot create directory", partial);
        }
    }
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
        return Status(Code::io_error, path + " exists and is not a directory");
    }
    return {};
}

Status write_file_atomic(const std::string& path, const std::string& contents, unsigned mode) {
    std::string tmp = path + ".tmp." + random_hex(4);
    int fd =
        ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, static_cast<mode_t>(mode));
    if (fd < 0) {
        return io_fail("cannot create", tmp);
    }
    size_t done = 0;
    while (done < contents.size()) {
        ssize_t w = ::write(fd, contents.data() + done, contents.size() - done);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            Status st = io_fail("cannot write", tmp);
            ::close(fd);
            ::unlink(tmp.c_str());
            return st;
        }
        done += static_cast<size_t>(w);
    }
    if (::fsync(fd) != 0) {
        Status st = io_fail("cannot fsync", tmp);
        ::close(fd);
        ::unlink(tmp.c_str());
        return st;
    }
    ::close(fd);
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        Status st = io_fail("cannot rename into place", path);
        ::unlink(tmp.c_str());
        return st;
    }
    int dfd = ::open(dir_of(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
    }
    return {};
}

Result<RunDir> RunDir::create(const std::string& base, const Clock& clock) {
    VMLIFT_RETURN_IF_ERROR(make_dirs(base, 0700));
    for (int attempt = 0; attempt < 8; ++attempt) {
        std::string id = yyyymmdd_utc(clock.wall()) + "-" + random_hex(3);
        std::string path = base + "/" + id;
        if (::mkdir(path.c_str(), 0700) == 0) {
            RunDir dir(path, id);
            VMLIFT_RETURN_IF_ERROR(dir.set_status("created"));
            return dir;
        }
        if (errno != EEXIST) {
            return io_fail("cannot create run directory", path);
        }
    }
    return Status(Code::io_error, "cannot find a free run id under " + base);
}

Result<RunDir> RunDir::open(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
        return Status(Code::not_found, "run directory " + path +
                                           " does not exist; give the path printed by the run");
    }
    std::string trimmed = path;
    while (trimmed.size() > 1 && trimmed.back() == '/') {
        trimmed.pop_back();
    }
    size_t slash = trimmed.rfind('/');
    std::string id = slash == std::string::npos ? trimmed : trimmed.substr(slash + 1);
    return RunDir(trimmed, id);
}

Status RunDir::write_file(const std::string& name, const std::string& contents) const {
    return write_file_atomic(file(name), contents, 0600);
}

Result<std::string> RunDir::read_file(const std::string& name) const {
    std::ifstream in(file(name), std::ios::binary);
    if (!in) {
        return Status(Code::not_found, "cannot read " + file(name));
    }
    std::ostringstream buf;
    buf << in.rdbuf();
    return buf.str();
}

}  // namespace vmlift

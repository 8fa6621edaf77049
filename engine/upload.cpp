#include "engine/upload.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace vmlift {

Result<std::unique_ptr<FileSource>> FileSource::open(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return Status(errno == ENOENT ? Code::not_found : Code::io_error,
                      "cannot open " + path + ": " + std::strerror(errno));
    }
    return std::unique_ptr<FileSource>(new FileSource(fd, path));
}

FileSource::~FileSource() {
    ::close(m_fd);
}

Result<size_t> FileSource::read(char* buffer, size_t size) {
    for (;;) {
        ssize_t r = ::read(m_fd, buffer, size);
        if (r >= 0) {
            m_bytes += static_cast<uint64_t>(r);
            return static_cast<size_t>(r);
        }
        if (errno != EINTR) {
            return Status(Code::io_error, "cannot read " + m_path + ": " + std::strerror(errno));
        }
    }
}

Result<uint64_t> upload_file(SshTransport& transport, const std::string& local_path,
                             const std::string& remote_path, unsigned mode) {
    auto source = FileSource::open(local_path);
    if (!source.ok()) {
        return source.status();
    }
    // The script is constant; the paths travel as positional parameters.
    static const char* k_script =
        "set -e; umask 077; t=\"$1.vmlift-part.$$\"; trap 'rm -f \"$t\"' EXIT; "
        "cat > \"$t\"; chmod \"$2\" \"$t\"; mv -f \"$t\" \"$1\"; trap - EXIT; wc -c < \"$1\"";
    char mode_text[8];
    std::snprintf(mode_text, sizeof mode_text, "%04o", mode & 07777);
    StringSink out;
    LimitedStringSink err(64 * 1024);
    auto exit = transport.exec({"sh", "-c", k_script, "vmlift-upload", remote_path, mode_text},
                               RunIo{source->get(), &out, &err});
    if (!exit.ok()) {
        return exit.status().with_context("upload " + local_path + " to " + remote_path);
    }
    if (!exit->success()) {
        return Status(Code::remote_failed, "cannot upload " + local_path + " to " +
                                               transport.target().host + ":" + remote_path + " (" +
                                               exit->describe() + "): " + last_line(err.str()));
    }
    uint64_t sent = (*source)->bytes_read();
    std::string count = last_line(out.str());
    if (count != std::to_string(sent)) {
        return Status(Code::io_error, "upload of " + local_path + " to " + remote_path + " sent " +
                                          std::to_string(sent) + " bytes but the host has '" +
                                          count + "'; retry the upload");
    }
    return sent;
}

}  // namespace vmlift

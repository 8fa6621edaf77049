// Upload a local file to a host over any SshTransport.
//
// Contract
//   upload_file() streams `local_path` to `remote_path` through the
//   transport's exec(): the data goes to a temporary file beside the target
//   (same directory, so the final rename is atomic), gets `mode`, is renamed
//   into place, and the remote byte count is compared with the local one.
//   A failed or interrupted upload leaves no partial file at remote_path
//   (the temp file is removed by the remote shell's trap).
//   The remote side needs only a POSIX sh, cat, chmod, mv and wc.
//   Errors: not_found/io_error for the local file; remote_failed with the
//   remote stderr when the remote side cannot write (no space, read-only,
//   missing directory); io_error when byte counts differ.
// Thread safety: as the transport.
#pragma once

#include <cstdint>
#include <string>

#include "engine/transport.h"

namespace vmlift {

Result<uint64_t> upload_file(SshTransport& transport, const std::string& local_path,
                             const std::string& remote_path, unsigned mode);

// Reads a local file as a ByteSource.
class FileSource : public ByteSource {
  public:
    static Result<std::unique_ptr<FileSource>> open(const std::string& path);
    ~FileSource() override;
    Result<size_t> read(char* buffer, size_t size) override;
    uint64_t bytes_read() const { return m_bytes; }

  private:
    FileSource(int fd, std::string path) : m_fd(fd), m_path(std::move(path)) {}
    int m_fd;
    std::string m_path;
    uint64_t m_bytes = 0;
};

}  // namespace vmlift

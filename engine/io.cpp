#include "engine/io.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <new>

#include <cerrno>
#include <cstring>

namespace vmlift {

Result<size_t> StringSource::read(char* buffer, size_t size) {
    size_t n = std::min(size, m_data.size() - m_pos);
    std::memcpy(buffer, m_data.data() + m_pos, n);
    m_pos += n;
    return n;
}

Status StringSink::write(std::string_view data) {
    m_data.append(data);
    return {};
}

Status LimitedStringSink::write(std::string_view data) {
    size_t room = m_limit > m_data.size() ? m_limit - m_data.size() : 0;
    if (data.size() > room) {
        m_truncated = true;
    }
    m_data.append(data.substr(0, room));
    return {};
}

size_t pread_full(int fd, char* buffer, size_t size, uint64_t offset, int* error) {
    size_t done = 0;
    *error = 0;
    while (done < size) {
        ssize_t r = ::pread(fd, buffer + done, size - done, static_cast<off_t>(offset + done));
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            *error = errno;
            break;
        }
        if (r == 0) {
            break;  // end of file
        }
        done += static_cast<size_t>(r);
    }
    return done;
}

AlignedBuffer::~AlignedBuffer() {
    std::free(m_data);
}

char* AlignedBuffer::get(size_t size) {
    size = (size + 4095) & ~size_t{4095};
    if (size > m_size || m_data == nullptr) {
        std::free(m_data);
        m_data = nullptr;
        m_size = 0;
        void* p = nullptr;
        if (::posix_memalign(&p, 4096, std::max<size_t>(size, 4096)) != 0) {
            throw std::bad_alloc();
        }
        m_data = static_cast<char*>(p);
        m_size = std::max<size_t>(size, 4096);
    }
    return m_data;
}

DirectReader::DirectReader(int buffered_fd, const std::string& path, ReadMode mode)
    : m_fd(buffered_fd) {
    if (mode == ReadMode::direct) {
        m_direct_fd = ::open(path.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC);
    }
}

DirectReader::~DirectReader() {
    if (m_direct_fd >= 0) {
        ::close(m_direct_fd);
    }
}

size_t DirectReader::read(char* buffer, size_t size, uint64_t offset, int* error) {
    constexpr size_t align = 4096;
    if (m_direct_fd >= 0 && offset % align == 0 &&
        reinterpret_cast<uintptr_t>(buffer) % align == 0) {
        const size_t rounded = (size + align - 1) & ~(align - 1);
        size_t got = pread_full(m_direct_fd, buffer, rounded, offset, error);
        if (*error == EINVAL && got == 0) {
            ::close(m_direct_fd);  // the filesystem refuses O_DIRECT after all
            m_direct_fd = -1;
        } else {
            return std::min(got, size);
        }
    }
    return pread_full(m_fd, buffer, size, offset, error);
}

size_t pwrite_full(int fd, const char* data, size_t size, uint64_t offset, int* error) {
    size_t done = 0;
    *error = 0;
    while (done < size) {
        ssize_t w = ::pwrite(fd, data + done, size - done, static_cast<off_t>(offset + done));
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            *error = w < 0 ? errno : EIO;
            break;
        }
        done += static_cast<size_t>(w);
    }
    return done;
}

std::string last_line(std::string_view text) {
    auto is_space = [](char c) { return c == '\n' || c == '\r' || c == ' ' || c == '\t'; };
    size_t end = text.size();
    while (end > 0 && is_space(text[end - 1])) {
        --end;
    }
    size_t begin = text.rfind('\n', end == 0 ? 0 : end - 1);
    begin = (begin == std::string_view::npos) ? 0 : begin + 1;
    while (begin < end && is_space(text[begin])) {
        ++begin;
    }
    return std::string(text.substr(begin, end - begin));
}

}  // namespace vmlift

namespace vmlift {

void BytePipe::close_write() {
    std::lock_guard lock(m_mutex);
    m_write_closed = true;
    m_cv.notify_all();
}

void BytePipe::close_read() {
    std::lock_guard lock(m_mutex);
    m_read_closed = true;
    m_chunks.clear();
    m_buffered = 0;
    m_cv.notify_all();
}

uint64_t BytePipe::bytes_through() const {
    std::lock_guard lock(m_mutex);
    return m_through;
}

Status BytePipe::push(std::string_view data) {
    std::unique_lock lock(m_mutex);
    m_cv.wait(lock, [&] { return m_read_closed || m_buffered < m_capacity; });
    if (m_read_closed) {
        return Status(Code::connection_lost, "the receiving side stopped reading");
    }
    m_chunks.emplace_back(data);
    m_buffered += data.size();
    m_cv.notify_all();
    return {};
}

Result<size_t> BytePipe::pop(char* buffer, size_t size) {
    std::unique_lock lock(m_mutex);
    m_cv.wait(lock, [&] { return !m_chunks.empty() || m_write_closed || m_read_closed; });
    if (m_chunks.empty()) {
        return size_t{0};
    }
    size_t copied = 0;
    while (copied < size && !m_chunks.empty()) {
        std::string& front = m_chunks.front();
        size_t n = std::min(size - copied, front.size() - m_front_pos);
        std::memcpy(buffer + copied, front.data() + m_front_pos, n);
        copied += n;
        m_front_pos += n;
        if (m_front_pos == front.size()) {
            m_chunks.pop_front();
            m_front_pos = 0;
        }
    }
    m_buffered -= copied;
    m_through += copied;
    m_cv.notify_all();
    return copied;
}

}  // namespace vmlift

namespace vmlift {

Result<std::unique_ptr<KernelPipe>> KernelPipe::make(size_t capacity) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        return Status(Code::io_error,
                      std::string("cannot create a pipe for the relay: ") + std::strerror(errno));
    }
    // Larger than the default 64 KiB: fewer wakeups of the two SSH clients.
    // Unprivileged users may be limited; the default still works.
    (void)::fcntl(fds[1], F_SETPIPE_SZ, static_cast<int>(capacity));
    std::unique_ptr<KernelPipe> pipe(new KernelPipe());
    pipe->m_source.fd = fds[0];
    pipe->m_sink.fd = fds[1];
    return pipe;
}

KernelPipe::~KernelPipe() {
    close_write();
    close_read();
}

void KernelPipe::End::close() {
    if (fd >= 0) {
        ::close(fd);
        fd = -1;
    }
}

// A child holding the other end may set it non-blocking (ssh does, on the
// descriptors it is given), so EAGAIN waits in poll.
Status KernelPipe::Sink::write(std::string_view data) {
    while (!data.empty()) {
        if (fd < 0) {
            return Status(Code::connection_lost, "the relay pipe is closed");
        }
        ssize_t n = ::write(fd, data.data(), data.size());
        if (n > 0) {
            data.remove_prefix(static_cast<size_t>(n));
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            pollfd p{fd, POLLOUT, 0};
            (void)::poll(&p, 1, 1000);
        } else if (n < 0 && errno != EINTR) {
            return Status(
                Code::connection_lost,
                std::string("the relay's receiving side went away (") + std::strerror(errno) + ")");
        }
    }
    return {};
}

Result<size_t> KernelPipe::Source::read(char* buffer, size_t size) {
    for (;;) {
        if (fd < 0) {
            return size_t{0};
        }
        ssize_t n = ::read(fd, buffer, size);
        if (n >= 0) {
            return static_cast<size_t>(n);
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            pollfd p{fd, POLLIN, 0};
            (void)::poll(&p, 1, 1000);
        } else if (errno != EINTR) {
            return Status(Code::io_error,
                          std::string("cannot read the relay pipe: ") + std::strerror(errno));
        }
    }
}

}  // namespace vmlift

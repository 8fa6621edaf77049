#include "engine/stream_sender.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>

namespace vmlift::stream {
namespace {

Status source_error(const std::string& what, const std::string& path) {
    Code code = errno == ENOENT ? Code::not_found
                : errno == EACCES || errno == EPERM ? Code::permission_denied
                                                    : Code::io_error;
    return Status(code, what + " source " + path + ": " + std::strerror(errno));
}

Status write_all(int fd, const char* data, size_t size) {
    while (size > 0) {
        ssize_t w = ::write(fd, data, size);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EPIPE) {
                return Status(Code::connection_lost,
                              "the receiving side closed the stream (see its error)");
            }
            return Status(Code::io_error, std::string("cannot write the stream: ") +
                                              std::strerror(errno));
        }
        data += w;
        size -= static_cast<size_t>(w);
    }
    return {};
}

struct Job {
    uint64_t index = 0;
    uint32_t length = 0;
    bool hole = false;  // not read: known zero
    std::string data;
    FrameKind kind = FrameKind::raw;
    uint64_t hash = 0;
    std::string payload;
    bool done = false;
};

class Pipeline {
public:
    Pipeline(const SenderOptions& options, uint64_t size, int out_fd,
             const std::function<void(uint64_t)>& progress)
        : m_options(options), m_size(size), m_out(out_fd), m_progress(progress) {
        unsigned cores = std::thread::hardware_concurrency();
        m_threads = options.threads > 0 ? options.threads : static_cast<int>(cores ? cores : 1);
        // In flight: at least two chunks per worker, and about 64 MiB when
        // chunks are small (delta), so small chunks still keep workers busy.
        m_window = std::max<size_t>(static_cast<size_t>(2 * m_threads + 2),
                                    std::min<size_t>(4096, (64u << 20) / options.block_size));
        m_hashes.resize(chunk_count(size, options.block_size));
    }

    Result<SenderStats> run(int fd) {
        SenderStats stats;
        stats.size = m_size;
        Status st = write_all(m_out, encode_header({m_options.block_size, m_size}).data(),
                              k_header_size);
        if (!st.ok()) {
            return st;
        }
        stats.bytes_sent = k_header_size;
        std::vector<std::thread> workers;
        for (int i = 0; i < m_threads; ++i) {
            workers.emplace_back([this] { work(); });
        }
        std::thread writer([this, &stats] { write_frames(stats); });
        Status read_status = read_chunks(fd, stats);
        {
            std::lock_guard lock(m_mutex);
            m_reading_done = true;
            if (!read_status.ok() && m_error.ok()) {
                m_error = read_status;
            }
        }
        m_work_cv.notify_all();
        m_done_cv.notify_all();
        writer.join();
        {
            std::lock_guard lock(m_mutex);
            m_stop_workers = true;
        }
        m_work_cv.notify_all();
        for (auto& w : workers) {
            w.join();
        }
        if (!m_error.ok()) {
            return m_error;
        }
        stats.digest = digest_of(m_hashes);
        std::string end = encode_frame_header({FrameKind::end, 0, m_size, 0, 24});
        std::string tail(24, '\0');
        uint64_t parts[3] = {stats.digest.low, stats.digest.high, stats.bytes_read};
        for (int p = 0; p < 3; ++p) {
            for (int b = 0; b < 8; ++b) {
                tail[static_cast<size_t>(p * 8 + b)] = static_cast<char>((parts[p] >> (8 * b)) & 0xff);
            }
        }
        end += tail;
        VMLIFT_RETURN_IF_ERROR(write_all(m_out, end.data(), end.size()));
        stats.bytes_sent += end.size();
        return stats;
    }

private:
    Status read_chunks(int fd, SenderStats& stats) {
        bool seek_data = m_options.sparse;
        const uint64_t count = m_hashes.size();
        for (uint64_t i = 0; i < count; ++i) {
            auto job = take_free_job();
            if (!job) {
                return {};  // writer failed; its error is reported
            }
            job->index = i;
            job->length = chunk_length(m_size, m_options.block_size, i);
            job->hole = false;
            job->done = false;
            const off_t start = static_cast<off_t>(i * m_options.block_size);
            if (seek_data) {
                off_t d = ::lseek(fd, start, SEEK_DATA);
                if (d < 0 && errno == ENXIO) {
                    job->hole = true;  // no data from here to the end
                } else if (d < 0) {
                    seek_data = false;  // not supported here: detect zeros in memory
                } else {
                    stats.seek_data_used = true;
                    job->hole = d >= start + static_cast<off_t>(job->length);
                }
            }
            if (!job->hole) {
                job->data.resize(job->length);
                size_t got = 0;
                while (got < job->length) {
                    ssize_t r = ::pread(fd, job->data.data() + got, job->length - got,
                                        start + static_cast<off_t>(got));
                    if (r < 0 && errno == EINTR) {
                        continue;
                    }
                    if (r < 0) {
                        return source_error("cannot read", m_options.path);
                    }
                    if (r == 0) {
                        return Status(Code::io_error, "source " + m_options.path +
                                                          " ended early at offset " +
                                                          std::to_string(start + got));
                    }
                    got += static_cast<size_t>(r);
                }
                stats.bytes_read += job->length;
            }
            submit(std::move(job));
        }
        return {};
    }

    std::unique_ptr<Job> take_free_job() {
        std::unique_lock lock(m_mutex);
        m_done_cv.wait(lock, [this] { return m_inflight.size() < m_window || !m_error.ok(); });
        if (!m_error.ok()) {
            return nullptr;
        }
        if (!m_free.empty()) {
            auto job = std::move(m_free.back());
            m_free.pop_back();
            return job;
        }
        return std::make_unique<Job>();
    }

    void submit(std::unique_ptr<Job> job) {
        {
            std::lock_guard lock(m_mutex);
            m_pending.push_back(job.get());
            m_inflight.push_back(std::move(job));
        }
        m_work_cv.notify_one();
    }

    void work() {
        ZSTD_CCtx* cctx = ZSTD_createCCtx();
        for (;;) {
            Job* job = nullptr;
            {
                std::unique_lock lock(m_mutex);
                m_work_cv.wait(lock, [this] { return !m_pending.empty() || m_stop_workers; });
                if (m_pending.empty()) {
                    break;
                }
                job = m_pending.front();
                m_pending.pop_front();
            }
            process(*job, cctx);
            {
                std::lock_guard lock(m_mutex);
                job->done = true;
            }
            m_done_cv.notify_all();
        }
        ZSTD_freeCCtx(cctx);
    }

    void process(Job& job, ZSTD_CCtx* cctx) {
        job.payload.clear();
        bool zero = job.hole || (m_options.sparse && is_all_zero(job.data.data(), job.length));
        job.hash = zero ? zero_hash(job.length) : hash_bytes(job.data.data(), job.length);
        const auto& known = m_options.known;
        if (job.index < known.size() && known[job.index] && *known[job.index] == job.hash) {
            job.kind = FrameKind::same;
            return;
        }
        if (zero) {
            job.kind = FrameKind::zero;
            return;
        }
        if (m_options.zstd_level != 0) {
            job.payload.resize(ZSTD_compressBound(job.length));
            size_t n = ZSTD_compressCCtx(cctx, job.payload.data(), job.payload.size(),
                                         job.data.data(), job.length, m_options.zstd_level);
            if (!ZSTD_isError(n) && n < job.length) {
                job.payload.resize(n);
                job.kind = FrameKind::zstd;
                return;
            }
        }
        job.kind = FrameKind::raw;
        job.payload.clear();
    }

    void write_frames(SenderStats& stats) {
        uint64_t done_bytes = 0;
        for (;;) {
            std::unique_ptr<Job> job;
            {
                std::unique_lock lock(m_mutex);
                m_done_cv.wait(lock, [this] {
                    return (!m_inflight.empty() && m_inflight.front()->done) ||
                           (m_inflight.empty() && m_reading_done) || !m_error.ok();
                });
                if (!m_error.ok() || m_inflight.empty()) {
                    return;
                }
                job = std::move(m_inflight.front());
                m_inflight.pop_front();
            }
            m_done_cv.notify_all();
            FrameHeader f;
            f.kind = job->kind;
            f.length = job->length;
            f.offset = job->index * m_options.block_size;
            f.hash = job->hash;
            const char* payload = nullptr;
            if (job->kind == FrameKind::zstd) {
                payload = job->payload.data();
                f.payload_length = static_cast<uint32_t>(job->payload.size());
            } else if (job->kind == FrameKind::raw) {
                payload = job->data.data();
                f.payload_length = job->length;
            }
            std::string header = encode_frame_header(f);
            Status st = write_all(m_out, header.data(), header.size());
            if (st.ok() && payload) {
                st = write_all(m_out, payload, f.payload_length);
            }
            if (!st.ok()) {
                std::lock_guard lock(m_mutex);
                m_error = st;
                m_done_cv.notify_all();
                return;
            }
            stats.bytes_sent += header.size() + f.payload_length;
            switch (job->kind) {
                case FrameKind::zero: stats.zero_bytes += job->length; break;
                case FrameKind::same: stats.same_bytes += job->length; break;
                default: stats.data_bytes += job->length; break;
            }
            m_hashes[job->index] = job->hash;
            done_bytes += job->length;
            if (m_progress) {
                m_progress(done_bytes);
            }
            std::lock_guard lock(m_mutex);
            m_free.push_back(std::move(job));
        }
    }

    const SenderOptions& m_options;
    uint64_t m_size;
    int m_out;
    const std::function<void(uint64_t)>& m_progress;
    int m_threads = 1;
    size_t m_window = 4;
    std::vector<uint64_t> m_hashes;

    std::mutex m_mutex;
    std::condition_variable m_work_cv;
    std::condition_variable m_done_cv;
    std::deque<std::unique_ptr<Job>> m_inflight;  // in chunk order
    std::deque<Job*> m_pending;                   // waiting for a worker
    std::vector<std::unique_ptr<Job>> m_free;
    bool m_reading_done = false;
    bool m_stop_workers = false;
    Status m_error;
};

}  // namespace

Result<uint64_t> device_size(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return source_error("cannot open", path);
    }
    struct stat st {};
    ::fstat(fd, &st);
    uint64_t size = static_cast<uint64_t>(st.st_size);
    if (S_ISBLK(st.st_mode) && ::ioctl(fd, BLKGETSIZE64, &size) != 0) {
        Status err = source_error("cannot get the size of", path);
        ::close(fd);
        return err;
    }
    ::close(fd);
    return size;
}

std::vector<std::optional<uint64_t>> known_from_state(const ChunkState& state) {
    std::vector<std::optional<uint64_t>> known(state.count());
    for (uint64_t i = 0; i < state.count(); ++i) {
        if (state.confirmed(i)) {
            known[i] = state.hash(i);
        }
    }
    return known;
}

Result<SenderStats> send_stream(const SenderOptions& options, int out_fd,
                                const std::function<void(uint64_t)>& progress) {
    if (options.block_size == 0 || options.block_size % 4096 != 0 ||
        options.block_size > k_max_block_size) {
        return Status(Code::invalid_input, "block size must be a multiple of 4 KiB up to 64 MiB");
    }
    int fd = ::open(options.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return source_error("cannot open", options.path);
    }
    struct stat st {};
    ::fstat(fd, &st);
    if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
        ::close(fd);
        return Status(Code::invalid_input,
                      "source " + options.path + " is neither a block device nor a file");
    }
    auto size = device_size(options.path);
    if (!size.ok()) {
        ::close(fd);
        return size.status();
    }
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    Pipeline pipeline(options, *size, out_fd, progress);
    auto stats = pipeline.run(fd);
    ::close(fd);
    return stats;
}

}  // namespace vmlift::stream

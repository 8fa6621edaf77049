#include "engine/stream_sender.h"

#include "engine/io.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

namespace vmlift::stream {
namespace {

Status source_error(const std::string& what, const std::string& path) {
    Code code = errno == ENOENT                     ? Code::not_found
                : errno == EACCES || errno == EPERM ? Code::permission_denied
                                                    : Code::io_error;
    return Status(code, what + " source " + path + ": " + std::strerror(errno));
}

// Reads exactly `length` bytes of the source at `offset`.
Status read_source(DirectReader& reader, const std::string& path, char* buffer, size_t length,
                   uint64_t offset) {
    int error = 0;
    size_t got = reader.read(buffer, length, offset, &error);
    if (error != 0) {
        errno = error;
        return source_error("cannot read", path);
    }
    if (got < length) {
        return Status(Code::io_error,
                      "source " + path + " ended early at offset " + std::to_string(offset + got));
    }
    return {};
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
            return Status(Code::io_error,
                          std::string("cannot write the stream: ") + std::strerror(errno));
        }
        data += w;
        size -= static_cast<size_t>(w);
    }
    return {};
}

// One unit of work: up to about 4 MiB of consecutive chunks.
struct Piece {
    uint32_t length = 0;
    bool hole = false;    // not read: known zero
    bool preset = false;  // not read: the source's hash is known and matches `known`
    FrameKind kind = FrameKind::raw;
    uint64_t hash = 0;
    size_t payload_offset = 0;  // into Job::payload (zstd)
    uint32_t payload_length = 0;
};

struct Job {
    uint64_t first = 0;  // index of the first chunk
    std::vector<Piece> pieces;
    AlignedBuffer data;  // the chunks' bytes back to back (holes included, unread)
    // Compressed pieces back to back; sized once for the worst case and
    // reused, so it is never zero-filled.
    AlignedBuffer payload;
    bool done = false;
};

// A cached view of the source's data extents (SEEK_DATA/SEEK_HOLE), so
// asking about many small chunks costs few system calls.
class Extents {
  public:
    Extents(int fd, uint64_t size, bool enabled) : m_fd(fd), m_size(size), m_enabled(enabled) {}
    bool used() const { return m_used; }
    // True when [start, end) holds no data.
    bool is_hole(uint64_t start, uint64_t end) {
        if (!m_enabled) {
            return false;
        }
        if (start >= m_data_end) {
            off_t d = ::lseek(m_fd, static_cast<off_t>(start), SEEK_DATA);
            if (d < 0 && errno == ENXIO) {
                m_data_start = m_data_end = m_size;  // only holes from here
                m_used = true;
            } else if (d < 0) {
                m_enabled = false;  // not supported: zeros are found in memory
                return false;
            } else {
                off_t h = ::lseek(m_fd, d, SEEK_HOLE);
                m_data_start = static_cast<uint64_t>(d);
                m_data_end = h < 0 ? m_size : static_cast<uint64_t>(h);
                m_used = true;
                if (m_data_end <= m_data_start) {
                    m_data_end = m_size;
                }
            }
        }
        return end <= m_data_start || (start >= m_data_end && m_data_end == m_size);
    }

  private:
    int m_fd;
    uint64_t m_size;
    bool m_enabled;
    bool m_used = false;
    uint64_t m_data_start = 0;
    uint64_t m_data_end = 0;
};

class Pipeline {
  public:
    Pipeline(const SenderOptions& options, uint64_t size, int out_fd,
             const std::function<void(uint64_t)>& progress)
        : m_options(options), m_size(size), m_out(out_fd), m_progress(progress) {
        unsigned cores = std::thread::hardware_concurrency();
        m_threads = options.threads > 0 ? options.threads : static_cast<int>(cores ? cores : 1);
        // Jobs in flight: two per worker plus two (each about 4 MiB).
        m_window = static_cast<size_t>(2 * m_threads + 2);
        m_hashes.resize(chunk_count(size, options.block_size));
    }

    Result<SenderStats> run(int fd) {
        // A delta reads scattered small chunks: buffered, with the kernel
        // fetching the ones ahead of us in parallel (prefetch_changed).
        DirectReader reader(
            fd, m_options.path,
            m_options.source_hashes.empty() ? ReadMode::direct : ReadMode::buffered);
        m_reader = &reader;
        SenderStats stats;
        stats.size = m_size;
        Status st =
            write_all(m_out, encode_header({m_options.block_size, m_size}).data(), k_header_size);
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
                tail[static_cast<size_t>(p * 8 + b)] =
                    static_cast<char>((parts[p] >> (8 * b)) & 0xff);
            }
        }
        end += tail;
        VMLIFT_RETURN_IF_ERROR(write_all(m_out, end.data(), end.size()));
        stats.bytes_sent += end.size();
        return stats;
    }

  private:
    Status read_chunks(int fd, SenderStats& stats) {
        Extents extents(fd, m_size, m_options.sparse);
        const uint64_t count = m_hashes.size();
        const uint64_t per_job = std::max<uint64_t>(1, (4u << 20) / m_options.block_size);
        for (uint64_t first = 0; first < count; first += per_job) {
            auto job = take_free_job();
            if (!job) {
                return {};  // writer failed; its error is reported
            }
            job->first = first;
            job->done = false;
            const uint64_t n = std::min(per_job, count - first);
            job->pieces.assign(n, Piece{});
            uint64_t job_bytes = 0;
            for (uint64_t k = 0; k < n; ++k) {
                job->pieces[k].length = chunk_length(m_size, m_options.block_size, first + k);
                job_bytes += job->pieces[k].length;
            }
            job->data.get(job_bytes);
            const uint64_t start = first * m_options.block_size;
            // Keep the disk busy ahead of us: reads after a skipped hole do
            // not trigger the kernel's own readahead.
            if (!m_options.source_hashes.empty()) {
                prefetch_changed(fd, first);
            } else if (!m_reader->direct() && start + k_prefetch > m_prefetched &&
                       m_prefetched < m_size) {
                uint64_t from = std::max(m_prefetched, start);
                ::posix_fadvise(fd, static_cast<off_t>(from), static_cast<off_t>(k_prefetch),
                                POSIX_FADV_WILLNEED);
                m_prefetched = from + k_prefetch;
            }
            uint64_t pos = start;
            for (size_t k = 0; k < job->pieces.size(); ++k) {
                Piece& piece = job->pieces[k];
                piece.hole = extents.is_hole(pos, pos + piece.length);
                pos += piece.length;
                const uint64_t index = first + k;
                if (!piece.hole && !needs_read(index)) {
                    piece.preset = true;
                    piece.hash = *m_options.source_hashes[index];
                }
            }
            // One read per run of consecutive pieces that need reading.
            auto unread = [](const Piece& p) { return p.hole || p.preset; };
            size_t k = 0, at = 0;
            while (k < job->pieces.size()) {
                if (unread(job->pieces[k])) {
                    at += job->pieces[k++].length;
                    continue;
                }
                size_t run_at = at;
                uint32_t run_bytes = 0;
                while (k < job->pieces.size() && !unread(job->pieces[k])) {
                    run_bytes += job->pieces[k].length;
                    at += job->pieces[k++].length;
                }
                VMLIFT_RETURN_IF_ERROR(
                    read_at(job->data.data() + run_at, run_bytes, start + run_at));
                stats.bytes_read += run_bytes;
            }
            submit(std::move(job));
        }
        stats.seek_data_used = extents.used();
        return {};
    }

    // True when chunk `index` must be read (its source hash is not known to
    // match the destination's).
    bool needs_read(uint64_t index) const {
        const auto& known = m_options.known;
        const auto& source = m_options.source_hashes;
        return !(index < known.size() && index < source.size() && known[index] && source[index] &&
                 *known[index] == *source[index]);
    }

    // Asks the kernel to fetch the chunks that must be read in the next
    // k_prefetch_chunks from `from_index`, so their reads overlap.
    void prefetch_changed(int fd, uint64_t from_index) {
        const uint64_t count = m_hashes.size();
        const uint64_t limit = std::min(count, from_index + k_prefetch_chunks);
        uint64_t i = std::max(m_prefetch_index, from_index);
        while (i < limit) {
            if (!needs_read(i)) {
                ++i;
                continue;
            }
            uint64_t j = i;
            while (j < limit && needs_read(j)) {
                ++j;
            }
            const uint64_t from = i * m_options.block_size;
            const uint64_t to = std::min(m_size, j * m_options.block_size);
            ::posix_fadvise(fd, static_cast<off_t>(from), static_cast<off_t>(to - from),
                            POSIX_FADV_WILLNEED);
            i = j;
        }
        m_prefetch_index = std::max(m_prefetch_index, limit);
    }

    Status read_at(char* buffer, uint32_t length, uint64_t offset) {
        return read_source(*m_reader, m_options.path, buffer, length, offset);
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
        size_t bound = 0;
        if (m_options.zstd_level != 0) {
            for (const Piece& piece : job.pieces) {
                bound += ZSTD_compressBound(piece.length);
            }
        }
        char* payload = bound > 0 ? job.payload.get(bound) : nullptr;
        size_t used = 0;
        size_t at = 0;
        for (size_t k = 0; k < job.pieces.size(); ++k) {
            Piece& piece = job.pieces[k];
            const char* data = job.data.data() + at;
            at += piece.length;
            const uint64_t index = job.first + k;
            if (piece.preset) {
                piece.kind = FrameKind::same;
                continue;
            }
            bool zero = piece.hole || (m_options.sparse && is_all_zero(data, piece.length));
            piece.hash = zero ? zero_hash(piece.length) : hash_bytes(data, piece.length);
            const auto& known = m_options.known;
            if (index < known.size() && known[index] && *known[index] == piece.hash) {
                piece.kind = FrameKind::same;
                continue;
            }
            if (zero) {
                piece.kind = FrameKind::zero;
                continue;
            }
            piece.kind = FrameKind::raw;
            if (payload != nullptr) {
                size_t n = ZSTD_compressCCtx(cctx, payload + used, bound - used, data, piece.length,
                                             m_options.zstd_level);
                if (!ZSTD_isError(n) && n < piece.length) {
                    piece.kind = FrameKind::zstd;
                    piece.payload_offset = used;
                    piece.payload_length = static_cast<uint32_t>(n);
                    used += n;
                }
            }
        }
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
            std::string& out = m_out_buffer;  // reused: keeps its capacity
            out.clear();
            size_t at = 0;
            for (size_t k = 0; k < job->pieces.size(); ++k) {
                const Piece& piece = job->pieces[k];
                const uint64_t index = job->first + k;
                m_hashes[index] = piece.hash;
                at += piece.length;
                done_bytes += piece.length;
                if (piece.kind == FrameKind::same) {
                    // Consecutive unchanged chunks travel as one frame.
                    if (m_run_count == 0) {
                        m_run_first = index;
                    }
                    ++m_run_count;
                    m_run_bytes += piece.length;
                    stats.same_bytes += piece.length;
                    if (m_run_bytes >= k_max_run) {
                        flush_run(out);
                    }
                    continue;
                }
                flush_run(out);
                FrameHeader f;
                f.kind = piece.kind;
                f.length = piece.length;
                f.offset = index * m_options.block_size;
                f.hash = piece.hash;
                const char* payload = nullptr;
                if (piece.kind == FrameKind::zstd) {
                    payload = job->payload.data() + piece.payload_offset;
                    f.payload_length = piece.payload_length;
                } else if (piece.kind == FrameKind::raw) {
                    payload = job->data.data() + at - piece.length;
                    f.payload_length = piece.length;
                }
                out += encode_frame_header(f);
                if (payload) {
                    out.append(payload, f.payload_length);
                }
                if (piece.kind == FrameKind::zero) {
                    stats.zero_bytes += piece.length;
                } else {
                    stats.data_bytes += piece.length;
                }
            }
            if (job_is_last(*job)) {
                flush_run(out);
            }
            Status st = write_all(m_out, out.data(), out.size());
            if (!st.ok()) {
                std::lock_guard lock(m_mutex);
                m_error = st;
                m_done_cv.notify_all();
                return;
            }
            stats.bytes_sent += out.size();
            if (m_progress) {
                m_progress(done_bytes);
            }
            std::lock_guard lock(m_mutex);
            m_free.push_back(std::move(job));
        }
    }

    static constexpr uint64_t k_max_run = 1ULL << 30;
    static constexpr uint64_t k_prefetch = 32u << 20;
    static constexpr uint64_t k_prefetch_chunks = 16384;
    uint64_t m_prefetch_index = 0;
    uint64_t m_prefetched = 0;

    bool job_is_last(const Job& job) const {
        return job.first + job.pieces.size() >= m_hashes.size();
    }

    void flush_run(std::string& out) {
        if (m_run_count == 0) {
            return;
        }
        FrameHeader f;
        f.kind = FrameKind::same;
        f.offset = m_run_first * m_options.block_size;
        f.length = static_cast<uint32_t>(m_run_bytes);
        f.hash = run_hash(m_hashes.data() + m_run_first, m_run_count);
        out += encode_frame_header(f);
        m_run_count = 0;
        m_run_bytes = 0;
    }

    const SenderOptions& m_options;
    uint64_t m_size;
    uint64_t m_run_first = 0;
    uint64_t m_run_count = 0;
    uint64_t m_run_bytes = 0;
    int m_out;
    const std::function<void(uint64_t)>& m_progress;
    DirectReader* m_reader = nullptr;
    int m_threads = 1;
    size_t m_window = 4;
    std::vector<uint64_t> m_hashes;
    std::string m_out_buffer;  // the writer's frames for one job

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

Result<ChunkState> hash_device(const std::string& path, uint32_t block_size,
                               const HashOptions& options) {
    auto size = device_size(path);
    if (!size.ok()) {
        return size.status();
    }
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return source_error("cannot open", path);
    }
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    ChunkState state(*size, block_size);
    const uint64_t per_read = std::max<uint64_t>(1, (4u << 20) / block_size);
    const uint64_t groups = (state.count() + per_read - 1) / per_read;
    // Several readers keep more than one request in flight (a single
    // synchronous reader leaves the disk idle while it hashes and between
    // requests); each takes the next group of chunks.
    std::atomic<uint64_t> next{0};
    std::mutex error_mutex;
    Status error;
    auto reader = [&] {
        std::optional<DirectReader> direct;
        if (options.direct) {
            direct.emplace(fd, path);
        }
        Extents extents(fd, *size, true);
        AlignedBuffer aligned;
        char* buffer = aligned.get(std::max<size_t>(4u << 20, block_size));
        for (uint64_t g = next++; g < groups; g = next++) {
            const uint64_t first = g * per_read;
            const uint64_t n = std::min(per_read, state.count() - first);
            const uint64_t start = first * block_size;
            uint64_t bytes = 0;
            for (uint64_t k = 0; k < n; ++k) {
                bytes += chunk_length(*size, block_size, first + k);
            }
            const bool hole = extents.is_hole(start, start + bytes);
            if (!hole) {
                int err = 0;
                size_t got = direct ? direct->read(buffer, bytes, start, &err)
                                    : pread_full(fd, buffer, bytes, start, &err);
                if (err != 0 || got < bytes) {
                    std::lock_guard lock(error_mutex);
                    errno = err;
                    error = err != 0 ? source_error("cannot read", path)
                                     : Status(Code::io_error, "source " + path +
                                                                  " ended early at offset " +
                                                                  std::to_string(start + got));
                    next = groups;
                    return;
                }
            }
            size_t at = 0;
            for (uint64_t k = 0; k < n; ++k) {
                uint32_t length = chunk_length(*size, block_size, first + k);
                state.confirm(first + k,
                              hole ? zero_hash(length) : hash_bytes(buffer + at, length));
                at += length;
            }
        }
    };
    std::vector<std::thread> threads;
    for (int t = 1; t < std::max(1, options.threads); ++t) {
        threads.emplace_back(reader);
    }
    reader();
    for (auto& t : threads) {
        t.join();
    }
    ::close(fd);
    if (!error.ok()) {
        return error;
    }
    return state;
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

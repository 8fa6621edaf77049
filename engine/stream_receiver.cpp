#include "engine/stream_receiver.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <new>
#include <thread>

#include "engine/io.h"
#include "engine/stream_seal.h"
#include "engine/stream_sender.h"

namespace vmlift::stream {
namespace {

using SteadyClock = std::chrono::steady_clock;

// Reads exactly `size` bytes; false at a clean EOF before any byte.
Result<bool> read_exact(int fd, char* buffer, size_t size) {
    size_t got = 0;
    while (got < size) {
        ssize_t r = ::read(fd, buffer + got, size - got);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            return Status(Code::io_error,
                          std::string("cannot read the stream: ") + std::strerror(errno));
        }
        if (r == 0) {
            if (got == 0) {
                return false;
            }
            return Status(Code::connection_lost, "the stream ended inside a frame");
        }
        got += static_cast<size_t>(r);
    }
    return true;
}

class Destination {
  public:
    ~Destination() {
        if (m_fd >= 0) {
            ::close(m_fd);
        }
        if (m_direct_fd >= 0) {
            ::close(m_direct_fd);
        }
    }

    Status open(const std::string& path, uint64_t size, bool caller_says_fresh) {
        m_path = path;
        struct stat st {};
        bool exists = ::stat(path.c_str(), &st) == 0;
        if (!exists) {
            m_fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
            if (m_fd < 0) {
                return fail("cannot create destination");
            }
            m_fresh = true;
        } else {
            m_fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
            if (m_fd < 0) {
                return fail("cannot open destination");
            }
            m_block = S_ISBLK(st.st_mode);
            if (!m_block && !S_ISREG(st.st_mode)) {
                return Status(Code::invalid_input,
                              "destination " + path + " is neither a block device nor a file");
            }
            m_fresh = caller_says_fresh || (!m_block && st.st_blocks == 0);
        }
        if (m_block) {
            auto have = device_size(path);
            if (!have.ok()) {
                return have.status();
            }
            if (*have < size) {
                return Status(Code::invalid_input,
                              "destination " + path + " holds " + std::to_string(*have) +
                                  " bytes but the source has " + std::to_string(size) +
                                  "; grow the destination (nothing was written)");
            }
        } else if (::ftruncate(m_fd, static_cast<off_t>(size)) != 0) {
            return fail("cannot set the size of destination");
        }
        // Aligned chunks bypass the page cache: on the hosts we measured,
        // buffered writes plus fdatasync cost ~30x the CPU of O_DIRECT.
        m_direct_fd = ::open(path.c_str(), O_WRONLY | O_DIRECT | O_CLOEXEC);
        return {};
    }

    // Writes through O_DIRECT when `data` (4 KiB aligned), offset and length
    // allow it and the filesystem accepts it; buffered otherwise.
    Status write_aligned(const char* data, size_t size, uint64_t offset) {
        // Small writes are synchronous under O_DIRECT and far slower than
        // buffered ones; only big chunks bypass the page cache.
        if (m_direct_fd >= 0 && size >= k_direct_min && size % k_align == 0 &&
            offset % k_align == 0 && reinterpret_cast<uintptr_t>(data) % k_align == 0) {
            if (!m_block) {
                // ext4 turns O_DIRECT writes into holes into buffered ones
                // (2.2 s of kernel CPU per GiB measured); allocating first
                // keeps them direct (0.09 s).
                (void)::fallocate(m_fd, FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                                  static_cast<off_t>(size));
            }
            int error = 0;
            size_t done = pwrite_full(m_direct_fd, data, size, offset, &error);
            if (error == EINVAL && done == 0) {
                ::close(m_direct_fd);  // not supported here after all
                m_direct_fd = -1;
            } else if (error != 0) {
                errno = error;
                return fail_at(offset + done);
            } else {
                return {};
            }
        }
        return write(data, size, offset);
    }

    Status write(const char* data, size_t size, uint64_t offset) {
        int error = 0;
        size_t done = pwrite_full(m_fd, data, size, offset, &error);
        if (error != 0) {
            errno = error;
            return fail_at(offset + done);
        }
        return {};
    }

    Status zero(uint64_t offset, uint32_t length) {
        if (m_block) {
            uint64_t range[2] = {offset, length};
            if (::ioctl(m_fd, BLKZEROOUT, range) == 0) {
                return {};
            }
        } else if (::fallocate(m_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                               static_cast<off_t>(offset), length) == 0) {
            return {};
        }
        if (m_zeros.size() < length) {
            m_zeros.assign(length, '\0');
        }
        return write(m_zeros.data(), length, offset);
    }

    Status sync() {
        if (::fdatasync(m_fd) != 0) {
            return fail("cannot flush destination");
        }
        return {};
    }

    Status read(char* data, size_t size, uint64_t offset) {
        int error = 0;
        if (pread_full(m_fd, data, size, offset, &error) < size) {
            errno = error != 0 ? error : EIO;
            return fail("cannot read back destination");
        }
        return {};
    }

    void drop_cache() { ::posix_fadvise(m_fd, 0, 0, POSIX_FADV_DONTNEED); }
    bool fresh() const { return m_fresh; }

  private:
    Status fail(const std::string& what) {
        return Status(errno == EACCES || errno == EPERM ? Code::permission_denied : Code::io_error,
                      what + " " + m_path + ": " + std::strerror(errno));
    }
    Status fail_at(uint64_t offset) {
        if (errno == ENOSPC || errno == EDQUOT) {
            return Status(Code::io_error, "destination " + m_path + " is full at offset " +
                                              std::to_string(offset) +
                                              "; free space or grow it, then resume");
        }
        return Status(Code::io_error, "cannot write destination " + m_path + " at offset " +
                                          std::to_string(offset) + ": " + std::strerror(errno));
    }

    std::string m_path;
    static constexpr size_t k_align = 4096;
    static constexpr size_t k_direct_min = 256 * 1024;
    int m_fd = -1;
    int m_direct_fd = -1;
    bool m_block = false;
    bool m_fresh = false;
    std::string m_zeros;
};

// Writes data chunks on its own thread, so decompressing and verifying the
// next chunk overlaps the (synchronous, O_DIRECT) write of this one.
class ChunkWriter {
  public:
    explicit ChunkWriter(Destination& dst) : m_dst(dst), m_thread([this] { loop(); }) {}
    ~ChunkWriter() {
        {
            std::lock_guard lock(m_mutex);
            m_stop = true;
        }
        m_cv.notify_all();
        m_thread.join();
    }
    ChunkWriter(const ChunkWriter&) = delete;
    ChunkWriter& operator=(const ChunkWriter&) = delete;

    // A buffer to fill; blocks while all of them are queued for writing.
    Result<AlignedBuffer*> acquire() {
        std::unique_lock lock(m_mutex);
        m_cv.wait(lock,
                  [this] { return !m_free.empty() || m_created < k_buffers || !m_error.ok(); });
        if (!m_error.ok()) {
            return m_error;
        }
        if (m_free.empty()) {
            ++m_created;
            m_owned.push_back(std::make_unique<AlignedBuffer>());
            return m_owned.back().get();
        }
        AlignedBuffer* b = m_free.back();
        m_free.pop_back();
        return b;
    }
    void release(AlignedBuffer* buffer) {
        std::lock_guard lock(m_mutex);
        m_free.push_back(buffer);
        m_cv.notify_all();
    }
    void submit(AlignedBuffer* buffer, uint32_t length, uint64_t offset, uint64_t index,
                uint64_t hash) {
        std::lock_guard lock(m_mutex);
        m_queue.push_back({buffer, length, offset, index, hash});
        m_cv.notify_all();
    }
    // Waits until everything submitted is written; appends the chunks
    // written since the last call to `written` and returns the first error.
    Status drain(std::vector<std::pair<uint64_t, uint64_t>>& written) {
        std::unique_lock lock(m_mutex);
        m_cv.wait(lock, [this] { return (m_queue.empty() && !m_busy) || !m_error.ok(); });
        written.insert(written.end(), m_written.begin(), m_written.end());
        m_written.clear();
        return m_error;
    }

  private:
    static constexpr int k_buffers = 4;
    struct Item {
        AlignedBuffer* buffer = nullptr;
        uint32_t length = 0;
        uint64_t offset = 0;
        uint64_t index = 0;
        uint64_t hash = 0;
    };

    void loop() {
        for (;;) {
            Item item;
            bool failed = false;
            {
                std::unique_lock lock(m_mutex);
                m_cv.wait(lock, [this] { return !m_queue.empty() || m_stop; });
                if (m_queue.empty()) {
                    return;
                }
                item = m_queue.front();
                m_queue.pop_front();
                m_busy = true;
                failed = !m_error.ok();
            }
            Status st = failed ? Status()
                               : m_dst.write_aligned(item.buffer->data(), item.length, item.offset);
            std::lock_guard lock(m_mutex);
            m_busy = false;
            if (!st.ok() && m_error.ok()) {
                m_error = st;
            } else if (st.ok() && !failed) {
                m_written.emplace_back(item.index, item.hash);
            }
            m_free.push_back(item.buffer);
            m_cv.notify_all();
        }
    }

    Destination& m_dst;
    std::mutex m_mutex;
    std::condition_variable m_cv;
    std::deque<Item> m_queue;
    std::vector<AlignedBuffer*> m_free;
    std::vector<std::unique_ptr<AlignedBuffer>> m_owned;
    std::vector<std::pair<uint64_t, uint64_t>> m_written;
    int m_created = 0;
    bool m_busy = false;
    bool m_stop = false;
    Status m_error;
    std::thread m_thread;
};

class Receiver {
  public:
    Receiver(const ReceiverOptions& options, int in_fd) : m_options(options), m_in(in_fd) {}
    ~Receiver() {
        ZSTD_freeDCtx(m_dctx);
        if (m_lock_fd >= 0) {
            ::close(m_lock_fd);
        }
    }

    Result<ReceiverStats> run() {
        char head[k_header_size];
        auto got = read_exact(m_in, head, sizeof head);
        if (!got.ok()) {
            return got.status();
        }
        if (!*got) {
            return Status(Code::connection_lost, "the stream ended before its header");
        }
        auto header = decode_header(head, sizeof head);
        if (!header.ok()) {
            return header.status();
        }
        m_header = *header;
        m_stats.size = m_header.size;
        VMLIFT_RETURN_IF_ERROR(m_dst.open(m_options.path, m_header.size, m_options.fresh));
        m_stats.fresh = m_dst.fresh();
        VMLIFT_RETURN_IF_ERROR(lock_state());
        drop_seal(m_options.seal_path);  // it would no longer describe the disk
        const uint32_t g = m_options.seal_block_size;
        m_sealing = !m_options.seal_path.empty() && g != 0 && g % 4096 == 0 &&
                    g <= m_header.block_size && m_header.block_size % g == 0;
        if (m_sealing && g != m_header.block_size) {
            m_seal = ChunkState(m_header.size, g);
        }
        auto loaded =
            m_options.state_path.empty()
                ? std::nullopt
                : ChunkState::load(m_options.state_path, m_header.size, m_header.block_size);
        m_state = loaded ? std::move(*loaded) : ChunkState(m_header.size, m_header.block_size);
        m_known = known_from_state(m_state);
        m_checkpoint_bytes = std::max<uint64_t>(m_header.size / 50, 4u << 20);
        m_last_checkpoint = SteadyClock::now();
        Status st = frames();
        Status saved = checkpoint();
        VMLIFT_RETURN_IF_ERROR(st);
        VMLIFT_RETURN_IF_ERROR(saved);
        if (m_options.verify_readback) {
            VMLIFT_RETURN_IF_ERROR(readback());
            VMLIFT_RETURN_IF_ERROR(save_state());
        }
        m_stats.chunks_unconfirmed = m_state.count() - m_state.confirmed_count();
        m_stats.digest = digest_of(m_state.hashes());
        if (m_sealing && m_stats.complete()) {
            // Everything is on disk and synced: the seal records the disk as
            // it is now.
            const ChunkState& hashes = m_seal.count() > 0 ? m_seal : m_state;
            m_stats.sealed = write_seal(m_options.seal_path, m_options.path, hashes).ok();
        }
        return m_stats;
    }

  private:
    // One receiver per destination at a time: a resumed copy waits for a
    // receiver that is still finishing after its controller died.
    Status lock_state() {
        if (m_options.state_path.empty()) {
            return {};
        }
        std::string path = m_options.state_path + ".lock";
        m_lock_fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (m_lock_fd < 0) {
            return Status(Code::io_error, "cannot open " + path + ": " + std::strerror(errno));
        }
        for (int i = 0; i < 300; ++i) {
            if (::flock(m_lock_fd, LOCK_EX | LOCK_NB) == 0) {
                return {};
            }
            ::usleep(100 * 1000);
        }
        return Status(Code::timeout, "another copy to " + m_options.path +
                                         " is still running (lock " + path + " held for 30 s)");
    }

    Status ended_early() const {
        return Status(Code::connection_lost, "the stream ended before the copy was complete (" +
                                                 std::to_string(m_state.confirmed_bytes()) +
                                                 " bytes confirmed); run again with --resume");
    }

    Status frames() {
        char head[k_frame_header_size];
        for (;;) {
            auto got = read_exact(m_in, head, sizeof head);
            if (!got.ok()) {
                return got.status().code() == Code::connection_lost ? ended_early() : got.status();
            }
            if (!*got) {
                return ended_early();
            }
            auto frame = decode_frame_header(head, sizeof head, m_header);
            if (!frame.ok()) {
                return frame.status();
            }
            m_payload_size = frame->payload_length;
            m_payload.get(m_payload_size);  // grows only; never zero-filled
            if (frame->payload_length > 0) {
                auto body = read_exact(m_in, m_payload.data(), frame->payload_length);
                if (!body.ok() && body.status().code() != Code::connection_lost) {
                    return body.status();
                }
                if (!body.ok() || !*body) {
                    return ended_early();
                }
            }
            if (frame->kind == FrameKind::end) {
                return end_frame();
            }
            VMLIFT_RETURN_IF_ERROR(chunk(*frame));
            if (frame->kind != FrameKind::same) {
                m_unsynced += frame->length;  // unchanged runs need no sync
            }
            // At most ~2% of the disk (and 2 s) is ever unconfirmed, so a
            // resume re-sends well under 5%.
            if (m_unsynced >= m_checkpoint_bytes ||
                SteadyClock::now() - m_last_checkpoint >= m_options.checkpoint_interval) {
                VMLIFT_RETURN_IF_ERROR(checkpoint());
            }
        }
    }

    Status chunk(const FrameHeader& f) {
        const uint64_t index = f.offset / m_header.block_size;
        if (f.kind == FrameKind::same) {
            if (m_seal.count() > 0) {
                m_sealing = false;  // no finer hashes of what we did not receive
            }
            return same_run(index, f);
        }
        m_state.unconfirm(index);
        switch (f.kind) {
            case FrameKind::raw:
            case FrameKind::zstd: {
                auto buffer = writer().acquire();
                if (!buffer.ok()) {
                    return buffer.status();
                }
                char* data = (*buffer)->get(f.length);
                bool good = true;
                if (f.kind == FrameKind::zstd) {
                    if (!m_dctx) {
                        m_dctx = ZSTD_createDCtx();
                    }
                    size_t n = ZSTD_decompressDCtx(m_dctx, data, f.length, m_payload.data(),
                                                   m_payload_size);
                    good = !ZSTD_isError(n) && n == f.length;
                } else {
                    std::memcpy(data, m_payload.data(), f.length);
                }
                if (!good || hash_bytes(data, f.length) != f.hash) {
                    writer().release(*buffer);
                    ++m_stats.chunks_bad;
                    return {};
                }
                seal_data(f.offset, data, f.length);
                writer().submit(*buffer, f.length, f.offset, index, f.hash);
                m_stats.bytes_written += f.length;
                return {};  // confirmed once written and synced (checkpoint)
            }
            case FrameKind::zero:
                if (f.hash != zero_hash(f.length)) {
                    ++m_stats.chunks_bad;
                    return {};
                }
                seal_data(f.offset, nullptr, f.length);
                if (m_dst.fresh()) {
                    m_stats.zero_bytes_skipped += f.length;
                } else {
                    VMLIFT_RETURN_IF_ERROR(m_dst.zero(f.offset, f.length));
                    m_stats.zero_bytes_zeroed += f.length;
                }
                break;
            case FrameKind::same:
            case FrameKind::end:
                break;
        }
        m_pending.push_back({index, f.hash});
        return {};
    }

    // A run of chunks the sender says we already hold: accepted only when
    // every one was confirmed here and the run's combined hash agrees.
    Status same_run(uint64_t first, const FrameHeader& f) {
        const uint64_t end = chunk_count(std::min<uint64_t>(f.offset + f.length, m_header.size),
                                         m_header.block_size);
        std::vector<uint64_t> hashes;
        hashes.reserve(end - first);
        bool known = true;
        for (uint64_t i = first; i < end && known; ++i) {
            known = i < m_known.size() && m_known[i].has_value();
            hashes.push_back(known ? *m_known[i] : 0);
        }
        if (!known || run_hash(hashes.data(), hashes.size()) != f.hash) {
            for (uint64_t i = first; i < end; ++i) {
                m_state.unconfirm(i);
            }
            m_stats.chunks_bad += end - first;
            return {};
        }
        for (uint64_t i = first; i < end; ++i) {
            m_state.confirm(i, hashes[i - first]);  // already on disk and synced
        }
        m_stats.same_bytes += f.length;
        return {};
    }

    // The seal's finer hashes of a verified chunk (data null: zeros).
    void seal_data(uint64_t offset, const char* data, uint32_t length) {
        if (!m_sealing || m_seal.count() == 0) {
            return;
        }
        const uint32_t g = m_seal.block_size();
        for (uint32_t at = 0; at < length; at += g) {
            const uint64_t index = (offset + at) / g;
            const uint32_t n = chunk_length(m_header.size, g, index);
            m_seal.confirm(index, data ? hash_bytes(data + at, n) : zero_hash(n));
        }
    }

    Status end_frame() {
        auto get = [&](size_t at) {
            uint64_t v = 0;
            for (int b = 7; b >= 0; --b) {
                v = (v << 8) | static_cast<uint8_t>(m_payload.data()[at + static_cast<size_t>(b)]);
            }
            return v;
        };
        m_stats.sender_digest = Digest{get(0), get(8)};
        m_stats.sender_bytes_read = get(16);
        return {};
    }

    Status save_state() {
        if (m_options.state_path.empty()) {
            return {};
        }
        return m_state.save(m_options.state_path);
    }

    ChunkWriter& writer() {
        if (!m_writer) {
            m_writer = std::make_unique<ChunkWriter>(m_dst);
        }
        return *m_writer;
    }

    Status checkpoint() {
        m_last_checkpoint = SteadyClock::now();
        m_unsynced = 0;
        if (m_writer) {
            VMLIFT_RETURN_IF_ERROR(m_writer->drain(m_pending));
        }
        if (m_pending.empty()) {
            return save_state();
        }
        VMLIFT_RETURN_IF_ERROR(m_dst.sync());
        for (const auto& [index, hash] : m_pending) {
            m_state.confirm(index, hash);
        }
        m_pending.clear();
        return save_state();
    }

    Status readback() {
        m_dst.drop_cache();
        m_stats.readback_checked = true;
        std::string buffer;
        for (uint64_t i = 0; i < m_state.count(); ++i) {
            if (!m_state.confirmed(i)) {
                continue;
            }
            uint32_t length = chunk_length(m_header.size, m_header.block_size, i);
            buffer.resize(length);
            VMLIFT_RETURN_IF_ERROR(m_dst.read(buffer.data(), length, i * m_header.block_size));
            if (hash_bytes(buffer.data(), length) != m_state.hash(i)) {
                ++m_stats.readback_mismatches;
                m_state.unconfirm(i);
            }
        }
        return {};
    }

    const ReceiverOptions& m_options;
    int m_in;
    Header m_header;
    Destination m_dst;
    ChunkState m_state;
    bool m_sealing = false;
    ChunkState m_seal;  // finer than m_state: the seal's hashes as they arrive
    std::vector<std::optional<uint64_t>> m_known;
    std::vector<std::pair<uint64_t, uint64_t>> m_pending;  // written, not yet synced
    SteadyClock::time_point m_last_checkpoint;
    uint64_t m_unsynced = 0;
    uint64_t m_checkpoint_bytes = 4u << 20;
    AlignedBuffer m_payload;  // the current frame's payload
    size_t m_payload_size = 0;
    std::unique_ptr<ChunkWriter> m_writer;  // after m_dst: destroyed first
    ZSTD_DCtx* m_dctx = nullptr;
    int m_lock_fd = -1;
    ReceiverStats m_stats;
};

}  // namespace

Result<ReceiverStats> receive_stream(const ReceiverOptions& options, int in_fd) {
    Receiver receiver(options, in_fd);
    return receiver.run();
}

}  // namespace vmlift::stream

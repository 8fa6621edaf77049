// Progress reporter for long work (disk copies, uploads).
//
// Contract
//   update(done) records the bytes completed so far (monotonic) and, at most
//   every 200 ms on a terminal or every second in JSON mode, writes:
//   - terminal: one line redrawn in place with "\r" and erase-to-end:
//       "sda  [#######.............]  35%  1.4 GiB / 4.0 GiB  112.5 MiB/s  ETA 0:24"
//   - json: one object per line, snake_case keys, for machines:
//       {"event":"progress","label":"sda","bytes_done":N,"bytes_total":N,
//        "percent":35.0,"rate_bps":N,"eta_s":N,"elapsed_s":N}
//     (bytes_total, percent and eta_s are null when the total is unknown)
//   - quiet: nothing.
//   The rate is measured over the last 5 s of samples, so it follows the
//   current speed; the ETA is the remaining bytes at that rate. Before half
//   a second has been observed there is no rate (0) and no ETA.
//   finish() writes the final state once (terminal: ends the line; JSON: an
//   {"event":"done",...} object with the average rate).
// Thread safety: update() and finish() may be called from any thread.
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <ostream>
#include <string>

#include "engine/clock.h"
#include "engine/io.h"

namespace vmlift {

enum class ProgressStyle { terminal, json, quiet };

// 1536 -> "1.5 KiB"
std::string format_bytes(uint64_t bytes);
// seconds -> "1:02:03" or "2:03"
std::string format_duration(uint64_t seconds);

class ProgressReporter {
  public:
    ProgressReporter(std::ostream& out, ProgressStyle style, const Clock& clock, std::string label,
                     uint64_t total_bytes /* 0: unknown */);

    void update(uint64_t bytes_done);
    // For work whose size is learned after it started.
    void set_total(uint64_t total_bytes);
    void finish(bool success = true);

    // Current estimate, for callers and tests.
    double rate_bps() const;
    std::optional<uint64_t> eta_seconds() const;

  private:
    struct Sample {
        std::chrono::steady_clock::time_point at;
        uint64_t bytes;
    };
    void emit(bool final, bool success);
    double rate_locked() const;
    std::optional<uint64_t> eta_locked() const;

    std::ostream& m_out;
    ProgressStyle m_style;
    const Clock& m_clock;
    std::string m_label;
    uint64_t m_total;
    std::chrono::steady_clock::time_point m_start;
    std::optional<std::chrono::steady_clock::time_point> m_last_emit;
    std::deque<Sample> m_samples;
    uint64_t m_done = 0;
    bool m_finished = false;
    mutable std::mutex m_mutex;
};

}  // namespace vmlift

namespace vmlift {

// Passes bytes through to `inner` and reports the running total.
class ProgressSink : public ByteSink {
  public:
    ProgressSink(ByteSink& inner, ProgressReporter& progress)
        : m_inner(inner), m_progress(progress) {}
    Status write(std::string_view data) override {
        m_bytes += data.size();
        m_progress.update(m_bytes);
        return m_inner.write(data);
    }

  private:
    ByteSink& m_inner;
    ProgressReporter& m_progress;
    uint64_t m_bytes = 0;
};

}  // namespace vmlift

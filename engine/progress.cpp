#include "engine/progress.h"

#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>

namespace vmlift {
namespace {
constexpr auto k_window = std::chrono::seconds(5);
constexpr auto k_terminal_interval = std::chrono::milliseconds(200);
constexpr auto k_json_interval = std::chrono::seconds(1);
constexpr int k_bar_width = 20;
constexpr double k_min_rate_span = 0.5;  // seconds

double seconds_between(std::chrono::steady_clock::time_point a,
                       std::chrono::steady_clock::time_point b) {
    return std::chrono::duration<double>(b - a).count();
}
}  // namespace

std::string format_bytes(uint64_t bytes) {
    static const char* k_units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double value = static_cast<double>(bytes);
    int unit = 0;
    while (value >= 1024.0 && unit < 5) {
        value /= 1024.0;
        ++unit;
    }
    char buf[32];
    if (unit == 0) {
        std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
    } else {
        std::snprintf(buf, sizeof buf, "%.1f %s", value, k_units[unit]);
    }
    return buf;
}

std::string format_duration(uint64_t seconds) {
    char buf[32];
    uint64_t h = seconds / 3600, m = (seconds / 60) % 60, s = seconds % 60;
    if (h > 0) {
        std::snprintf(buf, sizeof buf, "%llu:%02llu:%02llu", static_cast<unsigned long long>(h),
                      static_cast<unsigned long long>(m), static_cast<unsigned long long>(s));
    } else {
        std::snprintf(buf, sizeof buf, "%llu:%02llu", static_cast<unsigned long long>(m),
                      static_cast<unsigned long long>(s));
    }
    return buf;
}

ProgressReporter::ProgressReporter(std::ostream& out, ProgressStyle style, const Clock& clock,
                                   std::string label, uint64_t total_bytes)
    : m_out(out),
      m_style(style),
      m_clock(clock),
      m_label(std::move(label)),
      m_total(total_bytes),
      m_start(clock.steady()) {
    m_samples.push_back({m_start, 0});
}

void ProgressReporter::update(uint64_t bytes_done) {
    std::lock_guard lock(m_mutex);
    if (m_finished) {
        return;
    }
    auto now = m_clock.steady();
    m_done = std::max(m_done, bytes_done);
    m_samples.push_back({now, m_done});
    while (m_samples.size() > 2 && now - m_samples[1].at >= k_window) {
        m_samples.pop_front();
    }
    auto interval =
        m_style == ProgressStyle::json
            ? std::chrono::duration_cast<std::chrono::steady_clock::duration>(k_json_interval)
            : std::chrono::duration_cast<std::chrono::steady_clock::duration>(k_terminal_interval);
    if (m_last_emit && now - *m_last_emit < interval) {
        return;
    }
    m_last_emit = now;
    emit(false, true);
}

void ProgressReporter::set_total(uint64_t total_bytes) {
    std::lock_guard lock(m_mutex);
    m_total = total_bytes;
}

void ProgressReporter::finish(bool success) {
    std::lock_guard lock(m_mutex);
    if (m_finished) {
        return;
    }
    m_finished = true;
    emit(true, success);
}

double ProgressReporter::rate_bps() const {
    std::lock_guard lock(m_mutex);
    return rate_locked();
}

std::optional<uint64_t> ProgressReporter::eta_seconds() const {
    std::lock_guard lock(m_mutex);
    return eta_locked();
}

double ProgressReporter::rate_locked() const {
    const Sample& first = m_samples.front();
    const Sample& last = m_samples.back();
    double secs = seconds_between(first.at, last.at);
    if (secs < k_min_rate_span) {
        return 0.0;  // too little time observed for a meaningful rate
    }
    return static_cast<double>(last.bytes - first.bytes) / secs;
}

std::optional<uint64_t> ProgressReporter::eta_locked() const {
    double rate = rate_locked();
    if (m_total == 0 || rate <= 0.0) {
        return std::nullopt;
    }
    uint64_t remaining = m_total > m_done ? m_total - m_done : 0;
    return static_cast<uint64_t>(std::ceil(static_cast<double>(remaining) / rate));
}

void ProgressReporter::emit(bool final, bool success) {
    if (m_style == ProgressStyle::quiet) {
        return;
    }
    auto now = m_clock.steady();
    double elapsed = seconds_between(m_start, now);
    double rate =
        final ? (elapsed > 0 ? static_cast<double>(m_done) / elapsed : 0.0) : rate_locked();
    auto eta = eta_locked();
    std::optional<double> percent;
    if (m_total > 0) {
        percent = 100.0 * static_cast<double>(m_done) / static_cast<double>(m_total);
    }
    if (m_style == ProgressStyle::json) {
        nlohmann::json line = {
            {"event", final ? "done" : "progress"},
            {"label", m_label},
            {"bytes_done", m_done},
            {"bytes_total", m_total > 0 ? nlohmann::json(m_total) : nlohmann::json(nullptr)},
            {"percent",
             percent ? nlohmann::json(std::round(*percent * 10) / 10) : nlohmann::json(nullptr)},
            {"rate_bps", static_cast<uint64_t>(rate)},
            {"eta_s", !final && eta ? nlohmann::json(*eta) : nlohmann::json(nullptr)},
            {"elapsed_s", std::round(elapsed * 10) / 10},
        };
        if (final) {
            line["success"] = success;
        }
        m_out << line.dump() << "\n";
        m_out.flush();
        return;
    }
    std::string text = m_label + "  ";
    if (percent) {
        int filled = static_cast<int>(std::min(100.0, *percent) * k_bar_width / 100.0);
        text += '[';
        text.append(static_cast<size_t>(filled), '#');
        text.append(static_cast<size_t>(k_bar_width - filled), '.');
        text += "]  ";
        char pct[16];
        std::snprintf(pct, sizeof pct, "%3d%%  ", static_cast<int>(*percent));
        text += pct;
        text += format_bytes(m_done) + " / " + format_bytes(m_total);
    } else {
        text += format_bytes(m_done);
    }
    if (rate > 0.0) {
        text += "  ";
        text += format_bytes(static_cast<uint64_t>(rate));
        text += "/s";
    }
    if (final) {
        text += "  in ";
        text += format_duration(static_cast<uint64_t>(elapsed));
        text += success ? "  done" : "  FAILED";
    } else if (eta) {
        text += "  ETA ";
        text += format_duration(*eta);
    }
    m_out << "\r" << text << "\x1b[K";
    if (final) {
        m_out << "\n";
    }
    m_out.flush();
}

}  // namespace vmlift

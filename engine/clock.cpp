#include "engine/clock.h"

#include <ctime>

namespace vmlift {

FakeClock::FakeClock(std::chrono::system_clock::time_point start) : m_start(start) {}

std::chrono::steady_clock::time_point FakeClock::steady() const {
    return std::chrono::steady_clock::time_point(std::chrono::nanoseconds(m_offset_ns.load()));
}

std::chrono::system_clock::time_point FakeClock::wall() const {
    return m_start + std::chrono::duration_cast<std::chrono::system_clock::duration>(
                         std::chrono::nanoseconds(m_offset_ns.load()));
}

namespace {
std::tm utc_tm(std::chrono::system_clock::time_point t) {
    std::time_t secs = std::chrono::system_clock::to_time_t(t);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    return tm;
}
}  // namespace

std::string iso8601_utc(std::chrono::system_clock::time_point t) {
    std::tm tm = utc_tm(t);
    auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count() % 1000;
    if (ms < 0) {
        ms += 1000;
    }
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<int>(ms));
    return buf;
}

std::string yyyymmdd_utc(std::chrono::system_clock::time_point t) {
    std::tm tm = utc_tm(t);
    char buf[48];
    std::snprintf(buf, sizeof buf, "%04d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
    return buf;
}

}  // namespace vmlift

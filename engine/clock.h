// Clock: the one way the engine reads time, so tests can control it.
//
// Contract
//   steady() is monotonic (for rates, timeouts); wall() is UTC calendar
//   time (for log stamps and run ids). RealClock reads the system clocks;
//   FakeClock starts at a fixed instant and moves only when advance() is
//   called. iso8601_utc() formats a wall time as 2026-11-23T10:00:00.123Z.
// Thread safety: RealClock is stateless; FakeClock is safe to read from
//   several threads while one thread advances it.
#pragma once

#include <atomic>
#include <chrono>
#include <string>

namespace vmlift {

class Clock {
  public:
    virtual ~Clock() = default;
    virtual std::chrono::steady_clock::time_point steady() const = 0;
    virtual std::chrono::system_clock::time_point wall() const = 0;
};

class RealClock : public Clock {
  public:
    std::chrono::steady_clock::time_point steady() const override {
        return std::chrono::steady_clock::now();
    }
    std::chrono::system_clock::time_point wall() const override {
        return std::chrono::system_clock::now();
    }
};

class FakeClock : public Clock {
  public:
    // 2026-01-01T00:00:00Z unless told otherwise.
    explicit FakeClock(std::chrono::system_clock::time_point start =
                           std::chrono::system_clock::time_point(std::chrono::seconds(1767225600)));
    std::chrono::steady_clock::time_point steady() const override;
    std::chrono::system_clock::time_point wall() const override;
    void advance(std::chrono::nanoseconds by) { m_offset_ns += by.count(); }

  private:
    std::chrono::system_clock::time_point m_start;
    std::atomic<long long> m_offset_ns{0};
};

std::string iso8601_utc(std::chrono::system_clock::time_point t);
// "20261123" for run directory names.
std::string yyyymmdd_utc(std::chrono::system_clock::time_point t);

}  // namespace vmlift

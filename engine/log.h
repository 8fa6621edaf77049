// Logger: one log for a run, redacted.
//
// Contract
//   Every line passes through the Redactor before it is written anywhere.
//   The log file (log.txt in the run directory) receives every level with a
//   UTC timestamp: "2026-11-23T10:00:00.123Z INFO  ssh: connected to h".
//   The console (stderr by default) receives lines at or above its level as
//   "vmlift: message", "vmlift: warning: message", "vmlift: error: message".
//   A Logger with neither file nor console discards. Write failures on the
//   log file are reported once on the console and never stop the run.
// Thread safety: all methods may be called from any thread.
#pragma once

#include <cstdio>
#include <mutex>
#include <ostream>
#include <string>
#include <string_view>

#include "engine/clock.h"
#include "engine/redact.h"
#include "engine/status.h"

namespace vmlift {

enum class LogLevel { debug = 0, info, warn, error };

class Logger {
  public:
    Logger(const Clock& clock, const Redactor& redactor) : m_clock(clock), m_redactor(redactor) {}
    ~Logger();
    Logger(const Logger&) = delete;
    Logger& operator=(const Logger&) = delete;

    // Appends to `path` (created 0600).
    Status open_file(const std::string& path);
    void set_console(std::ostream* console, LogLevel min_level);

    void log(LogLevel level, std::string_view component, std::string_view message);
    void debug(std::string_view component, std::string_view m) {
        log(LogLevel::debug, component, m);
    }
    void info(std::string_view component, std::string_view m) { log(LogLevel::info, component, m); }
    void warn(std::string_view component, std::string_view m) { log(LogLevel::warn, component, m); }
    void error(std::string_view component, std::string_view m) {
        log(LogLevel::error, component, m);
    }

  private:
    const Clock& m_clock;
    const Redactor& m_redactor;
    std::mutex m_mutex;
    std::FILE* m_file = nullptr;
    bool m_file_failed = false;
    std::ostream* m_console = nullptr;
    LogLevel m_console_level = LogLevel::info;
};

}  // namespace vmlift

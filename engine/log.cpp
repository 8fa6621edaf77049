#include "engine/log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace vmlift {
namespace {
const char* level_tag(LogLevel level) {
    switch (level) {
        case LogLevel::debug:
            return "DEBUG";
        case LogLevel::info:
            return "INFO ";
        case LogLevel::warn:
            return "WARN ";
        case LogLevel::error:
            return "ERROR";
    }
    return "INFO ";
}
}  // namespace

Logger::~Logger() {
    if (m_file) {
        std::fclose(m_file);
    }
}

Status Logger::open_file(const std::string& path) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) {
        return Status(Code::io_error, "cannot open log file " + path + ": " + std::strerror(errno) +
                                          "; check the run directory");
    }
    std::FILE* file = ::fdopen(fd, "a");
    if (!file) {
        ::close(fd);
        return Status(Code::io_error, "cannot open log file " + path);
    }
    std::lock_guard lock(m_mutex);
    if (m_file) {
        std::fclose(m_file);
    }
    m_file = file;
    m_file_failed = false;
    return {};
}

void Logger::set_console(std::ostream* console, LogLevel min_level) {
    std::lock_guard lock(m_mutex);
    m_console = console;
    m_console_level = min_level;
}

void Logger::log(LogLevel level, std::string_view component, std::string_view message) {
    std::string clean = m_redactor.redact(message);
    std::lock_guard lock(m_mutex);
    if (m_file && !m_file_failed) {
        std::string line = iso8601_utc(m_clock.wall()) + " " + level_tag(level) + " " +
                           std::string(component) + ": " + clean + "\n";
        if (std::fwrite(line.data(), 1, line.size(), m_file) != line.size() ||
            std::fflush(m_file) != 0) {
            m_file_failed = true;
            if (m_console) {
                *m_console << "vmlift: warning: cannot write the log file (" << std::strerror(errno)
                           << "); continuing without it\n";
            }
        }
    }
    if (m_console && level >= m_console_level) {
        *m_console << "vmlift: ";
        if (level == LogLevel::warn) {
            *m_console << "warning: ";
        } else if (level == LogLevel::error) {
            *m_console << "error: ";
        }
        *m_console << clean << "\n";
        m_console->flush();
    }
}

}  // namespace vmlift

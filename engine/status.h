// Status and Result<T>: errors as values at module boundaries.
//
// Contract
//   A Status is either ok or carries one Code and a one-line message. The
//   message names the thing that failed and, where there is one, the fix
//   ("known_hosts file /root/.ssh/known_hosts has a different key for
//   198.18.1.10:22; if the host was reinstalled, remove the old entry with
//   ssh-keygen -R"). Messages never contain secrets: callers pass values
//   through a Redactor before they reach a message.
//   Result<T> holds either a T or a non-ok Status. Accessing the value of an
//   error Result is a programming error and aborts.
//   Only front ends turn a Code into a process exit code (exit_code_for()).
// Thread safety: plain values; no shared state.
#pragma once

#include <cstdlib>
#include <optional>
#include <string>
#include <utility>

namespace vmlift {

enum class Code {
    ok = 0,
    invalid_input,      // bad option, malformed config or data
    not_found,          // a named thing does not exist
    permission_denied,  // local or remote rights missing
    auth_failed,        // credentials refused
    host_key,           // host key unknown or changed
    unreachable,        // network: refused, no route, DNS
    timeout,            // connect or task deadline passed
    io_error,           // local read/write/space failure
    remote_failed,      // remote command or API call failed
    connection_lost,    // established link dropped
    cancelled,          // interrupted by signal or user
    internal,           // a bug
};

// Stable lower-case name of a code, used in logs and JSON ("host_key").
const char* code_name(Code code);

// The documented process exit code for a Code (see README "Exit codes").
int exit_code_for(Code code);

class [[nodiscard]] Status {
  public:
    Status() = default;
    Status(Code code, std::string message) : m_code(code), m_message(std::move(message)) {}

    static Status ok_status() { return {}; }

    bool ok() const { return m_code == Code::ok; }
    Code code() const { return m_code; }
    const std::string& message() const { return m_message; }

    // "host_key: <message>"
    std::string to_string() const;

    // Prefix the message with context: "connect root@h: <message>".
    Status with_context(const std::string& context) const;

  private:
    Code m_code = Code::ok;
    std::string m_message;
};

template <typename T>
class [[nodiscard]] Result {
  public:
    Result(T value) : m_value(std::move(value)) {}  // NOLINT: implicit by design
    Result(Status status) : m_status(std::move(status)) {
        if (m_status.ok()) {
            m_status = Status(Code::internal, "Result constructed from an ok Status without value");
        }
    }

    bool ok() const { return m_value.has_value(); }
    const Status& status() const { return m_status; }

    T& value() & {
        check();
        return *m_value;
    }
    const T& value() const& {
        check();
        return *m_value;
    }
    T&& value() && {
        check();
        return std::move(*m_value);
    }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

  private:
    void check() const {
        if (!m_value) {
            std::abort();
        }
    }
    std::optional<T> m_value;
    Status m_status;
};

// Early-return helpers keep call sites short.
#define VMLIFT_RETURN_IF_ERROR(expr)          \
    do {                                      \
        ::vmlift::Status vmlift_st_ = (expr); \
        if (!vmlift_st_.ok()) {               \
            return vmlift_st_;                \
        }                                     \
    } while (0)

}  // namespace vmlift

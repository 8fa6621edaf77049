#include "engine/status.h"

namespace vmlift {

const char* code_name(Code code) {
    switch (code) {
        case Code::ok:
            return "ok";
        case Code::invalid_input:
            return "invalid_input";
        case Code::not_found:
            return "not_found";
        case Code::permission_denied:
            return "permission_denied";
        case Code::auth_failed:
            return "auth_failed";
        case Code::host_key:
            return "host_key";
        case Code::unreachable:
            return "unreachable";
        case Code::timeout:
            return "timeout";
        case Code::io_error:
            return "io_error";
        case Code::remote_failed:
            return "remote_failed";
        case Code::connection_lost:
            return "connection_lost";
        case Code::cancelled:
            return "cancelled";
        case Code::internal:
            return "internal";
    }
    return "internal";
}

int exit_code_for(Code code) {
    // 2 is reserved for command-line usage errors (CLI11's own).
    switch (code) {
        case Code::ok:
            return 0;
        case Code::invalid_input:
            return 3;
        case Code::not_found:
            return 4;
        case Code::permission_denied:
            return 5;
        case Code::auth_failed:
            return 6;
        case Code::host_key:
            return 7;
        case Code::unreachable:
            return 8;
        case Code::timeout:
            return 9;
        case Code::io_error:
            return 10;
        case Code::remote_failed:
            return 11;
        case Code::connection_lost:
            return 12;
        case Code::cancelled:
            return 130;
        case Code::internal:
            return 1;
    }
    return 1;
}

std::string Status::to_string() const {
    if (ok()) {
        return "ok";
    }
    return std::string(code_name(m_code)) + ": " + m_message;
}

Status Status::with_context(const std::string& context) const {
    if (ok()) {
        return *this;
    }
    return Status(m_code, context + ": " + m_message);
}

}  // namespace vmlift

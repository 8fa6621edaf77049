#include "engine/io.h"

#include <algorithm>
#include <cstring>

namespace vmlift {

Result<size_t> StringSource::read(char* buffer, size_t size) {
    size_t n = std::min(size, m_data.size() - m_pos);
    std::memcpy(buffer, m_data.data() + m_pos, n);
    m_pos += n;
    return n;
}

Status StringSink::write(std::string_view data) {
    m_data.append(data);
    return {};
}

Status LimitedStringSink::write(std::string_view data) {
    size_t room = m_limit > m_data.size() ? m_limit - m_data.size() : 0;
    if (data.size() > room) {
        m_truncated = true;
    }
    m_data.append(data.substr(0, room));
    return {};
}

std::string last_line(std::string_view text) {
    auto is_space = [](char c) { return c == '\n' || c == '\r' || c == ' ' || c == '\t'; };
    size_t end = text.size();
    while (end > 0 && is_space(text[end - 1])) {
        --end;
    }
    size_t begin = text.rfind('\n', end == 0 ? 0 : end - 1);
    begin = (begin == std::string_view::npos) ? 0 : begin + 1;
    while (begin < end && is_space(text[begin])) {
        ++begin;
    }
    return std::string(text.substr(begin, end - begin));
}

}  // namespace vmlift

#include "engine/base64.h"

#include <array>
#include <cstdint>

namespace vmlift {
namespace {

constexpr char k_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<int8_t, 256> decode_table() {
    std::array<int8_t, 256> t{};
    for (auto& v : t) {
        v = -1;
    }
    for (int i = 0; i < 64; ++i) {
        t[static_cast<unsigned char>(k_alphabet[i])] = static_cast<int8_t>(i);
    }
    return t;
}

constexpr auto k_decode = decode_table();

bool is_space(char c) {
    return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\v' || c == '\f';
}

}  // namespace

std::string base64_encode(std::string_view bytes) {
    std::string out;
    out.reserve(4 * ((bytes.size() + 2) / 3));
    size_t i = 0;
    auto at = [&](size_t k) { return static_cast<uint32_t>(static_cast<unsigned char>(bytes[k])); };
    for (; i + 3 <= bytes.size(); i += 3) {
        uint32_t v = (at(i) << 16) | (at(i + 1) << 8) | at(i + 2);
        out += k_alphabet[(v >> 18) & 63];
        out += k_alphabet[(v >> 12) & 63];
        out += k_alphabet[(v >> 6) & 63];
        out += k_alphabet[v & 63];
    }
    size_t rest = bytes.size() - i;
    if (rest > 0) {
        uint32_t v = at(i) << 16;
        if (rest == 2) {
            v |= at(i + 1) << 8;
        }
        out += k_alphabet[(v >> 18) & 63];
        out += k_alphabet[(v >> 12) & 63];
        out += rest == 2 ? k_alphabet[(v >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

Result<std::string> base64_decode(std::string_view text) {
    std::string out;
    out.reserve(text.size() / 4 * 3);
    uint32_t quad = 0;
    int have = 0;  // sextets in `quad`
    int padding = 0;
    for (char c : text) {
        if (is_space(c)) {
            continue;
        }
        if (c == '=') {
            if (have < 2 || ++padding > 2) {
                return Status(Code::invalid_input, "base64: misplaced padding");
            }
            quad <<= 6;
            ++have;
        } else {
            int8_t v = k_decode[static_cast<unsigned char>(c)];
            if (v < 0 || padding > 0) {
                return Status(Code::invalid_input,
                              v < 0 ? "base64: invalid character" : "base64: data after padding");
            }
            quad = (quad << 6) | static_cast<uint32_t>(v);
            ++have;
        }
        if (have == 4) {
            out += static_cast<char>((quad >> 16) & 0xFF);
            if (padding < 2) {
                out += static_cast<char>((quad >> 8) & 0xFF);
            }
            if (padding < 1) {
                out += static_cast<char>(quad & 0xFF);
            }
            quad = 0;
            have = 0;
        }
    }
    if (have != 0) {
        return Status(Code::invalid_input, "base64: truncated input");
    }
    return out;
}

}  // namespace vmlift

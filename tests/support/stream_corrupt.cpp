// Test helper: a filter between `vmlift-agent send` and the network that
// damages the stream on purpose.
//   vmlift-test-corrupt always          flip a payload byte of every data frame
//   vmlift-test-corrupt once:MARKER     only the first data frame, only while
//                                       MARKER does not exist (then creates it)
//   vmlift-test-corrupt digest          flip a byte of the end frame's digest
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#include "engine/stream_protocol.h"

namespace {
bool read_exact(char* p, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = ::read(0, p + got, n - got);
        if (r <= 0) {
            return false;
        }
        got += static_cast<size_t>(r);
    }
    return true;
}
void write_all(const char* p, size_t n) {
    while (n > 0) {
        ssize_t w = ::write(1, p, n);
        if (w <= 0) {
            std::_Exit(1);
        }
        p += w;
        n -= static_cast<size_t>(w);
    }
}
}  // namespace

int main(int argc, char** argv) {
    using namespace vmlift::stream;
    std::string mode = argc > 1 ? argv[1] : "always";
    bool armed = mode == "always" || mode == "digest";
    if (mode.rfind("once:", 0) == 0) {
        std::string marker = mode.substr(5);
        armed = ::access(marker.c_str(), F_OK) != 0;
        if (armed) {
            std::ofstream(marker) << "corrupted\n";
        }
    }
    char header[k_header_size];
    if (!read_exact(header, sizeof header)) {
        return 1;
    }
    write_all(header, sizeof header);
    std::string payload;
    for (;;) {
        char f[k_frame_header_size];
        if (!read_exact(f, sizeof f)) {
            return 0;
        }
        uint32_t len = 0;
        std::memcpy(&len, f + 24, 4);
        payload.resize(len);
        if (len > 0 && !read_exact(payload.data(), len)) {
            return 1;
        }
        auto kind = static_cast<FrameKind>(f[0]);
        bool data = kind == FrameKind::raw || kind == FrameKind::zstd;
        if (armed && data && mode != "digest") {
            payload[len / 2] ^= 0x01;
            if (mode != "always") {
                armed = false;
            }
        }
        if (armed && kind == FrameKind::end && mode == "digest") {
            payload[3] ^= 0x01;
        }
        write_all(f, sizeof f);
        write_all(payload.data(), payload.size());
    }
}

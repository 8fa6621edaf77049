// Test helper: writes its argument count and arguments to stdout, each
// followed by a NUL byte, so a test can see exactly what arrived.
#include <cstdio>
#include <cstring>
#include <string>

int main(int argc, char** argv) {
    std::string out = std::to_string(argc - 1);
    out.push_back('\0');
    for (int i = 1; i < argc; ++i) {
        out.append(argv[i], std::strlen(argv[i]));
        out.push_back('\0');
    }
    std::fwrite(out.data(), 1, out.size(), stdout);
    return 0;
}

// vmlift-askpass: the SSH_ASKPASS helper of the OpenSSH backend.
//
// OpenSSH runs it with the prompt as argv[1] when it needs a password or a
// key passphrase. It prints the matching secret from the private directory
// named by VMLIFT_ASKPASS_DIR (files `password` and `passphrase`, written
// 0600 by the transport) and exits 0; for any other prompt (for example a
// host key confirmation) it prints nothing and exits 1, so ssh refuses.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

int main(int argc, char** argv) {
    const char* dir = std::getenv("VMLIFT_ASKPASS_DIR");
    if (argc < 2 || !dir) {
        std::cerr << "vmlift-askpass: run by ssh only (needs a prompt and VMLIFT_ASKPASS_DIR)\n";
        return 1;
    }
    std::string prompt = argv[1];
    for (auto& c : prompt) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    std::string name;
    if (prompt.find("passphrase") != std::string::npos) {
        name = "passphrase";
    } else if (prompt.find("password") != std::string::npos) {
        name = "password";
    } else {
        return 1;
    }
    std::ifstream in(std::string(dir) + "/" + name, std::ios::binary);
    if (!in) {
        return 1;
    }
    std::stringstream buf;
    buf << in.rdbuf();
    std::cout << buf.str() << "\n";
    return 0;
}

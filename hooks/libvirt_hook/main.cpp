// vmlift-libvirt-hook: libvirt's qemu hook (/etc/libvirt/hooks/qemu, or a
// file in /etc/libvirt/hooks/qemu.d/). libvirt calls it as
// `<domain> <operation> <sub-operation> <extra>` with the domain XML on
// stdin; what it decides is engine/hook_guard.h. It never calls libvirt and
// returns at once: a verify after `started` runs detached in the background.
// Environment: VMLIFT_STATE_DIR (default /var/lib/vmlift), VMLIFT_MIGRATE_VM
// (default: migrate-vm next to this binary).
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <iterator>
#include <string>

#include "connectors/libvirt/domain_xml.h"
#include "engine/clock.h"
#include "engine/hook_guard.h"

namespace {

std::string self_dir() {
    char buf[4096];
    ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) {
        return ".";
    }
    std::string path(buf, static_cast<size_t>(n));
    return path.substr(0, path.rfind('/'));
}

// Starts `migrate-vm verify` in its own session and does not wait for it.
void launch_verify(const std::string& migrate_vm, const vmlift::DiskClaim& claim,
                   const std::string& state_dir, const std::string& domain) {
    pid_t child = ::fork();
    if (child < 0) {
        return;
    }
    if (child == 0) {
        ::setsid();
        if (::fork() != 0) {
            ::_exit(0);
        }
        std::string out = state_dir + "/verify-" + domain + ".json";
        int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
        if (fd >= 0) {
            ::dup2(fd, STDOUT_FILENO);
        }
        if (null >= 0) {
            ::dup2(null, STDIN_FILENO);
            ::dup2(null, STDERR_FILENO);
        }
        std::string port = std::to_string(claim.port);
        const char* argv[] = {migrate_vm.c_str(),       "--json",        "verify",     "--ip",
                              claim.cutover_ip.c_str(), "--port",        port.c_str(), "--mode",
                              claim.mode.c_str(),       "--timeout-sec", "600",        nullptr};
        ::execv(migrate_vm.c_str(), const_cast<char* const*>(argv));
        ::_exit(127);
    }
    ::waitpid(child, nullptr, 0);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 4) {
        std::cerr << "usage: vmlift-libvirt-hook <domain> <operation> <sub-operation> [extra] "
                     "(domain XML on stdin, as libvirt calls it)\n";
        return 2;
    }
    vmlift::HookPaths paths;
    if (const char* s = std::getenv("VMLIFT_STATE_DIR"); s && *s) {
        paths.state_dir = s;
    }
    std::string migrate_vm = self_dir() + "/migrate-vm";
    if (const char* m = std::getenv("VMLIFT_MIGRATE_VM"); m && *m) {
        migrate_vm = m;
    }
    std::string xml((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    const std::string operation = argv[2];
    std::vector<std::string> disks;
    auto parsed = vmlift::libvirt::parse_domain_xml(xml);
    if (!parsed.ok()) {
        if (operation == "prepare" || operation == "start") {
            std::cerr << "vmlift: domain " << argv[1]
                      << " not started: " << parsed.status().message() << std::endl;
            return 1;
        }
    } else {
        disks = parsed->disk_paths;
    }
    vmlift::RealClock clock;
    auto outcome = vmlift::libvirt_hook(paths, argv[1], operation, argv[3], disks, clock);
    if (!outcome.message.empty()) {
        std::cerr << outcome.message << std::endl;
    }
    for (const auto& claim : outcome.verify_after) {
        launch_verify(migrate_vm, claim, paths.state_dir, argv[1]);
    }
    return outcome.exit_code;
}

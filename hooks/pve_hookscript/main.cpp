// vmlift-pve-hookscript: the Proxmox VE hookscript (qm set VMID --hookscript
// STORAGE:snippets/vmlift-pve-hookscript). Proxmox calls it with exactly two
// arguments, `<vmid> <phase>`; what it decides is engine/hook_guard.h.
// Environment: VMLIFT_STATE_DIR (default /var/lib/vmlift),
// VMLIFT_PVE_CONFIG_DIR (default /etc/pve/qemu-server).
#include <cstdlib>
#include <iostream>

#include "engine/clock.h"
#include "engine/hook_guard.h"

int main(int argc, char** argv) {
    if (argc != 3) {
        std::cerr << "usage: vmlift-pve-hookscript <vmid> <phase> (as Proxmox VE calls it)\n";
        return 2;
    }
    vmlift::HookPaths paths;
    if (const char* s = std::getenv("VMLIFT_STATE_DIR"); s && *s) {
        paths.state_dir = s;
    }
    if (const char* c = std::getenv("VMLIFT_PVE_CONFIG_DIR"); c && *c) {
        paths.pve_config_dir = c;
    }
    vmlift::RealClock clock;
    auto outcome = vmlift::pve_hook(paths, argv[1], argv[2], clock);
    if (!outcome.message.empty()) {
        std::cerr << outcome.message << std::endl;
    }
    return outcome.exit_code;
}

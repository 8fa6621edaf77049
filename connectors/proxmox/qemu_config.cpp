#include "connectors/proxmox/qemu_config.h"

#include <algorithm>
#include <cctype>
#include <regex>
#include <set>
#include <sstream>

namespace vmlift::proxmox {
namespace {

std::string trim(const std::string& s) {
    size_t b = s.find_first_not_of(" \t\r");
    if (b == std::string::npos) {
        return {};
    }
    size_t e = s.find_last_not_of(" \t\r");
    return s.substr(b, e - b + 1);
}

std::string percent_decode(const std::string& s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size() &&
            std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
            std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
            out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
            i += 2;
        } else {
            out += s[i];
        }
    }
    return out;
}

bool indexed(const std::string& key, const std::string& prefix, int max) {
    if (key.size() <= prefix.size() || key.compare(0, prefix.size(), prefix) != 0) {
        return false;
    }
    std::string digits = key.substr(prefix.size());
    if (digits.size() > 2 || !std::all_of(digits.begin(), digits.end(), ::isdigit) ||
        (digits.size() == 2 && digits[0] == '0')) {
        return false;
    }
    return std::stoi(digits) <= max;
}

// Every key of qm.conf(5) (pve-docs generated/qm.conf.5-opts.adoc), plus the
// keys qemu-server itself writes.
bool is_known_key(const std::string& key) {
    static const std::set<std::string> plain = {
        "acpi", "affinity", "agent", "allow-ksm", "amd-sev", "arch", "args", "audio0", "autostart",
        "balloon", "bios", "boot", "bootdisk", "cdrom", "cicustom", "cipassword", "citype",
        "ciupgrade", "ciuser", "cores", "cpu", "cpulimit", "cpuunits", "description", "efidisk0",
        "freeze", "hookscript", "hotplug", "hugepages", "intel-tdx", "ivshmem", "keephugepages",
        "keyboard", "kvm", "localtime", "lock", "machine", "memory", "migrate_downtime",
        "migrate_speed", "name", "nameserver", "numa", "onboot", "ostype", "protection", "reboot",
        "rng0", "scsihw", "searchdomain", "shares", "smbios1", "smp", "sockets",
        "spice_enhancements", "sshkeys", "startdate", "startup", "tablet", "tags", "tdf",
        "template", "tpmstate0", "vcpus", "vga", "vmgenid", "vmstatestorage", "watchdog",
        // written by qemu-server, not user options
        "digest", "meta", "parent", "snaptime", "snapstate", "vmstate", "runningmachine",
        "runningcpu", "running-nets-host-mtu",
        // returned by some API versions next to the config
        "vmid"};
    if (plain.count(key)) {
        return true;
    }
    static const std::vector<std::pair<std::string, int>> families = {
        {"hostpci", 15}, {"ide", 3},     {"ipconfig", 31}, {"net", 31},   {"numa", 7},
        {"parallel", 2}, {"sata", 5},    {"scsi", 30},     {"serial", 3}, {"unused", 255},
        {"usb", 14},     {"virtio", 15}, {"virtiofs", 9}};
    for (const auto& [prefix, max] : families) {
        if (indexed(key, prefix, max)) {
            return true;
        }
    }
    return false;
}

const std::vector<std::string>& nic_models() {
    static const std::vector<std::string> models = {
        "virtio",        "e1000",    "e1000e",   "e1000-82540em", "e1000-82544gc",
        "e1000-82545em", "vmxnet3",  "rtl8139",  "i82551",        "i82557b",
        "i82559er",      "ne2k_isa", "ne2k_pci", "pcnet"};
    return models;
}

std::string value_of(const std::map<std::string, std::string>& m, const std::string& key,
                     const std::string& fallback = "") {
    auto it = m.find(key);
    return it == m.end() ? fallback : it->second;
}

int to_int(const std::string& s, int fallback) {
    try {
        size_t used = 0;
        int v = std::stoi(s, &used);
        return used == s.size() ? v : fallback;
    } catch (...) {
        return fallback;
    }
}

std::string drive_bus(const std::string& key) {
    if (key == "efidisk0") {
        return "efi";
    }
    if (key == "tpmstate0") {
        return "tpm";
    }
    size_t digits = key.find_first_of("0123456789");
    return key.substr(0, digits);
}

// Drive keys in the order qemu-server resolves the first disk/cdrom.
std::vector<std::string> drive_keys_in_order() {
    std::vector<std::string> keys;
    for (int i = 0; i <= 3; ++i)
        keys.push_back("ide" + std::to_string(i));
    for (int i = 0; i <= 5; ++i)
        keys.push_back("sata" + std::to_string(i));
    for (int i = 0; i <= 30; ++i)
        keys.push_back("scsi" + std::to_string(i));
    for (int i = 0; i <= 15; ++i)
        keys.push_back("virtio" + std::to_string(i));
    keys.push_back("efidisk0");
    keys.push_back("tpmstate0");
    return keys;
}

bool is_cdrom(const ConfigMap& config, const std::string& key) {
    auto it = config.find(key);
    if (it == config.end() || key == "efidisk0" || key == "tpmstate0") {
        return false;
    }
    auto props = parse_property_string(it->second, "file");
    std::string file = value_of(props, "file");
    return value_of(props, "media") == "cdrom" || file == "none" || file == "cdrom";
}

std::vector<std::string> boot_order(const ConfigMap& config) {
    auto boot = parse_property_string(value_of(config, "boot"), "legacy");
    std::vector<std::string> order;
    if (boot.count("order")) {
        std::stringstream in(boot["order"]);
        std::string item;
        while (std::getline(in, item, ';')) {
            if (!trim(item).empty()) {
                order.push_back(trim(item));
            }
        }
        return order;
    }
    // Legacy: letters c (disk), d (cdrom), n (network); default "cdn".
    std::string legacy = value_of(boot, "legacy", "cdn");
    const auto keys = drive_keys_in_order();
    for (char c : legacy) {
        std::string pick;
        if (c == 'c') {
            std::string bootdisk = value_of(config, "bootdisk");
            if (!bootdisk.empty() && config.count(bootdisk) && !is_cdrom(config, bootdisk)) {
                pick = bootdisk;
            } else {
                for (const auto& k : keys) {
                    if (config.count(k) && !is_cdrom(config, k) && k != "efidisk0" &&
                        k != "tpmstate0") {
                        pick = k;
                        break;
                    }
                }
            }
        } else if (c == 'd') {
            for (const auto& k : keys) {
                if (is_cdrom(config, k)) {
                    pick = k;
                    break;
                }
            }
        } else if (c == 'n') {
            for (int i = 0; i <= 31; ++i) {
                if (config.count("net" + std::to_string(i))) {
                    pick = "net" + std::to_string(i);
                    break;
                }
            }
        }
        if (!pick.empty() && std::find(order.begin(), order.end(), pick) == order.end()) {
            order.push_back(pick);
        }
    }
    return order;
}

void add_drive(VmSpec& spec, const std::string& key, const std::string& value,
               const SpecContext& context) {
    auto props = parse_property_string(value, "file");
    const std::string file = value_of(props, "file");
    if (is_cdrom(ConfigMap{{key, value}}, key)) {
        if (file.find("cloudinit") != std::string::npos) {
            spec.warnings.push_back(key + " is a cloud-init drive (" + file +
                                    "); not migrated: the target gets its network config "
                                    "from the rewritten guest");
        } else {
            spec.warnings.push_back(key + " is a CD-ROM (" + file + "); not migrated");
        }
        return;
    }
    DiskSpec disk;
    disk.key = key;
    disk.bus = drive_bus(key);
    disk.volume = file;
    disk.role = key == "efidisk0"    ? DiskRole::efivars
                : key == "tpmstate0" ? DiskRole::tpm
                                     : DiskRole::data;
    if (auto size = parse_disk_size(value_of(props, "size"))) {
        disk.size_bytes = *size;
    }
    std::string volname;
    if (!file.empty() && file[0] == '/') {
        disk.host_path = file;
        disk.format = value_of(props, "format", "raw");
        spec.warnings.push_back(key + " passes through " + file +
                                " (not a Proxmox volume): it is listed as a disk; decide "
                                "whether to copy it or detach it before migrating");
    } else {
        size_t colon = file.find(':');
        if (colon == std::string::npos) {
            spec.warnings.push_back(key + ": cannot read the volume '" + file + "'");
            return;
        }
        disk.storage = file.substr(0, colon);
        volname = file.substr(colon + 1);
        std::string format = value_of(props, "format");
        if (format.empty()) {
            for (const char* ext : {".qcow2", ".raw", ".vmdk"}) {
                std::string e(ext);
                if (volname.size() > e.size() &&
                    volname.compare(volname.size() - e.size(), e.size(), e) == 0) {
                    format = e.substr(1);
                }
            }
        }
        disk.format = format.empty() ? "raw" : format;
        if (context.storage) {
            std::string why;
            if (auto path = context.storage->host_path(disk.storage, volname, &why)) {
                disk.host_path = *path;
            } else {
                spec.warnings.push_back(key + ": no host path: " + why);
            }
        }
    }
    if (disk.format != "raw") {
        spec.warnings.push_back(key + " is in " + disk.format +
                                " format: it is copied as the guest sees it only after "
                                "conversion to raw (qemu-img convert on the source host)");
    }
    if (disk.size_bytes == 0 && !context.sizes_from_storage) {
        spec.warnings.push_back(key + " has no size in the config; the API inspection reads it");
    }
    spec.disks.push_back(std::move(disk));
}

void add_nic(VmSpec& spec, const std::string& key, const std::string& value) {
    auto props = parse_property_string(value, "model");
    NicSpec nic;
    nic.key = key;
    // qemu-server's PCI map puts net0..net5 at bus 0, slots 18..23, which
    // systemd's predictable naming turns into ens18..ens23; net6 and later
    // sit behind a PCI bridge, where the name depends on the guest.
    if (key.size() == 4 && key.compare(0, 3, "net") == 0 && key[3] >= '0' && key[3] <= '5') {
        nic.slot_name = "ens" + std::to_string(18 + (key[3] - '0'));
    }
    for (const auto& model : nic_models()) {
        if (props.count(model)) {
            nic.model = model;
            nic.mac = props[model];
        }
    }
    if (nic.model.empty()) {
        nic.model = value_of(props, "model");
        nic.mac = value_of(props, "macaddr");
    }
    if (auto mac = normalize_mac(nic.mac)) {
        nic.mac = *mac;
    } else {
        spec.warnings.push_back(key + " has no valid MAC address ('" + nic.mac +
                                "'); the target will get a new one");
        nic.mac.clear();
    }
    nic.bridge = value_of(props, "bridge");
    nic.vlan = to_int(value_of(props, "tag"), -1);
    int mtu = to_int(value_of(props, "mtu"), 0);
    nic.mtu = mtu == 1 ? 0 : mtu;  // 1: inherit the bridge's MTU
    if (value_of(props, "link_down") == "1") {
        spec.warnings.push_back(key + " has its link down on the source");
    }
    spec.nics.push_back(std::move(nic));
}

int index_of(const std::string& key) {
    size_t digits = key.find_first_of("0123456789");
    return digits == std::string::npos ? 0 : to_int(key.substr(digits), 0);
}

}  // namespace

std::map<std::string, std::string> parse_property_string(const std::string& value,
                                                         const std::string& default_key) {
    std::map<std::string, std::string> out;
    std::stringstream in(value);
    std::string part;
    bool first = true;
    while (std::getline(in, part, ',')) {
        part = trim(part);
        if (part.empty()) {
            continue;
        }
        size_t eq = part.find('=');
        if (eq == std::string::npos) {
            if (first && !default_key.empty()) {
                out[default_key] = part;
            } else {
                out[part] = "";
            }
        } else {
            out[part.substr(0, eq)] = part.substr(eq + 1);
        }
        first = false;
    }
    return out;
}

std::optional<uint64_t> parse_disk_size(const std::string& text) {
    static const std::regex re(R"(^(\d+(?:\.\d+)?)([KMGT])?$)");
    std::smatch m;
    if (!std::regex_match(text, m, re)) {
        return std::nullopt;
    }
    double n = std::stod(m[1].str());
    uint64_t unit = 1;
    if (m[2].matched) {
        switch (m[2].str()[0]) {
            case 'K':
                unit = 1ULL << 10;
                break;
            case 'M':
                unit = 1ULL << 20;
                break;
            case 'G':
                unit = 1ULL << 30;
                break;
            default:
                unit = 1ULL << 40;
        }
    }
    return static_cast<uint64_t>(n * static_cast<double>(unit));
}

bool is_drive_key(const std::string& key) {
    return key == "efidisk0" || key == "tpmstate0" || indexed(key, "ide", 3) ||
           indexed(key, "sata", 5) || indexed(key, "scsi", 30) || indexed(key, "virtio", 15);
}

Result<QemuConfig> parse_qemu_config(const std::string& text) {
    static const std::regex kv(R"(^([a-z][a-z_\-]*\d*):\s*(.*?)\s*$)");
    static const std::regex section(R"(^\[([^\]]+)\]\s*$)");
    QemuConfig config;
    ConfigMap* target = &config.current;
    std::string where = "current";
    bool any = false;
    std::set<std::string> sections;
    std::istringstream in(text);
    std::string line;
    int number = 0;
    while (std::getline(in, line)) {
        ++number;
        if (!line.empty() && line.back() == '\r') {
            line.pop_back();
        }
        if (trim(line).empty()) {
            continue;
        }
        if (line[0] == '#') {
            if (target == &config.current) {
                config.description += percent_decode(line.substr(1)) + "\n";
            }
            continue;
        }
        std::smatch m;
        if (std::regex_match(line, m, section)) {
            std::string name = m[1].str();
            if (!sections.insert(name).second) {
                config.warnings.push_back("line " + std::to_string(number) + ": section [" + name +
                                          "] appears twice; the later one wins");
            }
            if (name == "PENDING" || name == "pending") {
                target = &config.pending;
            } else if (name == "special:cloudinit") {
                target = &config.cloudinit;
            } else {
                target = &config.snapshots[name];
            }
            where = name;
            continue;
        }
        if (!std::regex_match(line, m, kv)) {
            config.warnings.push_back("line " + std::to_string(number) + " is not 'key: value': '" +
                                      line + "' (skipped)");
            continue;
        }
        std::string key = m[1].str();
        std::string value = m[2].str();
        if (target == &config.pending && key == "delete") {
            std::stringstream keys(value);
            std::string k;
            while (std::getline(keys, k, ',')) {
                if (!trim(k).empty()) {
                    config.pending_delete.push_back(trim(k));
                }
            }
            continue;
        }
        if (target->count(key)) {
            config.warnings.push_back("line " + std::to_string(number) + ": '" + key +
                                      "' appears twice in [" + where + "]; the last value wins");
        }
        (*target)[key] = value;
        any = true;
    }
    if (!any) {
        return Status(Code::invalid_input,
                      "no configuration keys found; is this a qemu-server .conf file?");
    }
    if (!config.description.empty()) {
        config.description.pop_back();
    }
    return config;
}

VmSpec vm_spec_from_config(const ConfigMap& config, const SpecContext& context) {
    VmSpec spec;
    spec.source = context.source;
    spec.vmid = context.vmid;
    spec.node = context.node;
    spec.status = "unknown";
    spec.name = value_of(config, "name", "VM" + std::to_string(context.vmid));
    spec.sockets = std::max(1, to_int(value_of(config, "sockets", "1"), 1));
    spec.cores = std::max(1, to_int(value_of(config, "cores", "1"), 1));
    int vcpus = to_int(value_of(config, "vcpus", "0"), 0);
    spec.vcpus = vcpus > 0 ? vcpus : spec.sockets * spec.cores;
    auto memory = parse_property_string(value_of(config, "memory", "512"), "current");
    int mem = to_int(value_of(memory, "current", "512"), -1);
    if (mem <= 0) {
        spec.warnings.push_back("memory '" + value_of(config, "memory") +
                                "' is not a number of MiB; using 512");
        mem = 512;
    }
    spec.memory_mib = static_cast<uint64_t>(mem);
    spec.firmware = value_of(config, "bios", "seabios") == "ovmf" ? Firmware::uefi : Firmware::bios;
    auto machine = parse_property_string(value_of(config, "machine"), "type");
    spec.machine = value_of(machine, "type", "pc");
    spec.os_type = value_of(config, "ostype", "other");
    auto cpu = parse_property_string(value_of(config, "cpu"), "cputype");
    spec.cpu = value_of(cpu, "cputype", "kvm64");
    auto smbios = parse_property_string(value_of(config, "smbios1"), "");
    spec.uuid = value_of(smbios, "uuid");
    auto agent = parse_property_string(value_of(config, "agent", "0"), "enabled");
    spec.agent = value_of(agent, "enabled") == "1";
    spec.lock = value_of(config, "lock");
    spec.digest = value_of(config, "digest");
    if (auto efi = config.find("efidisk0"); efi != config.end()) {
        auto props = parse_property_string(efi->second, "file");
        spec.secure_boot = value_of(props, "pre-enrolled-keys") == "1";
    }
    if (spec.firmware == Firmware::bios && config.count("efidisk0")) {
        spec.warnings.push_back("efidisk0 is set but the firmware is SeaBIOS; it is ignored");
    }
    if (!spec.lock.empty()) {
        spec.warnings.push_back("the VM is locked (" + spec.lock +
                                "); wait for that operation to finish or run 'qm unlock " +
                                std::to_string(context.vmid) + "' if it is stale");
    }
    if (value_of(config, "template") == "1") {
        spec.warnings.push_back("the VM is a template; clone it first, templates do not run");
    }

    // Devices in a stable order: by family, then index.
    std::vector<std::string> keys;
    for (const auto& [key, value] : config) {
        keys.push_back(key);
    }
    std::stable_sort(keys.begin(), keys.end(), [](const std::string& a, const std::string& b) {
        std::string pa = drive_bus(a), pb = drive_bus(b);
        if (pa != pb) {
            return a < b;
        }
        return index_of(a) < index_of(b);
    });
    const auto drive_order = drive_keys_in_order();
    for (const auto& key : drive_order) {
        if (auto it = config.find(key); it != config.end()) {
            add_drive(spec, key, it->second, context);
        }
    }
    for (int i = 0; i <= 31; ++i) {
        std::string key = "net" + std::to_string(i);
        if (auto it = config.find(key); it != config.end()) {
            add_nic(spec, key, it->second);
        }
    }
    for (const auto& key : keys) {
        const std::string& value = config.at(key);
        if (is_drive_key(key) || indexed(key, "net", 31)) {
            continue;
        }
        if (indexed(key, "unused", 255)) {
            spec.warnings.push_back(key + " (" + value + ") is an unused volume; not migrated");
        } else if (indexed(key, "hostpci", 15)) {
            spec.warnings.push_back(key + " passes through PCI device '" + value +
                                    "': decide how the target provides it (not migrated)");
        } else if (indexed(key, "usb", 14)) {
            spec.warnings.push_back(key + " passes through USB device '" + value +
                                    "': decide how the target provides it (not migrated)");
        } else if (indexed(key, "virtiofs", 9)) {
            spec.warnings.push_back(key + " shares a host directory (" + value + "); not migrated");
        } else if (indexed(key, "parallel", 2) ||
                   (indexed(key, "serial", 3) && value != "socket")) {
            spec.warnings.push_back(key + " passes through host device '" + value +
                                    "'; not migrated");
        } else if (key == "args") {
            spec.warnings.push_back("custom QEMU arguments (args) are not migrated: " + value);
        } else if (!is_known_key(key)) {
            spec.warnings.push_back("unknown config key '" + key + "' ignored");
        }
    }
    spec.boot_order = boot_order(config);
    for (auto& disk : spec.disks) {
        auto it = std::find(spec.boot_order.begin(), spec.boot_order.end(), disk.key);
        disk.boot_index =
            it == spec.boot_order.end() ? -1 : static_cast<int>(it - spec.boot_order.begin());
    }
    return spec;
}

Result<ConfigMap> config_map_from_json(const nlohmann::json& data) {
    if (!data.is_object()) {
        return Status(Code::invalid_input, "the VM config is not a JSON object");
    }
    ConfigMap out;
    for (const auto& [key, value] : data.items()) {
        if (value.is_string()) {
            out[key] = value.get<std::string>();
        } else if (value.is_boolean()) {
            out[key] = value.get<bool>() ? "1" : "0";
        } else if (value.is_number_integer()) {
            out[key] = std::to_string(value.get<long long>());
        } else if (!value.is_null()) {
            out[key] = value.dump();
        }
    }
    return out;
}

}  // namespace vmlift::proxmox

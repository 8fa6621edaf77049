#include "engine/guest_net.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <tuple>

#include <yaml-cpp/yaml.h>

namespace vmlift {
namespace {

namespace fs = std::filesystem;

constexpr const char* k_ours = "etc/netplan/50-vmlift.yaml";
constexpr const char* k_backup = "etc/netplan/vmlift-backup";
constexpr const char* k_cloud = "etc/cloud/cloud.cfg.d/99-disable-network-config.cfg";

std::optional<std::string> read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    if (!in) {
        return std::nullopt;
    }
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    return s;
}

// What the guest's netplan says about one ethernet.
struct OldEthernet {
    std::string id;
    std::string name;  // set-name, match.name or the id
    std::string mac;
    bool dhcp4 = false;
    std::vector<std::string> addresses;
    std::string gateway;
    std::vector<std::string> nameservers;
};

Result<std::vector<OldEthernet>> read_netplan(
    const std::vector<std::pair<std::string, std::string>>& files) {
    std::vector<OldEthernet> out;
    for (const auto& [path, text] : files) {
        YAML::Node doc;
        try {
            doc = YAML::Load(text);
        } catch (const YAML::Exception& e) {
            return Status(Code::invalid_input,
                          "the guest's " + path + " is not valid YAML: " + std::string(e.what()));
        }
        YAML::Node eths = doc["network"] ? doc["network"]["ethernets"] : YAML::Node();
        if (!eths || !eths.IsMap()) {
            continue;
        }
        for (const auto& kv : eths) {
            OldEthernet e;
            e.id = kv.first.as<std::string>();
            const YAML::Node& n = kv.second;
            e.name = e.id;
            if (n["match"] && n["match"]["name"]) {
                e.name = n["match"]["name"].as<std::string>();
            }
            if (n["set-name"]) {
                e.name = n["set-name"].as<std::string>();
            }
            if (n["match"] && n["match"]["macaddress"]) {
                e.mac = lower(n["match"]["macaddress"].as<std::string>());
            }
            if (n["macaddress"] && e.mac.empty()) {
                e.mac = lower(n["macaddress"].as<std::string>());
            }
            if (n["dhcp4"]) {
                std::string v = lower(n["dhcp4"].as<std::string>());
                e.dhcp4 = v == "true" || v == "yes" || v == "on";
            }
            if (n["addresses"] && n["addresses"].IsSequence()) {
                for (const auto& a : n["addresses"]) {
                    if (a.IsScalar()) {
                        e.addresses.push_back(a.as<std::string>());
                    } else if (a.IsMap() && a.begin() != a.end()) {
                        e.addresses.push_back(a.begin()->first.as<std::string>());
                    }
                }
            }
            if (n["gateway4"]) {
                e.gateway = n["gateway4"].as<std::string>();
            }
            if (n["routes"] && n["routes"].IsSequence()) {
                for (const auto& r : n["routes"]) {
                    std::string to = r["to"] ? r["to"].as<std::string>() : "";
                    if ((to == "default" || to == "0.0.0.0/0") && r["via"]) {
                        e.gateway = r["via"].as<std::string>();
                    }
                }
            }
            if (n["nameservers"] && n["nameservers"]["addresses"]) {
                for (const auto& a : n["nameservers"]["addresses"]) {
                    e.nameservers.push_back(a.as<std::string>());
                }
            }
            out.push_back(std::move(e));
        }
    }
    return out;
}

std::string render_netplan(const std::vector<GuestNic>& nics) {
    std::ostringstream y;
    y << "# Written by vmlift: each NIC is matched by its MAC and keeps the name it had\n"
         "# before the migration. The guest's original files are in vmlift-backup/.\n"
         "network:\n  version: 2\n  ethernets:\n";
    for (const auto& n : nics) {
        y << "    " << n.name << ":\n"
          << "      match:\n        macaddress: \"" << n.mac << "\"\n"
          << "      set-name: " << n.name << "\n";
        if (n.addressing == Addressing::dhcp) {
            y << "      dhcp4: true\n";
            continue;
        }
        y << "      dhcp4: false\n";
        y << "      addresses:\n";
        for (const auto& a : n.addresses) {
            y << "        - " << a << "\n";
        }
        if (!n.gateway.empty()) {
            y << "      routes:\n        - to: default\n          via: " << n.gateway << "\n";
        }
        if (!n.nameservers.empty()) {
            y << "      nameservers:\n        addresses: [";
            for (size_t i = 0; i < n.nameservers.size(); ++i) {
                y << (i ? ", " : "") << n.nameservers[i];
            }
            y << "]\n";
        }
    }
    return y.str();
}

std::string render_link(const GuestNic& n) {
    return "# Written by vmlift: keeps the name this NIC had before the migration.\n"
           "[Match]\nMACAddress=" +
           n.mac + "\n\n[Link]\nName=" + n.name + "\n";
}

void add_write(GuestNetPlan& plan, const fs::path& root, const std::string& rel,
               const std::string& content, unsigned mode) {
    auto before = read_file(root / rel);
    if (before && *before == content) {
        return;  // already as wanted
    }
    plan.changes.push_back({rel, before, content, "", mode});
}

}  // namespace

nlohmann::json GuestNetPlan::to_json() const {
    nlohmann::json files = nlohmann::json::array();
    for (const auto& c : changes) {
        files.push_back({{"path", "/" + c.path},
                         {"action", !c.after   ? "moved"
                                    : c.before ? "rewritten"
                                               : "created"}});
        if (!c.moved_to.empty()) {
            files.back()["moved_to"] = "/" + c.moved_to;
        }
    }
    nlohmann::json out_nics = nlohmann::json::array();
    for (const auto& n : nics) {
        out_nics.push_back({{"mac", n.mac},
                            {"name", n.name},
                            {"addressing", n.addressing == Addressing::dhcp ? "dhcp" : "static"},
                            {"addresses", n.addresses},
                            {"gateway", n.gateway},
                            {"nameservers", n.nameservers}});
    }
    return {{"method", method}, {"files", files}, {"nics", out_nics}, {"warnings", warnings}};
}

namespace {

using Files = std::vector<std::pair<std::string, std::string>>;  // path (relative), text

Files list_files(const fs::path& root, const std::string& dir,
                 const std::function<bool(const std::string&)>& wanted) {
    Files files;
    std::error_code ec;
    if (!fs::is_directory(root / dir, ec)) {
        return files;
    }
    for (const auto& e : fs::directory_iterator(root / dir, ec)) {
        const std::string name = e.path().filename().string();
        if (e.is_regular_file() && wanted(name)) {
            if (auto text = read_file(e.path())) {
                files.emplace_back(dir + "/" + name, *text);
            }
        }
    }
    std::sort(files.begin(), files.end());
    return files;
}

bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() &&
           s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string trim(const std::string& s) {
    size_t b = s.find_first_not_of(" \t\r\"");
    size_t e = s.find_last_not_of(" \t\r\"");
    return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

std::vector<std::string> words(const std::string& s, const char* seps = " \t,;") {
    std::vector<std::string> out;
    std::string cur;
    for (char c : s) {
        if (std::strchr(seps, c)) {
            if (!cur.empty()) {
                out.push_back(cur);
            }
            cur.clear();
        } else {
            cur += c;
        }
    }
    if (!cur.empty()) {
        out.push_back(cur);
    }
    return out;
}

// "255.255.255.0" → 24 (0 when it is not a netmask).
int prefix_of(const std::string& mask) {
    unsigned a, b, c, d;
    if (std::sscanf(mask.c_str(), "%u.%u.%u.%u", &a, &b, &c, &d) != 4) {
        return 0;
    }
    uint32_t m = (a << 24) | (b << 16) | (c << 8) | d;
    int n = 0;
    while (m & 0x80000000u) {
        ++n;
        m <<= 1;
    }
    return n;
}

// INI-style files (keyfiles, .network, ifcfg): section → key → value.
std::map<std::string, std::map<std::string, std::string>> read_ini(const std::string& text) {
    std::map<std::string, std::map<std::string, std::string>> out;
    std::string section;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        line = trim(line);
        if (line.empty() || line[0] == '#' || line[0] == ';') {
            continue;
        }
        if (line.front() == '[' && line.back() == ']') {
            section = line.substr(1, line.size() - 2);
            continue;
        }
        size_t eq = line.find('=');
        if (eq != std::string::npos) {
            out[section][trim(line.substr(0, eq))] = trim(line.substr(eq + 1));
        }
    }
    return out;
}

std::vector<OldEthernet> read_ifupdown(const Files& files) {
    std::vector<OldEthernet> out;
    for (const auto& [path, text] : files) {
        std::istringstream in(text);
        std::string line;
        OldEthernet* cur = nullptr;
        while (std::getline(in, line)) {
            auto w = words(trim(line), " \t");
            if (w.empty() || w[0][0] == '#') {
                continue;
            }
            if (w[0] == "iface" && w.size() >= 4) {
                cur = nullptr;
                if (w[1] == "lo" || w[2] != "inet") {
                    continue;
                }
                out.push_back({w[1], w[1], "", w[3] == "dhcp", {}, "", {}});
                cur = &out.back();
            } else if (cur && w.size() >= 2) {
                if (w[0] == "address") {
                    cur->addresses.push_back(w[1]);
                } else if (w[0] == "netmask" && !cur->addresses.empty() &&
                           cur->addresses.back().find('/') == std::string::npos) {
                    cur->addresses.back() += "/" + std::to_string(prefix_of(w[1]));
                } else if (w[0] == "gateway") {
                    cur->gateway = w[1];
                } else if (w[0] == "dns-nameservers") {
                    cur->nameservers.assign(w.begin() + 1, w.end());
                } else if (w[0] == "hwaddress" && w.size() >= 3) {
                    cur->mac = lower(w.back());
                }
            } else if (w[0] == "auto" || w[0] == "allow-hotplug" || w[0] == "source") {
                cur = nullptr;
            }
        }
    }
    return out;
}

std::vector<OldEthernet> read_keyfiles(const Files& files) {
    std::vector<OldEthernet> out;
    for (const auto& [path, text] : files) {
        auto ini = read_ini(text);
        if (ini["connection"]["type"] != "ethernet" &&
            ini["connection"]["type"] != "802-3-ethernet") {
            continue;
        }
        OldEthernet e;
        e.id = ini["connection"]["id"];
        e.name = ini["connection"]["interface-name"];
        e.mac = lower(ini["ethernet"]["mac-address"]);
        e.dhcp4 = ini["ipv4"]["method"] == "auto" || ini["ipv4"]["method"].empty();
        for (int k = 0; k < 8; ++k) {
            std::string key = k == 0 ? "address" : "address" + std::to_string(k);
            auto it = ini["ipv4"].find(key);
            if (it == ini["ipv4"].end()) {
                continue;
            }
            auto parts = words(it->second, ",");
            if (!parts.empty()) {
                e.addresses.push_back(parts[0]);
            }
            if (parts.size() > 1) {
                e.gateway = parts[1];
            }
        }
        if (!ini["ipv4"]["gateway"].empty()) {
            e.gateway = ini["ipv4"]["gateway"];
        }
        e.nameservers = words(ini["ipv4"]["dns"], ";,");
        out.push_back(std::move(e));
    }
    return out;
}

std::vector<OldEthernet> read_networkd(const Files& files) {
    std::vector<OldEthernet> out;
    for (const auto& [path, text] : files) {
        // Repeated keys (Address=, DNS=) matter here: read line by line.
        OldEthernet e;
        std::string section;
        std::istringstream in(text);
        std::string line;
        while (std::getline(in, line)) {
            line = trim(line);
            if (line.empty() || line[0] == '#') {
                continue;
            }
            if (line.front() == '[') {
                section = line;
                continue;
            }
            size_t eq = line.find('=');
            if (eq == std::string::npos) {
                continue;
            }
            std::string k = trim(line.substr(0, eq)), v = trim(line.substr(eq + 1));
            if (section == "[Match]" && k == "Name") {
                e.name = v;
            } else if (section == "[Match]" && k == "MACAddress") {
                e.mac = lower(v);
            } else if (section == "[Network]" && k == "DHCP") {
                e.dhcp4 = v == "yes" || v == "ipv4" || v == "true";
            } else if ((section == "[Network]" || section == "[Address]") && k == "Address") {
                e.addresses.push_back(v);
            } else if ((section == "[Network]" && k == "Gateway") ||
                       (section == "[Route]" && k == "Gateway")) {
                e.gateway = v;
            } else if (section == "[Network]" && k == "DNS") {
                for (const auto& d : words(v, " ")) {
                    e.nameservers.push_back(d);
                }
            }
        }
        e.id = fs::path(path).filename().string();
        if (e.name.empty() && e.id.rfind("20-vmlift-", 0) == 0) {
            // Ours match by MAC only; the name is in the file name.
            e.name = e.id.substr(10, e.id.size() - 10 - std::string(".network").size());
        }
        if (e.name.empty() && e.mac.empty()) {
            continue;
        }
        out.push_back(std::move(e));
    }
    return out;
}

std::vector<OldEthernet> read_ifcfg(const Files& files) {
    std::vector<OldEthernet> out;
    for (const auto& [path, text] : files) {
        auto kv = read_ini(text)[""];
        OldEthernet e;
        e.name = kv["DEVICE"].empty() ? fs::path(path).filename().string().substr(6) : kv["DEVICE"];
        if (e.name == "lo") {
            continue;
        }
        e.id = e.name;
        e.mac = lower(kv["HWADDR"]);
        e.dhcp4 = kv["BOOTPROTO"] == "dhcp";
        for (const char* suffix : {"", "0", "1"}) {
            std::string ip = kv[std::string("IPADDR") + suffix];
            if (ip.empty()) {
                continue;
            }
            std::string prefix = kv[std::string("PREFIX") + suffix];
            if (prefix.empty() && !kv[std::string("NETMASK") + suffix].empty()) {
                prefix = std::to_string(prefix_of(kv[std::string("NETMASK") + suffix]));
            }
            e.addresses.push_back(ip + "/" + (prefix.empty() ? "24" : prefix));
        }
        e.gateway = kv["GATEWAY"];
        for (const char* d : {"DNS1", "DNS2", "DNS3"}) {
            if (!kv[d].empty()) {
                e.nameservers.push_back(kv[d]);
            }
        }
        out.push_back(std::move(e));
    }
    return out;
}

std::string address_of(const std::string& cidr) {
    return cidr.substr(0, cidr.find('/'));
}
std::string prefix_text(const std::string& cidr) {
    size_t slash = cidr.find('/');
    return slash == std::string::npos ? "24" : cidr.substr(slash + 1);
}

using Rendered = std::vector<std::tuple<std::string, std::string, unsigned>>;  // path, text, mode

Rendered render_ifupdown(const std::vector<GuestNic>& nics) {
    std::ostringstream o;
    o << "# Written by vmlift: the names are pinned to the MACs by\n"
         "# /etc/systemd/network/10-vmlift-*.link. The guest's original files are in\n"
         "# /etc/network/vmlift-backup/.\nsource /etc/network/interfaces.d/*\n\n"
         "auto lo\niface lo inet loopback\n";
    for (const auto& n : nics) {
        o << "\n# " << n.mac << "\nauto " << n.name << "\n";
        if (n.addressing == Addressing::dhcp) {
            o << "iface " << n.name << " inet dhcp\n";
            continue;
        }
        o << "iface " << n.name << " inet static\n    address " << n.addresses[0] << "\n";
        if (!n.gateway.empty()) {
            o << "    gateway " << n.gateway << "\n";
        }
        if (!n.nameservers.empty()) {
            o << "    dns-nameservers";
            for (const auto& d : n.nameservers) {
                o << " " << d;
            }
            o << "\n";
        }
        for (size_t i = 1; i < n.addresses.size(); ++i) {
            o << "    up ip addr add " << n.addresses[i] << " dev " << n.name << "\n";
        }
    }
    return {{"etc/network/interfaces", o.str(), 0644}};
}

Rendered render_keyfiles(const std::vector<GuestNic>& nics) {
    Rendered out;
    for (const auto& n : nics) {
        std::ostringstream o;
        o << "# Written by vmlift: matched by MAC, keeps the old name.\n[connection]\nid=" << n.name
          << "\nuuid="
          << "00000000-0000-4000-8000-" <<
            [&] {
                std::string hex;
                for (char c : n.mac) {
                    if (c != ':') {
                        hex += c;
                    }
                }
                return hex;
            }()
          << "\ntype=ethernet\ninterface-name=" << n.name
          << "\nautoconnect=true\n\n[ethernet]\nmac-address=" << n.mac << "\n\n[ipv4]\n";
        if (n.addressing == Addressing::dhcp) {
            o << "method=auto\n";
        } else {
            o << "method=manual\n";
            for (size_t i = 0; i < n.addresses.size(); ++i) {
                o << "address" << (i + 1) << "=" << n.addresses[i]
                  << (i == 0 && !n.gateway.empty() ? "," + n.gateway : "") << "\n";
            }
            if (!n.nameservers.empty()) {
                o << "dns=";
                for (const auto& d : n.nameservers) {
                    o << d << ";";
                }
                o << "\n";
            }
        }
        o << "\n[ipv6]\nmethod=auto\n";
        out.emplace_back("etc/NetworkManager/system-connections/vmlift-" + n.name + ".nmconnection",
                         o.str(), 0600);
    }
    return out;
}

Rendered render_networkd(const std::vector<GuestNic>& nics) {
    Rendered out;
    for (const auto& n : nics) {
        std::ostringstream o;
        o << "# Written by vmlift: matched by MAC, keeps the old name.\n[Match]\nMACAddress="
          << n.mac << "\n\n[Network]\n";
        if (n.addressing == Addressing::dhcp) {
            o << "DHCP=ipv4\n";
        } else {
            for (const auto& a : n.addresses) {
                o << "Address=" << a << "\n";
            }
            if (!n.gateway.empty()) {
                o << "Gateway=" << n.gateway << "\n";
            }
            for (const auto& d : n.nameservers) {
                o << "DNS=" << d << "\n";
            }
        }
        out.emplace_back("etc/systemd/network/20-vmlift-" + n.name + ".network", o.str(), 0644);
    }
    return out;
}

Rendered render_ifcfg(const std::vector<GuestNic>& nics) {
    Rendered out;
    for (const auto& n : nics) {
        std::ostringstream o;
        o << "# Written by vmlift: matched by MAC, keeps the old name.\nDEVICE=" << n.name
          << "\nNAME=" << n.name << "\nHWADDR=" << n.mac << "\nTYPE=Ethernet\nONBOOT=yes\n";
        if (n.addressing == Addressing::dhcp) {
            o << "BOOTPROTO=dhcp\n";
        } else {
            o << "BOOTPROTO=none\n";
            for (size_t i = 0; i < n.addresses.size(); ++i) {
                std::string sfx = i == 0 ? "" : std::to_string(i);
                o << "IPADDR" << sfx << "=" << address_of(n.addresses[i]) << "\nPREFIX" << sfx
                  << "=" << prefix_text(n.addresses[i]) << "\n";
            }
            if (!n.gateway.empty()) {
                o << "GATEWAY=" << n.gateway << "\n";
            }
            for (size_t i = 0; i < n.nameservers.size() && i < 3; ++i) {
                o << "DNS" << (i + 1) << "=" << n.nameservers[i] << "\n";
            }
        }
        out.emplace_back("etc/sysconfig/network-scripts/ifcfg-" + n.name, o.str(), 0644);
    }
    return out;
}

struct Stack {
    const char* method;
    std::string dir;
    std::function<bool(const std::string&)> wanted;
    std::function<Result<std::vector<OldEthernet>>(const Files&)> read;
    std::function<Rendered(const std::vector<GuestNic>&)> render;
    std::string backup;
};

std::vector<Stack> stacks() {
    return {
        {"netplan", "etc/netplan", [](const std::string& n) { return ends_with(n, ".yaml"); },
         [](const Files& f) { return read_netplan(f); },
         [](const std::vector<GuestNic>& n) {
             return Rendered{{k_ours, render_netplan(n), 0600}};
         },
         k_backup},
        {"networkmanager", "etc/NetworkManager/system-connections",
         [](const std::string& n) { return ends_with(n, ".nmconnection"); },
         [](const Files& f) { return Result<std::vector<OldEthernet>>(read_keyfiles(f)); },
         render_keyfiles, "etc/NetworkManager/vmlift-backup"},
        {"systemd-networkd", "etc/systemd/network",
         [](const std::string& n) { return ends_with(n, ".network"); },
         [](const Files& f) { return Result<std::vector<OldEthernet>>(read_networkd(f)); },
         render_networkd, "etc/systemd/vmlift-backup"},
        {"ifcfg", "etc/sysconfig/network-scripts",
         [](const std::string& n) { return n.rfind("ifcfg-", 0) == 0 && n != "ifcfg-lo"; },
         [](const Files& f) { return Result<std::vector<OldEthernet>>(read_ifcfg(f)); },
         render_ifcfg, "etc/sysconfig/vmlift-backup"},
        {"ifupdown", "etc/network", [](const std::string& n) { return n == "interfaces"; },
         [](const Files& f) { return Result<std::vector<OldEthernet>>(read_ifupdown(f)); },
         render_ifupdown, "etc/network/vmlift-backup"},
    };
}

}  // namespace

namespace {

// The guest's interface named like `nic`'s slot, when it has no MAC of its
// own and no other NIC names it explicitly.
const OldEthernet* slot_match(const std::vector<OldEthernet>& old,
                              const std::vector<GuestNic>& nics, const GuestNic& nic) {
    if (nic.slot_name.empty()) {
        return nullptr;
    }
    for (const auto& other : nics) {
        if (&other != &nic && other.name == nic.slot_name) {
            return nullptr;
        }
    }
    for (const auto& e : old) {
        if (e.name == nic.slot_name && e.mac.empty()) {
            return &e;
        }
    }
    return nullptr;
}

}  // namespace

Result<GuestNetPlan> plan_guest_net(const std::string& root_dir, std::vector<GuestNic> nics) {
    const fs::path root(root_dir);
    GuestNetPlan plan;
    std::error_code ec;
    // The first stack whose files configure an ethernet wins.
    std::optional<Stack> stack;
    Files files;
    std::vector<OldEthernet> old;
    for (auto& candidate : stacks()) {
        Files found = list_files(root, candidate.dir, candidate.wanted);
        if (candidate.method == std::string("ifupdown")) {
            Files extra = list_files(root, "etc/network/interfaces.d",
                                     [](const std::string& n) { return n[0] != '.'; });
            found.insert(found.end(), extra.begin(), extra.end());
        }
        if (found.empty()) {
            continue;
        }
        auto parsed = candidate.read(found);
        if (!parsed.ok()) {
            return parsed.status();
        }
        if (parsed->empty()) {
            continue;
        }
        stack = candidate;
        files = std::move(found);
        old = std::move(*parsed);
        break;
    }
    if (!stack) {
        return Status(Code::invalid_input,
                      "no network configuration found on the guest (" + root_dir +
                          "): none of netplan, NetworkManager keyfiles, systemd-networkd, "
                          "ifcfg or ifupdown configures an ethernet interface");
    }
    plan.method = stack->method;
    for (auto& nic : nics) {
        const OldEthernet* match = nullptr;
        for (const auto& e : old) {
            if ((!nic.name.empty() && e.name == nic.name) || (!e.mac.empty() && e.mac == nic.mac)) {
                match = &e;
                break;
            }
        }
        if (nic.name.empty()) {
            if (match && !match->name.empty()) {
                nic.name = match->name;
                plan.warnings.push_back(nic.mac + ": name " + nic.name +
                                        " taken from the guest's config (matched by MAC)");
            } else if (const OldEthernet* slot = slot_match(old, nics, nic)) {
                match = slot;
                nic.name = nic.slot_name;
                plan.warnings.push_back(nic.mac + ": name " + nic.name +
                                        " from the source's slot convention (" + nic.slot_from +
                                        " is " + nic.slot_name +
                                        "; the guest's config names it without a MAC)");
            } else if (old.size() == 1 && nics.size() == 1 && !old[0].name.empty()) {
                match = &old[0];
                nic.name = match->name;
                plan.warnings.push_back(nic.mac + ": name " + nic.name +
                                        " taken from the guest's only ethernet");
            } else {
                return Status(Code::invalid_input, "cannot tell which interface of the guest NIC " +
                                                       nic.mac + " was; give its old name (--nic " +
                                                       nic.mac + ",name=ens18)");
            }
        }
        if (nic.addressing == Addressing::keep) {
            if (!match || (!match->dhcp4 && match->addresses.empty())) {
                return Status(Code::invalid_input,
                              "the guest has no address settings for " + nic.name + " (" + nic.mac +
                                  ") to keep; give --use-dhcp or --static-cidr");
            }
            nic.addressing = match->dhcp4 ? Addressing::dhcp : Addressing::static_address;
            nic.addresses = match->addresses;
            nic.gateway = match->gateway;
            nic.nameservers = match->nameservers;
        }
        if (nic.addressing == Addressing::static_address && nic.addresses.empty()) {
            return Status(Code::invalid_input,
                          "static addressing for " + nic.name + " needs an address (CIDR)");
        }
    }
    plan.nics = nics;
    std::set<std::string> written;
    for (const auto& [path, text, mode] : stack->render(nics)) {
        add_write(plan, root, path, text, mode);
        written.insert(path);
    }
    for (const auto& [path, text] : files) {
        if (written.count(path)) {
            continue;  // ours, rewritten in place (ifupdown) or unchanged
        }
        if (fs::path(path).filename().string().find("vmlift") != std::string::npos) {
            continue;  // written by an earlier run for a NIC that is still there
        }
        std::string target = stack->backup + "/" + fs::path(path).filename().string();
        plan.changes.push_back({path, text, std::nullopt, target, 0600});
    }
    if (stack->method == std::string("ifupdown")) {
        // The original interfaces file is replaced in place: keep a copy first.
        auto before = read_file(root / "etc/network/interfaces");
        const std::string backup = stack->backup + "/interfaces";
        if (before && !fs::exists(root / backup, ec) &&
            std::any_of(plan.changes.begin(), plan.changes.end(),
                        [](const FileChange& c) { return c.path == "etc/network/interfaces"; })) {
            plan.changes.insert(plan.changes.begin(), {backup, std::nullopt, *before, "", 0644});
        }
    }
    if (fs::exists(root / "etc/cloud", ec)) {
        add_write(plan, root, k_cloud,
                  "# Written by vmlift: the network is configured by the guest's own stack.\n"
                  "network: {config: disabled}\n",
                  0644);
    }
    for (const auto& n : nics) {
        add_write(plan, root, "etc/systemd/network/10-vmlift-" + n.name + ".link", render_link(n),
                  0644);
    }
    return plan;
}

nlohmann::json nics_to_json(const std::vector<GuestNic>& nics) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& n : nics) {
        out.push_back({{"mac", n.mac},
                       {"name", n.name},
                       {"addressing", n.addressing == Addressing::keep   ? "keep"
                                      : n.addressing == Addressing::dhcp ? "dhcp"
                                                                         : "static"},
                       {"addresses", n.addresses},
                       {"gateway", n.gateway},
                       {"nameservers", n.nameservers}});
        if (!n.slot_name.empty()) {
            out.back()["slot_name"] = n.slot_name;
            out.back()["slot_from"] = n.slot_from;
        }
    }
    return out;
}

Result<std::vector<GuestNic>> nics_from_json(const nlohmann::json& j) {
    if (!j.is_array()) {
        return Status(Code::invalid_input, "NICs: expected a JSON array");
    }
    std::vector<GuestNic> out;
    try {
        for (const auto& n : j) {
            GuestNic nic;
            nic.mac = n.at("mac").get<std::string>();
            nic.name = n.value("name", std::string());
            std::string a = n.value("addressing", std::string("keep"));
            nic.addressing = a == "dhcp"     ? Addressing::dhcp
                             : a == "static" ? Addressing::static_address
                                             : Addressing::keep;
            nic.addresses = n.value("addresses", std::vector<std::string>{});
            nic.gateway = n.value("gateway", std::string());
            nic.nameservers = n.value("nameservers", std::vector<std::string>{});
            nic.slot_name = n.value("slot_name", std::string());
            nic.slot_from = n.value("slot_from", std::string());
            out.push_back(std::move(nic));
        }
    } catch (const nlohmann::json::exception& e) {
        return Status(Code::invalid_input, std::string("NICs: ") + e.what());
    }
    return out;
}

Status apply_guest_net(const std::string& root_dir, const GuestNetPlan& plan) {
    const fs::path root(root_dir);
    std::error_code ec;
    for (const auto& c : plan.changes) {
        const fs::path path = root / c.path;
        if (!c.after) {
            const fs::path to = root / c.moved_to;
            fs::create_directories(to.parent_path(), ec);
            if (fs::exists(to)) {
                fs::remove(path, ec);  // an earlier run kept the original already
            } else {
                fs::rename(path, to, ec);
            }
            if (ec) {
                return Status(Code::io_error, "cannot move /" + c.path + " to /" + c.moved_to +
                                                  ": " + ec.message());
            }
            continue;
        }
        fs::create_directories(path.parent_path(), ec);
        const fs::path tmp = path.string() + ".vmlift-tmp";
        {
            std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
            out << *c.after;
            if (!out) {
                return Status(Code::io_error, "cannot write /" + c.path + " on the guest disk");
            }
        }
        ::chmod(tmp.c_str(), c.mode);
        fs::rename(tmp, path, ec);
        if (ec) {
            return Status(Code::io_error, "cannot write /" + c.path + ": " + ec.message());
        }
    }
    return {};
}

std::string unified_diff(const GuestNetPlan& plan) {
    auto lines = [](const std::string& text) {
        std::vector<std::string> out;
        std::istringstream in(text);
        std::string l;
        while (std::getline(in, l)) {
            out.push_back(l);
        }
        return out;
    };
    std::ostringstream d;
    for (const auto& c : plan.changes) {
        auto a = c.before ? lines(*c.before) : std::vector<std::string>{};
        auto b = c.after ? lines(*c.after) : std::vector<std::string>{};
        d << "--- " << (c.before ? "a/" + c.path : std::string("/dev/null")) << "\n";
        d << "+++ " << (c.after ? "b/" + c.path : "b/" + c.moved_to) << "\n";
        if (!c.after) {
            // A move: show it as a rename with unchanged content.
            b = a;
        }
        d << "@@ -" << (a.empty() ? 0 : 1) << "," << a.size() << " +" << (b.empty() ? 0 : 1) << ","
          << b.size() << " @@\n";
        if (!c.after) {
            for (const auto& l : a) {
                d << " " << l << "\n";
            }
            continue;
        }
        for (const auto& l : a) {
            d << "-" << l << "\n";
        }
        for (const auto& l : b) {
            d << "+" << l << "\n";
        }
    }
    return d.str();
}

}  // namespace vmlift

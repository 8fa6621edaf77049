#include "engine/guest_net.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

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

Result<GuestNetPlan> plan_guest_net(const std::string& root_dir, std::vector<GuestNic> nics) {
    const fs::path root(root_dir);
    GuestNetPlan plan;
    plan.method = "netplan";
    std::vector<std::pair<std::string, std::string>> files;
    std::error_code ec;
    if (fs::is_directory(root / "etc/netplan", ec)) {
        for (const auto& e : fs::directory_iterator(root / "etc/netplan", ec)) {
            if (e.is_regular_file() && e.path().extension() == ".yaml") {
                auto text = read_file(e.path());
                if (text) {
                    files.emplace_back("etc/netplan/" + e.path().filename().string(), *text);
                }
            }
        }
    }
    std::sort(files.begin(), files.end());
    if (files.empty()) {
        return Status(Code::invalid_input,
                      "the guest has no netplan configuration (" + root_dir +
                          "/etc/netplan/*.yaml); it uses another network stack");
    }
    auto old = read_netplan(files);
    if (!old.ok()) {
        return old.status();
    }
    for (auto& nic : nics) {
        const OldEthernet* match = nullptr;
        for (const auto& e : *old) {
            if ((!nic.name.empty() && e.name == nic.name) || (!e.mac.empty() && e.mac == nic.mac)) {
                match = &e;
                break;
            }
        }
        if (nic.name.empty()) {
            if (match) {
                nic.name = match->name;
                plan.warnings.push_back(nic.mac + ": name " + nic.name +
                                        " taken from the guest's config (matched by MAC)");
            } else if (old->size() == 1 && nics.size() == 1) {
                match = &(*old)[0];
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
    add_write(plan, root, k_ours, render_netplan(nics), 0600);
    for (const auto& [path, text] : files) {
        if (path == k_ours) {
            continue;
        }
        std::string target = std::string(k_backup) + "/" + fs::path(path).filename().string();
        plan.changes.push_back({path, text, std::nullopt, target, 0600});
    }
    if (fs::exists(root / "etc/cloud", ec)) {
        add_write(plan, root, k_cloud,
                  "# Written by vmlift: the network is configured by "
                  "/etc/netplan/50-vmlift.yaml.\nnetwork: {config: disabled}\n",
                  0644);
    }
    for (const auto& n : nics) {
        add_write(plan, root, "etc/systemd/network/10-vmlift-" + n.name + ".link", render_link(n),
                  0644);
    }
    return plan;
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

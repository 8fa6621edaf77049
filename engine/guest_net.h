// Rewriting a guest's network configuration offline, on its mounted root, so
// it comes up on the new hypervisor with the same MAC and addresses even
// though its NIC gets a new name there.
//
// Contract
//   plan_guest_net() finds the guest's network stack under ROOT, the first
//   of these that configures an ethernet: netplan (etc/netplan/*.yaml),
//   NetworkManager keyfiles (etc/NetworkManager/system-connections), systemd-
//   networkd (etc/systemd/network/*.network), RHEL ifcfg (etc/sysconfig/
//   network-scripts/ifcfg-*), ifupdown (etc/network/interfaces[.d]). It
//   returns the changes, changing nothing:
//     - new config in that stack's own format that matches each NIC by MAC
//       where the format can (netplan `match: macaddress` + `set-name`,
//       keyfile `mac-address` + `interface-name`, networkd `[Match]
//       MACAddress=`, ifcfg `HWADDR=`; ifupdown names only), with DHCP or the
//       static addresses, gateway and nameservers; with Addressing::keep, the
//       guest's own settings for that interface (found by name or MAC);
//     - the guest's other files of that stack moved to a vmlift-backup
//       folder (ifupdown's interfaces file is copied there, then replaced);
//     - netplan's file is etc/netplan/50-vmlift.yaml (0600), keyfiles 0600;
//     - cloud-init's network config disabled
//       (etc/cloud/cloud.cfg.d/99-disable-network-config.cfg) when the guest
//       has cloud-init;
//     - a systemd .link file per NIC pinning its MAC to the old name.
//   A NIC without a name takes the name its MAC had in the guest's config,
//   else its slot_name when the config has an interface of that name that
//   no other NIC claims by MAC, else the only ethernet there when the guest
//   had exactly one; the plan says which (warnings). A guest with no recognisable config, a NIC
//   whose name cannot be inferred, or keep with nothing to keep, is invalid_input naming the NIC.
//   Planning an already rewritten root yields no changes. apply_guest_net() carries a plan out;
//   unified_diff() renders it as a unified diff (whole-file hunks), for --dry-run.
// Thread safety: pure except apply (writes under ROOT).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/status.h"

namespace vmlift {

enum class Addressing { keep, dhcp, static_address };

struct GuestNic {
    std::string mac;   // lowercase colon hex
    std::string name;  // the interface name the guest used ("" = infer)
    Addressing addressing = Addressing::keep;
    std::vector<std::string> addresses;  // CIDR, static only
    std::string gateway;
    std::vector<std::string> nameservers;
    // The name the source hypervisor's slot convention gives it (ens18);
    // used for inference only when the guest's config has that name.
    std::string slot_name = {};
    std::string slot_from = {};  // what the convention was applied to ("net0"), for the warning
};

struct FileChange {
    std::string path;                   // relative to the root, e.g. etc/netplan/50-vmlift.yaml
    std::optional<std::string> before;  // nullopt: the file did not exist
    std::optional<std::string> after;   // nullopt: the file goes away (moved)
    std::string moved_to;               // for moves: where the original goes
    unsigned mode = 0644;
};

struct GuestNetPlan {
    std::string method;          // netplan, networkmanager, systemd-networkd, ifcfg, ifupdown
    std::vector<GuestNic> nics;  // names and addressing resolved
    std::vector<FileChange> changes;
    std::vector<std::string> warnings;
    nlohmann::json to_json() const;
};

Result<GuestNetPlan> plan_guest_net(const std::string& root, std::vector<GuestNic> nics);

// NICs as JSON ([{mac, name, addressing: keep|dhcp|static, addresses, gateway,
// nameservers}]), to hand them to the agent on a tool host.
nlohmann::json nics_to_json(const std::vector<GuestNic>& nics);
Result<std::vector<GuestNic>> nics_from_json(const nlohmann::json& j);
Status apply_guest_net(const std::string& root, const GuestNetPlan& plan);
std::string unified_diff(const GuestNetPlan& plan);

}  // namespace vmlift

// Netplan guests: the rewrite, checked by parsing the result and by the real
// `netplan generate --root-dir` when netplan.io is installed.
#include "engine/guest_net.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "engine/process.h"
#include "tests/support/temp_dir.h"

namespace vmlift {
namespace {

using testing_support::read_all;
using testing_support::TempDir;
using testing_support::write_all;

constexpr const char* k_ubuntu = R"(# This is the network config written by 'subiquity'
network:
  ethernets:
    ens18:
      addresses:
      - 198.18.5.10/24
      nameservers:
        addresses:
        - 198.18.5.1
        search: []
      routes:
      - to: default
        via: 198.18.5.1
  version: 2
)";

constexpr const char* k_two = R"(network:
  version: 2
  ethernets:
    ens18:
      match:
        macaddress: BC:24:11:AA:BB:01
      set-name: ens18
      dhcp4: true
    ens19:
      addresses: [10.9.0.5/16]
      gateway4: 10.9.0.1
)";

class GuestNet : public ::testing::Test {
  protected:
    void SetUp() override {
        std::filesystem::create_directories(m_root.file("etc/netplan"));
        std::filesystem::create_directories(m_root.file("etc/cloud/cloud.cfg.d"));
    }
    // netplan generate on the rewritten root; empty when netplan is missing.
    std::string generate() {
        if (::access("/usr/sbin/netplan", X_OK) != 0) {
            return "skipped";
        }
        PosixProcessRunner runner;
        ProcessSpec spec;
        spec.argv = {"/usr/sbin/netplan", "generate", "--root-dir", m_root.path()};
        spec.env = default_tool_env();
        auto r = run_captured(runner, spec);
        EXPECT_TRUE(r.ok());
        EXPECT_EQ(r->exit.code, 0) << r->err;
        return r->err;
    }
    std::string networkd(const std::string& name) {
        return read_all(m_root.file("run/systemd/network/10-netplan-" + name + ".network"));
    }
    TempDir m_root;
};

TEST_F(GuestNet, KeepsTheUbuntuStaticConfigReKeyedToTheMac) {
    write_all(m_root.file("etc/netplan/00-installer-config.yaml"), k_ubuntu);
    auto plan =
        plan_guest_net(m_root.path(), {{"bc:24:11:aa:bb:01", "", Addressing::keep, {}, "", {}}});
    ASSERT_TRUE(plan.ok()) << plan.status().message();
    EXPECT_EQ(plan->nics[0].name, "ens18");  // the only ethernet
    EXPECT_EQ(plan->nics[0].addresses, std::vector<std::string>{"198.18.5.10/24"});
    EXPECT_EQ(plan->nics[0].gateway, "198.18.5.1");
    ASSERT_EQ(plan->warnings.size(), 1u);
    std::string diff = unified_diff(*plan);
    EXPECT_NE(diff.find("+++ b/etc/netplan/50-vmlift.yaml"), std::string::npos) << diff;
    EXPECT_NE(diff.find("+        macaddress: \"bc:24:11:aa:bb:01\""), std::string::npos) << diff;
    // Planning changed nothing.
    EXPECT_FALSE(std::filesystem::exists(m_root.file("etc/netplan/50-vmlift.yaml")));
    ASSERT_TRUE(apply_guest_net(m_root.path(), *plan).ok());
    EXPECT_FALSE(std::filesystem::exists(m_root.file("etc/netplan/00-installer-config.yaml")));
    EXPECT_EQ(read_all(m_root.file("etc/netplan/vmlift-backup/00-installer-config.yaml")),
              k_ubuntu);
    EXPECT_NE(read_all(m_root.file("etc/cloud/cloud.cfg.d/99-disable-network-config.cfg"))
                  .find("network: {config: disabled}"),
              std::string::npos);
    EXPECT_EQ(read_all(m_root.file("etc/systemd/network/10-vmlift-ens18.link")),
              "# Written by vmlift: keeps the name this NIC had before the migration.\n"
              "[Match]\nMACAddress=bc:24:11:aa:bb:01\n\n[Link]\nName=ens18\n");
    struct stat st {};
    ASSERT_EQ(::stat(m_root.file("etc/netplan/50-vmlift.yaml").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    // The real netplan accepts it and matches by MAC with the old name.
    if (generate() != "skipped") {
        std::string net = networkd("ens18");
        EXPECT_NE(net.find("MACAddress=bc:24:11:aa:bb:01"), std::string::npos) << net;
        EXPECT_NE(net.find("Address=198.18.5.10/24"), std::string::npos) << net;
        EXPECT_NE(net.find("Gateway=198.18.5.1"), std::string::npos) << net;
        EXPECT_NE(net.find("DNS=198.18.5.1"), std::string::npos) << net;
    }
    // A second run finds nothing to do.
    auto again =
        plan_guest_net(m_root.path(), {{"bc:24:11:aa:bb:01", "", Addressing::keep, {}, "", {}}});
    ASSERT_TRUE(again.ok()) << again.status().message();
    EXPECT_TRUE(again->changes.empty()) << unified_diff(*again);
}

TEST_F(GuestNet, TwoNicsDhcpAndStaticByOption) {
    write_all(m_root.file("etc/netplan/01-netcfg.yaml"), k_two);
    auto plan =
        plan_guest_net(m_root.path(), {{"bc:24:11:aa:bb:01", "", Addressing::dhcp, {}, "", {}},
                                       {"bc:24:11:aa:bb:02",
                                        "ens19",
                                        Addressing::static_address,
                                        {"198.18.6.20/24"},
                                        "198.18.6.1",
                                        {"198.18.6.1", "198.18.6.2"}}});
    ASSERT_TRUE(plan.ok()) << plan.status().message();
    EXPECT_EQ(plan->nics[0].name, "ens18");  // matched by MAC in the guest's config
    ASSERT_TRUE(apply_guest_net(m_root.path(), *plan).ok());
    auto json = plan->to_json();
    EXPECT_EQ(json["method"], "netplan");
    EXPECT_EQ(json["nics"][1]["addresses"], nlohmann::json::array({"198.18.6.20/24"}));
    if (generate() != "skipped") {
        EXPECT_NE(networkd("ens18").find("DHCP=ipv4"), std::string::npos) << networkd("ens18");
        std::string ens19 = networkd("ens19");
        EXPECT_NE(ens19.find("MACAddress=bc:24:11:aa:bb:02"), std::string::npos) << ens19;
        EXPECT_NE(ens19.find("Address=198.18.6.20/24"), std::string::npos);
        EXPECT_NE(ens19.find("DNS=198.18.6.2"), std::string::npos);
    }
}

// Proxmox's net0/net1 are ens18/ens19 in the guest: a config that names
// them without MACs is matched by that convention, and the plan says so.
TEST_F(GuestNet, NamesNicsBySlotConventionWhenTheConfigHasNoMacs) {
    write_all(m_root.file("etc/netplan/00-installer-config.yaml"),
              "network:\n  version: 2\n  ethernets:\n    ens19:\n      dhcp4: true\n"
              "    ens18:\n      addresses: [198.18.5.10/24]\n");
    GuestNic a{"bc:24:11:aa:bb:01", "", Addressing::keep, {}, "", {}, "ens18", "net0"};
    GuestNic b{"bc:24:11:aa:bb:02", "", Addressing::keep, {}, "", {}, "ens19", "net1"};
    auto plan = plan_guest_net(m_root.path(), {a, b});
    ASSERT_TRUE(plan.ok()) << plan.status().message();
    EXPECT_EQ(plan->nics[0].name, "ens18");
    EXPECT_EQ(plan->nics[0].addresses, std::vector<std::string>{"198.18.5.10/24"});
    EXPECT_EQ(plan->nics[1].name, "ens19");
    EXPECT_EQ(plan->nics[1].addressing, Addressing::dhcp);
    ASSERT_EQ(plan->warnings.size(), 2u);
    EXPECT_NE(plan->warnings[0].find("slot convention (net0 is ens18"), std::string::npos)
        << plan->warnings[0];

    // Without the convention the same guest is ambiguous.
    a.slot_name.clear();
    b.slot_name.clear();
    EXPECT_EQ(plan_guest_net(m_root.path(), {a, b}).status().code(), Code::invalid_input);

    // An interface of that name that carries another MAC is not this NIC.
    write_all(m_root.file("etc/netplan/00-installer-config.yaml"),
              "network:\n  version: 2\n  ethernets:\n    ens18:\n      match:\n"
              "        macaddress: bc:24:11:00:00:99\n      dhcp4: true\n"
              "    ens19:\n      dhcp4: true\n");
    a.slot_name = "ens18";
    b.slot_name = "ens19";
    auto other = plan_guest_net(m_root.path(), {a, b});
    EXPECT_EQ(other.status().code(), Code::invalid_input);
    EXPECT_NE(other.status().message().find("bc:24:11:aa:bb:01"), std::string::npos)
        << other.status().message();
}

TEST_F(GuestNet, RefusesWhatItCannotDoCleanly) {
    EXPECT_EQ(plan_guest_net(m_root.path(),
                             {{"bc:24:11:aa:bb:01", "ens18", Addressing::dhcp, {}, "", {}}})
                  .status()
                  .code(),
              Code::invalid_input);  // no netplan files
    write_all(m_root.file("etc/netplan/01-netcfg.yaml"), k_two);
    auto unknown =
        plan_guest_net(m_root.path(), {{"bc:24:11:aa:bb:99", "", Addressing::dhcp, {}, "", {}},
                                       {"bc:24:11:aa:bb:98", "", Addressing::dhcp, {}, "", {}}});
    EXPECT_NE(
        unknown.status().message().find("give its old name (--nic bc:24:11:aa:bb:99,name=ens18)"),
        std::string::npos)
        << unknown.status().message();
    auto keep = plan_guest_net(m_root.path(),
                               {{"bc:24:11:aa:bb:03", "ens20", Addressing::keep, {}, "", {}}});
    EXPECT_NE(keep.status().message().find("no address settings for ens20"), std::string::npos);
    write_all(m_root.file("etc/netplan/02-broken.yaml"), "network: [unclosed\n");
    auto broken = plan_guest_net(m_root.path(),
                                 {{"bc:24:11:aa:bb:01", "ens18", Addressing::dhcp, {}, "", {}}});
    EXPECT_NE(broken.status().message().find("02-broken.yaml is not valid YAML"),
              std::string::npos);
}

}  // namespace
}  // namespace vmlift

namespace vmlift {
namespace {

using testing_support::read_all;
using testing_support::TempDir;
using testing_support::write_all;

struct StackCase {
    const char* name;
    const char* method;
    const char* file;  // the guest's original config
    const char* text;
    const char* out_file;                   // what we write
    std::vector<const char*> out_contains;  // lines that must be there
};

class OtherStacks : public ::testing::TestWithParam<StackCase> {};

TEST_P(OtherStacks, KeepTheStaticConfigReKeyedToTheMacAndAreIdempotent) {
    const StackCase& c = GetParam();
    TempDir root;
    std::filesystem::create_directories(std::filesystem::path(root.file(c.file)).parent_path());
    write_all(root.file(c.file), c.text);
    std::vector<GuestNic> nics = {{"bc:24:11:aa:bb:01", "", Addressing::keep, {}, "", {}}};
    auto plan = plan_guest_net(root.path(), nics);
    ASSERT_TRUE(plan.ok()) << plan.status().message();
    EXPECT_EQ(plan->method, c.method);
    EXPECT_EQ(plan->nics[0].name, "ens18");
    EXPECT_EQ(plan->nics[0].addresses, std::vector<std::string>{"198.18.5.10/24"});
    EXPECT_EQ(plan->nics[0].gateway, "198.18.5.1");
    EXPECT_EQ(plan->nics[0].nameservers, std::vector<std::string>{"198.18.5.1"});
    ASSERT_TRUE(apply_guest_net(root.path(), *plan).ok());
    std::string out = read_all(root.file(c.out_file));
    for (const char* line : c.out_contains) {
        EXPECT_NE(out.find(line), std::string::npos) << "missing '" << line << "' in\n" << out;
    }
    EXPECT_NE(read_all(root.file("etc/systemd/network/10-vmlift-ens18.link")).find("Name=ens18"),
              std::string::npos);
    auto again = plan_guest_net(root.path(), nics);
    ASSERT_TRUE(again.ok()) << again.status().message();
    EXPECT_TRUE(again->changes.empty()) << unified_diff(*again);
    // DHCP by option replaces the static config.
    auto dhcp =
        plan_guest_net(root.path(), {{"bc:24:11:aa:bb:01", "ens18", Addressing::dhcp, {}, "", {}}});
    ASSERT_TRUE(dhcp.ok());
    ASSERT_TRUE(apply_guest_net(root.path(), *dhcp).ok());
    std::string after = read_all(root.file(c.out_file));
    EXPECT_EQ(after.find("198.18.5.10"), std::string::npos) << after;
}

INSTANTIATE_TEST_SUITE_P(
    Stacks, OtherStacks,
    ::testing::Values(
        StackCase{"ifupdown",
                  "ifupdown",
                  "etc/network/interfaces",
                  "source /etc/network/interfaces.d/*\n\nauto lo\niface lo inet loopback\n\n"
                  "allow-hotplug ens18\niface ens18 inet static\n\taddress 198.18.5.10\n"
                  "\tnetmask 255.255.255.0\n\tgateway 198.18.5.1\n\tdns-nameservers 198.18.5.1\n",
                  "etc/network/interfaces",
                  {"iface ens18 inet static", "address 198.18.5.10/24", "gateway 198.18.5.1",
                   "dns-nameservers 198.18.5.1", "iface lo inet loopback"}},
        StackCase{"keyfile",
                  "networkmanager",
                  "etc/NetworkManager/system-connections/Wired connection 1.nmconnection",
                  "[connection]\nid=Wired connection 1\nuuid=1f8e3a52-0d6e-4c7a-9a1e-4c1d5e6f7a8b\n"
                  "type=ethernet\ninterface-name=ens18\n\n[ethernet]\n\n[ipv4]\n"
                  "address1=198.18.5.10/24,198.18.5.1\ndns=198.18.5.1;\nmethod=manual\n\n"
                  "[ipv6]\nmethod=auto\n",
                  "etc/NetworkManager/system-connections/vmlift-ens18.nmconnection",
                  {"interface-name=ens18", "mac-address=bc:24:11:aa:bb:01", "method=manual",
                   "address1=198.18.5.10/24,198.18.5.1", "dns=198.18.5.1;"}},
        StackCase{"networkd",
                  "systemd-networkd",
                  "etc/systemd/network/10-ens18.network",
                  "[Match]\nName=ens18\n\n[Network]\nAddress=198.18.5.10/24\n"
                  "Gateway=198.18.5.1\nDNS=198.18.5.1\n",
                  "etc/systemd/network/20-vmlift-ens18.network",
                  {"MACAddress=bc:24:11:aa:bb:01", "Address=198.18.5.10/24", "Gateway=198.18.5.1",
                   "DNS=198.18.5.1"}},
        StackCase{
            "ifcfg",
            "ifcfg",
            "etc/sysconfig/network-scripts/ifcfg-ens18",
            "TYPE=Ethernet\nBOOTPROTO=none\nNAME=ens18\nDEVICE=ens18\nONBOOT=yes\n"
            "IPADDR=198.18.5.10\nNETMASK=255.255.255.0\nGATEWAY=198.18.5.1\nDNS1=198.18.5.1\n",
            "etc/sysconfig/network-scripts/ifcfg-ens18",
            {"HWADDR=bc:24:11:aa:bb:01", "IPADDR=198.18.5.10", "PREFIX=24", "GATEWAY=198.18.5.1",
             "DNS1=198.18.5.1", "DEVICE=ens18"}}),
    [](const ::testing::TestParamInfo<StackCase>& p) { return std::string(p.param.name); });

}  // namespace
}  // namespace vmlift

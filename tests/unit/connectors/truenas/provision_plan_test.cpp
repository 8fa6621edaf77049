#include "connectors/truenas/provision_plan.h"
#include "connectors/truenas/rest.h"

#include <gtest/gtest.h>

namespace vmlift::truenas {
namespace {

VmSpec web01() {
    VmSpec s;
    s.source = "pve://pve1/120";
    s.vmid = 120;
    s.name = "web-01.lan";
    s.sockets = 2;
    s.cores = 2;
    s.vcpus = 4;
    s.memory_mib = 4096;
    s.firmware = Firmware::uefi;
    s.secure_boot = true;
    s.uuid = "5f1c8e42-1d6a-4f0e-9a51-0c7a3e9d2b11";
    s.os_type = "l26";
    s.disks = {{"virtio1", "virtio", "local:120/vm-120-disk-3.raw", "local", "raw", 536870912 + 1,
                "", DiskRole::data, -1},
               {"sata0", "sata", "local-lvm:vm-120-disk-1", "local-lvm", "raw", 21474836480ULL, "",
                DiskRole::data, 0},
               {"efidisk0", "efi", "local-lvm:vm-120-disk-0", "local-lvm", "raw", 4194304, "",
                DiskRole::efivars, -1},
               {"tpmstate0", "tpm", "local-lvm:vm-120-disk-2", "local-lvm", "raw", 4194304, "",
                DiskRole::tpm, -1}};
    s.nics = {{"net0", "virtio", "bc:24:11:aa:bb:01", "vmbr0", 20, 0, {}},
              {"net1", "e1000", "bc:24:11:aa:bb:02", "vmbr1", -1, 9000, {}}};
    return s;
}

TEST(ProvisionPlan, MapsTheSpecFaithfullyInTheShapeOfEachRelease) {
    ProvisionOptions o;
    o.run_id = "20261123-ab12";
    o.bridge_map = {{"vmbr0", "br0"}};
    o.default_bridge = "";
    auto target = parse_truenas_url("truenas://nas.lan/tank/vms");
    ASSERT_TRUE(target.ok());
    auto plan = plan_provision(web01(), *target, Release::v25_10, o);
    ASSERT_TRUE(plan.ok()) << plan.status().message();
    EXPECT_EQ(plan->vm_name, "web_01_lan");
    ASSERT_EQ(plan->calls.size(), 2u + 1u + 2u + 2u);  // zvols, vm, disks, nics
    const auto& z0 = plan->calls[0].params[0];
    EXPECT_EQ(z0["name"], "tank/vms/web_01_lan-virtio1");
    EXPECT_EQ(z0["volsize"], 536870912ULL + 16384);  // rounded up to 16K
    EXPECT_EQ(z0["sparse"], true);
    EXPECT_EQ(z0["comments"], "vmlift run 20261123-ab12");
    const auto& vm = plan->calls[2].params[0];
    EXPECT_EQ(plan->calls[2].method, "vm.create");
    EXPECT_EQ(vm["vcpus"], 2);
    EXPECT_EQ(vm["cores"], 2);
    EXPECT_EQ(vm["memory"], 4096);
    EXPECT_EQ(vm["bootloader"], "UEFI");
    EXPECT_EQ(vm["enable_secure_boot"], true);
    EXPECT_EQ(vm["trusted_platform_module"], true);
    EXPECT_EQ(vm["autostart"], false);
    EXPECT_EQ(vm["uuid"], "5f1c8e42-1d6a-4f0e-9a51-0c7a3e9d2b11");
    // The boot disk (sata0, boot index 0) comes first, as AHCI.
    const auto& d0 = plan->calls[3].params[0];
    EXPECT_EQ(d0["attributes"]["dtype"], "DISK");
    EXPECT_EQ(d0["attributes"]["path"], "/dev/zvol/tank/vms/web_01_lan-sata0");
    EXPECT_EQ(d0["attributes"]["type"], "AHCI");
    EXPECT_EQ(d0["order"], 1001);
    EXPECT_EQ(d0["vm"], "${vm.id}");
    EXPECT_EQ(plan->calls[4].params[0]["attributes"]["type"], "VIRTIO");
    const auto& n0 = plan->calls[5].params[0]["attributes"];
    EXPECT_EQ(n0["dtype"], "NIC");
    EXPECT_EQ(n0["type"], "VIRTIO");
    EXPECT_EQ(n0["mac"], "bc:24:11:aa:bb:01");
    EXPECT_EQ(n0["nic_attach"], "br0");
    EXPECT_EQ(plan->calls[6].params[0]["attributes"]["type"], "E1000");
    EXPECT_EQ(plan->calls[6].params[0]["attributes"]["nic_attach"], "vmbr1");
    std::string notes;
    for (const auto& n : plan->notes) {
        notes += n + "\n";
    }
    EXPECT_NE(notes.find("efidisk0 holds the UEFI variables"), std::string::npos);
    EXPECT_NE(notes.find("tpmstate0 holds TPM state"), std::string::npos);
    EXPECT_NE(notes.find("net0 is tagged VLAN 20"), std::string::npos);

    auto legacy = plan_provision(web01(), *target, Release::v24_10, o);
    ASSERT_TRUE(legacy.ok());
    const auto& l0 = legacy->calls[3];
    EXPECT_EQ(l0.params[0]["dtype"], "DISK");
    EXPECT_FALSE(l0.params[0]["attributes"].contains("dtype"));
    EXPECT_EQ(l0.rest_path, "/api/v2.0/vm/device");
    EXPECT_FALSE(legacy->calls[2].params[0].contains("enable_secure_boot"));
}

TEST(ProvisionPlan, InputsAreCheckedAndNamed) {
    EXPECT_EQ(parse_release("25.04.1").status().code(), Code::invalid_input);
    EXPECT_NE(parse_release("25.04.0").status().message().find("25.04.2 or later"),
              std::string::npos);
    EXPECT_EQ(*parse_release("25.10.6"), Release::v25_10);
    EXPECT_EQ(*parse_release("24.10.2.4"), Release::v24_10);
    EXPECT_EQ(*parse_release("26"), Release::v26);
    EXPECT_FALSE(parse_release("23.10").ok());
    EXPECT_FALSE(parse_truenas_url("truenas://nas").ok());
    EXPECT_EQ(parse_truenas_url("truenas://nas/tank")->dataset, "tank");
    EXPECT_EQ(legal_vm_name("db 01/prod"), "db_01_prod");
    EXPECT_EQ(zvol_device_path("tank/test zvol"), "/dev/zvol/tank/test+zvol");
    VmSpec s = web01();
    s.disks[0].size_bytes = 0;
    auto target = parse_truenas_url("truenas://nas/tank");
    auto bad = plan_provision(s, *target, Release::v26, {});
    EXPECT_EQ(bad.status().code(), Code::invalid_input);
    EXPECT_NE(bad.status().message().find("virtio1 has no size"), std::string::npos);
}

}  // namespace
}  // namespace vmlift::truenas

namespace vmlift::truenas {
namespace {

TEST(RestRoute, FollowsTheMiddlewaresMapping) {
    auto q = rest_route("pool.dataset.query", {{{"id", "=", "tank/vms/web 01"}}});
    EXPECT_EQ(q->method, HttpMethod::get);
    EXPECT_EQ(q->path, "/pool/dataset?id=tank%2Fvms%2Fweb%2001");
    auto create = rest_route("vm.device.create", {{{"dtype", "NIC"}, {"vm", 3}}});
    EXPECT_EQ(create->method, HttpMethod::post);
    EXPECT_EQ(create->path, "/vm/device");
    EXPECT_EQ(nlohmann::json::parse(create->body)["vm"], 3);
    auto del = rest_route("pool.dataset.delete", {"tank/vms/a"});
    EXPECT_EQ(del->method, HttpMethod::del);
    EXPECT_EQ(del->path, "/pool/dataset/id/tank%2Fvms%2Fa");
    EXPECT_EQ(rest_route("vm.get_instance", {7})->path, "/vm/id/7");
    auto stop = rest_route("vm.stop", {7, {{"force", true}}});
    EXPECT_EQ(stop->path, "/vm/id/7/stop");
    EXPECT_EQ(stop->body, R"({"force":true})");
    EXPECT_EQ(rest_route("system.version_short", nlohmann::json::array())->method, HttpMethod::get);
    EXPECT_EQ(rest_route("system.version_short", nlohmann::json::array())->path,
              "/system/version_short");
    EXPECT_FALSE(rest_route("vm.query", {{{"name", "^", "web"}}}).ok());
}

}  // namespace
}  // namespace vmlift::truenas

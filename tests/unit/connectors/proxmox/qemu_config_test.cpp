// Every qemu-server config in tests/data parses into the VmSpec its text
// describes; the expectations below were read off each file by hand.
#include "connectors/proxmox/qemu_config.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "tests/support/temp_dir.h"

namespace vmlift::proxmox {
namespace {

using testing_support::read_all;

const std::string k_data = VMLIFT_TEST_DATA "/proxmox/";

StorageTable mock_storage() {
    auto t = parse_storage_cfg(read_all(k_data + "storage/cfg2cmd-mock-storage.cfg"));
    EXPECT_TRUE(t.ok()) << t.status().message();
    return *t;
}

struct Expect {
    std::string file;
    std::string name;
    std::string firmware;
    std::string machine;
    int vcpus;
    uint64_t memory_mib;
    std::string disks;                  // "key:role:size_bytes:format ..." in device order
    std::string nics;                   // "key:model:mac:bridge ..."
    std::string boot;                   // "a;b;c"
    std::vector<std::string> warnings;  // substrings that must appear
};

std::string disks_of(const VmSpec& s) {
    std::string out;
    for (const auto& d : s.disks) {
        out += (out.empty() ? "" : " ") + d.key + ":" + to_string(d.role) + ":" +
               std::to_string(d.size_bytes) + ":" + d.format;
    }
    return out;
}

std::string nics_of(const VmSpec& s) {
    std::string out;
    for (const auto& n : s.nics) {
        out += (out.empty() ? "" : " ") + n.key + ":" + n.model + ":" + n.mac + ":" + n.bridge;
    }
    return out;
}

std::string join(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& x : v) {
        out += (out.empty() ? "" : ";") + x;
    }
    return out;
}

const std::string k100k = std::to_string(104858ULL * 1024);  // size=104858K

std::string repeat_disks(const std::vector<int>& idx, const std::string& fmt) {
    std::string out;
    for (int i : idx) {
        out += (out.empty() ? "" : " ") + std::string("scsi") + std::to_string(i) +
               ":data:" + k100k + ":" + fmt;
    }
    return out;
}

class ConfigFiles : public ::testing::TestWithParam<Expect> {};

TEST_P(ConfigFiles, ParseIntoTheDocumentedSpec) {
    const Expect& e = GetParam();
    auto config = parse_qemu_config(read_all(k_data + e.file));
    ASSERT_TRUE(config.ok()) << config.status().message();
    StorageTable storage = mock_storage();
    VmSpec s = vm_spec_from_config(config->current, {"file:x", 8006, "", &storage});
    EXPECT_EQ(s.name, e.name);
    EXPECT_EQ(to_string(s.firmware), e.firmware);
    EXPECT_EQ(s.machine, e.machine);
    EXPECT_EQ(s.vcpus, e.vcpus);
    EXPECT_EQ(s.memory_mib, e.memory_mib);
    EXPECT_EQ(disks_of(s), e.disks);
    EXPECT_EQ(nics_of(s), e.nics);
    EXPECT_EQ(join(s.boot_order), e.boot);
    std::string all;
    for (const auto& w : s.warnings) {
        all += w + "\n";
    }
    for (const auto& w : e.warnings) {
        EXPECT_NE(all.find(w), std::string::npos) << "missing warning '" << w << "' in:\n" << all;
    }
    // The JSON form round-trips.
    auto back = vm_spec_from_json(to_json(s));
    ASSERT_TRUE(back.ok()) << back.status().message();
    EXPECT_EQ(to_json(*back), to_json(s));
}

const std::string k_all14 = repeat_disks({0, 1, 2, 3}, "raw") + " " +
                            repeat_disks({4, 5, 6, 7, 8, 9, 10, 11, 12, 13}, "raw");

INSTANTIATE_TEST_SUITE_P(
    Reference, ConfigFiles,
    ::testing::Values(
        Expect{"qemu-server-configs/cfg2cmd__aio.conf",
               "VM8006",
               "bios",
               "pc",
               1,
               512,
               k_all14,
               "",
               "scsi0",
               {}},
        Expect{"qemu-server-configs/cfg2cmd__efidisk-on-rbd.conf",
               "VM8006",
               "uefi",
               "pc",
               1,
               512,
               "efidisk0:efivars:131072:raw",
               "net0:virtio:2e:01:68:f9:9c:87:vmbr0",
               "net0",
               {"efidisk0: no host path: storage 'rbd-store' is of type rbd"}},
        Expect{"qemu-server-configs/cfg2cmd__ide.conf",
               "VM8006",
               "bios",
               "pc",
               2,
               512,
               "scsi0:data:10737418240:qcow2",
               "net0:virtio:2e:01:68:f9:9c:87:vmbr0",
               "scsi0;ide0;net0",
               {"ide0 is a CD-ROM (local:iso/zero.iso)", "ide3 is a CD-ROM", "qcow2 format"}},
        Expect{"qemu-server-configs/cfg2cmd__pinned-version-pxe-pve.conf",
               "pinned",
               "bios",
               "pc-q35-4.1+pve2.pxe",
               3,
               1024,
               ("scsi0:data:" + k100k + ":raw"),
               "net0:virtio:a2:c0:43:77:08:a1:vmbr0",
               "scsi0;ide2;net0",
               {"ide2 is a CD-ROM (none)"}},
        Expect{"qemu-server-configs/cfg2cmd__q35-linux-hostpci-mapping.conf",
               "VM8006",
               "uefi",
               "q35",
               2,
               512,
               "efidisk0:efivars:131072:qcow2",
               "net0:virtio:2e:01:68:f9:9c:87:vmbr0",
               "net0",
               {"hostpci0 passes through PCI device 'mapping=someNic'", "hostpci2"}},
        Expect{"qemu-server-configs/cfg2cmd__q35-linux-hostpci.conf",
               "VM8006",
               "uefi",
               "q35",
               2,
               512,
               "efidisk0:efivars:131072:qcow2",
               "net0:virtio:2e:01:68:f9:9c:87:vmbr0",
               "net0",
               {"hostpci4 passes through PCI device 'd0:17.0,pcie=1,rombar=0'", "hostpci7"}},
        Expect{"qemu-server-configs/cfg2cmd__q35-simple.conf",
               "VM8006",
               "uefi",
               "q35",
               2,
               512,
               "efidisk0:efivars:131072:qcow2",
               "net0:virtio:2e:01:68:f9:9c:87:vmbr0",
               "net0",
               {}},
        Expect{"qemu-server-configs/cfg2cmd__q35-win10-hostpci.conf",
               "VM8006",
               "uefi",
               "q35",
               2,
               512,
               "efidisk0:efivars:131072:qcow2",
               "net0:virtio:2e:01:68:f9:9c:87:vmbr0",
               "net0",
               {"hostpci1 passes through"}},
        Expect{"qemu-server-configs/cfg2cmd__qga-fs-freeze.conf",
               "VM8006",
               "bios",
               "pc",
               1,
               512,
               "",
               "",
               "",
               {}},
        Expect{"qemu-server-configs/cfg2cmd__scsihw-virtio-scsi-single.conf",
               "simple",
               "bios",
               "pc",
               1,
               512,
               repeat_disks({0, 1, 5, 9, 16}, "raw"),
               "",
               "scsi0",
               {}},
        Expect{"qemu-server-configs/cfg2cmd__seabios_serial.conf",
               "seabiosserial",
               "bios",
               "pc",
               3,
               768,
               ("scsi0:data:" + k100k + ":qcow2"),
               "net0:virtio:a2:c0:43:77:08:a0:vmbr0",
               "scsi0;ide2;net0",
               {}},
        Expect{"qemu-server-configs/cfg2cmd__simple-backingchain.conf",
               "simple",
               "bios",
               "pc",
               1,
               512,
               "scsi0:data:1073741824:qcow2 scsi1:data:1073741824:qcow2",
               "",
               "scsi0",
               {}},
        Expect{"qemu-server-configs/cfg2cmd__simple-disk-passthrough.conf",
               "simple",
               "bios",
               "pc",
               3,
               768,
               "scsi0:data:0:raw scsi1:data:0:raw",
               "net0:virtio:a2:c0:43:77:08:a0:vmbr0",
               "scsi0;ide2;net0",
               {"scsi0 passes through /dev/sda", "scsi1 passes through /mnt/file.raw",
                "ide2 is a CD-ROM (cdrom)"}},
        Expect{"qemu-server-configs/cfg2cmd__simple-lvm.conf",
               "simple",
               "bios",
               "pc",
               1,
               512,
               repeat_disks({0, 1, 2, 3}, "raw"),
               "",
               "scsi0",
               {}},
        Expect{"qemu-server-configs/cfg2cmd__simple-lvmthin.conf",
               "simple",
               "bios",
               "pc",
               1,
               512,
               repeat_disks({0, 1, 2, 3}, "raw"),
               "",
               "scsi0",
               {}},
        Expect{"qemu-server-configs/cfg2cmd__simple-rbd.conf",
               "simple",
               "bios",
               "pc",
               3,
               768,
               repeat_disks({0, 1, 2, 3, 4, 5, 6, 7}, "raw"),
               "net0:virtio:a2:c0:43:77:08:a0:vmbr0",
               "scsi0;ide2;net0",
               {"scsi0: no host path"}},
        Expect{"qemu-server-configs/cfg2cmd__simple-zfs-over-iscsi.conf",
               "simple",
               "bios",
               "pc",
               3,
               768,
               repeat_disks({0, 1, 2, 3}, "raw"),
               "net0:virtio:a2:c0:43:77:08:a0:vmbr0",
               "scsi0;ide2;net0",
               {"is of type zfs"}},
        Expect{"qemu-server-configs/cfg2cmd__simple1.conf",
               "simple",
               "bios",
               "pc",
               3,
               768,
               ("scsi0:data:" + k100k + ":qcow2"),
               "net0:virtio:a2:c0:43:77:08:a0:vmbr0",
               "scsi0;ide2;net0",
               {}},
        Expect{"qemu-server-configs/parse-config-input__locked.conf",
               "apache",
               "bios",
               "pc",
               1,
               512,
               "scsi0:data:4294967296:qcow2",
               "net0:virtio:92:38:11:fd:ed:87:vmbr0",
               "scsi0;ide2;net0",
               {"locked (backup)", "unused7 (mydir:1422/vm-1422-disk-8.qcow2) is an unused"}},
        Expect{"qemu-server-configs/parse-config-input__plain.conf",
               "apache",
               "bios",
               "pc",
               1,
               512,
               "scsi0:data:4294967296:qcow2",
               "net0:virtio:92:38:11:fd:ed:87:vmbr0",
               "scsi0;ide2;net0",
               {}},
        Expect{"qemu-server-configs/parse-config-input__regular-vm-efi.conf",
               "eficloneclone",
               "uefi",
               "pc",
               1,
               2048,
               "scsi0:data:4294967296:raw efidisk0:efivars:131072:qcow2",
               "net0:virtio:7a:6c:a5:8b:11:93:vmbr0",
               "scsi0;ide2;net0",
               {"ide2 is a CD-ROM (local:iso/debian-10.6.0-amd64-netinst.iso)",
                "scsi0: no host path: storage 'rbdkvm' is not defined"}},
        Expect{"qemu-server-configs/snapshot-input__commit__102.conf",
               "win",
               "bios",
               "pc",
               4,
               8192,
               "ide0:data:34359738368:raw",
               "net0:e1000:12:34:56:78:90:12:somebr0",
               "ide0;ide2;net0",
               {"locked (snapshot)"}},
        Expect{"constructed/120-uefi-tpm-cloudinit-pending.conf",
               "web01",
               "uefi",
               "pc-q35-8.1",
               4,
               4096,
               "virtio0:data:21474836480:raw virtio1:data:536870912:raw "
               "efidisk0:efivars:4194304:raw tpmstate0:tpm:4194304:raw",
               "net0:virtio:bc:24:11:aa:bb:01:vmbr0 net1:e1000:bc:24:11:aa:bb:02:vmbr1",
               "virtio0;net0;net1",
               {"ide2 is a cloud-init drive (local-lvm:vm-120-cloudinit)",
                "unknown config key 'frobnicate'"}}),
    [](const ::testing::TestParamInfo<Expect>& param) {
        std::string name = std::filesystem::path(param.param.file).stem().string();
        for (auto& c : name) {
            if (!std::isalnum(static_cast<unsigned char>(c))) {
                c = '_';
            }
        }
        return name;
    });

TEST(QemuConfig, EveryReferenceConfigIsCoveredAbove) {
    size_t files = 0;
    for (const auto& entry : std::filesystem::directory_iterator(k_data + "qemu-server-configs")) {
        auto config = parse_qemu_config(read_all(entry.path()));
        EXPECT_TRUE(config.ok()) << entry.path() << ": " << config.status().message();
        ++files;
    }
    EXPECT_EQ(files, 22u);  // one Expect each in the table above
}

TEST(QemuConfig, SectionsPendingCloudinitAndSnapshots) {
    auto c =
        parse_qemu_config(read_all(k_data + "constructed/120-uefi-tpm-cloudinit-pending.conf"));
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(c->description, "Web server, lifted with vmlift: keeps two NICs");
    EXPECT_EQ(c->pending.at("cores"), "4");
    EXPECT_EQ(c->pending.at("memory"), "8192");
    EXPECT_EQ(c->pending_delete, std::vector<std::string>{"cpu"});
    EXPECT_EQ(c->cloudinit.at("ipconfig0"), "ip=198.18.5.10/24,gw=198.18.5.1");
    EXPECT_EQ(c->current.at("cores"), "2");  // pending values are not current
    VmSpec s = vm_spec_from_config(c->current, {"file:x", 120, "", nullptr});
    EXPECT_TRUE(s.secure_boot);
    EXPECT_TRUE(s.agent);
    EXPECT_EQ(s.cpu, "x86-64-v2-AES");
    EXPECT_EQ(s.uuid, "5f1c8e42-1d6a-4f0e-9a51-0c7a3e9d2b11");
    ASSERT_EQ(s.nics.size(), 2u);
    EXPECT_EQ(s.nics[0].vlan, 20);
    EXPECT_EQ(s.nics[1].mtu, 9000);
    EXPECT_EQ(s.nics[0].slot_name, "ens18");  // PCI slot 18 (qemu-server's PCI map)
    EXPECT_EQ(s.nics[1].slot_name, "ens19");
    EXPECT_EQ(vm_spec_from_config({{"net6", "virtio=BC:24:11:AA:BB:07,bridge=vmbr0"}},
                                  {"file:x", 121, "", nullptr})
                  .nics[0]
                  .slot_name,
              "")
        << "net6 and later sit behind a bridge: no convention";
    EXPECT_EQ(s.disks[0].boot_index, 0);
    EXPECT_EQ(s.disks[1].boot_index, -1);

    auto snaps = parse_qemu_config(
        read_all(k_data + "qemu-server-configs/cfg2cmd__simple-backingchain.conf"));
    ASSERT_TRUE(snaps.ok());
    EXPECT_EQ(snaps->snapshots.size(), 3u);
    EXPECT_EQ(snaps->current.at("parent"), "snap3");
    EXPECT_EQ(snaps->snapshots.at("snap2").at("snaptime"), "1748933043");
}

TEST(QemuConfig, HostPathsFollowTheStorageType) {
    StorageTable storage = mock_storage();
    auto path = [&](const std::string& file, const std::string& key = "scsi0") {
        VmSpec s = vm_spec_from_config({{key, file + ",size=1G"}}, {"x", 1, "", &storage});
        return s.disks.empty() ? std::string("<none>") : s.disks[0].host_path;
    };
    EXPECT_EQ(path("local:8006/vm-8006-disk-0.qcow2"),
              "/var/lib/vz/images/8006/vm-8006-disk-0.qcow2");
    EXPECT_EQ(path("local-lvm:vm-8006-disk-0"), "/dev/pve/vm-8006-disk-0");
    EXPECT_EQ(path("lvm-store:vm-8006-disk-0"), "/dev/pve/vm-8006-disk-0");
    EXPECT_EQ(path("krbd-store:vm-8006-disk-0"), "/dev/rbd/apool/vm-8006-disk-0");
    EXPECT_EQ(path("rbd-store:vm-8006-disk-0"), "");
    EXPECT_EQ(path("cifs-store:8006/vm-8006-disk-4.raw"),
              "/mnt/pve/cifs-store/images/8006/vm-8006-disk-4.raw");
    StorageTable defaults = default_storage_table();
    VmSpec z = vm_spec_from_config({{"virtio0", "local-zfs:vm-1-disk-0,size=8G"}},
                                   {"x", 1, "", &defaults});
    ASSERT_EQ(z.disks.size(), 1u);
    EXPECT_EQ(z.disks[0].host_path, "/dev/zvol/rpool/data/vm-1-disk-0");
}

TEST(QemuConfig, EveryStorageCfgExampleParses) {
    auto t = parse_storage_cfg(read_all(k_data + "storage/storage.cfg-examples-from-pve-docs.cfg"));
    ASSERT_TRUE(t.ok()) << t.status().message();
    ASSERT_NE(t->find("vmdata"), nullptr);
    EXPECT_EQ(t->find("vmdata")->type, "zfspool");
    EXPECT_EQ(t->find("vmdata")->props.at("pool"), "tank/vmdata");
    EXPECT_EQ(t->find("myspace")->props.at("vgname"), "myspace");
    EXPECT_EQ(t->find("lio")->props.at("sparse"), "1");
    EXPECT_FALSE(parse_storage_cfg("\tpath /x\n").ok());
}

TEST(QemuConfig, ValuesAndDefaults) {
    EXPECT_EQ(parse_disk_size("104858K"), 104858ULL * 1024);
    EXPECT_EQ(parse_disk_size("4G"), 4ULL << 30);
    EXPECT_EQ(parse_disk_size("1T"), 1ULL << 40);
    EXPECT_EQ(parse_disk_size("528K"), 528ULL * 1024);
    EXPECT_EQ(parse_disk_size("12345"), 12345u);
    EXPECT_EQ(parse_disk_size("1.5G"), 3ULL << 29);
    EXPECT_FALSE(parse_disk_size("4 GB"));
    EXPECT_FALSE(parse_disk_size(""));
    VmSpec s = vm_spec_from_config(
        {{"memory", "current=3072"}, {"vcpus", "3"}, {"cores", "2"}, {"sockets", "2"}},
        {"x", 7, "", nullptr});
    EXPECT_EQ(s.memory_mib, 3072u);
    EXPECT_EQ(s.vcpus, 3);
    EXPECT_EQ(s.name, "VM7");
    EXPECT_EQ(s.cpu, "kvm64");
    EXPECT_EQ(s.os_type, "other");
    auto bad = vm_spec_from_config({{"net0", "virtio=zz:00,bridge=vmbr0"}}, {"x", 7, "", nullptr});
    ASSERT_EQ(bad.nics.size(), 1u);
    EXPECT_EQ(bad.nics[0].mac, "");
    EXPECT_FALSE(parse_qemu_config("# only a comment\n").ok());
    auto odd = parse_qemu_config("name: a\nthis is not a line\nname: b\n");
    ASSERT_TRUE(odd.ok());
    EXPECT_EQ(odd->current.at("name"), "b");
    EXPECT_EQ(odd->warnings.size(), 2u);
}

TEST(QemuConfig, ApiConfigBodiesParse) {
    for (const char* file :
         {"GET_qemu_config.pve8x.json", "GET_qemu_config.many-devices.pve9x.json"}) {
        auto body = nlohmann::json::parse(read_all(k_data + "api-responses/go-proxmox/" + file));
        auto config = config_map_from_json(body["data"]);
        ASSERT_TRUE(config.ok()) << file;
        VmSpec s = vm_spec_from_config(*config, {"pve://x/101", 101, "node1", nullptr});
        EXPECT_FALSE(s.nics.empty()) << file;
    }
    auto body = nlohmann::json::parse(
        read_all(k_data + "api-responses/go-proxmox/GET_qemu_config.many-devices.pve9x.json"));
    VmSpec s = vm_spec_from_config(*config_map_from_json(body["data"]),
                                   {"pve://x/101", 101, "node1", nullptr});
    EXPECT_EQ(s.name, "matt");
    EXPECT_EQ(s.memory_mib, 2048u);
    EXPECT_EQ(disks_of(s),
              "ide0:data:0:qcow2 sata0:data:34359738368:raw scsi0:data:34359738368:raw "
              "virtio0:data:68719476736:raw");
    EXPECT_EQ(join(s.boot_order), "scsi0;ide2;net0");
    std::string all;
    for (const auto& w : s.warnings) {
        all += w + "\n";
    }
    for (const char* w : {"unused0", "hostpci0", "usb0", "parallel0", "ide2 is a CD-ROM"}) {
        EXPECT_NE(all.find(w), std::string::npos) << w << " in\n" << all;
    }
    EXPECT_EQ(all.find("serial0"), std::string::npos);  // a socket is not passthrough
    EXPECT_EQ(all.find("unknown config key"), std::string::npos) << all;
}

}  // namespace
}  // namespace vmlift::proxmox

// Proxmox storage definitions (/etc/pve/storage.cfg, or the API's /storage)
// and where a volume of each storage type lives on the host.
//
// Contract
//   parse_storage_cfg() reads storage.cfg: `TYPE: ID` headers followed by
//   indented `key value` lines (comments and blank lines skipped). It fails
//   with invalid_input naming the line for a property outside a section.
//   StorageTable::host_path() maps `STORAGE:VOLNAME` to the block device or
//   file that holds it on the node, following PVE's plugins: dir, nfs, cifs,
//   glusterfs, btrfs → PATH/images/VOLNAME; lvm, lvmthin → /dev/VG/VOLNAME;
//   zfspool → /dev/zvol/POOL/VOLNAME; rbd with krbd → /dev/rbd/POOL/VOLNAME.
//   Anything else (rbd without krbd, zfs over iSCSI, iscsi) has no local
//   path: nullopt, with the reason in *why.
//   default_storage_table() is a fresh installation's storage.cfg (local
//   dir /var/lib/vz, local-lvm lvmthin pve/data, local-zfs rpool/data).
// Thread safety: values.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "engine/status.h"

namespace vmlift::proxmox {

struct StorageDef {
    std::string id;
    std::string type;  // dir, lvmthin, lvm, zfspool, rbd, nfs, cifs, zfs, iscsi, ...
    std::map<std::string, std::string> props;
};

class StorageTable {
  public:
    void add(StorageDef def) { m_defs[def.id] = std::move(def); }
    const StorageDef* find(const std::string& id) const;
    size_t size() const { return m_defs.size(); }
    std::optional<std::string> host_path(const std::string& storage, const std::string& volname,
                                         std::string* why) const;

  private:
    std::map<std::string, StorageDef> m_defs;
};

Result<StorageTable> parse_storage_cfg(const std::string& text);
StorageTable default_storage_table();

}  // namespace vmlift::proxmox

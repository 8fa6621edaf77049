// Libvirt domain XML (https://libvirt.org/formatdomain.html), as much of it
// as the hooks need: the domain's name and the host paths of its disks.
//
// Contract
//   parse_domain_xml() reads <domain><name> and, for every
//   <devices><disk> of type file, block or volume-less network, the
//   <source file=...>, <source dev=...> or <source name=...> attribute
//   (cdroms without media have none and are skipped). Malformed XML is
//   invalid_input with pugixml's description and offset.
// Thread safety: pure.
#pragma once

#include <string>
#include <vector>

#include "engine/status.h"

namespace vmlift::libvirt {

struct DomainDisks {
    std::string name;
    std::vector<std::string> disk_paths;
};

Result<DomainDisks> parse_domain_xml(const std::string& xml);

}  // namespace vmlift::libvirt

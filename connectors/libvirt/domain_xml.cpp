#include "connectors/libvirt/domain_xml.h"

#include <pugixml.hpp>

namespace vmlift::libvirt {

Result<DomainDisks> parse_domain_xml(const std::string& xml) {
    pugi::xml_document doc;
    pugi::xml_parse_result parsed = doc.load_buffer(xml.data(), xml.size());
    if (!parsed) {
        return Status(Code::invalid_input, std::string("domain XML: ") + parsed.description() +
                                               " at offset " + std::to_string(parsed.offset));
    }
    pugi::xml_node domain = doc.child("domain");
    if (!domain) {
        return Status(Code::invalid_input, "domain XML has no <domain> element");
    }
    DomainDisks out;
    out.name = domain.child_value("name");
    for (pugi::xml_node disk : domain.child("devices").children("disk")) {
        pugi::xml_node source = disk.child("source");
        for (const char* attr : {"file", "dev", "name"}) {
            if (pugi::xml_attribute a = source.attribute(attr)) {
                out.disk_paths.push_back(a.value());
                break;
            }
        }
    }
    return out;
}

}  // namespace vmlift::libvirt

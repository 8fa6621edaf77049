// Reading loosely typed JSON from vendor APIs, which send the same field as a
// string on one release and a number on another.
//
// Contract
//   json_text(j, key): j[key] as text: a string as it is, any other value as
//   its JSON form (1, true, {...}); "" when j is not an object, or the key is
//   missing or null.
// Thread safety: pure.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace vmlift {

inline std::string json_text(const nlohmann::json& j, const char* key) {
    if (!j.is_object() || !j.contains(key) || j[key].is_null()) {
        return {};
    }
    return j[key].is_string() ? j[key].get<std::string>() : j[key].dump();
}

}  // namespace vmlift

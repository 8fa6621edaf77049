// Base64 (RFC 4648, standard alphabet, with padding).
//
// Contract
//   base64_encode(bytes) returns one line without newlines.
//   base64_decode(text) ignores ASCII whitespace (so `base64` tool output
//   with its 76-column lines decodes as is) and returns invalid_input for
//   any other character outside the alphabet, misplaced padding or a
//   length that is not a whole number of quads.
// Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "engine/status.h"

namespace vmlift {

std::string base64_encode(std::string_view bytes);
Result<std::string> base64_decode(std::string_view text);

}  // namespace vmlift

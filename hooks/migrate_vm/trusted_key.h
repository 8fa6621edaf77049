// The key the controller trusts for a host, to hand to another host (direct
// mode: the source checks the target with it).
#pragma once

#include <string>

#include "engine/transport.h"
#include "hooks/migrate_vm/context.h"

namespace vmlift::cli {

// "<type> <base64 key>" of the first known_hosts entry for the options'
// target (ssh-keygen -F, so hashed entries match too); "" when none.
std::string trusted_key_line(Context& ctx, const SshOptions& options);

}  // namespace vmlift::cli

// known_hosts checking for the libssh2 backend, with OpenSSH's semantics.
//
// Contract
//   check_host_key() looks the server's key up in `file` (OpenSSH format,
//   plain or hashed host names, "[host]:port" for non-22 ports), matching on
//   key type as OpenSSH does. Lines libssh2 cannot parse (key types it does
//   not know, markers such as @cert-authority) are skipped, not fatal.
//   A missing file counts as empty.
//   - match: ok.
//   - different key of the same type: host_key error (changed), under every
//     policy but insecure_no_check.
//   - not found: strict → host_key error (unknown); accept_new → one line is
//     appended to the file (created 0600 with its directory) and ok.
// Thread safety: none needed; callers serialise per file.
#pragma once

#include <string>

#include "engine/transport.h"

typedef struct _LIBSSH2_SESSION LIBSSH2_SESSION;

namespace vmlift {

Status check_host_key(LIBSSH2_SESSION* session, const SshTarget& target, const std::string& file,
                      HostKeyPolicy policy);

}  // namespace vmlift

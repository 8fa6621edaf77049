#include "connectors/ssh/known_hosts.h"

#include <libssh2.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>

#include "engine/run_dir.h"

namespace vmlift {
namespace {

struct KnownHostsDeleter {
    void operator()(LIBSSH2_KNOWNHOSTS* kh) const { libssh2_knownhost_free(kh); }
};
using KnownHostsPtr = std::unique_ptr<LIBSSH2_KNOWNHOSTS, KnownHostsDeleter>;

int knownhost_key_type(int hostkey_type) {
    switch (hostkey_type) {
        case LIBSSH2_HOSTKEY_TYPE_RSA:
            return LIBSSH2_KNOWNHOST_KEY_SSHRSA;
        case LIBSSH2_HOSTKEY_TYPE_DSS:
            return LIBSSH2_KNOWNHOST_KEY_SSHDSS;
        case LIBSSH2_HOSTKEY_TYPE_ECDSA_256:
            return LIBSSH2_KNOWNHOST_KEY_ECDSA_256;
        case LIBSSH2_HOSTKEY_TYPE_ECDSA_384:
            return LIBSSH2_KNOWNHOST_KEY_ECDSA_384;
        case LIBSSH2_HOSTKEY_TYPE_ECDSA_521:
            return LIBSSH2_KNOWNHOST_KEY_ECDSA_521;
        case LIBSSH2_HOSTKEY_TYPE_ED25519:
            return LIBSSH2_KNOWNHOST_KEY_ED25519;
        default:
            return LIBSSH2_KNOWNHOST_KEY_UNKNOWN;
    }
}

void load_lines(LIBSSH2_KNOWNHOSTS* kh, const std::string& file) {
    std::ifstream in(file);
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#' || line[0] == '@') {
            continue;
        }
        // Unparseable lines are skipped, as OpenSSH skips unknown key types.
        (void)libssh2_knownhost_readline(kh, line.c_str(), line.size(),
                                         LIBSSH2_KNOWNHOST_FILE_OPENSSH);
    }
}

Status append_entry(LIBSSH2_KNOWNHOSTS* kh, libssh2_knownhost* entry, const std::string& file) {
    char line[16384];
    size_t len = 0;
    if (libssh2_knownhost_writeline(kh, entry, line, sizeof line, &len,
                                    LIBSSH2_KNOWNHOST_FILE_OPENSSH) != 0) {
        return Status(Code::internal, "cannot format a known_hosts line");
    }
    size_t slash = file.rfind('/');
    if (slash != std::string::npos && slash > 0) {
        VMLIFT_RETURN_IF_ERROR(make_dirs(file.substr(0, slash), 0700));
    }
    std::ofstream out(file, std::ios::app);
    out.write(line, static_cast<std::streamsize>(len));
    out.flush();
    if (!out) {
        return Status(Code::io_error,
                      "cannot append the new host key to " + file + ": " + std::strerror(errno));
    }
    return {};
}

}  // namespace

Status check_host_key(LIBSSH2_SESSION* session, const SshTarget& target, const std::string& file,
                      HostKeyPolicy policy) {
    if (policy == HostKeyPolicy::insecure_no_check) {
        return {};
    }
    size_t key_len = 0;
    int key_type = 0;
    const char* key = libssh2_session_hostkey(session, &key_len, &key_type);
    if (!key) {
        return Status(Code::remote_failed, "server " + target.describe() + " sent no host key");
    }
    int typemask = knownhost_key_type(key_type);
    if (typemask == LIBSSH2_KNOWNHOST_KEY_UNKNOWN) {
        return Status(Code::host_key, "server " + target.describe() +
                                          " offered a host key type this client cannot check");
    }
    KnownHostsPtr kh(libssh2_knownhost_init(session));
    if (!kh) {
        return Status(Code::internal, "libssh2_knownhost_init failed");
    }
    load_lines(kh.get(), file);
    libssh2_knownhost* found = nullptr;
    int rc = libssh2_knownhost_checkp(
        kh.get(), target.host.c_str(), target.port, key, key_len,
        LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | typemask, &found);
    switch (rc) {
        case LIBSSH2_KNOWNHOST_CHECK_MATCH:
            return {};
        case LIBSSH2_KNOWNHOST_CHECK_MISMATCH:
            return host_key_changed_error(target, file);
        case LIBSSH2_KNOWNHOST_CHECK_NOTFOUND:
            break;
        default:
            return Status(Code::host_key,
                          "cannot check the host key of " + target.describe() + " against " + file);
    }
    if (policy != HostKeyPolicy::accept_new) {
        return host_key_unknown_error(target, file);
    }
    libssh2_knownhost* added = nullptr;
    std::string name = target.known_hosts_name();
    if (libssh2_knownhost_addc(
            kh.get(), name.c_str(), nullptr, key, key_len, nullptr, 0,
            LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | typemask, &added) != 0) {
        return Status(Code::internal, "cannot record the host key of " + target.describe());
    }
    return append_entry(kh.get(), added, file);
}

}  // namespace vmlift

#include "engine/agent_deploy.h"

#include <openssl/evp.h>

#include <fstream>
#include <memory>

#include "engine/upload.h"

namespace vmlift {

Result<std::string> sha256_file_hex(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return Status(Code::not_found, "cannot read " + path +
                                           "; the vmlift-agent binary must sit beside migrate-vm");
    }
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
    std::string buffer(1 << 20, '\0');
    while (in) {
        in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
        EVP_DigestUpdate(ctx.get(), buffer.data(), static_cast<size_t>(in.gcount()));
    }
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx.get(), digest, &len);
    static const char* k_hex = "0123456789abcdef";
    std::string hex;
    for (unsigned int i = 0; i < len; ++i) {
        hex.push_back(k_hex[digest[i] >> 4]);
        hex.push_back(k_hex[digest[i] & 15]);
    }
    return hex;
}

Result<std::string> deploy_agent(SshTransport& host, const std::string& local_agent,
                                 const std::string& dir) {
    auto sha = sha256_file_hex(local_agent);
    if (!sha.ok()) {
        return sha.status();
    }
    const std::string remote = dir + "/vmlift-agent-" + sha->substr(0, 16);
    auto present = exec_checked(
        host,
        {"sh", "-c", "umask 077; mkdir -p \"$1\" && if [ -f \"$2\" ]; then sha256sum \"$2\"; fi",
         "vmlift-deploy", dir, remote});
    if (!present.ok()) {
        return present.status().with_context("cannot prepare agent directory " + dir + " on " +
                                             host.target().host);
    }
    if (present->rfind(*sha, 0) != 0) {
        auto sent = upload_file(host, local_agent, remote, 0755);
        if (!sent.ok()) {
            return sent.status();
        }
    }
    auto probe = exec_captured(host, {remote, "--version"});
    if (!probe.ok()) {
        return probe.status();
    }
    if (!probe->exit.success()) {
        return Status(Code::permission_denied,
                      "cannot execute the agent in " + dir + " on " + host.target().host + " (" +
                          probe->exit.describe() + ": " + last_line(probe->err) +
                          "); is it mounted noexec? Pass --agent-dir with a directory that allows "
                          "execution, or --transport shell");
    }
    return remote;
}

void remove_run_dir(SshTransport& host, const std::string& dir) {
    (void)exec_captured(host, {"rm", "-rf", "--", dir});
}

}  // namespace vmlift

#include "engine/agent_deploy.h"

#include <openssl/evp.h>

#include <fstream>
#include <memory>

#include "engine/io.h"
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

namespace {

// $1 dir, $2 remote path, $3 SHA-256, $4 N, then N (path, content) pairs,
// then M and M paths, then the agent's arguments; stdin: the agent. Removes
// run directories beside $1 untouched for a week (left by controllers that
// were killed), writes the agent unless the same file is there, checks what
// arrived, writes the N files, deletes the M paths, then runs the agent once.
// Exit 90: no directory; 91: the upload failed; 92: it arrived damaged; 93:
// a file could not be written; anything else is the agent's own (126/127:
// it cannot run, e.g. noexec).
constexpr const char* k_install =
    "umask 077\n"
    "mkdir -p \"$1\" || exit 90\n"
    "find \"${1%/*}\" -maxdepth 1 -name 'run-*' -type d -mtime +7 -exec rm -rf {} + "
    "2>/dev/null || true\n"
    "sum() { sha256sum < \"$1\" | cut -d' ' -f1; }\n"
    "if [ -f \"$2\" ] && [ \"$(sum \"$2\")\" = \"$3\" ]; then\n"
    "  cat > /dev/null\n"
    "else\n"
    "  t=\"$2.vmlift-part.$$\"; trap 'rm -f \"$t\"' EXIT\n"
    "  cat > \"$t\" || exit 91\n"
    "  [ \"$(sum \"$t\")\" = \"$3\" ] || { echo \"damaged in transit\" >&2; exit 92; }\n"
    "  chmod 0755 \"$t\" && mv -f \"$t\" \"$2\" || exit 91\n"
    "  trap - EXIT\n"
    "fi\n"
    "agent=$2; n=$4; shift 4\n"
    "while [ \"$n\" -gt 0 ]; do\n"
    "  printf '%s' \"$2\" > \"$1\" || { echo \"cannot write $1\" >&2; exit 93; }\n"
    "  shift 2; n=$((n - 1))\n"
    "done\n"
    "n=$1; shift\n"
    "while [ \"$n\" -gt 0 ]; do rm -f -- \"$1\"; shift; n=$((n - 1)); done\n"
    "exec \"$agent\" \"$@\"\n";

}  // namespace

Result<DeployedAgent> deploy_agent(SshTransport& host, const std::string& local_agent,
                                   const std::string& dir, const std::vector<std::string>& first,
                                   const DeployExtras& extras) {
    auto sha = sha256_file_hex(local_agent);
    if (!sha.ok()) {
        return sha.status();
    }
    auto source = FileSource::open(local_agent);
    if (!source.ok()) {
        return source.status();
    }
    const std::string remote = dir + "/vmlift-agent-" + sha->substr(0, 16);
    StringSink out;
    LimitedStringSink err(64 * 1024);
    std::vector<std::string> argv = {"sh", "-c",   k_install, "vmlift-deploy",
                                     dir,  remote, *sha,      std::to_string(extras.files.size())};
    for (const auto& [path, content] : extras.files) {
        argv.push_back(path);
        argv.push_back(content);
    }
    argv.push_back(std::to_string(extras.remove.size()));
    argv.insert(argv.end(), extras.remove.begin(), extras.remove.end());
    argv.insert(argv.end(), first.begin(), first.end());
    auto exit = host.exec(argv, RunIo{source->get(), &out, &err});
    if (!exit.ok()) {
        return exit.status().with_context("deploying the agent to " + host.target().host);
    }
    const std::string why = last_line(err.str());
    if (exit->kind == ExitStatus::Kind::exited && exit->code == 90) {
        return Status(Code::remote_failed, "cannot prepare agent directory " + dir + " on " +
                                               host.target().host + ": " + why);
    }
    if (exit->kind == ExitStatus::Kind::exited && exit->code == 93) {
        return Status(Code::remote_failed, "cannot write the run files in " + dir + " on " +
                                               host.target().host + ": " + why +
                                               "; check the disk, or pass --agent-dir");
    }
    if (exit->kind == ExitStatus::Kind::exited && (exit->code == 91 || exit->code == 92)) {
        return Status(exit->code == 92 ? Code::io_error : Code::remote_failed,
                      "cannot upload the agent to " + host.target().host + ":" + remote + " (" +
                          why + "); retry, or pass --agent-dir with a writable directory");
    }
    if (exit->kind == ExitStatus::Kind::exited && exit->code != 0 && exit->code != 126 &&
        exit->code != 127) {
        return Status(Code::remote_failed, "the agent on " + host.target().host + " failed (" +
                                               exit->describe() + "): " + why);
    }
    if (!exit->success()) {
        return Status(Code::permission_denied,
                      "cannot execute the agent in " + dir + " on " + host.target().host + " (" +
                          exit->describe() + ": " + why +
                          "); is it mounted noexec? Pass --agent-dir with a directory that allows "
                          "execution, or --transport shell");
    }
    return DeployedAgent{remote, out.str()};
}

void remove_run_dir(SshTransport& host, const std::string& dir,
                    const std::vector<std::string>& also) {
    std::vector<std::string> argv = {"rm", "-rf", "--", dir};
    argv.insert(argv.end(), also.begin(), also.end());
    (void)exec_captured(host, argv);
}

}  // namespace vmlift

// How the source host reaches the destination host itself (direct mode).
//
// Contract
//   prepare() writes a run-scoped known_hosts file on the source holding the
//   one destination key the controller already trusts (never disabling host
//   key checking); ssh_argv() is the source's own `ssh` command that uses
//   it (BatchMode, strict checking, --migration-key-path or the forwarded
//   agent); choose() settles relay/direct/auto, probing from the source with
//   a short timeout for auto, and says why. cleanup() removes the file.
// Thread safety: one object per copy.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/log.h"
#include "engine/stream.h"

namespace vmlift {

class DirectRoute {
  public:
    // `dir` is the run-scoped directory on the source for the known_hosts file.
    DirectRoute(SshTransport& src, SshTransport& dst, const StreamRequest& req, std::string dir,
                Logger& log)
        : m_src(src), m_dst(dst), m_req(req), m_dir(std::move(dir)), m_log(log) {}
    ~DirectRoute() { cleanup(); }

    // The known_hosts file prepare() would write on the source, as (path,
    // content), so a caller can write it in a command it runs anyway;
    // nullopt in relay mode or without the destination's key.
    std::optional<std::pair<std::string, std::string>> known_hosts_file() const;
    // The caller wrote known_hosts_file() on the source.
    void adopt_known_hosts(const std::string& path) { m_known_hosts = path; }
    // Fills result.mode and result.mode_reason.
    Status choose(StreamResult& result);
    // The source's ssh argv up to and including the destination host name.
    std::vector<std::string> ssh_argv() const;
    void cleanup();
    // The file went with the run directory: nothing left to remove.
    void forget() { m_known_hosts.clear(); }

  private:
    Status prepare();
    std::string host_for_src() const;

    SshTransport& m_src;
    SshTransport& m_dst;
    const StreamRequest& m_req;
    std::string m_dir;
    Logger& m_log;
    std::string m_known_hosts;  // on the source
};

}  // namespace vmlift

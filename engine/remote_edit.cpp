#include "engine/remote_edit.h"

#include "engine/agent_deploy.h"
#include "engine/io.h"

namespace vmlift {

Result<nlohmann::json> edit_guest_disk_remote(SshTransport& host, const RemoteEdit& how,
                                              const GuestDiskOptions& disk,
                                              const std::vector<GuestNic>& nics, bool dry_run) {
    const std::string dir = how.agent_dir + "/run-" + how.run_id + "-edit";
    auto agent = deploy_agent(host, how.local_agent, dir);
    if (!agent.ok()) {
        return agent.status();
    }
    std::vector<std::string> argv = {agent->path, "edit-guest", "--nics",
                                     nics_to_json(nics).dump()};
    for (const auto& [flag, value] :
         {std::pair{"--device", disk.device}, std::pair{"--nbd-uri", disk.nbd_uri},
          std::pair{"--nbd-device", disk.nbd_uri.empty() ? std::string() : disk.nbd_device},
          std::pair{"--vg-name", disk.vg_name}, std::pair{"--lv-name", disk.lv_name},
          std::pair{"--mount-point", disk.mount_point}}) {
        if (!value.empty()) {
            argv.insert(argv.end(), {flag, value});
        }
    }
    if (dry_run) {
        argv.push_back("--dry-run");
    }
    auto r = exec_captured(host, argv, {}, ExecOptions{how.timeout});
    remove_run_dir(host, dir);
    if (!r.ok()) {
        return r.status();
    }
    if (r->exit.kind != ExitStatus::Kind::exited || r->exit.code != 0) {
        std::string msg = last_line(r->err);
        const std::string prefix = "vmlift-agent: error: ";
        if (msg.rfind(prefix, 0) == 0) {
            msg = msg.substr(prefix.size());
        }
        Code code = Code::remote_failed;
        for (Code c : {Code::invalid_input, Code::not_found, Code::permission_denied,
                       Code::io_error, Code::cancelled}) {
            if (exit_code_for(c) == r->exit.code) {
                code = c;
            }
        }
        return Status(code, "on " + how.host_name + ": " + msg);
    }
    auto j = nlohmann::json::parse(r->out, nullptr, false);
    if (!j.is_object()) {
        return Status(Code::remote_failed, "the agent on " + how.host_name + " answered no JSON");
    }
    return j;
}

}  // namespace vmlift

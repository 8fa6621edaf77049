#include "connectors/proxmox/pve_migration.h"

namespace vmlift::proxmox {
namespace {

class PveGuestExec : public GuestExec {
  public:
    explicit PveGuestExec(PveSource& source) : m_source(source) {}
    std::string describe() const override {
        return "the guest agent of VM " + std::to_string(m_source.vmid()) + " on " +
               m_source.node();
    }
    Result<GuestExecResult> exec(const std::vector<std::string>& argv,
                                 const std::string& input) override {
        auto r = m_source.agent_exec(argv, input, std::chrono::seconds(120));
        if (!r.ok()) {
            const std::string& m = r.status().message();
            if (m.find("guest agent is not running") != std::string::npos ||
                m.find("No QEMU guest agent configured") != std::string::npos) {
                return Status(Code::unreachable, m);
            }
            return r.status();
        }
        GuestExecResult out;
        out.exit_code = r->exit_code;
        out.out = std::move(r->out);
        out.err = std::move(r->err);
        out.truncated = r->out_truncated;
        return out;
    }

  private:
    PveSource& m_source;
};

}  // namespace

Status PveMigrationSource::located() {
    if (!m_located) {
        VMLIFT_RETURN_IF_ERROR(m_source.locate(m_vm));
        m_located = true;
    }
    return Status::ok_status();
}

Result<VmSpec> PveMigrationSource::inspect() {
    VMLIFT_RETURN_IF_ERROR(located());
    return m_source.inspect();
}

void PveMigrationSource::preflight(const VmSpec& spec, std::vector<Check>& checks) {
    Check c{"source VM state", true, false, ""};
    Status st = located();
    if (st.ok()) {
        st = m_source.check_actionable(spec);
    }
    c.passed = st.ok();
    c.detail = st.ok() ? "VM " + std::to_string(spec.vmid) + " on " + spec.node + " is " +
                             spec.status + ", not locked, not HA-managed"
                       : st.message();
    checks.push_back(c);
    for (const auto& w : spec.warnings) {
        if (w.find("pending") != std::string::npos) {
            checks.push_back({"source pending changes", false, true, w});
        }
    }
}

Result<bool> PveMigrationSource::running() {
    VMLIFT_RETURN_IF_ERROR(located());
    auto status = m_api.get("/nodes/" + m_source.node() + "/qemu/" +
                            std::to_string(m_source.vmid()) + "/status/current");
    if (!status.ok()) {
        return status.status();
    }
    return status->value("status", std::string()) == "running";
}

Status PveMigrationSource::shutdown(std::chrono::seconds timeout, bool force) {
    VMLIFT_RETURN_IF_ERROR(located());
    Status st = m_source.shutdown(timeout, force);
    if (!st.ok() && !force) {
        return Status(st.code(), st.message() +
                                     " (the guest did not power off; check its ACPI/agent "
                                     "support or pass --force-stop)");
    }
    return st;
}

Status PveMigrationSource::start() {
    VMLIFT_RETURN_IF_ERROR(located());
    return m_source.start();
}

Status PveMigrationSource::mark_migrated(const std::string& note) {
    VMLIFT_RETURN_IF_ERROR(located());
    return m_source.mark_migrated(note);
}

Status PveMigrationSource::unmark() {
    VMLIFT_RETURN_IF_ERROR(located());
    return m_source.unmark();
}

}  // namespace vmlift::proxmox

namespace vmlift::proxmox {

GuestExec* PveMigrationSource::guest_exec() {
    if (!located().ok()) {
        return nullptr;
    }
    if (!m_guest) {
        m_guest = std::make_unique<PveGuestExec>(m_source);
    }
    return m_guest.get();
}

}  // namespace vmlift::proxmox

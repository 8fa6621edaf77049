#include "engine/report.h"

#include <cstdio>
#include <sstream>

namespace vmlift {
namespace {

std::string bytes_text(uint64_t n) {
    const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = static_cast<double>(n);
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        ++u;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
    return buf;
}

std::string seconds_text(double s) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f s", s);
    return buf;
}

nlohmann::json find_by_key(const nlohmann::json& list, const std::string& key) {
    for (const auto& item : list) {
        if (item.value("key", "") == key) {
            return item;
        }
    }
    return nlohmann::json::object();
}

}  // namespace

nlohmann::json build_summary(const Journal& journal) {
    const nlohmann::json& req = journal.request();
    const nlohmann::json& data = journal.data();
    const nlohmann::json spec = journal.stage("inspect").result.is_object()
                                    ? journal.stage("inspect").result
                                    : nlohmann::json::object();
    const nlohmann::json plan_stage = journal.stage("plan").result.is_object()
                                          ? journal.stage("plan").result
                                          : nlohmann::json::object();
    const nlohmann::json plan = plan_stage.value("target", nlohmann::json::object());
    const nlohmann::json prov = journal.stage("provision").result.is_object()
                                    ? journal.stage("provision").result
                                    : nlohmann::json::object();
    const nlohmann::json streams = data.value("streams", nlohmann::json::object());
    const std::string run_dir = journal.dir().path();

    nlohmann::json s;
    s["run_id"] = journal.run_id();
    s["state"] = journal.state();
    s["run_dir"] = run_dir;
    s["source"] = {{"url", req.value("source", "")},
                   {"name", spec.value("name", "")},
                   {"vmid", spec.value("vmid", 0)},
                   {"node", spec.value("node", "")},
                   {"host", req.value("source_host", "")}};
    s["target"] = {{"url", req.value("target", "")},
                   {"vm_name", prov.value("vm_name", plan.value("vm_name", ""))},
                   {"vm_id", prov.value("vm_id", 0)},
                   {"host", req.value("target_host", "")}};
    s["vcpus"] = spec.value("vcpus", 0);
    s["sockets"] = spec.value("sockets", 0);
    s["cores"] = spec.value("cores", 0);
    s["memory_mib"] = spec.value("memory_mib", 0);
    s["firmware"] = {{"source", spec.value("firmware", "")},
                     {"secure_boot", spec.value("secure_boot", false)},
                     {"bootloader", plan.value("bootloader", "")},
                     {"overridden", plan.value("firmware_overridden", false)}};

    nlohmann::json warnings = nlohmann::json::array();
    for (const auto& w : spec.value("warnings", nlohmann::json::array())) {
        warnings.push_back(w);
    }
    for (const auto& n : plan.value("notes", nlohmann::json::array())) {
        warnings.push_back(n);
    }

    nlohmann::json disks = nlohmann::json::array();
    for (const auto& d : plan.value("disks", nlohmann::json::array())) {
        const std::string key = d.value("key", "");
        const auto st = streams.value(key, nlohmann::json::object());
        const auto r = st.value("result", nlohmann::json::object());
        const auto src = find_by_key(spec.value("disks", nlohmann::json::array()), key);
        nlohmann::json disk = {
            {"key", key},
            {"role", d.value("role", "data")},
            {"source_path", src.value("host_path", "")},
            {"size_bytes", src.value("size_bytes", d.value("size_bytes", uint64_t{0}))},
            {"target_path", st.value("dst_path", d.value("device_path", ""))},
            {"bytes_sent", r.value("bytes_sent", uint64_t{0})},
            {"zero_bytes_skipped", r.value("zero_bytes_skipped", uint64_t{0})},
            {"digest", r.value("digest", "")},
            {"mode", r.value("mode", "")},
            {"verified", st.value("state", "") == "done"}};
        disks.push_back(disk);
        if (d.value("role", "") == "efivars") {
            warnings.push_back("EFI vars (" + key + ") copied to the target VM's NVRAM file " +
                               disk["target_path"].get<std::string>() +
                               "; if the guest does not boot, pick its boot entry once in the "
                               "OVMF menu");
        }
        if (d.value("role", "") == "tpm") {
            warnings.push_back(
                "TPM state (" + key + ") copied verbatim to " +
                disk["target_path"].get<std::string>() +
                "; TrueNAS keeps swtpm state in its own layout, so add a TPM device and have the "
                "BitLocker/LUKS recovery keys at hand");
        }
    }
    s["disks"] = disks;
    if (spec.value("secure_boot", false)) {
        warnings.push_back(
            "the source used Secure Boot; check that the target's OVMF firmware "
            "enrolls the same keys");
    }

    nlohmann::json nics = nlohmann::json::array();
    for (const auto& n : plan.value("nics", nlohmann::json::array())) {
        const auto src =
            find_by_key(spec.value("nics", nlohmann::json::array()), n.value("key", ""));
        nics.push_back({{"key", n.value("key", "")},
                        {"mac", n.value("mac", "")},
                        {"mac_preserved", n.value("mac", "") == src.value("mac", "")},
                        {"source_bridge", src.value("bridge", "")},
                        {"bridge", n.value("bridge", "")},
                        {"model", n.value("model", "")}});
    }
    s["nics"] = nics;

    const auto& agent_net = journal.stage("net-prep-agent");
    const bool in_guest = agent_net.state == StageState::done;
    const auto& gn = in_guest ? agent_net : journal.stage("guest-net");
    nlohmann::json net = {{"requested", plan_stage.value("net_prep", "")},
                          {"state", stage_state_name(gn.state)}};
    if (agent_net.state == StageState::skipped &&
        plan_stage.value("net_prep", "") == std::string("auto")) {
        net["agent_skipped"] = agent_net.result.value("skipped", "");
    }
    if (gn.state == StageState::done) {
        net["method"] = in_guest ? "agent" : "offline";
        net["stack"] = gn.result.value("method", "");
        net["files_changed"] = gn.result.value("files", nlohmann::json::array());
        net["root"] = gn.result.value("root", "");
    } else if (gn.state == StageState::skipped) {
        net["method"] = "none";
        net["reason"] = gn.result.value("skipped", "");
        if (plan_stage.value("net_prep", "") != "none") {
            warnings.push_back("the guest's network config was not rewritten: " +
                               gn.result.value("skipped", std::string()));
        }
    }
    s["network_prep"] = net;
    s["reachability"] = data.value("verify", nlohmann::json::array());

    nlohmann::json stages = nlohmann::json::array();
    double total = 0;
    for (const auto& st : journal.stages()) {
        stages.push_back({{"name", st.name},
                          {"state", stage_state_name(st.state)},
                          {"seconds", st.seconds},
                          {"error", st.error}});
        total += st.seconds;
    }
    s["stages"] = stages;
    s["total_seconds"] = total;
    if (data.contains("source_stopped_epoch") && data.contains("target_reachable_epoch")) {
        s["downtime_seconds"] = data["target_reachable_epoch"].get<double>() -
                                data["source_stopped_epoch"].get<double>();
    } else {
        s["downtime_seconds"] = nullptr;
    }
    s["warnings"] = warnings;
    s["rollback"] = {
        {"commands",
         {"migrate-vm rollback " + run_dir, "migrate-vm rollback " + run_dir + " --start-source"}},
        {"explanation",
         "the first stops and deletes only what this run created on the target and unmarks "
         "the source; the second also starts the source again"}};
    return s;
}

std::string render_summary_markdown(const nlohmann::json& s) {
    std::ostringstream md;
    const auto& src = s["source"];
    const auto& dst = s["target"];
    md << "# vmlift run " << s.value("run_id", "") << ": " << s.value("state", "") << "\n\n";
    md << "**" << src.value("name", "") << "** (VMID " << src.value("vmid", 0) << " on "
       << src.value("node", "") << ", " << src.value("url", "") << ") → **"
       << dst.value("vm_name", "") << "** (VM id " << dst.value("vm_id", 0) << ", "
       << dst.value("url", "") << ")\n\n";
    md << "| | |\n|---|---|\n";
    md << "| vCPUs | " << s.value("vcpus", 0) << " (" << s.value("sockets", 0) << " socket(s) × "
       << s.value("cores", 0) << " core(s)) |\n";
    md << "| memory | " << s.value("memory_mib", 0) << " MiB |\n";
    const auto& fw = s["firmware"];
    md << "| firmware | " << fw.value("source", "")
       << (fw.value("secure_boot", false) ? " (secure boot)" : "") << " → "
       << fw.value("bootloader", "") << (fw.value("overridden", false) ? " (overridden)" : "")
       << " |\n";
    if (!s["downtime_seconds"].is_null()) {
        md << "| downtime | " << seconds_text(s["downtime_seconds"].get<double>())
           << " (source stopped → target reachable) |\n";
    }
    md << "| total | " << seconds_text(s.value("total_seconds", 0.0)) << " |\n\n";

    md << "## Disks\n\n| key | role | size | target | sent | zeros skipped | digest | verified |\n"
          "|---|---|---|---|---|---|---|---|\n";
    for (const auto& d : s["disks"]) {
        md << "| " << d.value("key", "") << " | " << d.value("role", "") << " | "
           << bytes_text(d.value("size_bytes", uint64_t{0})) << " | `" << d.value("target_path", "")
           << "` | " << bytes_text(d.value("bytes_sent", uint64_t{0})) << " | "
           << bytes_text(d.value("zero_bytes_skipped", uint64_t{0})) << " | `"
           << d.value("digest", "") << "` | " << (d.value("verified", false) ? "yes" : "no")
           << " |\n";
    }
    md << "\n## NICs\n\n| key | MAC | preserved | bridge | model |\n|---|---|---|---|---|\n";
    for (const auto& n : s["nics"]) {
        md << "| " << n.value("key", "") << " | " << n.value("mac", "") << " | "
           << (n.value("mac_preserved", false) ? "yes" : "NO") << " | "
           << n.value("source_bridge", "") << " → " << n.value("bridge", "") << " | "
           << n.value("model", "") << " |\n";
    }
    const auto& net = s["network_prep"];
    md << "\n## Network preparation\n\n";
    md << "Requested `" << net.value("requested", "")
       << "`, ran: " << net.value("method", "not yet");
    if (net.contains("stack")) {
        md << " (" << net.value("stack", "") << " on " << net.value("root", "") << ")";
    }
    if (net.contains("reason")) {
        md << " — " << net.value("reason", "");
    }
    if (net.contains("agent_skipped")) {
        md << "; not in the guest: " << net.value("agent_skipped", "");
    }
    md << "\n";
    for (const auto& f : net.value("files_changed", nlohmann::json::array())) {
        if (!f.is_object()) {
            md << "- `" << (f.is_string() ? f.get<std::string>() : f.dump()) << "`\n";
            continue;
        }
        md << "- `" << f.value("path", "") << "` " << f.value("action", "changed");
        if (f.contains("moved_to")) {
            md << " to `" << f.value("moved_to", "") << "`";
        }
        md << "\n";
    }
    md << "\n## Reachability\n\n";
    if (s["reachability"].empty()) {
        md << "Not checked.\n";
    }
    for (const auto& r : s["reachability"]) {
        md << "- " << r.value("ip", "") << " " << r.value("mode", "")
           << (r["port"].is_null() ? "" : " port " + std::to_string(r["port"].get<int>())) << ": "
           << (r.value("satisfied", false) ? "reachable" : "NOT reachable") << " after "
           << r.value("attempts", 0) << " attempt(s), " << seconds_text(r.value("seconds", 0.0))
           << "\n";
    }
    md << "\n## Stages\n\n| stage | state | time | error |\n|---|---|---|---|\n";
    for (const auto& st : s["stages"]) {
        md << "| " << st.value("name", "") << " | " << st.value("state", "") << " | "
           << seconds_text(st.value("seconds", 0.0)) << " | " << st.value("error", "") << " |\n";
    }
    md << "\n## Warnings\n\n";
    if (s["warnings"].empty()) {
        md << "None.\n";
    }
    for (const auto& w : s["warnings"]) {
        md << "- " << w.get<std::string>() << "\n";
    }
    md << "\n## Rollback\n\n" << s["rollback"].value("explanation", "") << ":\n\n```\n";
    for (const auto& c : s["rollback"]["commands"]) {
        md << c.get<std::string>() << "\n";
    }
    md << "```\n";
    return md.str();
}

Status write_report(const Journal& journal) {
    nlohmann::json s = build_summary(journal);
    VMLIFT_RETURN_IF_ERROR(journal.dir().write_file("summary.json", s.dump(2) + "\n"));
    return journal.dir().write_file("summary.md", render_summary_markdown(s));
}

}  // namespace vmlift

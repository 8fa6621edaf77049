// The run's summary: RUN/summary.json for machines and RUN/summary.md for
// people, built from the journal alone (so a resumed, failed or rolled-back
// run gets one too).
//
// Contract
//   build_summary() returns the summary object: run id and state; source →
//   target (urls, names, ids, hosts); vCPUs, memory; firmware → bootloader
//   and whether it was overridden; per disk the key, role, size, target
//   path, bytes sent, zero bytes skipped, digest and whether it was
//   verified; per NIC the MAC (preserved or not) and bridge; the network
//   preparation (method, stack, files changed); reachability per IP; time
//   per stage, total time and downtime (source stopped → target reachable);
//   warnings (EFI vars, secure boot, TPM, pending changes, macvtap-style
//   NICs, the source's own warnings); and the rollback commands.
//   render_summary_markdown() renders that object. write_report() writes
//   both files atomically into the run directory.
// Thread safety: pure except write_report.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "engine/journal.h"

namespace vmlift {

nlohmann::json build_summary(const Journal& journal);
std::string render_summary_markdown(const nlohmann::json& summary);
Status write_report(const Journal& journal);

}  // namespace vmlift

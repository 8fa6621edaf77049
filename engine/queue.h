// The migration queue `migrate-vm cron` works through: one config file per
// migration in a directory, run one at a time, plus a re-check of recent
// cutovers. Built for cron: quiet when nothing happened, one line per event,
// non-zero exit when something needs a human.
//
// Contract
//   run_queue() takes QUEUE/.lock (flock, non-blocking: a second cron run
//   while one is busy returns at once with nothing done). Each QUEUE/*.conf,
//   in name order, moves to QUEUE/running/, runs as `RUN_ARGV... --config
//   FILE --yes`, its output goes to QUEUE/logs/NAME.log, and it ends in
//   QUEUE/done/ or QUEUE/failed/. A file left in running/ by a cron run that
//   died is reported and moved to failed/ (resume it by hand from its run
//   directory; the log names it). reverify_recent() probes the cutover IPs in
//   the summaries of runs that succeeded within `days` and reports those not
//   answering now.
//   Every event is one line in `lines`; `exit_code` is 0 when all went well,
//   else the first failed job's exit code, or 8 (unreachable) when only a
//   re-verify failed.
// Thread safety: none; the lock keeps cron runs apart.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "engine/process.h"
#include "engine/verify.h"

namespace vmlift {

struct QueueReport {
    std::vector<std::string> lines;
    int exit_code = 0;
    int jobs_run = 0;
};

Result<QueueReport> run_queue(ProcessRunner& runner, const std::string& queue_dir,
                              const std::vector<std::string>& run_argv,
                              std::chrono::seconds job_timeout);

void reverify_recent(Prober& prober, const std::string& runs_dir, int days, QueueReport& report);

}  // namespace vmlift

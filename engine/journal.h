// The journal of one migration run: which stages ran, what each produced
// and what undoes it, kept in RUN/journal.json so a run can resume after the
// controller died at any point, be rolled back, or be shown.
//
// Contract
//   Journal::create() writes a journal holding the run id and the request
//   (the run's options as JSON); Journal::open() reads one back. Stages are
//   the fixed list of k_stages, each pending, running, done, failed, skipped
//   or undone. begin() marks a stage running (with its start time), finish()
//   done with its result, fail() failed with the error, skip() skipped with
//   a reason; every change is written atomically (temp + fsync + rename)
//   before the call returns, so a reader or a resumed run sees either the
//   old or the new journal, never a torn one. A stage found `running` when
//   a run resumes was interrupted: it is re-run (stages are idempotent).
//   data() is a free-form object for facts later stages need (the target
//   VM's id, per-disk progress), saved with put().
//   Undo records (add_undo) are kept in the order they were made; rollback
//   walks them backwards and marks each one undone as it succeeds.
//   Errors: io_error naming the file; invalid_input for a journal that is
//   not ours or is damaged.
// Thread safety: none; one run owns its journal.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/clock.h"
#include "engine/run_dir.h"
#include "engine/status.h"

namespace vmlift {

enum class StageState { pending, running, done, failed, skipped, undone };
const char* stage_state_name(StageState state);

// In the order a run goes through them (DESIGN.md "The job, as stages").
inline const std::vector<std::string> k_stages = {
    "inspect", "plan",      "preflight",   "approve", "provision", "net-prep-agent", "shutdown",
    "stream",  "guest-net", "mark-source", "start",   "verify",    "post-cutover",   "report"};

struct StageRecord {
    std::string name;
    StageState state = StageState::pending;
    std::string started_at;
    std::string finished_at;
    double seconds = 0;
    std::string error;
    nlohmann::json result;  // null until done
};

class Journal {
  public:
    static Result<Journal> create(const RunDir& dir, const Clock& clock,
                                  const nlohmann::json& request);
    static Result<Journal> open(const RunDir& dir, const Clock& clock);

    const std::string& run_id() const { return m_run_id; }
    const RunDir& dir() const { return m_dir; }
    const nlohmann::json& request() const { return m_request; }
    const StageRecord& stage(const std::string& name) const;
    const std::vector<StageRecord>& stages() const { return m_stages; }
    // The overall state: running, failed, succeeded, rolled-back.
    const std::string& state() const { return m_state; }

    Status begin(const std::string& stage);
    Status finish(const std::string& stage, nlohmann::json result = nlohmann::json::object());
    Status fail(const std::string& stage, const std::string& error);
    Status skip(const std::string& stage, const std::string& reason);
    Status set_state(const std::string& state);

    const nlohmann::json& data() const { return m_data; }
    Status put(const std::string& key, nlohmann::json value);

    // Undo actions: {"action": "...", ...details}; `undone` is added by mark_undone().
    Status add_undo(nlohmann::json action);
    const nlohmann::json& undo() const { return m_undo; }
    Status mark_undone(size_t index);

    nlohmann::json to_json() const;

  private:
    Journal(RunDir dir, const Clock& clock) : m_dir(std::move(dir)), m_clock(&clock) {}
    StageRecord& find(const std::string& stage);
    Status save() const;
    double elapsed(const std::string& stage);  // since begin() in this process

    RunDir m_dir;
    const Clock* m_clock;
    std::string m_run_id;
    std::string m_state = "running";
    nlohmann::json m_request;
    std::vector<StageRecord> m_stages;
    nlohmann::json m_data = nlohmann::json::object();
    nlohmann::json m_undo = nlohmann::json::array();
    std::map<std::string, std::chrono::steady_clock::time_point> m_began;
};

}  // namespace vmlift

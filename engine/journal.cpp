#include "engine/journal.h"

#include <optional>
#include <stdexcept>

namespace vmlift {
namespace {

constexpr const char* k_format = "vmlift-journal/1";

const std::vector<std::pair<StageState, const char*>> k_state_names = {
    {StageState::pending, "pending"}, {StageState::running, "running"},
    {StageState::done, "done"},       {StageState::failed, "failed"},
    {StageState::skipped, "skipped"}, {StageState::undone, "undone"}};

std::optional<StageState> parse_state(const std::string& text) {
    for (const auto& [state, name] : k_state_names) {
        if (text == name) {
            return state;
        }
    }
    return std::nullopt;
}

StageRecord make_record(const std::string& name) {
    StageRecord r;
    r.name = name;
    return r;
}

}  // namespace

const char* stage_state_name(StageState state) {
    for (const auto& [s, name] : k_state_names) {
        if (s == state) {
            return name;
        }
    }
    return "unknown";
}

Result<Journal> Journal::create(const RunDir& dir, const Clock& clock,
                                const nlohmann::json& request) {
    Journal j(dir, clock);
    j.m_run_id = dir.id();
    j.m_request = request;
    for (const auto& name : k_stages) {
        j.m_stages.push_back(make_record(name));
    }
    VMLIFT_RETURN_IF_ERROR(j.save());
    return j;
}

Result<Journal> Journal::open(const RunDir& dir, const Clock& clock) {
    auto text = dir.read_file("journal.json");
    if (!text.ok()) {
        return Status(text.status().code(),
                      dir.path() + " has no journal.json: not a migrate-vm run directory (" +
                          text.status().message() + ")");
    }
    auto json = nlohmann::json::parse(*text, nullptr, false);
    const std::string damaged = dir.file("journal.json") + " is damaged";
    if (!json.is_object() || json.value("format", "") != k_format) {
        return Status(Code::invalid_input, damaged + " or not a vmlift journal");
    }
    Journal j(dir, clock);
    try {
        j.m_run_id = json.at("run_id").get<std::string>();
        j.m_state = json.at("state").get<std::string>();
        j.m_request = json.at("request");
        j.m_data = json.value("data", nlohmann::json::object());
        j.m_undo = json.value("undo", nlohmann::json::array());
        for (const auto& name : k_stages) {
            j.m_stages.push_back(make_record(name));
        }
        for (const auto& s : json.at("stages")) {
            StageRecord& r = j.find(s.at("name").get<std::string>());
            auto state = parse_state(s.at("state").get<std::string>());
            if (!state) {
                return Status(Code::invalid_input, damaged + ": unknown stage state");
            }
            r.state = *state;
            r.started_at = s.value("started_at", "");
            r.finished_at = s.value("finished_at", "");
            r.seconds = s.value("seconds", 0.0);
            r.error = s.value("error", "");
            r.result = s.value("result", nlohmann::json());
        }
    } catch (const std::exception& e) {
        return Status(Code::invalid_input, damaged + ": " + e.what());
    }
    return j;
}

const StageRecord& Journal::stage(const std::string& name) const {
    for (const auto& s : m_stages) {
        if (s.name == name) {
            return s;
        }
    }
    throw std::logic_error("no stage " + name);
}

StageRecord& Journal::find(const std::string& name) {
    for (auto& s : m_stages) {
        if (s.name == name) {
            return s;
        }
    }
    throw std::out_of_range("no stage '" + name + "'");
}

Status Journal::begin(const std::string& stage) {
    StageRecord& s = find(stage);
    s.state = StageState::running;
    s.started_at = iso8601_utc(m_clock->wall());
    m_began[stage] = m_clock->steady();
    s.finished_at.clear();
    s.error.clear();
    m_state = "running";
    return save();
}

double Journal::elapsed(const std::string& stage) {
    auto it = m_began.find(stage);
    if (it == m_began.end()) {
        return 0;
    }
    double seconds = std::chrono::duration<double>(m_clock->steady() - it->second).count();
    m_began.erase(it);
    return seconds;
}

Status Journal::finish(const std::string& stage, nlohmann::json result) {
    StageRecord& s = find(stage);
    s.state = StageState::done;
    s.finished_at = iso8601_utc(m_clock->wall());
    s.result = std::move(result);
    s.seconds += elapsed(stage);
    return save();
}

Status Journal::fail(const std::string& stage, const std::string& error) {
    StageRecord& s = find(stage);
    s.seconds += elapsed(stage);
    s.state = StageState::failed;
    s.finished_at = iso8601_utc(m_clock->wall());
    s.error = error;
    m_state = "failed";
    return save();
}

Status Journal::skip(const std::string& stage, const std::string& reason) {
    StageRecord& s = find(stage);
    s.state = StageState::skipped;
    s.finished_at = iso8601_utc(m_clock->wall());
    s.result = {{"skipped", reason}};
    return save();
}

Status Journal::set_state(const std::string& state) {
    m_state = state;
    return save();
}

Status Journal::put(const std::string& key, nlohmann::json value) {
    m_data[key] = std::move(value);
    return save();
}

Status Journal::add_undo(nlohmann::json action) {
    action["recorded_at"] = iso8601_utc(m_clock->wall());
    m_undo.push_back(std::move(action));
    return save();
}

Status Journal::mark_undone(size_t index) {
    if (index >= m_undo.size()) {
        return Status(Code::internal, "no undo record " + std::to_string(index));
    }
    m_undo[index]["undone_at"] = iso8601_utc(m_clock->wall());
    return save();
}

nlohmann::json Journal::to_json() const {
    nlohmann::json stages = nlohmann::json::array();
    for (const auto& s : m_stages) {
        nlohmann::json j = {{"name", s.name}, {"state", stage_state_name(s.state)}};
        if (!s.started_at.empty()) {
            j["started_at"] = s.started_at;
        }
        if (!s.finished_at.empty()) {
            j["finished_at"] = s.finished_at;
        }
        if (s.seconds > 0) {
            j["seconds"] = s.seconds;
        }
        if (!s.error.empty()) {
            j["error"] = s.error;
        }
        if (!s.result.is_null()) {
            j["result"] = s.result;
        }
        stages.push_back(std::move(j));
    }
    return {{"format", k_format}, {"run_id", m_run_id}, {"state", m_state}, {"request", m_request},
            {"stages", stages},   {"data", m_data},     {"undo", m_undo}};
}

Status Journal::save() const {
    return m_dir.write_file("journal.json", to_json().dump(2) + "\n");
}

}  // namespace vmlift

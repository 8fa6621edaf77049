// Process runner: start local programs from an argv vector.
//
// Contract
//   Programs start with posix_spawn, never system/popen/`sh -c`. argv[0] is
//   resolved against the PATH in the spec's own environment (not ours); the
//   child gets exactly spec.env, an empty signal mask, default signal
//   dispositions, its own process group, and no file descriptors but 0-2.
//   run() pumps stdin from a ByteSource and stdout/stderr into ByteSinks
//   (a null source/sink means /dev/null) until the child exits. When
//   spec.timeout passes, the whole process group gets SIGTERM, then SIGKILL
//   after spec.kill_grace; the result says timed_out. A failing sink or
//   source kills the group the same way and that Status is returned.
//   start() launches a background child (stdio to /dev/null or files only)
//   whose lifetime the returned Process owns: destroying a running Process
//   kills its group and reaps it.
//   Errors: not_found (program missing in PATH), io_error (spawn or pipe
//   failure). A non-zero exit is not an error: it is in ExitStatus.
//   Callers must ignore SIGPIPE process-wide (ignore_sigpipe()), as writing
//   to a child that has exited must fail with EPIPE, not kill us.
// Thread safety: a runner may be used from several threads at once; a
//   Process object from one thread at a time.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/io.h"
#include "engine/status.h"

namespace vmlift {

struct Redirect {
    enum class Kind { null, inherit, file_read, file_truncate, file_append, fd };
    Kind kind = Kind::null;
    std::string path;
    int fd = -1;  // Kind::fd: dup'ed onto the stream; the caller keeps its copy
    static Redirect null_device() { return {}; }
    static Redirect inherit() { return {Kind::inherit, {}}; }
    static Redirect from_fd(int fd) { return {Kind::fd, {}, fd}; }
    static Redirect read_from(std::string p) { return {Kind::file_read, std::move(p), -1}; }
    static Redirect truncate_to(std::string p) { return {Kind::file_truncate, std::move(p), -1}; }
    static Redirect append_to(std::string p) { return {Kind::file_append, std::move(p), -1}; }
};

struct ProcessSpec {
    std::vector<std::string> argv;
    std::vector<std::string> env;  // the child's whole environment, "KEY=VALUE"
    // Used when run() gets no source/sink for that stream, and by start().
    Redirect stdin_redirect;
    Redirect stdout_redirect;
    Redirect stderr_redirect;
    std::chrono::milliseconds timeout{0};  // 0: none
    std::chrono::milliseconds kill_grace{2000};
};

struct ExitStatus {
    enum class Kind { exited, signaled };
    Kind kind = Kind::exited;
    int code = 0;    // valid when exited
    int signal = 0;  // valid when signaled
    bool timed_out = false;

    bool success() const { return kind == Kind::exited && code == 0 && !timed_out; }
    // "exit code 3", "killed by signal TERM", "timed out after 5 s (killed)"
    std::string describe() const;
};

struct RunIo {
    ByteSource* in = nullptr;
    ByteSink* out = nullptr;
    ByteSink* err = nullptr;
};

class Process {
  public:
    virtual ~Process() = default;
    virtual pid_t pid() const = 0;
    // nullopt while running.
    virtual std::optional<ExitStatus> try_wait() = 0;
    virtual ExitStatus wait() = 0;
    // SIGTERM to the group, SIGKILL after `grace`, reap.
    virtual ExitStatus terminate(std::chrono::milliseconds grace) = 0;
};

class ProcessRunner {
  public:
    virtual ~ProcessRunner() = default;
    virtual Result<ExitStatus> run(const ProcessSpec& spec, RunIo io) = 0;
    virtual Result<std::unique_ptr<Process>> start(const ProcessSpec& spec) = 0;
};

class PosixProcessRunner : public ProcessRunner {
  public:
    Result<ExitStatus> run(const ProcessSpec& spec, RunIo io) override;
    Result<std::unique_ptr<Process>> start(const ProcessSpec& spec) override;
};

// Stateful fake: every call is handed to `handler`, which plays the child
// (reads io.in, writes io.out/io.err) and returns its exit. Specs are kept
// in `history` for assertions on what would have run.
class FakeProcessRunner : public ProcessRunner {
  public:
    using Handler = std::function<Result<ExitStatus>(const ProcessSpec&, RunIo)>;
    explicit FakeProcessRunner(Handler handler) : m_handler(std::move(handler)) {}
    Result<ExitStatus> run(const ProcessSpec& spec, RunIo io) override;
    Result<std::unique_ptr<Process>> start(const ProcessSpec& spec) override;
    const std::vector<ProcessSpec>& history() const { return m_history; }

  private:
    Handler m_handler;
    std::vector<ProcessSpec> m_history;
};

// Low level, for programs that chain programs (the agent): spawns spec.argv
// with stdin from `stdin_fd` and our own stdout and stderr, and returns the
// pid; the caller must reap it with wait_for().
Result<pid_t> spawn_with_stdin(const ProcessSpec& spec, int stdin_fd);
ExitStatus wait_for(pid_t pid);

// Convenience: run with captured stdout/stderr (each capped at `limit` bytes).
struct Captured {
    ExitStatus exit;
    std::string out;
    std::string err;
};
Result<Captured> run_captured(ProcessRunner& runner, const ProcessSpec& spec,
                              const std::string& input = {}, size_t limit = 16 << 20);

// Finds `program` in the PATH entry of `env` (or the default system PATH).
Result<std::string> resolve_program(const std::string& program,
                                    const std::vector<std::string>& env);

// A small, predictable environment for helper tools: PATH and LC_ALL=C.
std::vector<std::string> default_tool_env();

// Installs SIG_IGN for SIGPIPE; front ends and test mains call it once.
void ignore_sigpipe();

}  // namespace vmlift

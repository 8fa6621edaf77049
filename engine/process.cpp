#include "engine/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

namespace vmlift {
namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* k_default_path =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

Status errno_status(const std::string& what) {
    return Status(Code::io_error, what + ": " + std::strerror(errno));
}

class Fd {
  public:
    Fd() = default;
    explicit Fd(int fd) : m_fd(fd) {}
    Fd(Fd&& other) noexcept : m_fd(other.release()) {}
    Fd& operator=(Fd&& other) noexcept {
        reset(other.release());
        return *this;
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { reset(); }
    int get() const { return m_fd; }
    int release() {
        int fd = m_fd;
        m_fd = -1;
        return fd;
    }
    void reset(int fd = -1) {
        if (m_fd >= 0) {
            ::close(m_fd);
        }
        m_fd = fd;
    }

  private:
    int m_fd = -1;
};

struct Pipe {
    Fd read_end;
    Fd write_end;
};

Result<Pipe> make_pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        return errno_status("pipe2");
    }
    return Pipe{Fd(fds[0]), Fd(fds[1])};
}

void set_nonblocking(int fd) {
    int flags = ::fcntl(fd, F_GETFL);
    ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

ExitStatus decode_wait_status(int status) {
    ExitStatus exit;
    if (WIFSIGNALED(status)) {
        exit.kind = ExitStatus::Kind::signaled;
        exit.signal = WTERMSIG(status);
    } else {
        exit.code = WEXITSTATUS(status);
    }
    return exit;
}

// Spawns the child with the given stdio fds (or spec redirects when -1).
class Spawner {
  public:
    explicit Spawner(const ProcessSpec& spec) : m_spec(spec) {}

    Result<pid_t> spawn(int in_fd, int out_fd, int err_fd) {
        if (m_spec.argv.empty()) {
            return Status(Code::internal, "process spec has an empty argv");
        }
        auto path = resolve_program(m_spec.argv[0], m_spec.env);
        if (!path.ok()) {
            return path.status();
        }
        posix_spawn_file_actions_t actions;
        posix_spawnattr_t attr;
        posix_spawn_file_actions_init(&actions);
        posix_spawnattr_init(&attr);
        add_stdio(&actions, 0, in_fd, m_spec.stdin_redirect, true);
        add_stdio(&actions, 1, out_fd, m_spec.stdout_redirect, false);
        add_stdio(&actions, 2, err_fd, m_spec.stderr_redirect, false);
        posix_spawn_file_actions_addclosefrom_np(&actions, 3);

        sigset_t empty_mask;
        sigemptyset(&empty_mask);
        sigset_t defaults;
        sigfillset(&defaults);
        sigdelset(&defaults, SIGKILL);
        sigdelset(&defaults, SIGSTOP);
        posix_spawnattr_setsigmask(&attr, &empty_mask);
        posix_spawnattr_setsigdefault(&attr, &defaults);
        posix_spawnattr_setpgroup(&attr, 0);
        posix_spawnattr_setflags(
            &attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

        std::vector<char*> argv;
        for (const auto& a : m_spec.argv) {
            argv.push_back(const_cast<char*>(a.c_str()));
        }
        argv.push_back(nullptr);
        std::vector<char*> envp;
        for (const auto& e : m_spec.env) {
            envp.push_back(const_cast<char*>(e.c_str()));
        }
        envp.push_back(nullptr);

        pid_t pid = -1;
        int rc = posix_spawn(&pid, path->c_str(), &actions, &attr, argv.data(), envp.data());
        posix_spawn_file_actions_destroy(&actions);
        posix_spawnattr_destroy(&attr);
        if (rc != 0) {
            return Status(Code::io_error, "cannot start " + *path + ": " + std::strerror(rc));
        }
        return pid;
    }

  private:
    static void add_stdio(posix_spawn_file_actions_t* actions, int target, int fd,
                          const Redirect& redirect, bool is_input) {
        if (fd >= 0) {
            posix_spawn_file_actions_adddup2(actions, fd, target);
            return;
        }
        switch (redirect.kind) {
            case Redirect::Kind::inherit:
                break;
            case Redirect::Kind::fd:
                posix_spawn_file_actions_adddup2(actions, redirect.fd, target);
                break;
            case Redirect::Kind::null:
                posix_spawn_file_actions_addopen(actions, target, "/dev/null",
                                                 is_input ? O_RDONLY : O_WRONLY, 0);
                break;
            case Redirect::Kind::file_read:
                posix_spawn_file_actions_addopen(actions, target, redirect.path.c_str(), O_RDONLY,
                                                 0);
                break;
            case Redirect::Kind::file_truncate:
                posix_spawn_file_actions_addopen(actions, target, redirect.path.c_str(),
                                                 O_WRONLY | O_CREAT | O_TRUNC, 0600);
                break;
            case Redirect::Kind::file_append:
                posix_spawn_file_actions_addopen(actions, target, redirect.path.c_str(),
                                                 O_WRONLY | O_CREAT | O_APPEND, 0600);
                break;
        }
    }

    const ProcessSpec& m_spec;
};

ExitStatus reap_blocking(pid_t pid) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return decode_wait_status(status);
}

std::optional<ExitStatus> reap_nonblocking(pid_t pid) {
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) {
        return decode_wait_status(status);
    }
    return std::nullopt;
}

// SIGTERM to the group, wait up to `grace`, then SIGKILL; reaps the leader.
ExitStatus kill_group_and_reap(pid_t pid, std::chrono::milliseconds grace) {
    ::killpg(pid, SIGTERM);
    auto deadline = Clock::now() + grace;
    while (Clock::now() < deadline) {
        if (auto exit = reap_nonblocking(pid)) {
            ::killpg(pid, SIGKILL);  // stragglers in the group
            return *exit;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ::killpg(pid, SIGKILL);
    return reap_blocking(pid);
}

class PosixProcess : public Process {
  public:
    explicit PosixProcess(pid_t pid) : m_pid(pid) {}
    ~PosixProcess() override {
        if (!m_exit) {
            terminate(std::chrono::milliseconds(1000));
        }
    }
    pid_t pid() const override { return m_pid; }
    std::optional<ExitStatus> try_wait() override {
        if (!m_exit) {
            m_exit = reap_nonblocking(m_pid);
        }
        return m_exit;
    }
    ExitStatus wait() override {
        if (!m_exit) {
            m_exit = reap_blocking(m_pid);
        }
        return *m_exit;
    }
    ExitStatus terminate(std::chrono::milliseconds grace) override {
        if (!m_exit) {
            m_exit = kill_group_and_reap(m_pid, grace);
        }
        return *m_exit;
    }

  private:
    pid_t m_pid;
    std::optional<ExitStatus> m_exit;
};

// Moves bytes between the child's pipes and the caller's source/sinks.
class Pump {
  public:
    Pump(RunIo io, Fd in, Fd out, Fd err)
        : m_io(io), m_in(std::move(in)), m_out(std::move(out)), m_err(std::move(err)) {
        for (int fd : {m_in.get(), m_out.get(), m_err.get()}) {
            if (fd >= 0) {
                set_nonblocking(fd);
            }
        }
        m_buffer.resize(k_buffer_size);
    }

    bool done() const { return m_in.get() < 0 && m_out.get() < 0 && m_err.get() < 0; }

    // One poll round; waits at most `wait`. Returns an error from a sink or
    // source, or a pipe failure.
    Status step(std::chrono::milliseconds wait) {
        VMLIFT_RETURN_IF_ERROR(refill_stdin());
        pollfd fds[3];
        int n = 0;
        int in_idx = -1, out_idx = -1, err_idx = -1;
        if (m_in.get() >= 0) {
            in_idx = n;
            fds[n++] = {m_in.get(), POLLOUT, 0};
        }
        if (m_out.get() >= 0) {
            out_idx = n;
            fds[n++] = {m_out.get(), POLLIN, 0};
        }
        if (m_err.get() >= 0) {
            err_idx = n;
            fds[n++] = {m_err.get(), POLLIN, 0};
        }
        if (n == 0) {
            return {};
        }
        int rc = ::poll(fds, static_cast<nfds_t>(n), static_cast<int>(wait.count()));
        if (rc < 0) {
            return errno == EINTR ? Status() : errno_status("poll");
        }
        if (in_idx >= 0 && fds[in_idx].revents != 0) {
            VMLIFT_RETURN_IF_ERROR(write_stdin());
        }
        if (out_idx >= 0 && fds[out_idx].revents != 0) {
            VMLIFT_RETURN_IF_ERROR(drain(m_out, m_io.out));
        }
        if (err_idx >= 0 && fds[err_idx].revents != 0) {
            VMLIFT_RETURN_IF_ERROR(drain(m_err, m_io.err));
        }
        return {};
    }

  private:
    static constexpr size_t k_buffer_size = 256 * 1024;

    Status refill_stdin() {
        if (m_in.get() < 0 || m_pending_pos < m_pending.size() || m_source_done) {
            if (m_in.get() >= 0 && m_source_done && m_pending_pos >= m_pending.size()) {
                m_in.reset();  // EOF to the child
            }
            return {};
        }
        m_pending.resize(k_buffer_size);
        auto n = m_io.in->read(m_pending.data(), m_pending.size());
        if (!n.ok()) {
            return n.status();
        }
        m_pending.resize(*n);
        m_pending_pos = 0;
        if (*n == 0) {
            m_source_done = true;
            m_in.reset();
        }
        return {};
    }

    Status write_stdin() {
        while (m_pending_pos < m_pending.size()) {
            ssize_t w = ::write(m_in.get(), m_pending.data() + m_pending_pos,
                                m_pending.size() - m_pending_pos);
            if (w < 0) {
                if (errno == EAGAIN || errno == EINTR) {
                    return {};
                }
                if (errno == EPIPE) {
                    // The child stopped reading; its exit status tells why.
                    m_in.reset();
                    m_source_done = true;
                    return {};
                }
                return errno_status("write to child stdin");
            }
            m_pending_pos += static_cast<size_t>(w);
        }
        return {};
    }

    Status drain(Fd& fd, ByteSink* sink) {
        for (;;) {
            ssize_t r = ::read(fd.get(), m_buffer.data(), m_buffer.size());
            if (r > 0) {
                VMLIFT_RETURN_IF_ERROR(
                    sink->write(std::string_view(m_buffer.data(), static_cast<size_t>(r))));
                continue;
            }
            if (r == 0) {
                fd.reset();
                return {};
            }
            if (errno == EAGAIN || errno == EINTR) {
                return {};
            }
            return errno_status("read from child");
        }
    }

    RunIo m_io;
    Fd m_in, m_out, m_err;
    std::string m_pending;
    size_t m_pending_pos = 0;
    bool m_source_done = false;
    std::string m_buffer;
};

}  // namespace

std::string ExitStatus::describe() const {
    std::string text;
    if (kind == Kind::signaled) {
        const char* abbrev = sigabbrev_np(signal);
        text = "killed by signal " + (abbrev ? std::string(abbrev) : std::to_string(signal));
    } else {
        text = "exit code " + std::to_string(code);
    }
    if (timed_out) {
        text = "timed out (" + text + ")";
    }
    return text;
}

Result<std::string> resolve_program(const std::string& program,
                                    const std::vector<std::string>& env) {
    if (program.find('/') != std::string::npos) {
        if (::access(program.c_str(), X_OK) != 0) {
            return Status(Code::not_found, "program " + program + " is missing or not executable");
        }
        return program;
    }
    std::string path = k_default_path;
    for (const auto& e : env) {
        if (e.rfind("PATH=", 0) == 0) {
            path = e.substr(5);
        }
    }
    size_t start = 0;
    while (start <= path.size()) {
        size_t end = path.find(':', start);
        if (end == std::string::npos) {
            end = path.size();
        }
        std::string dir = path.substr(start, end - start);
        if (!dir.empty()) {
            std::string candidate = dir + "/" + program;
            struct stat st {};
            if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
                ::access(candidate.c_str(), X_OK) == 0) {
                return candidate;
            }
        }
        start = end + 1;
    }
    return Status(Code::not_found,
                  "program " + program + " not found in PATH=" + path + "; install it");
}

std::vector<std::string> default_tool_env() {
    return {std::string("PATH=") + k_default_path, "LC_ALL=C"};
}

void ignore_sigpipe() {
    struct sigaction sa {};
    sa.sa_handler = SIG_IGN;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGPIPE, &sa, nullptr);
}

Result<pid_t> spawn_with_stdin(const ProcessSpec& spec, int stdin_fd) {
    ProcessSpec copy = spec;
    copy.stdout_redirect = Redirect::inherit();
    copy.stderr_redirect = Redirect::inherit();
    Spawner spawner(copy);
    return spawner.spawn(stdin_fd, -1, -1);
}

ExitStatus wait_for(pid_t pid) {
    return reap_blocking(pid);
}

Result<ExitStatus> PosixProcessRunner::run(const ProcessSpec& spec, RunIo io) {
    // A source or sink that is itself a pipe end goes to the child as is.
    ByteSource* handed_in = io.in && io.in->child_fd() >= 0 ? io.in : nullptr;
    ByteSink* handed_out = io.out && io.out->child_fd() >= 0 ? io.out : nullptr;
    if (handed_in) {
        io.in = nullptr;
    }
    if (handed_out) {
        io.out = nullptr;
    }
    Pipe in, out, err;
    if (io.in) {
        auto p = make_pipe();
        if (!p.ok()) {
            return p.status();
        }
        in = std::move(*p);
    }
    if (io.out) {
        auto p = make_pipe();
        if (!p.ok()) {
            return p.status();
        }
        out = std::move(*p);
    }
    if (io.err) {
        auto p = make_pipe();
        if (!p.ok()) {
            return p.status();
        }
        err = std::move(*p);
    }
    Spawner spawner(spec);
    auto pid = spawner.spawn(handed_in ? handed_in->child_fd() : in.read_end.get(),
                             handed_out ? handed_out->child_fd() : out.write_end.get(),
                             err.write_end.get());
    if (!pid.ok()) {
        return pid.status();
    }
    if (handed_in) {
        handed_in->handed_off();
    }
    if (handed_out) {
        handed_out->handed_off();
    }
    in.read_end.reset();
    out.write_end.reset();
    err.write_end.reset();

    Pump pump(io, std::move(in.write_end), std::move(out.read_end), std::move(err.read_end));
    const bool has_deadline = spec.timeout.count() > 0;
    const auto deadline = Clock::now() + spec.timeout;
    std::optional<ExitStatus> exit;
    while (!pump.done() || !exit) {
        if (has_deadline && Clock::now() >= deadline) {
            ExitStatus killed = exit ? *exit : kill_group_and_reap(*pid, spec.kill_grace);
            killed.timed_out = true;
            if (exit) {
                ::killpg(*pid, SIGKILL);  // leader gone; a child still holds the pipes
            }
            return killed;
        }
        auto wait = std::chrono::milliseconds(200);
        if (has_deadline) {
            wait = std::min(wait, std::chrono::duration_cast<std::chrono::milliseconds>(
                                      deadline - Clock::now()) +
                                      std::chrono::milliseconds(1));
        }
        if (!exit && pump.done()) {
            // All pipes closed: only the exit is left to collect.
            exit = reap_nonblocking(*pid);
            if (!exit) {
                std::this_thread::sleep_for(std::chrono::milliseconds(2));
            }
            continue;
        }
        Status st = pump.step(wait);
        if (!st.ok()) {
            kill_group_and_reap(*pid, spec.kill_grace);
            return st;
        }
        if (!exit) {
            exit = reap_nonblocking(*pid);
        }
    }
    return *exit;
}

Result<std::unique_ptr<Process>> PosixProcessRunner::start(const ProcessSpec& spec) {
    Spawner spawner(spec);
    auto pid = spawner.spawn(-1, -1, -1);
    if (!pid.ok()) {
        return pid.status();
    }
    return std::unique_ptr<Process>(std::make_unique<PosixProcess>(*pid));
}

namespace {
// The handler already played the whole child, so the process has exited.
class FakeProcess : public Process {
  public:
    explicit FakeProcess(ExitStatus exit) : m_exit(exit) {}
    pid_t pid() const override { return 0; }
    std::optional<ExitStatus> try_wait() override { return m_exit; }
    ExitStatus wait() override { return m_exit; }
    ExitStatus terminate(std::chrono::milliseconds) override { return m_exit; }

  private:
    ExitStatus m_exit;
};
}  // namespace

Result<ExitStatus> FakeProcessRunner::run(const ProcessSpec& spec, RunIo io) {
    m_history.push_back(spec);
    return m_handler(spec, io);
}

Result<std::unique_ptr<Process>> FakeProcessRunner::start(const ProcessSpec& spec) {
    m_history.push_back(spec);
    auto exit = m_handler(spec, RunIo{});
    if (!exit.ok()) {
        return exit.status();
    }
    return std::unique_ptr<Process>(std::make_unique<FakeProcess>(*exit));
}

Result<Captured> run_captured(ProcessRunner& runner, const ProcessSpec& spec,
                              const std::string& input, size_t limit) {
    StringSource in(input);
    LimitedStringSink out(limit);
    LimitedStringSink err(limit);
    auto exit = runner.run(spec, RunIo{&in, &out, &err});
    if (!exit.ok()) {
        return exit.status();
    }
    return Captured{*exit, out.str(), err.str()};
}

}  // namespace vmlift

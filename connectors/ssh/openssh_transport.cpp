#include "connectors/ssh/openssh_transport.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "engine/quote.h"
#include "engine/run_dir.h"

namespace vmlift {
namespace {

bool contains(const std::string& haystack, const char* needle) {
    return haystack.find(needle) != std::string::npos;
}

}  // namespace

OpenSshTransport::OpenSshTransport(SshOptions options, ProcessRunner& runner)
    : m_options(std::move(options)), m_runner(runner) {}

OpenSshTransport::~OpenSshTransport() {
    close();
}

std::vector<std::string> OpenSshTransport::common_options() const {
    const SshOptions& o = m_options;
    std::vector<std::string> args = {
        "-F",
        o.ssh_config_file.empty() ? "/dev/null" : o.ssh_config_file,
        "-p",
        std::to_string(o.target.port),
        "-l",
        o.target.user,
        "-o",
        "ConnectTimeout=" + std::to_string(o.connect_timeout.count()),
        "-o",
        "ServerAliveInterval=" + std::to_string(o.keepalive_interval.count()),
        "-o",
        "ServerAliveCountMax=" + std::to_string(o.keepalive_count_max),
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "UpdateHostKeys=no",
        "-o",
        "CheckHostIP=no",
        "-o",
        "LogLevel=ERROR",
        "-o",
        "Compression=no",
        "-o",
        "ForwardX11=no",
        // AES-GCM first: with AES-NI it is the fastest AEAD OpenSSH offers.
        "-o",
        "Ciphers=aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com,"
        "aes128-ctr,aes256-ctr",
    };
    switch (o.host_key_policy) {
        case HostKeyPolicy::strict:
            args.insert(args.end(), {"-o", "StrictHostKeyChecking=yes", "-o",
                                     "UserKnownHostsFile=" + o.known_hosts_file});
            break;
        case HostKeyPolicy::accept_new:
            args.insert(args.end(), {"-o", "StrictHostKeyChecking=accept-new", "-o",
                                     "UserKnownHostsFile=" + o.known_hosts_file});
            break;
        case HostKeyPolicy::insecure_no_check:
            args.insert(args.end(),
                        {"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"});
            break;
    }
    if (!o.auth.identity_file.empty()) {
        args.insert(args.end(), {"-i", o.auth.identity_file, "-o", "IdentitiesOnly=yes"});
    }
    if (o.auth.agent_socket.empty()) {
        args.insert(args.end(), {"-o", "IdentityAgent=none"});
    }
    args.insert(args.end(),
                {"-o", std::string("ForwardAgent=") + (o.auth.forward_agent ? "yes" : "no")});
    bool needs_prompt = o.auth.password.has_value() || o.auth.passphrase.has_value();
    if (needs_prompt) {
        args.insert(args.end(), {"-o", "BatchMode=no", "-o", "NumberOfPasswordPrompts=1"});
    } else {
        args.insert(args.end(), {"-o", "BatchMode=yes"});
    }
    if (o.auth.password) {
        args.insert(args.end(),
                    {"-o", "PasswordAuthentication=yes", "-o", "KbdInteractiveAuthentication=yes"});
    } else {
        args.insert(args.end(),
                    {"-o", "PasswordAuthentication=no", "-o", "KbdInteractiveAuthentication=no"});
    }
    if (!m_dir.empty()) {
        args.insert(args.end(), {"-S", m_dir + "/cm"});
    }
    return args;
}

std::vector<std::string> OpenSshTransport::master_argv() const {
    std::vector<std::string> argv = {m_options.ssh_program, "-M", "-T"};
    auto common = common_options();
    argv.insert(argv.end(), common.begin(), common.end());
    // The session ends when our end of its stdin closes (see the header).
    static const std::string k_session = *shell_join({"sh", "-c", "cat >/dev/null"});
    argv.insert(argv.end(), {"-o", "ControlPersist=no", "--", m_options.target.host, k_session});
    return argv;
}

std::vector<std::string> OpenSshTransport::client_argv(const std::string& command_line) const {
    std::vector<std::string> argv = {m_options.ssh_program, "-T"};
    auto common = common_options();
    argv.insert(argv.end(), common.begin(), common.end());
    argv.insert(argv.end(), {"-o", "ControlMaster=no", "--", m_options.target.host, command_line});
    return argv;
}

std::vector<std::string> OpenSshTransport::client_env() const {
    std::vector<std::string> env = m_options.env.empty() ? default_tool_env() : m_options.env;
    if (!m_options.auth.agent_socket.empty()) {
        env.push_back("SSH_AUTH_SOCK=" + m_options.auth.agent_socket);
    }
    if (!m_dir.empty() && (m_options.auth.password || m_options.auth.passphrase)) {
        env.push_back("SSH_ASKPASS=" + m_options.askpass_program);
        env.push_back("SSH_ASKPASS_REQUIRE=force");
        env.push_back("VMLIFT_ASKPASS_DIR=" + m_dir);
        env.push_back("DISPLAY=");
    }
    return env;
}

std::string OpenSshTransport::read_master_stderr() const {
    std::ifstream in(m_dir + "/master.err");
    std::stringstream buf;
    buf << in.rdbuf();
    return buf.str();
}

Status OpenSshTransport::classify_failure(const std::string& err) const {
    const SshTarget& t = m_options.target;
    const std::string& kh = m_options.known_hosts_file;
    if (contains(err, "REMOTE HOST IDENTIFICATION HAS CHANGED") || contains(err, "Offending ")) {
        return host_key_changed_error(t, kh);
    }
    if (contains(err, "host key is known for") || contains(err, "Host key verification failed")) {
        return host_key_unknown_error(t, kh);
    }
    if (contains(err, "incorrect passphrase") || contains(err, "Load key")) {
        return auth_failed_error(t, "cannot load private key " + m_options.auth.identity_file +
                                        " (" + last_line(err) + ")");
    }
    if (contains(err, "Permission denied")) {
        return auth_failed_error(t, "server said: " + last_line(err));
    }
    if (contains(err, "timed out")) {
        return connect_timeout_error(t, m_options.connect_timeout);
    }
    if (contains(err, "Connection refused") || contains(err, "No route to host") ||
        contains(err, "Network is unreachable") || contains(err, "Could not resolve") ||
        contains(err, "Name or service not known")) {
        return unreachable_error(t, last_line(err));
    }
    std::string line = last_line(err);
    return unreachable_error(t, line.empty() ? "ssh exited without a message" : line);
}

Status OpenSshTransport::connect() {
    std::lock_guard lock(m_mutex);
    if (m_master) {
        return {};
    }
    char tmpl[] = "/tmp/vmlift-ssh-XXXXXX";
    if (!::mkdtemp(tmpl)) {
        return Status(Code::io_error, std::string("cannot create a private directory in /tmp: ") +
                                          std::strerror(errno));
    }
    m_dir = tmpl;
    if (m_options.auth.password || m_options.auth.passphrase) {
        if (m_options.askpass_program.empty()) {
            return Status(Code::internal, "no askpass program configured for the OpenSSH backend");
        }
        // The askpass helper prints `password` for password prompts and
        // `passphrase` for key prompts.
        if (m_options.auth.password) {
            VMLIFT_RETURN_IF_ERROR(
                write_file_atomic(m_dir + "/password", *m_options.auth.password, 0600));
        }
        if (m_options.auth.passphrase) {
            VMLIFT_RETURN_IF_ERROR(
                write_file_atomic(m_dir + "/passphrase", *m_options.auth.passphrase, 0600));
        }
    }
    int lifeline[2];
    if (::pipe2(lifeline, O_CLOEXEC) != 0) {
        return Status(Code::io_error, std::string("pipe2: ") + std::strerror(errno));
    }
    ProcessSpec spec;
    spec.argv = master_argv();
    spec.env = client_env();
    spec.stdin_redirect = Redirect::from_fd(lifeline[0]);
    spec.stderr_redirect = Redirect::truncate_to(m_dir + "/master.err");
    auto master = m_runner.start(spec);
    ::close(lifeline[0]);
    m_lifeline = lifeline[1];
    if (!master.ok()) {
        return master.status();
    }
    m_master = std::move(*master);

    const std::string socket = m_dir + "/cm";
    const auto deadline =
        std::chrono::steady_clock::now() + 2 * m_options.connect_timeout + std::chrono::seconds(10);
    for (;;) {
        struct stat st {};
        if (::stat(socket.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
            return {};
        }
        if (auto exit = m_master->try_wait()) {
            Status failure = classify_failure(read_master_stderr());
            m_master.reset();
            return failure;
        }
        if (std::chrono::steady_clock::now() > deadline) {
            m_master->terminate(std::chrono::milliseconds(500));
            m_master.reset();
            return connect_timeout_error(m_options.target, m_options.connect_timeout);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
}

Result<ExitStatus> OpenSshTransport::exec(const std::vector<std::string>& argv, RunIo io,
                                          ExecOptions options) {
    std::lock_guard lock(m_mutex);
    if (!m_lost.ok()) {
        return m_lost;
    }
    if (!m_master) {
        return Status(Code::internal,
                      "exec on " + m_options.target.describe() + " before connect()");
    }
    auto line = shell_join(argv);
    if (!line.ok()) {
        return line.status();
    }
    ProcessSpec spec;
    spec.argv = client_argv(*line);
    spec.env = client_env();
    spec.timeout = options.timeout;
    // ssh's own diagnostics share stderr with the remote command; keep a
    // tail copy so a failure of the link itself can be explained.
    LimitedStringSink own_err(64 * 1024);
    struct TeeSink : ByteSink {
        ByteSink* user;
        ByteSink* tail;
        Status write(std::string_view d) override {
            (void)tail->write(d);
            return user ? user->write(d) : Status();
        }
    } tee;
    tee.user = io.err;
    tee.tail = &own_err;
    io.err = &tee;
    auto exit = m_runner.run(spec, io);
    if (!exit.ok()) {
        return exit.status();
    }
    if (exit->timed_out) {
        return Status(Code::timeout, "`" + argv.front() + "` on " + m_options.target.describe() +
                                         " did not finish within " +
                                         std::to_string(options.timeout.count() / 1000) +
                                         " s; raise --task-timeout-sec if the work is that long");
    }
    if (exit->kind == ExitStatus::Kind::exited && exit->code == 255) {
        // 255 is ssh's own failure code (a remote command may also use it).
        if (m_master->try_wait()) {
            std::string why = last_line(read_master_stderr());
            m_master.reset();
            m_lost = connection_lost_error(m_options.target,
                                           why.empty() ? "the ssh master process exited" : why);
            return m_lost;
        }
        const std::string& err = own_err.str();
        if (contains(err, "Connection to ") || contains(err, "mux_client") ||
            contains(err, "Broken pipe") || contains(err, "Timeout, server")) {
            return connection_lost_error(m_options.target, last_line(err));
        }
    }
    return *exit;
}

void OpenSshTransport::close() {
    std::lock_guard lock(m_mutex);
    if (m_lifeline >= 0) {
        ::close(m_lifeline);
        m_lifeline = -1;
    }
    if (m_master) {
        ProcessSpec spec;
        spec.argv = {m_options.ssh_program, "-F", "/dev/null", "-S",
                     m_dir + "/cm",         "-O", "exit",      "--",
                     m_options.target.host};
        spec.env = client_env();
        spec.timeout = std::chrono::seconds(5);
        (void)m_runner.run(spec, RunIo{});
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
        while (!m_master->try_wait() && std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        m_master->terminate(std::chrono::milliseconds(500));
        m_master.reset();
    }
    if (!m_dir.empty()) {
        std::error_code ec;
        std::filesystem::remove_all(m_dir, ec);
        m_dir.clear();
    }
}

}  // namespace vmlift

// `migrate-vm stream` between real sshd lab hosts: every transport and mode,
// file and loop-device sources, fresh and pre-filled destinations, resume
// after kills, and every documented error.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <random>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "engine/process.h"
#include "engine/status.h"
#include "tests/integration/lab.h"
#include "tests/support/temp_dir.h"

namespace vmlift {
namespace {

using namespace std::chrono_literals;
using testing_support::Lab;
using testing_support::read_file_or_empty;
using testing_support::TempDir;

constexpr uint64_t k_mib = 1024 * 1024;

// Random (incompressible) data, text-like data, explicit zeros and holes.
void make_image(const std::string& path, uint64_t size, uint32_t seed, int random_share = 3) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ASSERT_GE(fd, 0) << path;
    ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(size)), 0);
    std::mt19937_64 rng(seed);
    std::string chunk(k_mib, '\0');
    for (uint64_t off = 0; off < size; off += k_mib) {
        int pick = static_cast<int>(rng() % 6);
        if (pick < random_share) {
            for (size_t i = 0; i + 8 <= chunk.size(); i += 8) {
                uint64_t v = rng();
                std::memcpy(chunk.data() + i, &v, 8);
            }
        } else if (pick == 3) {
            for (size_t i = 0; i < chunk.size(); ++i) {
                chunk[i] = "lorem ipsum dolor sit amet\n"[(i + off / 7) % 27];
            }
        } else if (pick == 4) {
            chunk.assign(k_mib, '\0');
        } else {
            continue;
        }
        size_t n = static_cast<size_t>(std::min<uint64_t>(k_mib, size - off));
        ASSERT_EQ(::pwrite(fd, chunk.data(), n, static_cast<off_t>(off)), static_cast<ssize_t>(n));
    }
    ::close(fd);
}

bool same_contents(const std::string& a, const std::string& b) {
    std::string x = read_file_or_empty(a);
    return !x.empty() && x == read_file_or_empty(b);
}

class LoopDevice {
  public:
    explicit LoopDevice(const std::string& file) {
        ProcessSpec spec;
        spec.argv = {"losetup", "--find", "--show", file};
        spec.env = default_tool_env();
        PosixProcessRunner runner;
        auto r = run_captured(runner, spec);
        if (r.ok() && r->exit.success()) {
            m_path = last_line(r->out);
        }
    }
    ~LoopDevice() {
        if (!m_path.empty()) {
            ProcessSpec spec;
            spec.argv = {"losetup", "-d", m_path};
            spec.env = default_tool_env();
            PosixProcessRunner runner;
            (void)runner.run(spec, RunIo{});
        }
    }
    const std::string& path() const { return m_path; }

  private:
    std::string m_path;
};

class StreamFixture : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        s_skip = Lab::skip_reason();
        if (s_skip.empty() && resolve_program("losetup", default_tool_env()).ok() == false) {
            s_skip = "losetup (util-linux) is missing";
        }
        if (!s_skip.empty()) {
            return;
        }
        auto lab = Lab::create({"src", "dst"});
        if (lab.ok()) {
            s_lab = std::move(*lab);
        } else {
            s_error = lab.status().to_string();
        }
    }
    static void TearDownTestSuite() { s_lab.reset(); }

    void SetUp() override {
        if (!s_skip.empty()) {
            GTEST_SKIP() << s_skip;
        }
        ASSERT_TRUE(s_lab) << s_error;
    }

    std::string src_disk(const std::string& name) const { return s_lab->disks("src") + "/" + name; }
    std::string dst_disk(const std::string& name) const { return s_lab->disks("dst") + "/" + name; }

    std::vector<std::string> base_args(const std::string& migrate_vm = VMLIFT_MIGRATE_VM) const {
        return {migrate_vm,
                "--json",
                "--known-hosts",
                s_lab->known_hosts(),
                "--identity-file",
                s_lab->client_key(),
                "--migration-key-path",
                s_lab->client_key(),
                "--connect-timeout-sec",
                "5",
                "--run-dir",
                m_runs.path(),
                "stream",
                "--src-host",
                s_lab->ip("src"),
                "--dst-host",
                s_lab->ip("dst")};
    }

    ProcessSpec spec_for(std::vector<std::string> extra,
                         const std::string& migrate_vm = VMLIFT_MIGRATE_VM) const {
        ProcessSpec spec;
        spec.argv = base_args(migrate_vm);
        spec.argv.insert(spec.argv.end(), extra.begin(), extra.end());
        spec.env = default_tool_env();
        spec.env.push_back("HOME=" + m_home.path());
        spec.timeout = 300s;
        return spec;
    }

    Result<Captured> stream(std::vector<std::string> extra,
                            const std::string& migrate_vm = VMLIFT_MIGRATE_VM) {
        return run_captured(m_runner, spec_for(std::move(extra), migrate_vm));
    }

    // Mounts (or unmounts) as the host sees it.
    static bool mount_on(const std::string& host, std::vector<std::string> args,
                         const std::string& tool = "mount") {
        args.insert(args.begin(), tool);
        auto r = s_lab->exec(host, args);
        return r.ok() && r->exit.success();
    }

    static nlohmann::json last_json(const std::string& out) {
        std::string line = last_line(out);
        try {
            return nlohmann::json::parse(line);
        } catch (const nlohmann::json::exception&) {
            return nlohmann::json();
        }
    }

    static inline std::unique_ptr<Lab> s_lab;
    static inline std::string s_skip;
    static inline std::string s_error;
    TempDir m_home;
    TempDir m_runs;
    PosixProcessRunner m_runner;
};

// ---------------------------------------------------------------------------
// The matrix: transport x mode x source kind x destination state.
struct Case {
    const char* transport;
    const char* mode;
    bool loop_source;
    bool prefilled;
};

void PrintTo(const Case& c, std::ostream* os) {
    *os << c.transport << "/" << c.mode << "/" << (c.loop_source ? "loopdev" : "file") << "/"
        << (c.prefilled ? "prefilled" : "fresh");
}

class StreamMatrix : public StreamFixture, public ::testing::WithParamInterface<Case> {};

TEST_P(StreamMatrix, CopyIsBitIdentical) {
    const Case& c = GetParam();
    const std::string image = src_disk("matrix.img");
    const std::string dst = dst_disk("matrix.img");
    make_image(image, 24 * k_mib + 12288, 11);
    std::filesystem::remove(dst);
    if (c.prefilled) {
        testing_support::write_all(dst, std::string(24 * k_mib + 12288, '\xee'));
    }
    std::unique_ptr<LoopDevice> loop;
    std::string source = image;
    if (c.loop_source) {
        loop = std::make_unique<LoopDevice>(image);
        ASSERT_FALSE(loop->path().empty()) << "cannot attach a loop device";
        source = loop->path();
    }
    auto r = stream({"--src-dev-path", source, "--dst-dev-path", dst, "--mode", c.mode,
                     "--transport", c.transport});
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->exit.code, 0) << r->err;
    auto result = last_json(r->out);
    EXPECT_EQ(result["event"], "result") << r->out;
    EXPECT_EQ(result["transport"], c.transport);
    EXPECT_EQ(result["mode"], std::string(c.mode) == "auto" ? "direct" : c.mode)
        << result["mode_reason"];
    EXPECT_EQ(result["size"], 24 * k_mib + 12288);
    EXPECT_TRUE(same_contents(image, dst)) << "destination differs from the source";
    if (std::string(c.transport) == "agent") {
        EXPECT_EQ(result["digest"].get<std::string>().size(), 32u);
        EXPECT_LT(result["bytes_sent"].get<uint64_t>(), result["size"].get<uint64_t>());
    }
}

std::vector<Case> all_cases() {
    std::vector<Case> cases;
    for (const char* transport : {"agent", "shell"}) {
        for (const char* mode : {"direct", "relay", "auto"}) {
            for (bool loop : {false, true}) {
                for (bool prefilled : {false, true}) {
                    cases.push_back({transport, mode, loop, prefilled});
                }
            }
        }
    }
    return cases;
}

INSTANTIATE_TEST_SUITE_P(All, StreamMatrix, ::testing::ValuesIn(all_cases()),
                         [](const auto& param_info) {
                             const Case& c = param_info.param;
                             return std::string(c.transport) + "_" + c.mode + "_" +
                                    (c.loop_source ? "loopdev" : "file") + "_" +
                                    (c.prefilled ? "prefilled" : "fresh");
                         });

// ---------------------------------------------------------------------------
using StreamCli = StreamFixture;

TEST_F(StreamCli, AutoRelaysWhenTheHostsCannotReachEachOther) {
    const std::string image = src_disk("iso.img");
    make_image(image, 8 * k_mib, 3);
    ASSERT_TRUE(s_lab->isolate("src", "dst").ok());
    auto r =
        stream({"--src-dev-path", image, "--dst-dev-path", dst_disk("iso.img"), "--mode", "auto"});
    ASSERT_TRUE(s_lab->join("src", "dst").ok());
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->exit.code, 0) << r->err;
    auto result = last_json(r->out);
    EXPECT_EQ(result["mode"], "relay");
    EXPECT_NE(result["mode_reason"].get<std::string>().find("cannot reach"), std::string::npos)
        << result["mode_reason"];
    EXPECT_TRUE(same_contents(image, dst_disk("iso.img")));
}

TEST_F(StreamCli, VerifyReadbackAndDeltaResync) {
    const std::string image = src_disk("delta.img");
    const std::string dst = dst_disk("delta.img");
    make_image(image, 64 * k_mib, 5);
    auto first = stream(
        {"--src-dev-path", image, "--dst-dev-path", dst, "--mode", "relay", "--verify-readback"});
    ASSERT_TRUE(first.ok());
    ASSERT_EQ(first->exit.code, 0) << first->err;
    EXPECT_EQ(last_json(first->out)["readback_verified"], true);
    // Change 1% of the blocks, then re-sync with --delta.
    int fd = ::open(image.c_str(), O_WRONLY);
    std::mt19937 rng(9);
    for (int i = 0; i < 16; ++i) {
        std::string bytes(4096, static_cast<char>('A' + i));
        off_t at = static_cast<off_t>((rng() % (64 * k_mib / 4096)) * 4096);
        ASSERT_EQ(::pwrite(fd, bytes.data(), bytes.size(), at), 4096);
    }
    ::close(fd);
    auto delta =
        stream({"--src-dev-path", image, "--dst-dev-path", dst, "--mode", "relay", "--delta"});
    ASSERT_TRUE(delta.ok());
    ASSERT_EQ(delta->exit.code, 0) << delta->err;
    auto result = last_json(delta->out);
    EXPECT_TRUE(same_contents(image, dst));
    EXPECT_LE(result["bytes_written"].get<uint64_t>(), 16 * 4096u)
        << "delta rewrote more than the changed 4 KiB blocks";
    EXPECT_GE(result["same_bytes"].get<uint64_t>(), 64 * k_mib - 16 * 4096);
    EXPECT_EQ(result["block_size"], 4096);
}

// --seal leaves the destination's block hashes: the next --delta reads only
// the source. A destination written to since is noticed and hashed again.
TEST_F(StreamCli, SealedDeltaReadsOnlyTheSourceUnlessTheDestinationChanged) {
    const std::string image = src_disk("sealed.img");
    const std::string dst = dst_disk("sealed.img");
    make_image(image, 64 * k_mib, 6);
    auto change_blocks = [](const std::string& path, uint32_t seed) {
        int fd = ::open(path.c_str(), O_WRONLY);
        std::mt19937 rng(seed);
        for (int i = 0; i < 16; ++i) {
            std::string bytes(4096, static_cast<char>('a' + i));
            off_t at = static_cast<off_t>((rng() % (64 * k_mib / 4096)) * 4096);
            ASSERT_EQ(::pwrite(fd, bytes.data(), bytes.size(), at), 4096);
        }
        ::close(fd);
    };
    for (const char* mode : {"direct", "relay"}) {
        SCOPED_TRACE(mode);
        auto first =
            stream({"--src-dev-path", image, "--dst-dev-path", dst, "--mode", mode, "--seal"});
        ASSERT_TRUE(first.ok());
        ASSERT_EQ(first->exit.code, 0) << first->err;
        EXPECT_EQ(last_json(first->out)["sealed"], true);
        change_blocks(image, mode[0]);
        auto delta =
            stream({"--src-dev-path", image, "--dst-dev-path", dst, "--mode", mode, "--delta"});
        ASSERT_TRUE(delta.ok());
        ASSERT_EQ(delta->exit.code, 0) << delta->err;
        auto result = last_json(delta->out);
        EXPECT_EQ(result["delta_baseline"], "seal");
        EXPECT_TRUE(same_contents(image, dst));
        EXPECT_LE(result["bytes_written"].get<uint64_t>(), 16 * 4096u);
        EXPECT_EQ(result["sealed"], false) << "the seal is used once";
    }
    // Sealed, then the destination is written behind our back (the same
    // bytes, even): the delta must not trust the seal.
    auto sealed =
        stream({"--src-dev-path", image, "--dst-dev-path", dst, "--mode", "direct", "--seal"});
    ASSERT_TRUE(sealed.ok());
    ASSERT_EQ(sealed->exit.code, 0) << sealed->err;
    change_blocks(dst, 77);
    change_blocks(image, 78);
    auto delta =
        stream({"--src-dev-path", image, "--dst-dev-path", dst, "--mode", "direct", "--delta"});
    ASSERT_TRUE(delta.ok());
    ASSERT_EQ(delta->exit.code, 0) << delta->err;
    EXPECT_EQ(last_json(delta->out)["delta_baseline"], "hashed");
    EXPECT_TRUE(same_contents(image, dst)) << "blocks changed on the destination survived";
    // A plain copy drops an old seal too.
    ASSERT_EQ(stream({"--src-dev-path", image, "--dst-dev-path", dst, "--mode", "direct", "--seal"})
                  ->exit.code,
              0);
    change_blocks(dst, 79);
    ASSERT_EQ(
        stream({"--src-dev-path", image, "--dst-dev-path", dst, "--mode", "direct"})->exit.code, 0);
    change_blocks(image, 80);
    delta = stream({"--src-dev-path", image, "--dst-dev-path", dst, "--mode", "direct", "--delta"});
    ASSERT_TRUE(delta.ok());
    EXPECT_EQ(last_json(delta->out)["delta_baseline"], "hashed");
    EXPECT_TRUE(same_contents(image, dst));
}

// Kills the copy at random points (the controller, or the SSH sessions on
// either host) and resumes each time to a bit-identical result.
TEST_F(StreamCli, ResumesToIdenticalCopiesAfterRandomKills) {
    const std::string image = src_disk("resume.img");
    const std::string dst = dst_disk("resume.img");
    make_image(image, 160 * k_mib, 21, 5);  // mostly incompressible: the copy takes a while
    std::mt19937 rng(20261123);
    int interrupted = 0;
    for (int cycle = 0; cycle < 30 && interrupted < 10; ++cycle) {
        std::filesystem::remove(dst);
        const char* mode = cycle % 2 == 0 ? "relay" : "direct";
        auto spec = spec_for({"--src-dev-path", image, "--dst-dev-path", dst, "--mode", mode});
        auto proc = m_runner.start(spec);
        ASSERT_TRUE(proc.ok());
        std::this_thread::sleep_for(std::chrono::milliseconds(300 + rng() % 900));
        switch (cycle % 3) {
            case 0:
                ::kill((*proc)->pid(), SIGKILL);
                break;  // the controller dies
            case 1:
                ASSERT_TRUE(s_lab->drop("dst").ok());
                break;  // SSH dropped
            default:
                ASSERT_TRUE(s_lab->drop("src").ok());
                break;
        }
        ExitStatus exit = (*proc)->wait();
        if (exit.success()) {
            continue;  // finished before the kill: not an interruption
        }
        ++interrupted;
        auto resumed =
            stream({"--src-dev-path", image, "--dst-dev-path", dst, "--mode", mode, "--resume"});
        ASSERT_TRUE(resumed.ok());
        ASSERT_EQ(resumed->exit.code, 0) << "cycle " << cycle << ": " << resumed->err;
        ASSERT_TRUE(same_contents(image, dst)) << "cycle " << cycle;
        auto result = last_json(resumed->out);
        EXPECT_GT(result["same_bytes"].get<uint64_t>() + result["bytes_written"].get<uint64_t>(),
                  0u);
    }
    EXPECT_GE(interrupted, 10);
}

// ---------------------------------------------------------------------------
// Every documented error, once: message and exit code.

TEST_F(StreamCli, MissingSourceIsNotFound) {
    auto r = stream({"--src-dev-path", src_disk("nope.img"), "--dst-dev-path", dst_disk("x.img")});
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->exit.code, exit_code_for(Code::not_found)) << r->err;
    EXPECT_NE(r->err.find("source " + src_disk("nope.img") + " does not exist"), std::string::npos)
        << r->err;
}

TEST_F(StreamCli, SmallerDestinationIsRefusedBeforeAnyWrite) {
    const std::string image = src_disk("big.img");
    make_image(image, 16 * k_mib, 4);
    const std::string small = dst_disk("small.img");
    testing_support::write_all(small, std::string(8 * k_mib, '\x11'));
    LoopDevice loop(small);
    ASSERT_FALSE(loop.path().empty());
    auto r = stream({"--src-dev-path", image, "--dst-dev-path", loop.path()});
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->exit.code, exit_code_for(Code::invalid_input)) << r->err;
    EXPECT_NE(r->err.find("holds 8388608 bytes but the source has 16777216"), std::string::npos)
        << r->err;
    EXPECT_EQ(read_file_or_empty(small), std::string(8 * k_mib, '\x11')) << "it was written";
}

TEST_F(StreamCli, FullDestinationReportsTheOffsetReached) {
    const std::string mount = s_lab->disks("dst") + "/tiny";
    std::filesystem::create_directories(mount);
    ASSERT_TRUE(mount_on("dst", {"-t", "tmpfs", "-o", "size=6m", "tmpfs", mount}));
    const std::string image = src_disk("full.img");
    make_image(image, 32 * k_mib, 8, 6);  // all random: needs 32 MiB
    auto r = stream({"--src-dev-path", image, "--dst-dev-path", mount + "/full.img", "--mode",
                     "relay", "--agent-dir", s_lab->disks("dst") + "/agent"});
    ASSERT_TRUE(mount_on("dst", {"-l", mount}, "umount"));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->exit.code, exit_code_for(Code::io_error)) << r->err;
    EXPECT_NE(r->err.find("is full at offset"), std::string::npos) << r->err;
}

TEST_F(StreamCli, ExpectedBytesMismatchIsRefused) {
    const std::string image = src_disk("exp.img");
    make_image(image, 4 * k_mib, 1);
    for (const char* transport : {"agent", "shell"}) {
        auto r = stream({"--src-dev-path", image, "--dst-dev-path", dst_disk("exp.img"),
                         "--expected-bytes", "1000", "--transport", transport});
        ASSERT_TRUE(r.ok());
        EXPECT_EQ(r->exit.code, exit_code_for(Code::invalid_input)) << transport << r->err;
        EXPECT_NE(r->err.find("--expected-bytes is 1000 but source"), std::string::npos) << r->err;
    }
}

TEST_F(StreamCli, UnreachableHostAndChangedHostKey) {
    const std::string image = src_disk("h.img");
    make_image(image, 2 * k_mib, 1);
    ASSERT_TRUE(s_lab->mute("dst").ok());
    auto r = stream({"--src-dev-path", image, "--dst-dev-path", dst_disk("h.img")});
    ASSERT_TRUE(s_lab->unmute("dst").ok());
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->exit.code, exit_code_for(Code::timeout)) << r->err;
    EXPECT_NE(r->err.find("cannot connect to root@" + s_lab->ip("dst")), std::string::npos)
        << r->err;

    TempDir dir;
    std::string src_key = read_file_or_empty(s_lab->dir() + "/hosts/src/ssh_host_ed25519_key.pub");
    std::string kh = read_file_or_empty(s_lab->known_hosts());
    kh += s_lab->ip("dst") + " " + src_key.substr(0, src_key.rfind(' ')) + "\n";
    // Replace dst's real entry with src's key.
    std::string filtered;
    std::istringstream lines(kh);
    std::string line;
    while (std::getline(lines, line)) {
        bool real_dst = line.rfind(s_lab->ip("dst") + " ", 0) == 0 &&
                        line.find(src_key.substr(0, 40)) == std::string::npos;
        if (!real_dst) {
            filtered += line + "\n";
        }
    }
    testing_support::write_all(dir.file("kh"), filtered);
    auto spec = spec_for({"--src-dev-path", image, "--dst-dev-path", dst_disk("h.img")});
    spec.argv[3] = dir.file("kh");  // --known-hosts value
    auto changed = run_captured(m_runner, spec);
    ASSERT_TRUE(changed.ok());
    EXPECT_EQ(changed->exit.code, exit_code_for(Code::host_key)) << changed->err;
    EXPECT_NE(changed->err.find("does not match"), std::string::npos) << changed->err;
}

TEST_F(StreamCli, AgentThatCannotExecuteIsAClearError) {
    const std::string mount = s_lab->disks("src") + "/noexec";
    std::filesystem::create_directories(mount);
    ASSERT_TRUE(mount_on("src", {"-t", "tmpfs", "-o", "size=64m,noexec", "tmpfs", mount}));
    const std::string image = src_disk("nx.img");
    make_image(image, 2 * k_mib, 1);
    auto r = stream(
        {"--src-dev-path", image, "--dst-dev-path", dst_disk("nx.img"), "--agent-dir", mount});
    ASSERT_TRUE(mount_on("src", {"-l", mount}, "umount"));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->exit.code, exit_code_for(Code::permission_denied)) << r->err;
    EXPECT_NE(r->err.find("cannot execute the agent in " + mount), std::string::npos) << r->err;
    EXPECT_NE(r->err.find("--transport shell"), std::string::npos) << r->err;
}

// A copy of migrate-vm whose "vmlift-agent" damages what it sends.
class CorruptingAgent {
  public:
    explicit CorruptingAgent(const std::string& mode) {
        std::filesystem::copy_file(VMLIFT_MIGRATE_VM, m_dir.file("migrate-vm"));
        ::chmod(m_dir.file("migrate-vm").c_str(), 0755);
        std::string script = "#!/bin/sh\nif [ \"$1\" = send ]; then \"" +
                             std::string(VMLIFT_AGENT) + "\" \"$@\" | \"" + VMLIFT_CORRUPT +
                             "\" '" + mode + "'; exit $?; fi\nexec \"" + VMLIFT_AGENT +
                             "\" \"$@\"\n";
        testing_support::write_all(m_dir.file("vmlift-agent"), script);
        ::chmod(m_dir.file("vmlift-agent").c_str(), 0755);
    }
    std::string migrate_vm() const { return m_dir.file("migrate-vm"); }
    std::string marker() const { return m_dir.file("marker"); }

  private:
    TempDir m_dir;
};

TEST_F(StreamCli, CorruptedChunkIsRetriedThenFatal) {
    const std::string image = src_disk("bad.img");
    make_image(image, 8 * k_mib, 2);
    TempDir marker_dir;
    CorruptingAgent once("once:" + marker_dir.file("marker"));
    auto retried =
        stream({"--src-dev-path", image, "--dst-dev-path", dst_disk("bad.img"), "--mode", "relay"},
               once.migrate_vm());
    ASSERT_TRUE(retried.ok());
    ASSERT_EQ(retried->exit.code, 0) << retried->err;
    EXPECT_EQ(last_json(retried->out)["rounds"], 2);
    EXPECT_NE(retried->err.find("failed verification in round 1"), std::string::npos)
        << retried->err;
    EXPECT_TRUE(same_contents(image, dst_disk("bad.img")));

    CorruptingAgent always("always");
    auto fatal =
        stream({"--src-dev-path", image, "--dst-dev-path", dst_disk("bad2.img"), "--mode", "relay"},
               always.migrate_vm());
    ASSERT_TRUE(fatal.ok());
    EXPECT_EQ(fatal->exit.code, exit_code_for(Code::io_error)) << fatal->err;
    EXPECT_NE(fatal->err.find("still failed verification after 3 rounds"), std::string::npos)
        << fatal->err;
}

TEST_F(StreamCli, WholeDiskDigestMismatchIsFatal) {
    const std::string image = src_disk("dig.img");
    make_image(image, 4 * k_mib, 2);
    CorruptingAgent digest("digest");
    auto r =
        stream({"--src-dev-path", image, "--dst-dev-path", dst_disk("dig.img"), "--mode", "relay"},
               digest.migrate_vm());
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->exit.code, exit_code_for(Code::io_error)) << r->err;
    EXPECT_NE(r->err.find("whole-disk digest mismatch"), std::string::npos) << r->err;
}

}  // namespace
}  // namespace vmlift

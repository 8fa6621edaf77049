#include "engine/process.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include "engine/pattern.h"
#include "tests/support/temp_dir.h"

namespace vmlift {
namespace {

using namespace std::chrono_literals;
using testing_support::read_all;
using testing_support::TempDir;

ProcessSpec spec_for(std::vector<std::string> argv) {
    ProcessSpec spec;
    spec.argv = std::move(argv);
    spec.env = default_tool_env();
    spec.timeout = 30s;
    return spec;
}

TEST(PosixProcessRunner, ReportsExitCodeAndSeparatesStreams) {
    PosixProcessRunner runner;
    auto r = run_captured(runner, spec_for({"sh", "-c", "echo out; echo err >&2; exit 7"}));
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_EQ(r->exit.kind, ExitStatus::Kind::exited);
    EXPECT_EQ(r->exit.code, 7);
    EXPECT_FALSE(r->exit.success());
    EXPECT_EQ(r->out, "out\n");
    EXPECT_EQ(r->err, "err\n");
    EXPECT_EQ(r->exit.describe(), "exit code 7");
}

TEST(PosixProcessRunner, ReportsSignalDeath) {
    PosixProcessRunner runner;
    auto r = run_captured(runner, spec_for({"sh", "-c", "kill -TERM $$"}));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->exit.kind, ExitStatus::Kind::signaled);
    EXPECT_EQ(r->exit.signal, SIGTERM);
    EXPECT_EQ(r->exit.describe(), "killed by signal TERM");
}

TEST(PosixProcessRunner, ChildGetsExactlyTheGivenEnvironment) {
    PosixProcessRunner runner;
    ProcessSpec spec = spec_for({"env"});
    spec.env = {"PATH=/usr/bin:/bin", "ONLY_THIS=1"};
    auto r = run_captured(runner, spec);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->out, "PATH=/usr/bin:/bin\nONLY_THIS=1\n");
}

TEST(PosixProcessRunner, ResolvesProgramsWithTheChildsPath) {
    PosixProcessRunner runner;
    ProcessSpec spec = spec_for({"no-such-program-vmlift"});
    auto r = runner.run(spec, RunIo{});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Code::not_found);
    EXPECT_NE(r.status().message().find("no-such-program-vmlift"), std::string::npos);
    spec.argv = {"true"};
    spec.env = {"PATH=/nonexistent"};
    EXPECT_EQ(runner.run(spec, RunIo{}).status().code(), Code::not_found);
}

TEST(PosixProcessRunner, ArgumentsArriveUnchangedWithoutAShell) {
    PosixProcessRunner runner;
    std::vector<std::string> args = {VMLIFT_ARGV_DUMP, "a b", "$HOME", "'\"", "", "\n"};
    auto r = run_captured(runner, spec_for(args));
    ASSERT_TRUE(r.ok());
    std::string expected =
        std::string("5") + '\0' + "a b" + '\0' + "$HOME" + '\0' + "'\"" + '\0' + '\0' + "\n" + '\0';
    EXPECT_EQ(r->out, expected);
}

TEST(PosixProcessRunner, StreamsLargeDataThroughStdinAndStdout) {
    PosixProcessRunner runner;
    PatternSource source(64ULL << 20, 7);
    HashingSink sink;
    auto r = runner.run(spec_for({"cat"}), RunIo{&source, &sink, nullptr});
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE(r->success());
    EXPECT_EQ(sink.bytes(), 64ULL << 20);
    EXPECT_EQ(sink.digest(), source.digest());
}

// The relay's two legs: one child's stdout is the other's stdin, and the
// runner closes its own copies once the children hold them, so the reader
// sees EOF when the writer exits without anyone closing anything here.
TEST(KernelPipe, JoinsTwoChildrenWithoutPassingThroughUs) {
    PosixProcessRunner runner;
    auto pipe = KernelPipe::make(1u << 20);
    ASSERT_TRUE(pipe.ok()) << pipe.status().to_string();
    KernelPipe& legs = **pipe;
    HashingSink out;
    Result<ExitStatus> reader = Status(Code::internal, "did not run");
    std::thread consumer([&] {
        reader = runner.run(spec_for({"cat"}), RunIo{&legs.source(), &out, nullptr});
    });
    PatternSource source(64ULL << 20, 11);
    auto writer = runner.run(spec_for({"cat"}), RunIo{&source, &legs.sink(), nullptr});
    consumer.join();
    ASSERT_TRUE(writer.ok()) << writer.status().to_string();
    ASSERT_TRUE(reader.ok()) << reader.status().to_string();
    EXPECT_TRUE(writer->success()) << writer->describe();
    EXPECT_TRUE(reader->success()) << reader->describe();
    EXPECT_EQ(out.bytes(), 64ULL << 20);
    EXPECT_EQ(out.digest(), source.digest());
    EXPECT_EQ(legs.sink().child_fd(), -1) << "our copy of the write end is still open";
    EXPECT_EQ(legs.source().child_fd(), -1);
}

TEST(KernelPipe, ReaderExitingEarlyStopsTheWriter) {
    PosixProcessRunner runner;
    auto pipe = KernelPipe::make(1u << 20);
    ASSERT_TRUE(pipe.ok());
    KernelPipe& legs = **pipe;
    StringSink out;
    Result<ExitStatus> reader = Status(Code::internal, "did not run");
    std::thread consumer([&] {
        reader = runner.run(spec_for({"head", "-c", "10"}), RunIo{&legs.source(), &out, nullptr});
    });
    PatternSource source(1ULL << 30, 3);  // far more than the pipe holds
    auto writer = runner.run(spec_for({"cat"}), RunIo{&source, &legs.sink(), nullptr});
    consumer.join();
    ASSERT_TRUE(writer.ok()) << writer.status().to_string();
    ASSERT_TRUE(reader.ok());
    EXPECT_TRUE(reader->success());
    EXPECT_EQ(out.str().size(), 10u);
    EXPECT_FALSE(writer->success()) << "the writer should have met a closed pipe";
    EXPECT_FALSE(writer->timed_out);
    EXPECT_LT(source.produced(), 1ULL << 30);
}

// A transport that pumps in-process (libssh2) uses the ends as a plain
// source and sink.
TEST(KernelPipe, EndsWorkAsSourceAndSinkInProcess) {
    auto pipe = KernelPipe::make(64 * 1024);
    ASSERT_TRUE(pipe.ok());
    KernelPipe& legs = **pipe;
    PatternSource source(8ULL << 20, 5);
    std::thread writer([&] {
        std::string buffer(100000, '\0');
        for (;;) {
            auto n = source.read(buffer.data(), buffer.size());
            ASSERT_TRUE(n.ok());
            if (*n == 0) {
                break;
            }
            ASSERT_TRUE(legs.sink().write(std::string_view(buffer.data(), *n)).ok());
        }
        legs.close_write();
    });
    HashingSink got;
    std::string buffer(77777, '\0');
    for (;;) {
        auto n = legs.source().read(buffer.data(), buffer.size());
        ASSERT_TRUE(n.ok()) << n.status().to_string();
        if (*n == 0) {
            break;
        }
        ASSERT_TRUE(got.write(std::string_view(buffer.data(), *n)).ok());
    }
    writer.join();
    EXPECT_EQ(got.digest(), source.digest());
    // With the reader gone, a write fails instead of blocking or killing us.
    auto again = KernelPipe::make(64 * 1024);
    ASSERT_TRUE(again.ok());
    (*again)->close_read();
    Status st = (*again)->sink().write("late");
    EXPECT_EQ(st.code(), Code::connection_lost) << st.to_string();
}

TEST(PosixProcessRunner, ChildExitingEarlyDoesNotHangOrKillUs) {
    PosixProcessRunner runner;
    PatternSource source(256ULL << 20, 1);  // far more than the pipe holds
    StringSink out;
    auto r = runner.run(spec_for({"head", "-c", "10"}), RunIo{&source, &out, nullptr});
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_TRUE(r->success());
    EXPECT_EQ(out.str().size(), 10u);
}

TEST(PosixProcessRunner, TimeoutKillsTheWholeProcessGroup) {
    TempDir dir;
    PosixProcessRunner runner;
    // The grandchild records its pid; after the timeout it must be gone too.
    ProcessSpec spec = spec_for(
        {"sh", "-c", "sleep 60 & echo $! > \"$1\"; wait", "sh", dir.file("grandchild.pid")});
    spec.timeout = 500ms;
    spec.kill_grace = 200ms;
    auto t0 = std::chrono::steady_clock::now();
    auto r = runner.run(spec, RunIo{});
    auto elapsed = std::chrono::steady_clock::now() - t0;
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE(r->timed_out);
    EXPECT_FALSE(r->success());
    EXPECT_LT(elapsed, 5s);
    pid_t grandchild = std::stoi(read_all(dir.file("grandchild.pid")));
    // Reaped by init eventually; it must not be running sleep any more.
    bool gone = false;
    for (int i = 0; i < 100 && !gone; ++i) {
        std::string stat = read_all("/proc/" + std::to_string(grandchild) + "/stat");
        gone = stat.empty() || stat.find(") Z") != std::string::npos;
        std::this_thread::sleep_for(10ms);
    }
    EXPECT_TRUE(gone) << "grandchild " << grandchild << " survived the timeout";
}

TEST(PosixProcessRunner, FailingSinkStopsTheChild) {
    struct FailingSink : ByteSink {
        Status write(std::string_view) override { return Status(Code::io_error, "disk full"); }
    } sink;
    PosixProcessRunner runner;
    auto t0 = std::chrono::steady_clock::now();
    auto r = runner.run(spec_for({"yes"}), RunIo{nullptr, &sink, nullptr});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Code::io_error);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
}

TEST(PosixProcessRunner, RedirectsToAndFromFiles) {
    TempDir dir;
    testing_support::write_all(dir.file("in"), "hello\n");
    PosixProcessRunner runner;
    ProcessSpec spec = spec_for({"tr", "a-z", "A-Z"});
    spec.stdin_redirect = Redirect::read_from(dir.file("in"));
    spec.stdout_redirect = Redirect::truncate_to(dir.file("out"));
    auto r = runner.run(spec, RunIo{});
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE(r->success());
    EXPECT_EQ(read_all(dir.file("out")), "HELLO\n");
    spec.stdout_redirect = Redirect::append_to(dir.file("out"));
    ASSERT_TRUE(runner.run(spec, RunIo{}).ok());
    EXPECT_EQ(read_all(dir.file("out")), "HELLO\nHELLO\n");
}

TEST(PosixProcessRunner, BackgroundProcessIsOwnedAndTerminated) {
    PosixProcessRunner runner;
    auto p = runner.start(spec_for({"sleep", "60"}));
    ASSERT_TRUE(p.ok());
    pid_t pid = (*p)->pid();
    EXPECT_FALSE((*p)->try_wait().has_value());
    ExitStatus exit = (*p)->terminate(1s);
    EXPECT_EQ(exit.kind, ExitStatus::Kind::signaled);
    EXPECT_EQ(exit.signal, SIGTERM);
    EXPECT_NE(::kill(pid, 0), 0);
}

TEST(PosixProcessRunner, DestroyingARunningProcessKillsIt) {
    PosixProcessRunner runner;
    pid_t pid = 0;
    {
        auto p = runner.start(spec_for({"sleep", "60"}));
        ASSERT_TRUE(p.ok());
        pid = (*p)->pid();
    }
    EXPECT_NE(::kill(pid, 0), 0);
}

TEST(FakeProcessRunner, PlaysTheChildAndKeepsHistory) {
    FakeProcessRunner fake([](const ProcessSpec& spec, RunIo io) -> Result<ExitStatus> {
        if (io.out) {
            (void)io.out->write("ran " + spec.argv[0]);
        }
        return ExitStatus{ExitStatus::Kind::exited, 3, 0, false};
    });
    auto r = run_captured(fake, spec_for({"zfs", "list"}));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->out, "ran zfs");
    EXPECT_EQ(r->exit.code, 3);
    ASSERT_EQ(fake.history().size(), 1u);
    EXPECT_EQ(fake.history()[0].argv[1], "list");
}

}  // namespace
}  // namespace vmlift

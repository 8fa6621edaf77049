#include "engine/log.h"

#include <sstream>

#include <gtest/gtest.h>

#include "tests/support/temp_dir.h"

namespace vmlift {
namespace {

using testing_support::read_all;
using testing_support::TempDir;

TEST(Logger, FileGetsEveryLevelWithUtcStampsAndRedaction) {
    TempDir dir;
    FakeClock clock;
    Redactor redactor;
    redactor.add_secret("s3cr3t");
    Logger log(clock, redactor);
    ASSERT_TRUE(log.open_file(dir.file("log.txt")).ok());
    log.debug("ssh", "using key with passphrase s3cr3t");
    clock.advance(std::chrono::milliseconds(1500));
    log.error("stream", "failed");
    EXPECT_EQ(read_all(dir.file("log.txt")),
              "2026-01-01T00:00:00.000Z DEBUG ssh: using key with passphrase ***\n"
              "2026-01-01T00:00:01.500Z ERROR stream: failed\n");
}

TEST(Logger, ConsoleShowsOnlyItsLevelAndUp) {
    FakeClock clock;
    Redactor redactor;
    Logger log(clock, redactor);
    std::ostringstream console;
    log.set_console(&console, LogLevel::info);
    log.debug("x", "hidden");
    log.info("x", "shown");
    log.warn("x", "careful");
    log.error("x", "broken password=abc");
    EXPECT_EQ(console.str(),
              "vmlift: shown\nvmlift: warning: careful\nvmlift: error: broken password=***\n");
}

TEST(Logger, UnwritableFileIsAClearError) {
    FakeClock clock;
    Redactor redactor;
    Logger log(clock, redactor);
    Status st = log.open_file("/nonexistent-dir/log.txt");
    EXPECT_EQ(st.code(), Code::io_error);
    EXPECT_NE(st.message().find("/nonexistent-dir/log.txt"), std::string::npos);
}

}  // namespace
}  // namespace vmlift

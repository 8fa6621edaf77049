#include "engine/progress.h"

#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace vmlift {
namespace {

using namespace std::chrono_literals;

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        lines.push_back(line);
    }
    return lines;
}

TEST(FormatBytes, UsesBinaryUnits) {
    EXPECT_EQ(format_bytes(0), "0 B");
    EXPECT_EQ(format_bytes(1023), "1023 B");
    EXPECT_EQ(format_bytes(1536), "1.5 KiB");
    EXPECT_EQ(format_bytes(4ULL << 30), "4.0 GiB");
    EXPECT_EQ(format_duration(59), "0:59");
    EXPECT_EQ(format_duration(3723), "1:02:03");
}

TEST(ProgressReporter, JsonLinesCarryBytesRateAndEta) {
    FakeClock clock;
    std::ostringstream out;
    ProgressReporter p(out, ProgressStyle::json, clock, "scsi0", 1000ULL << 20);
    for (int i = 1; i <= 10; ++i) {
        clock.advance(1s);
        p.update(static_cast<uint64_t>(i) * (100ULL << 20));  // 100 MiB/s
        if (i == 5) {
            break;
        }
    }
    p.finish();
    auto lines = lines_of(out.str());
    ASSERT_EQ(lines.size(), 6u);  // five progress lines, one done
    auto last = nlohmann::json::parse(lines[4]);
    EXPECT_EQ(last["event"], "progress");
    EXPECT_EQ(last["label"], "scsi0");
    EXPECT_EQ(last["bytes_done"], 500ULL << 20);
    EXPECT_EQ(last["bytes_total"], 1000ULL << 20);
    EXPECT_DOUBLE_EQ(last["percent"].get<double>(), 50.0);
    EXPECT_EQ(last["rate_bps"], 100ULL << 20);
    EXPECT_EQ(last["eta_s"], 5);
    auto done = nlohmann::json::parse(lines[5]);
    EXPECT_EQ(done["event"], "done");
    EXPECT_EQ(done["success"], true);
    EXPECT_EQ(done["rate_bps"], 100ULL << 20);
}

TEST(ProgressReporter, JsonIsThrottledToOneLinePerSecond) {
    FakeClock clock;
    std::ostringstream out;
    ProgressReporter p(out, ProgressStyle::json, clock, "d", 0);
    for (int i = 0; i < 100; ++i) {
        clock.advance(100ms);
        p.update(static_cast<uint64_t>(i) * 1000);
    }
    // 10 s of updates every 100 ms: one line per second (the first at once).
    EXPECT_EQ(lines_of(out.str()).size(), 10u);
    auto first = nlohmann::json::parse(lines_of(out.str())[0]);
    EXPECT_TRUE(first["bytes_total"].is_null());
    EXPECT_TRUE(first["eta_s"].is_null());
}

TEST(ProgressReporter, RateFollowsTheLastFiveSeconds) {
    FakeClock clock;
    std::ostringstream out;
    ProgressReporter p(out, ProgressStyle::quiet, clock, "d", 10000);
    uint64_t done = 0;
    for (int i = 0; i < 10; ++i) {  // 10 s at 100 B/s
        clock.advance(1s);
        done += 100;
        p.update(done);
    }
    for (int i = 0; i < 10; ++i) {  // then 10 s at 10 B/s
        clock.advance(1s);
        done += 10;
        p.update(done);
    }
    EXPECT_NEAR(p.rate_bps(), 10.0, 0.5);
    ASSERT_TRUE(p.eta_seconds().has_value());
    EXPECT_NEAR(static_cast<double>(*p.eta_seconds()), (10000.0 - 1100.0) / 10.0, 1.0);
    EXPECT_TRUE(out.str().empty());
}

TEST(ProgressReporter, NoRateOrEtaBeforeHalfASecond) {
    FakeClock clock;
    std::ostringstream out;
    ProgressReporter p(out, ProgressStyle::terminal, clock, "sda", 1000);
    clock.advance(100ms);
    p.update(10);
    EXPECT_EQ(p.rate_bps(), 0.0);
    EXPECT_FALSE(p.eta_seconds().has_value());
    EXPECT_EQ(out.str().find("ETA"), std::string::npos) << out.str();
    EXPECT_EQ(out.str().find("/s"), std::string::npos) << out.str();
}

TEST(ProgressReporter, TerminalRedrawsOneLineWithBarRateAndEta) {
    FakeClock clock;
    std::ostringstream out;
    ProgressReporter p(out, ProgressStyle::terminal, clock, "sda", 4ULL << 30);
    clock.advance(10s);
    p.update(1ULL << 30);
    std::string text = out.str();
    EXPECT_EQ(text.front(), '\r');
    EXPECT_NE(
        text.find("sda  [#####...............]   25%  1.0 GiB / 4.0 GiB  102.4 MiB/s  ETA 0:30"),
        std::string::npos)
        << text;
    EXPECT_NE(text.find("\x1b[K"), std::string::npos);
    clock.advance(30s);
    p.update(4ULL << 30);
    p.finish();
    EXPECT_NE(out.str().find("100%"), std::string::npos);
    EXPECT_NE(out.str().find("done\x1b[K\n"), std::string::npos);
}

TEST(ProgressSink, CountsWhatPassesThrough) {
    FakeClock clock;
    std::ostringstream out;
    ProgressReporter p(out, ProgressStyle::quiet, clock, "d", 0);
    StringSink inner;
    ProgressSink sink(inner, p);
    ASSERT_TRUE(sink.write("abc").ok());
    ASSERT_TRUE(sink.write("de").ok());
    EXPECT_EQ(inner.str(), "abcde");
    clock.advance(1s);
    ASSERT_TRUE(sink.write("f").ok());
    EXPECT_GT(p.rate_bps(), 0.0);
}

}  // namespace
}  // namespace vmlift

#include "engine/quote.h"

#include <random>

#include <gtest/gtest.h>

#include "engine/process.h"

namespace vmlift {
namespace {

TEST(ShellQuote, LeavesSafeWordsBare) {
    EXPECT_EQ(shell_quote("dd"), "dd");
    EXPECT_EQ(shell_quote("/dev/zvol/tank/vm-101-disk-0"), "/dev/zvol/tank/vm-101-disk-0");
    EXPECT_EQ(shell_quote("--block-size"), "--block-size");
    EXPECT_EQ(shell_quote("user@host:22"), "user@host:22");
}

TEST(ShellQuote, QuotesEverythingElse) {
    EXPECT_EQ(shell_quote(""), "''");
    EXPECT_EQ(shell_quote("a b"), "'a b'");
    EXPECT_EQ(shell_quote("it's"), "'it'\\''s'");
    EXPECT_EQ(shell_quote("$HOME"), "'$HOME'");
    EXPECT_EQ(shell_quote("~root"), "'~root'");
    EXPECT_EQ(shell_quote("if=x"), "'if=x'") << "'=' could make a word an assignment";
    EXPECT_EQ(shell_quote("*"), "'*'");
}

TEST(ShellJoin, RejectsEmptyArgvAndNul) {
    EXPECT_EQ(shell_join({}).status().code(), Code::invalid_input);
    EXPECT_EQ(shell_join({"echo", std::string("a\0b", 3)}).status().code(), Code::invalid_input);
    EXPECT_EQ(*shell_join({"echo", "a b", ""}), "echo 'a b' ''");
}

// Generates argv elements full of shell metacharacters and raw bytes.
class ArgvGenerator {
  public:
    explicit ArgvGenerator(uint32_t seed) : m_rng(seed) {}

    std::vector<std::string> next() {
        std::vector<std::string> argv;
        size_t n = pick(0, 6);
        for (size_t i = 0; i < n; ++i) {
            argv.push_back(word());
        }
        return argv;
    }

  private:
    size_t pick(size_t lo, size_t hi) {
        return std::uniform_int_distribution<size_t>(lo, hi)(m_rng);
    }

    std::string word() {
        static const std::string k_nasty = "'\"\\$`!*?[]{}()<>|&;#~= \t\n\r-%^,.:@/";
        std::string w;
        size_t len = pick(0, 3) == 0 ? 0 : pick(1, 24);
        for (size_t i = 0; i < len; ++i) {
            switch (pick(0, 3)) {
                case 0:
                    w.push_back(k_nasty[pick(0, k_nasty.size() - 1)]);
                    break;
                case 1:
                    w.push_back(static_cast<char>(pick(1, 255)));
                    break;  // any byte but NUL
                case 2:
                    w.push_back(static_cast<char>(pick(0x80, 0xff)));
                    break;  // non-UTF-8
                default:
                    w.push_back(static_cast<char>('a' + pick(0, 25)));
                    break;
            }
        }
        return w;
    }

    std::mt19937 m_rng;
};

// Parses "count\0arg\0arg\0..." records written by vmlift-test-argv-dump.
std::vector<std::vector<std::string>> parse_dumps(const std::string& out) {
    std::vector<std::vector<std::string>> records;
    size_t pos = 0;
    auto next_field = [&]() {
        size_t end = out.find('\0', pos);
        std::string field = out.substr(pos, end - pos);
        pos = end + 1;
        return field;
    };
    while (pos < out.size()) {
        size_t count = std::stoul(next_field());
        std::vector<std::string> argv;
        for (size_t i = 0; i < count; ++i) {
            argv.push_back(next_field());
        }
        records.push_back(argv);
    }
    return records;
}

// Property: 10,000 random argv vectors survive a real shell byte for byte.
class QuotingProperty : public ::testing::TestWithParam<const char*> {};

TEST_P(QuotingProperty, RandomArgvArrivesByteIdenticalThroughRealShell) {
    const std::string shell = GetParam();
    if (::access(shell.c_str(), X_OK) != 0) {
        GTEST_SKIP() << shell << " is not installed";
    }
    constexpr int k_total = 10000;
    constexpr int k_batch = 250;
    ArgvGenerator gen(20261123);
    PosixProcessRunner runner;
    int checked = 0;
    for (int batch = 0; batch < k_total / k_batch; ++batch) {
        std::vector<std::vector<std::string>> sent;
        std::string script;
        for (int i = 0; i < k_batch; ++i) {
            std::vector<std::string> argv = {VMLIFT_ARGV_DUMP};
            auto extra = gen.next();
            argv.insert(argv.end(), extra.begin(), extra.end());
            auto line = shell_join(argv);
            ASSERT_TRUE(line.ok());
            script += *line + "\n";
            sent.push_back(extra);
        }
        ProcessSpec spec;
        spec.argv = {shell, "-c", script};
        spec.env = default_tool_env();
        spec.timeout = std::chrono::seconds(60);
        auto result = run_captured(runner, spec);
        ASSERT_TRUE(result.ok()) << result.status().to_string();
        ASSERT_TRUE(result->exit.success()) << result->exit.describe() << " " << result->err;
        auto received = parse_dumps(result->out);
        ASSERT_EQ(received.size(), sent.size());
        for (size_t i = 0; i < sent.size(); ++i) {
            ASSERT_EQ(received[i], sent[i])
                << "argv vector " << checked + static_cast<int>(i) << " was changed by " << shell;
        }
        checked += k_batch;
    }
    EXPECT_EQ(checked, k_total);
}

INSTANTIATE_TEST_SUITE_P(Shells, QuotingProperty, ::testing::Values("/bin/sh", "/bin/bash"),
                         [](const auto& param_info) {
                             return std::string(param_info.param).substr(5);
                         });

}  // namespace
}  // namespace vmlift

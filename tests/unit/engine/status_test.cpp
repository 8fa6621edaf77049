#include "engine/status.h"

#include <set>

#include <gtest/gtest.h>

namespace vmlift {
namespace {

TEST(Status, DefaultIsOk) {
    Status st;
    EXPECT_TRUE(st.ok());
    EXPECT_EQ(st.to_string(), "ok");
    EXPECT_EQ(exit_code_for(st.code()), 0);
}

TEST(Status, CarriesCodeAndMessageWithContext) {
    Status st = Status(Code::host_key, "key changed").with_context("connect root@h:22");
    EXPECT_FALSE(st.ok());
    EXPECT_EQ(st.code(), Code::host_key);
    EXPECT_EQ(st.message(), "connect root@h:22: key changed");
    EXPECT_EQ(st.to_string(), "host_key: connect root@h:22: key changed");
}

TEST(Status, EveryCodeHasADistinctExitCodeAndName) {
    std::set<int> exits;
    std::set<std::string> names;
    for (int c = 0; c <= static_cast<int>(Code::internal); ++c) {
        auto code = static_cast<Code>(c);
        exits.insert(exit_code_for(code));
        names.insert(code_name(code));
        if (code != Code::ok) {
            EXPECT_NE(exit_code_for(code), 0);
            EXPECT_NE(exit_code_for(code), 2) << "2 is reserved for usage errors";
        }
    }
    EXPECT_EQ(exits.size(), static_cast<size_t>(Code::internal) + 1);
    EXPECT_EQ(names.size(), static_cast<size_t>(Code::internal) + 1);
}

TEST(Result, HoldsValueOrError) {
    Result<int> good(42);
    ASSERT_TRUE(good.ok());
    EXPECT_EQ(*good, 42);
    Result<int> bad(Status(Code::not_found, "no VM 101"));
    EXPECT_FALSE(bad.ok());
    EXPECT_EQ(bad.status().code(), Code::not_found);
}

TEST(Result, OkStatusWithoutValueBecomesInternalError) {
    Result<int> odd{Status()};
    EXPECT_FALSE(odd.ok());
    EXPECT_EQ(odd.status().code(), Code::internal);
}

TEST(ResultDeathTest, ValueOfErrorAborts) {
    Result<int> bad(Status(Code::io_error, "x"));
    EXPECT_DEATH((void)bad.value(), "");
}

}  // namespace
}  // namespace vmlift

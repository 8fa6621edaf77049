#include "engine/base64.h"

#include <random>

#include <gtest/gtest.h>

namespace vmlift {
namespace {

TEST(Base64, Rfc4648Vectors) {
    const std::pair<const char*, const char*> vectors[] = {{"", ""},
                                                           {"f", "Zg=="},
                                                           {"fo", "Zm8="},
                                                           {"foo", "Zm9v"},
                                                           {"foob", "Zm9vYg=="},
                                                           {"fooba", "Zm9vYmE="},
                                                           {"foobar", "Zm9vYmFy"}};
    for (const auto& [plain, coded] : vectors) {
        EXPECT_EQ(base64_encode(plain), coded);
        auto back = base64_decode(coded);
        ASSERT_TRUE(back.ok()) << coded;
        EXPECT_EQ(*back, plain);
    }
}

TEST(Base64, RandomBytesRoundTripAndToolLineBreaksDecode) {
    std::mt19937 rng(7);
    for (int n = 0; n < 300; ++n) {
        std::string bytes(static_cast<size_t>(n), '\0');
        for (auto& c : bytes) {
            c = static_cast<char>(rng() & 0xFF);
        }
        std::string coded = base64_encode(bytes);
        std::string wrapped;  // as `base64` prints it: 76 columns
        for (size_t i = 0; i < coded.size(); i += 76) {
            wrapped += coded.substr(i, 76) + "\n";
        }
        auto back = base64_decode(wrapped);
        ASSERT_TRUE(back.ok()) << n;
        EXPECT_EQ(*back, bytes);
    }
}

TEST(Base64, RejectsBadInput) {
    for (const char* bad : {"Zg=", "Z", "Zm9v!A==", "Zg==Zg==", "=Zg=", "Zm9vY===", "Zm9"}) {
        auto r = base64_decode(bad);
        EXPECT_FALSE(r.ok()) << bad;
        if (!r.ok()) {
            EXPECT_EQ(r.status().code(), Code::invalid_input);
        }
    }
}

}  // namespace
}  // namespace vmlift

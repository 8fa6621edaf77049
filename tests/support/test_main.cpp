#include <gtest/gtest.h>

#include "engine/process.h"

int main(int argc, char** argv) {
    vmlift::ignore_sigpipe();
    testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}

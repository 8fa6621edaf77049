#include "engine/upload.h"

#include <sys/stat.h>

#include <gtest/gtest.h>

#include "tests/support/local_transport.h"
#include "tests/support/temp_dir.h"

namespace vmlift {
namespace {

using testing_support::LocalTransport;
using testing_support::read_all;
using testing_support::TempDir;
using testing_support::write_all;

TEST(UploadFile, CopiesBytesAndModeAtomically) {
    TempDir dir;
    std::string data;
    for (int i = 0; i < 300000; ++i) {
        data.push_back(static_cast<char>(i * 7));
    }
    write_all(dir.file("agent"), data);
    LocalTransport transport;
    // A path with spaces and quotes proves the paths travel quoted.
    std::string remote = dir.file("it's a dir");
    ASSERT_EQ(::mkdir(remote.c_str(), 0700), 0);
    auto sent = upload_file(transport, dir.file("agent"), remote + "/vmlift agent", 0755);
    ASSERT_TRUE(sent.ok()) << sent.status().to_string();
    EXPECT_EQ(*sent, data.size());
    EXPECT_EQ(read_all(remote + "/vmlift agent"), data);
    struct stat st {};
    ASSERT_EQ(::stat((remote + "/vmlift agent").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0755u);
    int entries = 0;
    for (const auto& e : std::filesystem::directory_iterator(remote)) {
        (void)e;
        ++entries;
    }
    EXPECT_EQ(entries, 1) << "temporary file left behind";
}

TEST(UploadFile, RemoteFailureNamesTargetAndLeavesNothing) {
    TempDir dir;
    write_all(dir.file("agent"), "x");
    LocalTransport transport;
    auto sent = upload_file(transport, dir.file("agent"), dir.file("missing-dir/agent"), 0755);
    ASSERT_FALSE(sent.ok());
    EXPECT_EQ(sent.status().code(), Code::remote_failed);
    EXPECT_NE(sent.status().message().find("missing-dir/agent"), std::string::npos);
    // The remote shell's own reason is quoted (dash: "Directory nonexistent").
    const std::string& msg = sent.status().message();
    EXPECT_TRUE(msg.find("Directory nonexistent") != std::string::npos ||
                msg.find("No such file") != std::string::npos)
        << msg;
    EXPECT_FALSE(std::filesystem::exists(dir.file("missing-dir")));
}

TEST(UploadFile, MissingLocalFileIsNotFound) {
    LocalTransport transport;
    auto sent = upload_file(transport, "/nonexistent/agent", "/tmp/x", 0755);
    EXPECT_EQ(sent.status().code(), Code::not_found);
}

}  // namespace
}  // namespace vmlift

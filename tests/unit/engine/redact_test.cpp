#include "engine/redact.h"

#include <gtest/gtest.h>

namespace vmlift {
namespace {

TEST(Redactor, HidesRegisteredSecretsEverywhere) {
    Redactor r;
    r.add_secret("hunter2");
    r.add_secret("hunter2-long");
    r.add_secret("");
    EXPECT_EQ(r.redact("pw hunter2 and hunter2-long!"), "pw *** and ***!");
    EXPECT_EQ(r.redact("nothing here"), "nothing here");
}

TEST(Redactor, HidesSecretShapesWithoutRegistration) {
    Redactor r;
    // The token id stays readable (it names which token); the secret does not.
    EXPECT_EQ(r.redact("Authorization: PVEAPIToken=root@pam!mig=aaaa-bbbb-cccc"),
              "Authorization: PVEAPIToken=root@pam!mig=***");
    EXPECT_EQ(r.redact("header PVEAPIToken=root@pam!mig=aaaa-bbbb"),
              "header PVEAPIToken=root@pam!mig=***");
    EXPECT_EQ(r.redact("Authorization: Bearer 1-abcdef"), "Authorization: Bearer ***");
    EXPECT_EQ(r.redact("POST /access/ticket username=root@pam&password=s3cr3t&x=1"),
              "POST /access/ticket username=root@pam&password=***&x=1");
    EXPECT_EQ(r.redact(R"({"username":"root","password":"s3cr3t","key":"scsi0"})"),
              R"({"username":"root","password":"***","key":"scsi0"})");
    EXPECT_EQ(r.redact("run --password hunter3 now"), "run --password *** now");
    EXPECT_EQ(r.redact("k -----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\nBBBB\n"
                       "-----END OPENSSH PRIVATE KEY----- end"),
              "k -----BEGIN OPENSSH PRIVATE KEY-----*** end");
}

TEST(Redactor, LeavesOrdinaryWordsAlone) {
    Redactor r;
    EXPECT_EQ(r.redact("disk scsi0 key=scsi0 passwordless login"),
              "disk scsi0 key=scsi0 passwordless login");
}

}  // namespace
}  // namespace vmlift

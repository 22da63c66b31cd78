// Test-only helpers shared by the unit tests (GoogleTest). Not linked into
// the frameflow binary.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "util/fs.h"

namespace ff {

// Passes when `s` contains `part`; the failure message shows both.
inline ::testing::AssertionResult HasSubstr(const std::string& s, const std::string& part) {
  if (s.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "'" << s << "' does not contain '" << part << "'";
}

// A fixture owning a fresh temporary directory per test, removed afterwards.
class TempDirFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<std::string> dir = MakeTempDir("ff-test");
    ASSERT_TRUE(dir.ok()) << dir.status().ToString();
    dir_ = *dir;
  }
  void TearDown() override {
    if (!dir_.empty()) {
      EXPECT_TRUE(RemoveAll(dir_).ok());
    }
  }
  std::string Path(const std::string& name) const { return JoinPath(dir_, name); }

  std::string dir_;
};

}  // namespace ff

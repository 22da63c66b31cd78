// Helpers for cross-daemon tests: temp dirs, running the frameflow binary,
// polling with a deadline, comparing PNG pixels.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace ff::testing {

// A fresh directory, removed (recursively) on destruction unless
// FRAMEFLOW_KEEP_TEST_DIRS is set.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs `frameflow args...` and captures stdout/stderr separately.
CommandResult RunFrameflow(const std::vector<std::string>& args);
// Runs any argv, capturing stdout/stderr.
CommandResult RunCommand(const std::vector<std::string>& argv, const std::string& cwd = "");

// Polls `condition` every 20 ms until it is true or `timeout_ms` passes.
bool WaitUntil(const std::function<bool()>& condition, int timeout_ms);

// True when both PNGs decode to identical RGBA pixels; `why` says otherwise.
bool SamePixels(const std::string& a, const std::string& b, std::string* why);

std::string SourceDir();  // the repository root
std::string Binary();     // the frameflow executable under test

void WriteText(const std::string& path, const std::string& text);

}  // namespace ff::testing

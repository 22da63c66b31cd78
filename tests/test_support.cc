#include "test_support.h"

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "render/image_check.h"
#include "util/fs.h"
#include "util/process.h"

namespace ff::testing {

TempDir::TempDir() {
  auto dir = MakeTempDir("frameflow-test");
  if (!dir.ok()) std::abort();
  path_ = *dir;
}

TempDir::~TempDir() {
  if (!std::getenv("FRAMEFLOW_KEEP_TEST_DIRS")) (void)RemoveAll(path_);
}

CommandResult RunCommand(const std::vector<std::string>& argv, const std::string& cwd) {
  CommandResult r;
  TempDir io;
  std::string out = io.path() + "/out", err = io.path() + "/err";
  ProcessSpec spec;
  spec.argv = {"/bin/sh", "-c", "exec \"$0\" \"$@\" >'" + out + "' 2>'" + err + "'"};
  spec.argv.insert(spec.argv.end(), argv.begin(), argv.end());
  spec.cwd = cwd;
  auto proc = DefaultProcessLauncher()->Start(spec, nullptr);
  if (!proc.ok()) {
    r.err = proc.status().message();
    return r;
  }
  r.exit_code = (*proc)->Wait();
  auto o = ReadFile(out);
  auto e = ReadFile(err);
  if (o.ok()) r.out = *o;
  if (e.ok()) r.err = *e;
  return r;
}

CommandResult RunFrameflow(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {Binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv);
}

bool WaitUntil(const std::function<bool()>& condition, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

bool SamePixels(const std::string& a, const std::string& b, std::string* why) {
  auto ia = ReadPngRgba(a);
  auto ib = ReadPngRgba(b);
  if (!ia.ok() || !ib.ok()) {
    *why = (!ia.ok() ? ia.status() : ib.status()).message();
    return false;
  }
  if (ia->width != ib->width || ia->height != ib->height) {
    *why = "sizes differ";
    return false;
  }
  if (ia->rgba != ib->rgba) {
    *why = "pixels differ";
    return false;
  }
  return true;
}

std::string SourceDir() { return FRAMEFLOW_SOURCE_DIR; }
std::string Binary() { return FRAMEFLOW_BINARY; }

void WriteText(const std::string& path, const std::string& text) {
  (void)MakeDirs(DirName(path));
  std::ofstream(path) << text;
}

}  // namespace ff::testing

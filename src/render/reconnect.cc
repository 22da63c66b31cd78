#include "render/reconnect.h"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <thread>

namespace ff {

namespace {
constexpr int64_t kWatchEveryMs = 20;
}  // namespace

int64_t ReconnectDelayMs(int failures) {
  int64_t delay = kReconnectFirstDelayMs;
  for (int i = 1; i < failures && delay < kReconnectMaxDelayMs; ++i) delay *= 2;
  return std::min(delay, kReconnectMaxDelayMs);
}

std::string FileVersion(const std::string& path) {
  struct stat st {};
  if (path.empty() || ::stat(path.c_str(), &st) != 0) return "";
  return std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" +
         std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
}

bool WaitForRetry(int64_t ms, const std::atomic<bool>* stop, const std::string& watched_file,
                  const std::string& version) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (!stop->load()) {
    if (!watched_file.empty() && FileVersion(watched_file) != version) return true;
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) break;
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
        deadline - now, std::chrono::milliseconds(kWatchEveryMs)));
  }
  return false;
}

}  // namespace ff

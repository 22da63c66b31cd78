// Helpers shared by the libFuzzer targets of tests/fuzz (see README.md).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>

// An invariant of the code under test: on failure the input is a crash
// (libFuzzer saves it as an artifact).
#define FUZZ_CHECK(cond, ...)                                                              \
  do {                                                                                     \
    if (!(cond)) {                                                                         \
      std::fprintf(stderr, "FUZZ_CHECK failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      std::fprintf(stderr, "  %s\n", std::string(__VA_ARGS__).c_str());                    \
      std::abort();                                                                        \
    }                                                                                      \
  } while (0)

#include <google/protobuf/stubs/logging.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <mutex>

namespace fuzz {

// Logging for the harnesses: quiet, except that a critical message (the
// schedule server is about to _Exit(70), which libFuzzer cannot catch) is a
// crash with the input saved.
class AbortOnCritical final : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    if (msg.level < spdlog::level::critical) return;
    std::fprintf(stderr, "critical log message: %.*s\n", static_cast<int>(msg.payload.size()),
                 msg.payload.data());
    std::abort();
  }
  void flush_() override {}
};

inline void QuietLogging() {
  auto logger = std::make_shared<spdlog::logger>("fuzz", std::make_shared<AbortOnCritical>());
  logger->set_level(spdlog::level::critical);
  spdlog::set_default_logger(logger);
  google::protobuf::SetLogHandler(
      [](google::protobuf::LogLevel, const char*, int, const std::string&) {});
}

}  // namespace fuzz

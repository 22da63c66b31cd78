// Errors as values. No exceptions cross a module boundary in frameflow: every
// fallible operation returns a Status or a Result<T>. Messages are one clear
// sentence that names the field, line or file at fault; callers add context
// with Status::WithContext() as the error travels outwards.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace ff {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,  // bad input: description, frame set, request field
  kNotFound,         // a job, file, blob or host that does not exist
  kAlreadyExists,
  kFailedPrecondition,  // e.g. placement "remote" with no remote site
  kUnavailable,         // a peer or daemon cannot be reached
  kIoError,             // filesystem / database failure
  kCancelled,
  kInternal,
  // A filesystem is full (ENOSPC, EDQUOT): an environmental condition, not the
  // job's fault. Callers retry the step with backoff once space is freed; it
  // never counts as a chunk's failed attempt.
  kResourceExhausted,
};

const char* StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // Returns a copy whose message is "<context>: <message>".
  Status WithContext(const std::string& context) const {
    if (ok()) return *this;
    return Status(code_, context + ": " + message_);
  }

  std::string ToString() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string m) {
  return Status(StatusCode::kInvalidArgument, std::move(m));
}
inline Status NotFound(std::string m) { return Status(StatusCode::kNotFound, std::move(m)); }
inline Status AlreadyExists(std::string m) {
  return Status(StatusCode::kAlreadyExists, std::move(m));
}
inline Status FailedPrecondition(std::string m) {
  return Status(StatusCode::kFailedPrecondition, std::move(m));
}
inline Status Unavailable(std::string m) { return Status(StatusCode::kUnavailable, std::move(m)); }
inline Status IoError(std::string m) { return Status(StatusCode::kIoError, std::move(m)); }
inline Status Internal(std::string m) { return Status(StatusCode::kInternal, std::move(m)); }
inline Status Cancelled(std::string m) { return Status(StatusCode::kCancelled, std::move(m)); }
inline Status ResourceExhausted(std::string m) {
  return Status(StatusCode::kResourceExhausted, std::move(m));
}
inline bool IsDiskFull(const Status& s) { return s.code() == StatusCode::kResourceExhausted; }

// IoError carrying strerror(errno) and the path involved; ResourceExhausted
// for a full filesystem (ENOSPC, EDQUOT).
Status ErrnoError(const std::string& what, const std::string& path, int err);

// Result<T> holds either a value or a non-ok Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT: implicit by design
    assert(!std::get<Status>(v_).ok());
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace ff

#define FF_CONCAT_INNER(a, b) a##b
#define FF_CONCAT(a, b) FF_CONCAT_INNER(a, b)

// Returns early from the enclosing function if `expr` (a Status) is not ok.
#define FF_RETURN_IF_ERROR(expr)             \
  do {                                       \
    ::ff::Status ff_status_ = (expr);        \
    if (!ff_status_.ok()) return ff_status_; \
  } while (0)

#define FF_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return tmp.status();            \
  lhs = std::move(tmp).value()

// `FF_ASSIGN_OR_RETURN(auto x, FunctionReturningResult());`
#define FF_ASSIGN_OR_RETURN(lhs, expr) \
  FF_ASSIGN_OR_RETURN_IMPL(FF_CONCAT(ff_result_, __LINE__), lhs, expr)

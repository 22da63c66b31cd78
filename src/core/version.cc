#include "core/version.h"

#include <algorithm>
#include <climits>
#include <utility>

#include "base/text.h"

namespace ff {
namespace {

int Part(const Version& v, size_t i) { return i < v.parts.size() ? v.parts[i] : 0; }

Version MakeVersion(std::vector<int> parts) {
  Version v;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) v.text += '.';
    v.text += std::to_string(parts[i]);
  }
  v.parts = std::move(parts);
  return v;
}

}  // namespace

// Leading dotted numbers form `parts`; the first character that does not
// continue them starts the suffix ("3.7.0.10.unofficial", "2.93-lts").
Result<Version> Version::Parse(std::string_view text) {
  const std::string_view t = Trim(text);
  if (t.empty()) return InvalidArgument("version is empty");
  const std::string quoted = "version '" + std::string(t) + "'";
  if (!IsDigit(t.front())) return InvalidArgument(quoted + ": must start with a number");
  for (char c : t) {
    if (IsSpace(c) || c == ',') {
      return InvalidArgument(quoted + ": must not contain whitespace or ','");
    }
  }
  Version v;
  v.text = std::string(t);
  size_t i = 0;
  while (true) {
    int64_t n = 0;
    while (i < t.size() && IsDigit(t[i])) {
      n = n * 10 + (t[i] - '0');
      if (n > INT_MAX) return InvalidArgument(quoted + ": component is too large");
      ++i;
    }
    v.parts.push_back(static_cast<int>(n));
    if (i + 1 < t.size() && t[i] == '.' && IsDigit(t[i + 1])) {
      ++i;
      continue;
    }
    break;
  }
  return v;
}

int Version::Compare(const Version& a, const Version& b) {
  const size_t n = std::max(a.parts.size(), b.parts.size());
  for (size_t i = 0; i < n; ++i) {
    const int x = Part(a, i), y = Part(b, i);
    if (x != y) return x < y ? -1 : 1;
  }
  return 0;
}

Result<VersionConstraint> VersionConstraint::Parse(std::string_view text) {
  VersionConstraint c;
  const std::string_view t = Trim(text);
  c.text_ = std::string(t);
  if (t.empty() || t == "*") return c;
  size_t start = 0;
  while (true) {
    const size_t comma = t.find(',', start);
    const std::string_view clause =
        Trim(t.substr(start, comma == std::string_view::npos ? comma : comma - start));
    const std::string where =
        "version constraint '" + std::string(t) + "': clause '" + std::string(clause) + "'";
    if (clause.empty())
      return InvalidArgument("version constraint '" + c.text_ + "': empty clause");
    if (clause != "*") {
      // Longest operators first so ">=" is not read as ">".
      static constexpr std::string_view kOps[] = {">=", "<=", "!=", "==", ">", "<", "=", "~", "^"};
      std::string_view op;
      std::string_view rest = clause;
      for (std::string_view sym : kOps) {
        if (rest.substr(0, sym.size()) == sym) {
          op = sym;
          rest.remove_prefix(sym.size());
          break;
        }
      }
      auto version = Version::Parse(rest);
      if (!version.ok()) return InvalidArgument(where + ": " + version.status().message());
      Version v = std::move(version).value();
      if (op == "~" || op == "^") {
        // ~A.B[.C..] -> >=v, <A.(B+1);  ~A and ^A[.B..] -> >=v, <(A+1).
        std::vector<int> upper = {v.parts[0]};
        if (op == "~" && v.parts.size() >= 2) upper.push_back(v.parts[1]);
        if (upper.back() == INT_MAX) return InvalidArgument(where + ": component is too large");
        ++upper.back();
        c.clauses_.push_back({Op::kGe, std::move(v)});
        c.clauses_.push_back({Op::kLt, MakeVersion(std::move(upper))});
      } else {
        Op kind = Op::kPrefixEq;  // "" and "="
        if (op == ">=") kind = Op::kGe;
        if (op == "<=") kind = Op::kLe;
        if (op == "!=") kind = Op::kNe;
        if (op == "==") kind = Op::kEq;
        if (op == ">") kind = Op::kGt;
        if (op == "<") kind = Op::kLt;
        c.clauses_.push_back({kind, std::move(v)});
      }
    }
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return c;
}

// "=" (and a bare version) compares only the components the clause gives;
// "!=" is its exact complement; "==" is full equality with trailing zeros
// insignificant.
bool VersionConstraint::Matches(const Version& v) const {
  for (const Clause& c : clauses_) {
    bool ok = false;
    switch (c.op) {
      case Op::kEq:
        ok = Version::Compare(v, c.version) == 0;
        break;
      case Op::kPrefixEq:
      case Op::kNe: {
        bool prefix = true;
        for (size_t i = 0; i < c.version.parts.size(); ++i) {
          if (Part(v, i) != c.version.parts[i]) {
            prefix = false;
            break;
          }
        }
        ok = c.op == Op::kPrefixEq ? prefix : !prefix;
        break;
      }
      case Op::kLt:
        ok = Version::Compare(v, c.version) < 0;
        break;
      case Op::kLe:
        ok = Version::Compare(v, c.version) <= 0;
        break;
      case Op::kGt:
        ok = Version::Compare(v, c.version) > 0;
        break;
      case Op::kGe:
        ok = Version::Compare(v, c.version) >= 0;
        break;
    }
    if (!ok) return false;
  }
  return true;
}

}  // namespace ff

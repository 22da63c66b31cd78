// Package versions and version constraints.
//
// A Version is a dotted list of non-negative integers with an optional
// free-form suffix that is ignored for ordering: "3.7.0.10.unofficial" ->
// [3,7,0,10]. Missing trailing components compare as 0 ("3.7" == "3.7.0").
//
// A VersionConstraint is a comma-separated conjunction of clauses:
//   ""  or "*"       any version
//   "3.4"  "=3.4"    equal on the components given: 3.4, 3.4.0, 3.4.1 all match
//   ">=3.7" ">3.7" "<4" "<=4.1" "!=3.5"   ordered comparisons
//   "~3.4"           >=3.4 and <3.5   (same major.minor)
//   "^3.4"           >=3.4 and <4     (same major)
// e.g. ">=3.7, <4". Thread-safety: immutable values.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace ff {

struct Version {
  std::vector<int> parts;
  std::string text;  // as given

  static Result<Version> Parse(std::string_view text);
  // -1, 0, 1. Trailing zero components are insignificant.
  static int Compare(const Version& a, const Version& b);
};

class VersionConstraint {
 public:
  VersionConstraint() = default;  // matches anything
  static Result<VersionConstraint> Parse(std::string_view text);

  bool Matches(const Version& v) const;
  bool MatchesAny() const { return clauses_.empty(); }
  const std::string& text() const { return text_; }

 private:
  enum class Op { kEq, kPrefixEq, kNe, kLt, kLe, kGt, kGe };
  struct Clause {
    Op op;
    Version version;
  };
  std::vector<Clause> clauses_;
  std::string text_;
};

}  // namespace ff

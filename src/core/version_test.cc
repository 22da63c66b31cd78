#include "core/version.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ff {
namespace {

Version V(std::string_view text) {
  auto r = Version::Parse(text);
  EXPECT_TRUE(r.ok()) << text << ": " << r.status().message();
  return r.ok() ? *r : Version{};
}

VersionConstraint C(std::string_view text) {
  auto r = VersionConstraint::Parse(text);
  EXPECT_TRUE(r.ok()) << text << ": " << r.status().message();
  return r.ok() ? *r : VersionConstraint{};
}

bool Match(std::string_view constraint, std::string_view version) {
  return C(constraint).Matches(V(version));
}

std::string ConstraintError(std::string_view text) {
  auto r = VersionConstraint::Parse(text);
  EXPECT_FALSE(r.ok()) << text;
  return r.ok() ? "" : r.status().message();
}

TEST(VersionParse, Components) {
  EXPECT_EQ(V("3").parts, std::vector<int>({3}));
  EXPECT_EQ(V("3.7").parts, std::vector<int>({3, 7}));
  EXPECT_EQ(V("3.7.0").parts, std::vector<int>({3, 7, 0}));
  EXPECT_EQ(V("0.0.1").parts, std::vector<int>({0, 0, 1}));
}

TEST(VersionParse, SuffixIgnored) {
  Version v = V("3.7.0.10.unofficial");
  EXPECT_EQ(v.parts, std::vector<int>({3, 7, 0, 10}));
  EXPECT_EQ(v.text, "3.7.0.10.unofficial");
  EXPECT_EQ(V("2.93-lts").parts, std::vector<int>({2, 93}));
  EXPECT_EQ(V("4.0beta2").parts, std::vector<int>({4, 0}));
  EXPECT_EQ(V("1.").parts, std::vector<int>({1}));
  EXPECT_EQ(V("1.x").parts, std::vector<int>({1}));
}

TEST(VersionParse, TrimsAndKeepsText) {
  Version v = V("  3.4.1 ");
  EXPECT_EQ(v.text, "3.4.1");
  EXPECT_EQ(v.parts, std::vector<int>({3, 4, 1}));
}

TEST(VersionParse, LeadingZeros) { EXPECT_EQ(V("03.007").parts, std::vector<int>({3, 7})); }

TEST(VersionParse, Errors) {
  EXPECT_EQ(Version::Parse("").status().message(), "version is empty");
  EXPECT_EQ(Version::Parse("  ").status().message(), "version is empty");
  EXPECT_EQ(Version::Parse("v3.7").status().message(), "version 'v3.7': must start with a number");
  EXPECT_EQ(Version::Parse(".3").status().message(), "version '.3': must start with a number");
  EXPECT_EQ(Version::Parse("3.7 beta").status().message(),
            "version '3.7 beta': must not contain whitespace or ','");
  EXPECT_EQ(Version::Parse("3,7").status().message(),
            "version '3,7': must not contain whitespace or ','");
  EXPECT_EQ(Version::Parse("99999999999").status().message(),
            "version '99999999999': component is too large");
}

TEST(VersionCompare, Ordering) {
  EXPECT_EQ(Version::Compare(V("3.7"), V("3.7")), 0);
  EXPECT_EQ(Version::Compare(V("3.7"), V("3.8")), -1);
  EXPECT_EQ(Version::Compare(V("3.8"), V("3.7")), 1);
  EXPECT_EQ(Version::Compare(V("3.10"), V("3.9")), 1) << "numeric, not lexical";
  EXPECT_EQ(Version::Compare(V("4"), V("3.99.99")), 1);
  EXPECT_EQ(Version::Compare(V("3.7.0.10"), V("3.7.0.9")), 1);
}

TEST(VersionCompare, TrailingZerosInsignificant) {
  EXPECT_EQ(Version::Compare(V("3.7"), V("3.7.0")), 0);
  EXPECT_EQ(Version::Compare(V("3.7.0.0"), V("3.7")), 0);
  EXPECT_EQ(Version::Compare(V("3.7"), V("3.7.0.1")), -1);
  EXPECT_EQ(Version::Compare(V("3.7.1"), V("3.7")), 1);
}

TEST(VersionCompare, SuffixIgnored) {
  EXPECT_EQ(Version::Compare(V("3.7.0.10.unofficial"), V("3.7.0.10")), 0);
}

TEST(VersionCompare, SortsTotally) {
  std::vector<std::string> sorted = {"0.9", "1", "1.0.1", "1.2", "1.10", "2.0.0.1", "10"};
  for (size_t i = 0; i < sorted.size(); ++i) {
    for (size_t j = 0; j < sorted.size(); ++j) {
      const int want = i < j ? -1 : (i == j ? 0 : 1);
      EXPECT_EQ(Version::Compare(V(sorted[i]), V(sorted[j])), want)
          << sorted[i] << " vs " << sorted[j];
    }
  }
}

TEST(VersionConstraint, AnyMatchesEverything) {
  for (const char* any : {"", "*", "  ", " * "}) {
    VersionConstraint c = C(any);
    EXPECT_TRUE(c.MatchesAny()) << any;
    EXPECT_TRUE(c.Matches(V("0")));
    EXPECT_TRUE(c.Matches(V("999.1")));
  }
  EXPECT_TRUE(VersionConstraint().MatchesAny());
  EXPECT_TRUE(VersionConstraint().Matches(V("1.2.3")));
}

TEST(VersionConstraint, KeepsText) {
  EXPECT_EQ(C(" >=3.7, <4 ").text(), ">=3.7, <4");
  EXPECT_FALSE(C(">=3.7").MatchesAny());
}

TEST(VersionConstraint, PrefixEquality) {
  for (const char* c : {"3.4", "=3.4", " = 3.4 "}) {
    EXPECT_TRUE(Match(c, "3.4")) << c;
    EXPECT_TRUE(Match(c, "3.4.0")) << c;
    EXPECT_TRUE(Match(c, "3.4.1")) << c;
    EXPECT_TRUE(Match(c, "3.4.1.7-custom")) << c;
    EXPECT_FALSE(Match(c, "3.5")) << c;
    EXPECT_FALSE(Match(c, "3.40")) << c;
    EXPECT_FALSE(Match(c, "3")) << c;  // 3 == 3.0, not 3.4
    EXPECT_FALSE(Match(c, "4.4")) << c;
  }
  EXPECT_TRUE(Match("3", "3.99"));
  EXPECT_TRUE(Match("3.4.0", "3.4"));
}

TEST(VersionConstraint, ExactEquality) {
  EXPECT_TRUE(Match("==3.4", "3.4"));
  EXPECT_TRUE(Match("==3.4", "3.4.0"));
  EXPECT_FALSE(Match("==3.4", "3.4.1"));
}

TEST(VersionConstraint, NotEqualIsComplementOfEqual) {
  EXPECT_FALSE(Match("!=3.5", "3.5"));
  EXPECT_FALSE(Match("!=3.5", "3.5.0"));
  EXPECT_FALSE(Match("!=3.5", "3.5.2"));
  EXPECT_TRUE(Match("!=3.5", "3.6"));
  EXPECT_TRUE(Match("!=3.5", "3.4.9"));
  EXPECT_TRUE(Match("!=3.5.1", "3.5.2"));
}

TEST(VersionConstraint, OrderedComparisons) {
  EXPECT_TRUE(Match(">=3.7", "3.7"));
  EXPECT_TRUE(Match(">=3.7", "3.7.0"));
  EXPECT_TRUE(Match(">=3.7", "3.8"));
  EXPECT_TRUE(Match(">=3.7", "3.7.0.10.unofficial"));
  EXPECT_FALSE(Match(">=3.7", "3.6.99"));

  EXPECT_TRUE(Match(">3.7", "3.7.1"));
  EXPECT_FALSE(Match(">3.7", "3.7"));
  EXPECT_FALSE(Match(">3.7", "3.7.0"));

  EXPECT_TRUE(Match("<4", "3.99"));
  EXPECT_FALSE(Match("<4", "4"));
  EXPECT_FALSE(Match("<4", "4.0.1"));

  EXPECT_TRUE(Match("<=4.1", "4.1"));
  EXPECT_TRUE(Match("<=4.1", "4.1.0"));
  EXPECT_TRUE(Match("<=4.1", "4.0.9"));
  EXPECT_FALSE(Match("<=4.1", "4.1.1"));
}

TEST(VersionConstraint, Tilde) {
  EXPECT_TRUE(Match("~3.4", "3.4"));
  EXPECT_TRUE(Match("~3.4", "3.4.9"));
  EXPECT_FALSE(Match("~3.4", "3.5"));
  EXPECT_FALSE(Match("~3.4", "3.3.9"));
  EXPECT_TRUE(Match("~3.4.2", "3.4.2"));
  EXPECT_TRUE(Match("~3.4.2", "3.4.7"));
  EXPECT_FALSE(Match("~3.4.2", "3.4.1"));
  EXPECT_FALSE(Match("~3.4.2", "3.5.0"));
  // With only a major, the major is kept.
  EXPECT_TRUE(Match("~3", "3.9"));
  EXPECT_FALSE(Match("~3", "4.0"));
}

TEST(VersionConstraint, Caret) {
  EXPECT_TRUE(Match("^3.4", "3.4"));
  EXPECT_TRUE(Match("^3.4", "3.9.1"));
  EXPECT_FALSE(Match("^3.4", "3.3"));
  EXPECT_FALSE(Match("^3.4", "4.0"));
  EXPECT_TRUE(Match("^0.2", "0.9"));
  EXPECT_FALSE(Match("^0.2", "1.0"));
  EXPECT_TRUE(Match("^3", "3.0"));
  EXPECT_FALSE(Match("^3", "2.99"));
}

TEST(VersionConstraint, Conjunction) {
  EXPECT_TRUE(Match(">=3.7, <4", "3.7"));
  EXPECT_TRUE(Match(">=3.7, <4", "3.8.2"));
  EXPECT_FALSE(Match(">=3.7, <4", "4.0"));
  EXPECT_FALSE(Match(">=3.7, <4", "3.6"));
  EXPECT_TRUE(Match(">=3.7,<4,!=3.7.1", "3.7.2"));
  EXPECT_FALSE(Match(">=3.7,<4,!=3.7.1", "3.7.1"));
  EXPECT_FALSE(Match(">4, <3", "3.5")) << "unsatisfiable";
  EXPECT_TRUE(Match("*, >=2", "2.1")) << "'*' clause is a no-op";
  EXPECT_TRUE(Match(" ~3.4 , !=3.4.3 ", "3.4.2"));
  EXPECT_FALSE(Match(" ~3.4 , !=3.4.3 ", "3.4.3"));
}

TEST(VersionConstraint, Errors) {
  EXPECT_EQ(ConstraintError(">=x"),
            "version constraint '>=x': clause '>=x': version 'x': must start with a number");
  EXPECT_EQ(ConstraintError(">="), "version constraint '>=': clause '>=': version is empty");
  EXPECT_EQ(ConstraintError(">=3.7,"), "version constraint '>=3.7,': empty clause");
  EXPECT_EQ(ConstraintError(",<4"), "version constraint ',<4': empty clause");
  EXPECT_EQ(ConstraintError(">=3.7 <4"),
            "version constraint '>=3.7 <4': clause '>=3.7 <4': version '3.7 <4': must not "
            "contain whitespace or ','");
  EXPECT_EQ(ConstraintError("=>3"),
            "version constraint '=>3': clause '=>3': version '>3': must start with a number");
  EXPECT_EQ(ConstraintError("~2147483647"),
            "version constraint '~2147483647': clause '~2147483647': component is too large");
}

}  // namespace
}  // namespace ff

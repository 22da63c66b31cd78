#include "core/config_reader.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "util/test_fixtures.h"

namespace ff {
namespace {

ConfigTable Parse(const std::string& text, const std::string& source = "site.toml") {
  auto t = ConfigTable::ParseText(text, source);
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  if (!t.ok()) std::abort();
  return std::move(t).value();
}

// --- Durations -----------------------------------------------------------------

TEST(ParseDurationMillisTest, Units) {
  EXPECT_EQ(*ParseDurationMillis("5s"), 5000);
  EXPECT_EQ(*ParseDurationMillis("250ms"), 250);
  EXPECT_EQ(*ParseDurationMillis("2m"), 120000);
  EXPECT_EQ(*ParseDurationMillis("1h"), 3600000);
  EXPECT_EQ(*ParseDurationMillis("1.5s"), 1500);
  EXPECT_EQ(*ParseDurationMillis("0.25m"), 15000);
}

TEST(ParseDurationMillisTest, BareNumbersAreSeconds) {
  EXPECT_EQ(*ParseDurationMillis("5"), 5000);
  EXPECT_EQ(*ParseDurationMillis("0.5"), 500);
  EXPECT_EQ(*ParseDurationMillis("0"), 0);
}

TEST(ParseDurationMillisTest, Errors) {
  auto bad = [](const std::string& text) {
    auto d = ParseDurationMillis(text);
    EXPECT_FALSE(d.ok()) << "'" << text << "' parsed as " << (d.ok() ? *d : 0);
    if (!d.ok()) {
      EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument);
    }
    return d.ok() ? std::string() : d.status().message();
  };
  EXPECT_TRUE(HasSubstr(bad("5x"), "unknown unit 'x'"));
  EXPECT_TRUE(HasSubstr(bad("5x"), "'5x'"));
  EXPECT_TRUE(HasSubstr(bad("5 s"), "unknown unit ' s'"));
  EXPECT_TRUE(HasSubstr(bad("5sec"), "unknown unit 'sec'"));
  EXPECT_TRUE(HasSubstr(bad("5S"), "unknown unit 'S'"));
  EXPECT_TRUE(HasSubstr(bad(""), "empty"));
  EXPECT_TRUE(HasSubstr(bad("s"), "does not start with a number"));
  EXPECT_TRUE(HasSubstr(bad("-5s"), "does not start with a number"));
  EXPECT_TRUE(HasSubstr(bad(" 5s"), "does not start with a number"));
  EXPECT_TRUE(HasSubstr(bad(".s"), "not a number"));
  // Everything before the unit must be the number.
  EXPECT_TRUE(HasSubstr(bad("1.5.2s"), "'1.5.2s'"));
  EXPECT_TRUE(HasSubstr(bad("1..2"), "'1..2'"));
  // Too long to hold in milliseconds.
  EXPECT_TRUE(HasSubstr(bad("99999999999999999999h"), "too long"));
}

// --- ConfigTable getters ---------------------------------------------------------

constexpr const char* kDoc = R"(name = "studio"
cores = "four"
count = 0
enabled = true
flag = "yes"
list = ["a", "b"]
mixed = ["a", 1]
mem = "2G"
mem_int = 4096
mem_bad = "lots"
hb = "250ms"
hb_int = 2
hb_float = 0.5
hb_bad = "5x"
hb_zero = "0s"
hb_type = true
)";

TEST(ConfigTableTest, StringsAndAbsentKeys) {
  ConfigTable t = Parse(kDoc);
  auto name = t.GetString("name");
  ASSERT_TRUE(name.ok()) << name.status().ToString();
  EXPECT_EQ(name->value(), "studio");
  auto absent = t.GetString("absent");
  ASSERT_TRUE(absent.ok());
  EXPECT_FALSE(absent->has_value());
  EXPECT_FALSE(t.GetInt("absent_int", 0, 1)->has_value());
  EXPECT_FALSE(t.GetBool("absent_bool")->has_value());
  EXPECT_FALSE(t.GetDurationMillis("absent_duration")->has_value());
  EXPECT_FALSE(t.GetBytes("absent_bytes")->has_value());
  EXPECT_FALSE(t.GetStringArray("absent_list")->has_value());
  EXPECT_FALSE(t.GetTable("absent_table")->has_value());
  EXPECT_TRUE(t.GetTableArray("absent_tables")->empty());
  EXPECT_EQ(t.source(), "site.toml");

  auto wrong = t.GetString("count");
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(wrong.status().message(), "site.toml:3: count: must be a string");
}

TEST(ConfigTableTest, IntegersAndRanges) {
  ConfigTable t = Parse(kDoc);
  auto cores = t.GetInt("cores", 1, 64);
  ASSERT_FALSE(cores.ok());
  EXPECT_EQ(cores.status().message(), "site.toml:2: cores: must be an integer");
  auto count = t.GetInt("count", 1, 10);
  ASSERT_FALSE(count.ok());
  EXPECT_EQ(count.status().message(), "site.toml:3: count: must be between 1 and 10, got 0");
  count = t.GetInt("count", 0, 10);
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(count->value(), 0);
  auto mem_int = t.GetInt("mem_int", 0, 4096);
  ASSERT_TRUE(mem_int.ok());
  EXPECT_EQ(mem_int->value(), 4096);
}

TEST(ConfigTableTest, Booleans) {
  ConfigTable t = Parse(kDoc);
  auto enabled = t.GetBool("enabled");
  ASSERT_TRUE(enabled.ok());
  EXPECT_TRUE(enabled->value());
  auto flag = t.GetBool("flag");
  ASSERT_FALSE(flag.ok());
  EXPECT_EQ(flag.status().message(), "site.toml:5: flag: must be true or false");
}

TEST(ConfigTableTest, StringArrays) {
  ConfigTable t = Parse(kDoc);
  auto list = t.GetStringArray("list");
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->value(), (std::vector<std::string>{"a", "b"}));
  auto mixed = t.GetStringArray("mixed");
  ASSERT_FALSE(mixed.ok());
  EXPECT_EQ(mixed.status().message(), "site.toml:7: mixed: must be an array of strings");
  auto scalar = t.GetStringArray("name");
  ASSERT_FALSE(scalar.ok());
  EXPECT_EQ(scalar.status().message(), "site.toml:1: name: must be an array of strings");
}

TEST(ConfigTableTest, Bytes) {
  ConfigTable t = Parse(kDoc);
  EXPECT_EQ(t.GetBytes("mem")->value(), 2LL << 30);
  EXPECT_EQ(t.GetBytes("mem_int")->value(), 4096);
  auto bad = t.GetBytes("mem_bad");
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(HasSubstr(bad.status().message(), "site.toml:10: mem_bad: "));
  auto type = t.GetBytes("enabled");
  ASSERT_FALSE(type.ok());
  EXPECT_TRUE(HasSubstr(type.status().message(), "site.toml:4: enabled: must be a size"));

  ConfigTable neg = Parse("mem = -1\n", "host.toml");
  auto negative = neg.GetBytes("mem");
  ASSERT_FALSE(negative.ok()) << "a negative byte size was accepted: " << negative->value();
  EXPECT_TRUE(HasSubstr(negative.status().message(), "host.toml:1: mem: "));
}

TEST(ConfigTableTest, Durations) {
  ConfigTable t = Parse(kDoc);
  EXPECT_EQ(t.GetDurationMillis("hb")->value(), 250);
  EXPECT_EQ(t.GetDurationMillis("hb_int")->value(), 2000);
  EXPECT_EQ(t.GetDurationMillis("hb_float")->value(), 500);
  auto bad = t.GetDurationMillis("hb_bad");
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(HasSubstr(bad.status().message(), "site.toml:14: hb_bad: "));
  EXPECT_TRUE(HasSubstr(bad.status().message(), "unknown unit 'x'"));
  auto zero = t.GetDurationMillis("hb_zero");
  ASSERT_FALSE(zero.ok());
  EXPECT_EQ(zero.status().message(), "site.toml:15: hb_zero: must be positive");
  auto type = t.GetDurationMillis("hb_type");
  ASSERT_FALSE(type.ok());
  EXPECT_TRUE(HasSubstr(type.status().message(), "site.toml:16: hb_type: must be a duration"));
}

TEST(ConfigTableTest, NumericDurationsMustBePositiveAndFit) {
  ConfigTable t = Parse(R"(zero = 0
neg = -5
negf = -0.5
nan = nan
inf = inf
huge = 9223372036854775807
)");
  for (const char* key : {"zero", "neg", "negf", "nan", "inf", "huge"}) {
    auto d = t.GetDurationMillis(key);
    EXPECT_FALSE(d.ok()) << key << " parsed as " << (d.ok() ? d->value() : 0);
    if (!d.ok()) {
      EXPECT_TRUE(HasSubstr(d.status().message(), std::string(": ") + key + ": "));
    }
  }
}

TEST(ConfigTableTest, FinishRefusesUnreadKeys) {
  ConfigTable t = Parse("name = \"x\"\n\nnmae = \"typo\"\n");
  ASSERT_TRUE(t.GetString("name").ok());
  Status st = t.Finish();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(st.message(), "site.toml:3: nmae: unknown key");

  // A key asked for but absent, or asked for with a type error, is known.
  ConfigTable u = Parse("a = 1\n");
  EXPECT_FALSE(u.GetString("a").ok());
  EXPECT_TRUE(u.GetString("b").ok());
  EXPECT_TRUE(u.Finish().ok());
  EXPECT_TRUE(Parse("").Finish().ok());
}

TEST(ConfigTableTest, NestedTablesPrefixNames) {
  ConfigTable t = Parse(R"([site]
name = "studio"
root = 5

[schedule_server]
listen = "x"
extra = 1
)");
  auto site = t.GetTable("site");
  ASSERT_TRUE(site.ok());
  ASSERT_TRUE(site->has_value());
  ConfigTable& s = **site;
  EXPECT_EQ(s.GetString("name")->value(), "studio");
  auto root = s.GetString("root");
  ASSERT_FALSE(root.ok());
  EXPECT_EQ(root.status().message(), "site.toml:3: site.root: must be a string");
  EXPECT_TRUE(s.Finish().ok());

  // The outer table knows nothing of schedule_server until it is read.
  Status outer = t.Finish();
  ASSERT_FALSE(outer.ok());
  EXPECT_EQ(outer.message(), "site.toml:5: schedule_server: unknown key");

  auto ss = t.GetTable("schedule_server");
  ASSERT_TRUE(ss.ok());
  ASSERT_TRUE(ss->has_value());
  EXPECT_TRUE((*ss)->GetString("listen").ok());
  Status inner = (*ss)->Finish();
  ASSERT_FALSE(inner.ok());
  EXPECT_EQ(inner.message(), "site.toml:7: schedule_server.extra: unknown key");
  EXPECT_TRUE(t.Finish().ok());

  auto not_table = Parse("site = 1\n").GetTable("site");
  ASSERT_FALSE(not_table.ok());
  EXPECT_EQ(not_table.status().message(), "site.toml:1: site: must be a table ([site])");
}

TEST(ConfigTableTest, TablesOutliveTheirParent) {
  std::optional<ConfigTable> inner;
  {
    ConfigTable t = Parse("[a]\nb = \"c\"\n");
    auto a = t.GetTable("a");
    ASSERT_TRUE(a.ok());
    inner = std::move(**a);
  }
  EXPECT_EQ(inner->GetString("b")->value(), "c");
}

TEST(ConfigTableTest, ArraysOfTablesPrefixIndexedNames) {
  ConfigTable t = Parse(R"(root = "/r"

[[slots]]
cores = 1

[[slots]]
cores = "two"
typo = 1

[server]
[[server.slots]]
gpus = -1
)",
                        "host.toml");
  auto slots = t.GetTableArray("slots");
  ASSERT_TRUE(slots.ok());
  ASSERT_EQ(slots->size(), 2u);
  EXPECT_EQ((*slots)[0].GetInt("cores", 1, 8)->value(), 1);
  EXPECT_TRUE((*slots)[0].Finish().ok());
  auto cores = (*slots)[1].GetInt("cores", 1, 8);
  ASSERT_FALSE(cores.ok());
  EXPECT_EQ(cores.status().message(), "host.toml:7: slots[1].cores: must be an integer");
  Status st = (*slots)[1].Finish();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.message(), "host.toml:8: slots[1].typo: unknown key");

  auto server = t.GetTable("server");
  ASSERT_TRUE(server.ok() && server->has_value());
  auto inner = (*server)->GetTableArray("slots");
  ASSERT_TRUE(inner.ok());
  ASSERT_EQ(inner->size(), 1u);
  auto gpus = (*inner)[0].GetInt("gpus", 0, 4);
  ASSERT_FALSE(gpus.ok());
  EXPECT_EQ(gpus.status().message(),
            "host.toml:12: server.slots[0].gpus: must be between 0 and 4, got -1");

  ASSERT_TRUE(t.GetString("root").ok());
  EXPECT_TRUE(t.Finish().ok());
}

TEST(ConfigTableTest, ArrayOfTablesTypeErrors) {
  auto scalar = Parse("slots = 3\n").GetTableArray("slots");
  ASSERT_FALSE(scalar.ok());
  EXPECT_EQ(scalar.status().message(),
            "site.toml:1: slots: must be an array of tables ([[slots]])");
  auto mixed = Parse("slots = [{ cores = 1 }, 2]\n").GetTableArray("slots");
  ASSERT_FALSE(mixed.ok());
  EXPECT_TRUE(HasSubstr(mixed.status().message(), "slots: must be an array of tables"));
  // Inline tables are tables.
  auto inline_tables = Parse("slots = [{ cores = 1 }, { cores = 2 }]\n").GetTableArray("slots");
  ASSERT_TRUE(inline_tables.ok());
  ASSERT_EQ(inline_tables->size(), 2u);
  EXPECT_EQ((*inline_tables)[1].GetInt("cores", 1, 8)->value(), 2);
}

TEST(ConfigTableTest, SyntaxErrorsNameFileLineAndColumn) {
  auto t = ConfigTable::ParseText("a = 1\nb = = 2\n", "host.toml");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(HasSubstr(t.status().message(), "host.toml:2:")) << t.status().message();
  t = ConfigTable::ParseText("a = 1\na = 2\n", "host.toml");
  ASSERT_FALSE(t.ok());
  EXPECT_TRUE(HasSubstr(t.status().message(), "host.toml:2:")) << t.status().message();
}

TEST(ConfigTableTest, ParseFile) {
  const char* env = std::getenv("TMPDIR");
  std::string dir_template = std::string(env && *env ? env : "/tmp") + "/ff-config-XXXXXX";
  std::vector<char> buf(dir_template.begin(), dir_template.end());
  buf.push_back('\0');
  ASSERT_NE(::mkdtemp(buf.data()), nullptr);
  std::string dir = buf.data();
  std::string path = dir + "/site.toml";
  {
    std::ofstream out(path);
    out << "[site]\nroot = 1\n";
  }
  auto t = ConfigTable::ParseFile(path);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->source(), path);
  auto site = t->GetTable("site");
  ASSERT_TRUE(site.ok() && site->has_value());
  auto root = (*site)->GetString("root");
  ASSERT_FALSE(root.ok());
  EXPECT_EQ(root.status().message(), path + ":2: site.root: must be a string");

  auto missing = ConfigTable::ParseFile(dir + "/absent.toml");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(HasSubstr(missing.status().message(), dir + "/absent.toml"));

  EXPECT_EQ(std::remove(path.c_str()), 0);
  EXPECT_EQ(::rmdir(dir.c_str()), 0);
}

}  // namespace
}  // namespace ff

#include "transfer/job_package.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "store/blob_store.h"
#include "util/fs.h"
#include "util/sha256.h"
#include "util/test_fixtures.h"

namespace ff {
namespace {

JobPackageManifest JobManifest(const std::string& name = "job-a-17") {
  JobPackageManifest m;
  m.kind = JobPackageKind::kJob;
  m.name = name;
  m.origin_site = "a";
  m.origin_job_id = 17;
  m.from_site = "a";
  m.to_site = "b";
  m.client = "studio";
  m.created_ms = 1700000000000;
  m.description = "job.toml";
  return m;
}

std::vector<JobPackageSource> JobSources() {
  return {{"job.toml", "", "frames = \"1-10\"\n"},
          {"files/scene.pov", "", "camera { location <0,0,-5> }\n"},
          {"files/tex/wood.png", "", std::string(4096, 'w')}};
}

// The manifest text of JobManifest with `from` replaced by `to` (one
// replacement, asserting it happened).
std::string Mutate(std::string from, std::string to) {
  JobPackageManifest m = JobManifest();
  m.files = {{"job.toml", 5, Sha256Hex("hello")}, {"files/a.png", 3, Sha256Hex("abc")}};
  std::string json = ManifestToJson(m);
  size_t pos = json.find(from);
  EXPECT_NE(pos, std::string::npos) << from << " not in " << json;
  if (pos != std::string::npos) json.replace(pos, from.size(), to);
  return json;
}

std::string ParseError(const std::string& json) {
  Result<JobPackageManifest> m = ParseManifest(json, "manifest.json");
  EXPECT_FALSE(m.ok()) << json;
  return m.ok() ? "" : m.status().message();
}

TEST(ManifestTest, RoundTrip) {
  JobPackageManifest m = JobManifest();
  m.files = {{"job.toml", 5, Sha256Hex("hello")}, {"files/tex/wood.png", 0, Sha256Hex("")}};
  std::string json = ManifestToJson(m);
  Result<JobPackageManifest> back = ParseManifest(json, "manifest.json");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(ManifestToJson(*back), json);
  EXPECT_EQ(back->name, "job-a-17");
  EXPECT_EQ(back->origin_job_id, 17);
  ASSERT_EQ(back->files.size(), 2u);
  EXPECT_EQ(back->files[1].path, "files/tex/wood.png");
  // One file per line.
  EXPECT_TRUE(HasSubstr(json, "{\"path\": \"job.toml\", \"size\": 5, \"sha256\": \""));

  JobPackageManifest r;
  r.kind = JobPackageKind::kResult;
  r.name = "result-a-17";
  r.origin_site = "a";
  r.origin_job_id = 17;
  r.from_site = "b";
  r.to_site = "a";
  r.created_ms = 5;
  r.state = "failed";
  r.reason = "frame 3: renderer exited with 1";
  r.remote_job_id = 4;
  Result<JobPackageManifest> rback = ParseManifest(ManifestToJson(r), "m");
  ASSERT_TRUE(rback.ok()) << rback.status().ToString();
  EXPECT_EQ(rback->kind, JobPackageKind::kResult);
  EXPECT_EQ(rback->state, "failed");
  EXPECT_EQ(rback->reason, r.reason);
  EXPECT_EQ(rback->remote_job_id, 4);
}

TEST(ManifestTest, ErrorsNameTheField) {
  struct Case {
    std::string from, to, expect;
  };
  const std::vector<Case> cases = {
      {"\"files/a.png\"", "\"/etc/passwd\"",
       "manifest.json: files[1].path: \"/etc/passwd\" is absolute"},
      {"\"files/a.png\"", "\"../etc/passwd\"",
       "manifest.json: files[1].path: \"../etc/passwd\" leaves the package"},
      {"\"files/a.png\"", "\"files/../../x\"",
       "files[1].path: \"files/../../x\" leaves the package"},
      {"\"files/a.png\"", "\"files/./a.png\"",
       "files[1].path: \"files/./a.png\" has a '.' component"},
      {"\"files/a.png\"", "\"files//a.png\"",
       "files[1].path: \"files//a.png\" has an empty component"},
      {"\"files/a.png\"", "\"files/\"", "files[1].path: \"files/\" has an empty component"},
      {"\"files/a.png\"", "\"\"", "files[1].path: is empty"},
      {"\"files/a.png\"", "\"job.toml\"", "files[1].path: \"job.toml\" duplicates files[0].path"},
      {"\"files/a.png\"", "\"manifest.json\"", "files[1].path: 'manifest.json' is reserved"},
      {"\"files/a.png\"", "\"job.toml/x\"", "files[0].path: \"job.toml\" is also a directory"},
      {"\"size\": 3", "\"size\": -3", "files[1].size: -3 is negative"},
      {"\"size\": 3", "\"size\": 3.5", "files[1].size: must be an integer"},
      {"\"size\": 3", "\"size\": \"3\"", "files[1].size: must be an integer"},
      {"\"size\": 3, ", "", "files[1].size: is missing"},
      {Sha256Hex("abc"), "ABC", "files[1].sha256: \"ABC\" is not a lower-case hex SHA-256"},
      {Sha256Hex("abc"), Sha256Hex("abc").substr(1), "files[1].sha256:"},
      {"\"size\": 3", "\"size\": 3, \"mode\": 7", "files[1].mode: unknown key"},
      {"\"kind\": \"job\"", "\"kind\": \"render\"",
       "manifest.json: kind: \"render\" is not one of"},
      {"frameflow-package/1", "frameflow-package/2",
       "manifest.json: format: \"frameflow-package/2\" is not frameflow-package/1"},
      {"  \"to_site\": \"b\",\n", "", "manifest.json: to_site: is missing"},
      {"\"to_site\": \"b\"", "\"to_site\": 7", "manifest.json: to_site: must be a string"},
      {"\"from_site\": \"a\"", "\"from_site\": \"a/b\"", "from_site: \"a/b\" is not a site name"},
      {"\"origin_job_id\": 17", "\"origin_job_id\": 0", "origin_job_id: 0 must be positive"},
      {"\"name\": \"job-a-17\"", "\"name\": \".hidden\"",
       "name: \".hidden\" is not a package name"},
      {"\"name\": \"job-a-17\"", "\"name\": \"a/../b\"", "name: \"a/../b\" is not a package name"},
      {"\"client\": \"studio\"", "\"client\": \"\"", "client: \"\" is not a client name"},
      {"\"description\": \"job.toml\"", "\"description\": \"other.toml\"",
       "description: \"other.toml\" is not one of the package's files"},
      {"  \"created_ms\"", "  \"extra\": 1,\n  \"created_ms\"",
       "manifest.json: extra: unknown key"},
      {"\"files\": [", "\"files\": 3, \"x\": [", "manifest.json: x: unknown key"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.from + " -> " + c.to);
    EXPECT_TRUE(HasSubstr(ParseError(Mutate(c.from, c.to)), c.expect));
  }
  EXPECT_TRUE(HasSubstr(ParseError("{not json"), "manifest.json: not valid JSON"));
  EXPECT_TRUE(HasSubstr(ParseError("[]"), "manifest.json: must be a JSON object"));
  // A result without its state; files must be an array.
  JobPackageManifest r = JobManifest();
  r.kind = JobPackageKind::kResult;
  r.remote_job_id = 3;
  r.state = "done";
  std::string json = ManifestToJson(r);
  json.replace(json.find("  \"state\": \"done\",\n"), 19, "");
  EXPECT_TRUE(HasSubstr(ParseError(json), "manifest.json: state: is missing"));
  std::string nofiles = Mutate("\"files\": [", "\"files\": {\"a\": [");
  nofiles.replace(nofiles.rfind(']'), 1, "]}");
  EXPECT_TRUE(HasSubstr(ParseError(nofiles), "manifest.json: files: must be an array"));
}

TEST(ManifestTest, CheckLimits) {
  JobPackageManifest m = JobManifest();
  m.files = {{"job.toml", 10, Sha256Hex("")}, {"a", 600, Sha256Hex("")}, {"b", 500, Sha256Hex("")}};
  JobPackageLimits limits;
  EXPECT_TRUE(CheckLimits(m, limits).ok());

  limits.max_file_bytes = 550;
  Status s = CheckLimits(m, limits);
  EXPECT_TRUE(HasSubstr(s.message(),
                        "files[1] \"a\": size 600 bytes exceeds the per-file limit "
                        "of 550 by 50"));

  limits = JobPackageLimits();
  limits.max_package_bytes = 1000;
  s = CheckLimits(m, limits);
  EXPECT_TRUE(
      HasSubstr(s.message(), "total size 1110 bytes exceeds the package limit of 1000 by 110"));

  limits = JobPackageLimits();
  limits.max_files = 2;
  s = CheckLimits(m, limits);
  EXPECT_TRUE(HasSubstr(s.message(), "3 files exceed the limit of 2 by 1"));
}

class PackageTest : public TempDirFixture {
 protected:
  std::string Hot() const { return Path("hot"); }
  std::string Pkg() const { return JoinPath(Hot(), "job-a-17"); }

  JobPackageManifest Write() {
    Result<JobPackageManifest> m = WritePackage(Hot(), JobManifest(), JobSources());
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    return m.ok() ? *m : JobPackageManifest();
  }

  std::string VerifyError() {
    Result<JobPackageManifest> m = VerifyPackage(Pkg(), JobPackageLimits());
    EXPECT_FALSE(m.ok());
    return m.ok() ? "" : m.status().message();
  }
};

TEST_F(PackageTest, WriteThenVerify) {
  ASSERT_TRUE(WriteFileAtomic(Path("src.bin"), std::string(100000, 's')).ok());
  std::vector<JobPackageSource> sources = JobSources();
  sources.push_back({"files/big.bin", Path("src.bin"), ""});
  Result<JobPackageManifest> m = WritePackage(Hot(), JobManifest(), sources);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ASSERT_EQ(m->files.size(), 4u);
  EXPECT_EQ(m->files[2].path, "files/tex/wood.png");
  EXPECT_EQ(m->files[2].size, 4096);
  EXPECT_EQ(m->files[2].sha256, Sha256Hex(std::string(4096, 'w')));
  EXPECT_EQ(m->files[3].size, 100000);
  // No staging directory is left, and the hot folder lists the package.
  Result<std::vector<std::string>> names = ListDir(Hot());
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, std::vector<std::string>{"job-a-17"});
  Result<std::string> big = ReadFile(JoinPath(Pkg(), "files/big.bin"));
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(*big, std::string(100000, 's'));

  Result<JobPackageManifest> v = VerifyPackage(Pkg(), JobPackageLimits());
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(ManifestToJson(*v), ManifestToJson(*m));
}

TEST_F(PackageTest, WriteIsIdempotentAndCleansStaleStaging) {
  // A crash left a half-written staging directory behind.
  ASSERT_TRUE(MakeDirs(JoinPath(Hot(), ".staging-job-a-17/files")).ok());
  ASSERT_TRUE(WriteFileAtomic(JoinPath(Hot(), ".staging-job-a-17/files/junk"), "x").ok());
  JobPackageManifest first = Write();
  EXPECT_FALSE(PathExists(JoinPath(Hot(), ".staging-job-a-17")));
  struct stat before;
  ASSERT_EQ(::stat(JoinPath(Pkg(), "manifest.json").c_str(), &before), 0);

  // A rewrite with other content is a no-op that returns what is there.
  std::vector<JobPackageSource> other = {{"job.toml", "", "different"}};
  Result<JobPackageManifest> second = WritePackage(Hot(), JobManifest(), other);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(ManifestToJson(*second), ManifestToJson(first));
  struct stat after;
  ASSERT_EQ(::stat(JoinPath(Pkg(), "manifest.json").c_str(), &after), 0);
  EXPECT_EQ(before.st_ino, after.st_ino);
  EXPECT_TRUE(VerifyPackage(Pkg(), JobPackageLimits()).ok());
}

TEST_F(PackageTest, WriteRefusesBadInputAndPublishesNothing) {
  std::vector<JobPackageSource> sources = JobSources();
  sources.push_back({"../escape", "", "x"});
  Result<JobPackageManifest> m = WritePackage(Hot(), JobManifest(), sources);
  ASSERT_FALSE(m.ok());
  EXPECT_TRUE(HasSubstr(m.status().message(), "sources[3].path: \"../escape\" leaves the package"));
  EXPECT_FALSE(PathExists(Path("escape")));

  // The description must be among the files: checked before publishing.
  JobPackageManifest bad = JobManifest();
  bad.description = "missing.toml";
  m = WritePackage(Hot(), bad, JobSources());
  ASSERT_FALSE(m.ok());
  EXPECT_TRUE(HasSubstr(m.status().message(), "description"));
  EXPECT_FALSE(PathExists(Pkg()));
  EXPECT_FALSE(PathExists(JoinPath(Hot(), ".staging-job-a-17")));

  m = WritePackage(Hot(), JobManifest(), {{"job.toml", Path("nope"), ""}});
  EXPECT_FALSE(m.ok());
  EXPECT_FALSE(PathExists(Pkg()));
}

TEST_F(PackageTest, VerifyRejectsTruncatedFile) {
  Write();
  ASSERT_EQ(::truncate(JoinPath(Pkg(), "files/tex/wood.png").c_str(), 100), 0);
  EXPECT_TRUE(HasSubstr(VerifyError(), "files/tex/wood.png: size 100 but the manifest says 4096"));
}

TEST_F(PackageTest, VerifyRejectsTamperedByte) {
  Write();
  std::string data(4096, 'w');
  data[2000] = 'x';
  ASSERT_TRUE(WriteFileAtomic(JoinPath(Pkg(), "files/tex/wood.png"), data).ok());
  EXPECT_TRUE(HasSubstr(VerifyError(), "files/tex/wood.png: SHA-256 mismatch"));
}

TEST_F(PackageTest, VerifyRejectsMissingFile) {
  Write();
  ASSERT_EQ(::unlink(JoinPath(Pkg(), "files/scene.pov").c_str()), 0);
  EXPECT_TRUE(HasSubstr(VerifyError(), "files/scene.pov: missing"));
  // A missing directory is named too.
  ASSERT_TRUE(RemoveAll(JoinPath(Pkg(), "files")).ok());
  EXPECT_TRUE(HasSubstr(VerifyError(), "files is missing"));
}

TEST_F(PackageTest, VerifyRejectsUnlistedFile) {
  Write();
  ASSERT_TRUE(WriteFileAtomic(JoinPath(Pkg(), "files/tex/extra.png"), "x").ok());
  EXPECT_TRUE(HasSubstr(VerifyError(), "files/tex/extra.png: is not listed in the manifest"));
  ASSERT_EQ(::unlink(JoinPath(Pkg(), "files/tex/extra.png").c_str()), 0);
  ASSERT_TRUE(MakeDirs(JoinPath(Pkg(), "emptydir")).ok());
  EXPECT_TRUE(HasSubstr(VerifyError(), "emptydir: is a directory not listed in the manifest"));
}

TEST_F(PackageTest, VerifyRejectsSymlinkFile) {
  Write();
  ASSERT_TRUE(WriteFileAtomic(Path("outside"), std::string(4096, 'w')).ok());
  std::string wood = JoinPath(Pkg(), "files/tex/wood.png");
  ASSERT_EQ(::unlink(wood.c_str()), 0);
  ASSERT_EQ(::symlink(Path("outside").c_str(), wood.c_str()), 0);
  EXPECT_TRUE(HasSubstr(VerifyError(), "files/tex/wood.png: is a symlink"));
}

TEST_F(PackageTest, VerifyRejectsSymlinkedDirectory) {
  Write();
  // files/tex -> a directory outside holding the same content.
  ASSERT_TRUE(MakeDirs(Path("evil")).ok());
  ASSERT_TRUE(WriteFileAtomic(Path("evil/wood.png"), std::string(4096, 'w')).ok());
  std::string tex = JoinPath(Pkg(), "files/tex");
  ASSERT_TRUE(RemoveAll(tex).ok());
  ASSERT_EQ(::symlink(Path("evil").c_str(), tex.c_str()), 0);
  EXPECT_TRUE(HasSubstr(VerifyError(), "files/tex: is a symlink"));
  // The package directory itself may not be a symlink either.
  ASSERT_EQ(::symlink(Pkg().c_str(), Path("hot/alias").c_str()), 0);
  Result<JobPackageManifest> m = VerifyPackage(Path("hot/alias"), JobPackageLimits());
  ASSERT_FALSE(m.ok());
  EXPECT_TRUE(HasSubstr(m.status().message(), "alias: is a symlink"));
}

TEST_F(PackageTest, VerifyRejectsFifo) {
  Write();
  std::string scene = JoinPath(Pkg(), "files/scene.pov");
  ASSERT_EQ(::unlink(scene.c_str()), 0);
  ASSERT_EQ(::mkfifo(scene.c_str(), 0644), 0);
  // Must not block opening it.
  EXPECT_TRUE(HasSubstr(VerifyError(), "files/scene.pov: is a FIFO"));
  ASSERT_EQ(::unlink(scene.c_str()), 0);
  ASSERT_TRUE(WriteFileAtomic(scene, "camera { location <0,0,-5> }\n").ok());
  ASSERT_EQ(::mkfifo(JoinPath(Pkg(), "pipe").c_str(), 0644), 0);
  EXPECT_TRUE(HasSubstr(VerifyError(), "pipe: is a FIFO"));
}

TEST_F(PackageTest, VerifyChecksLimitsAndManifest) {
  Write();
  JobPackageLimits limits;
  limits.max_file_bytes = 1000;
  Result<JobPackageManifest> m = VerifyPackage(Pkg(), limits);
  ASSERT_FALSE(m.ok());
  EXPECT_TRUE(HasSubstr(m.status().message(), "exceeds the per-file limit of 1000"));
  ASSERT_TRUE(WriteFileAtomic(JoinPath(Pkg(), "manifest.json"), "{").ok());
  EXPECT_TRUE(HasSubstr(VerifyError(), "manifest.json: not valid JSON"));
}

TEST_F(PackageTest, MaterializeFromBlobStore) {
  Result<std::unique_ptr<BlobStore>> blobs = BlobStore::Open(Path("blobs"));
  ASSERT_TRUE(blobs.ok());
  JobPackageManifest m = JobManifest();
  std::vector<std::string> contents = {"frames = 1", "scene", "scene"};
  std::vector<std::string> paths = {"job.toml", "files/a.pov", "files/sub/b.pov"};
  for (size_t i = 0; i < contents.size(); ++i) {
    m.files.push_back({paths[i], static_cast<int64_t>(contents[i].size()), Sha256Hex(contents[i])});
  }
  std::string json = ManifestToJson(m);

  // A missing blob: fails, writes nothing.
  Status s = MaterializePackage(Path("in"), m, json, **blobs);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(HasSubstr(s.message(), "is not in the blob store"));
  EXPECT_FALSE(PathExists(JoinPath(Path("in"), m.name)));

  for (size_t i = 0; i < 2; ++i) {
    ASSERT_TRUE(WriteFileAtomic(Path("src"), contents[i]).ok());
    ASSERT_TRUE((*blobs)->Import(Path("src")).ok());
  }
  s = MaterializePackage(Path("in"), m, json, **blobs);
  ASSERT_TRUE(s.ok()) << s.ToString();
  std::string dir = JoinPath(Path("in"), m.name);
  EXPECT_EQ(*ReadFile(JoinPath(dir, "manifest.json")), json);
  EXPECT_EQ(*ReadFile(JoinPath(dir, "files/sub/b.pov")), "scene");
  Result<JobPackageManifest> v = VerifyPackage(dir, JobPackageLimits());
  EXPECT_TRUE(v.ok()) << v.status().ToString();
  // Idempotent.
  EXPECT_TRUE(MaterializePackage(Path("in"), m, json, **blobs).ok());
}

TEST_F(PackageTest, QuarantineMovesAndWritesReason) {
  Write();
  Result<std::string> q = QuarantinePackage(Pkg(), Path("quarantine"), "files/x: SHA-256 mismatch");
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  EXPECT_EQ(*q, Path("quarantine/job-a-17"));
  EXPECT_FALSE(PathExists(Pkg()));
  EXPECT_TRUE(PathExists(Path("quarantine/job-a-17/files/tex/wood.png")));
  EXPECT_EQ(*ReadFile(Path("quarantine/job-a-17.reason.txt")), "files/x: SHA-256 mismatch\n");

  // The same name again gets a suffix.
  Write();
  q = QuarantinePackage(Pkg(), Path("quarantine"), "again");
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  EXPECT_EQ(*q, Path("quarantine/job-a-17.1"));
  EXPECT_EQ(*ReadFile(Path("quarantine/job-a-17.1.reason.txt")), "again\n");
}

TEST_F(PackageTest, ListPackagesOldestFirstSkippingDotNames) {
  ASSERT_TRUE(MakeDirs(JoinPath(Hot(), "b-pkg")).ok());
  ASSERT_TRUE(MakeDirs(JoinPath(Hot(), "a-pkg")).ok());
  ASSERT_TRUE(MakeDirs(JoinPath(Hot(), ".staging-c")).ok());
  ASSERT_TRUE(WriteFileAtomic(JoinPath(Hot(), "file"), "x").ok());
  struct timespec times[2] = {{1000, 0}, {1000, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, JoinPath(Hot(), "b-pkg").c_str(), times, 0), 0);
  times[0].tv_sec = times[1].tv_sec = 2000;
  ASSERT_EQ(::utimensat(AT_FDCWD, JoinPath(Hot(), "a-pkg").c_str(), times, 0), 0);
  Result<std::vector<std::string>> names = ListPackages(Hot());
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, (std::vector<std::string>{"b-pkg", "a-pkg"}));
}

}  // namespace
}  // namespace ff

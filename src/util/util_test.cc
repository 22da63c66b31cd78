#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "util/fs.h"
#include "util/sha256.h"
#include "util/test_fixtures.h"

namespace ff {
namespace {

class TempDirTest : public TempDirFixture {
 protected:
};

// --- SHA-256 ---------------------------------------------------------------

TEST(Sha256Test, KnownVectors) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Sha256Test, IncrementalMatchesOneShot) {
  Sha256 h;
  h.Update("a");
  h.Update("");
  h.Update("bc", 2);
  EXPECT_EQ(h.Finish(), Sha256Hex("abc"));

  // One million 'a's, fed in uneven pieces.
  Sha256 million;
  std::string piece(997, 'a');
  size_t left = 1000000;
  while (left > 0) {
    size_t n = std::min(left, piece.size());
    million.Update(piece.data(), n);
    left -= n;
  }
  EXPECT_EQ(million.Finish(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_F(TempDirTest, Sha256FileHashesContentAndReportsSize) {
  std::string data;
  for (int i = 0; i < 200000; ++i) data.push_back(static_cast<char>(i * 31));
  ASSERT_TRUE(WriteFileAtomic(Path("blob"), data).ok());
  int64_t size = -1;
  Result<std::string> digest = Sha256File(Path("blob"), &size);
  ASSERT_TRUE(digest.ok()) << digest.status().ToString();
  EXPECT_EQ(*digest, Sha256Hex(data));
  EXPECT_EQ(size, 200000);

  ASSERT_TRUE(WriteFileAtomic(Path("empty"), "").ok());
  Result<std::string> empty = Sha256File(Path("empty"));
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, Sha256Hex(""));
}

TEST_F(TempDirTest, Sha256FileMissingNamesThePath) {
  Result<std::string> digest = Sha256File(Path("nope"));
  ASSERT_FALSE(digest.ok());
  EXPECT_EQ(digest.status().code(), StatusCode::kNotFound);
  EXPECT_NE(digest.status().message().find(Path("nope")), std::string::npos);
}

TEST(Sha256Test, IsSha256Hex) {
  EXPECT_TRUE(IsSha256Hex(Sha256Hex("abc")));
  EXPECT_TRUE(IsSha256Hex(std::string(64, '0')));
  EXPECT_FALSE(IsSha256Hex(""));
  EXPECT_FALSE(IsSha256Hex(std::string(63, 'a')));
  EXPECT_FALSE(IsSha256Hex(std::string(65, 'a')));
  EXPECT_FALSE(IsSha256Hex(std::string(64, 'A')));  // upper case is not canonical
  EXPECT_FALSE(IsSha256Hex(std::string(63, 'a') + "g"));
  EXPECT_FALSE(IsSha256Hex(std::string(63, 'a') + "/"));
}

// --- Files -----------------------------------------------------------------

TEST_F(TempDirTest, WriteFileAtomicCreatesAndReplaces) {
  std::string path = Path("config.toml");
  ASSERT_TRUE(WriteFileAtomic(path, "first").ok());
  Result<std::string> read = ReadFile(path);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(*read, "first");

  ASSERT_TRUE(WriteFileAtomic(path, "second, longer", 0600).ok());
  read = ReadFile(path);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(*read, "second, longer");
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  // No temp files are left beside it.
  Result<std::vector<std::string>> names = ListDir(dir_);
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, std::vector<std::string>{"config.toml"});
}

TEST_F(TempDirTest, WriteFileAtomicBinaryAndEmpty) {
  std::string binary("a\0b\xff\n", 5);
  ASSERT_TRUE(WriteFileAtomic(Path("bin"), binary).ok());
  EXPECT_EQ(*ReadFile(Path("bin")), binary);
  ASSERT_TRUE(WriteFileAtomic(Path("bin"), "").ok());
  EXPECT_EQ(*ReadFile(Path("bin")), "");
}

TEST_F(TempDirTest, WriteFileAtomicIntoMissingDirectoryFails) {
  Status s = WriteFileAtomic(Path("no/such/dir/file"), "x");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find(Path("no/such/dir/file")), std::string::npos) << s.message();
}

TEST_F(TempDirTest, ReadFileErrors) {
  Result<std::string> missing = ReadFile(Path("missing"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find(Path("missing")), std::string::npos);

  Result<std::string> dir = ReadFile(dir_);
  ASSERT_FALSE(dir.ok());
  EXPECT_EQ(dir.status().code(), StatusCode::kIoError);
  EXPECT_NE(dir.status().message().find(dir_), std::string::npos);
}

TEST(FsTest, ReadFileReadsProcFiles) {
  // /proc files report size 0; they must still be read in full.
  Result<std::string> meminfo = ReadFile("/proc/meminfo");
  ASSERT_TRUE(meminfo.ok()) << meminfo.status().ToString();
  EXPECT_NE(meminfo->find("MemTotal"), std::string::npos);
}

TEST_F(TempDirTest, RenameDurableMovesAcrossDirectories) {
  ASSERT_TRUE(MakeDirs(Path("a")).ok());
  ASSERT_TRUE(MakeDirs(Path("b")).ok());
  ASSERT_TRUE(WriteFileAtomic(Path("a/f"), "payload").ok());
  ASSERT_TRUE(RenameDurable(Path("a/f"), Path("b/g")).ok());
  EXPECT_FALSE(PathExists(Path("a/f")));
  EXPECT_EQ(*ReadFile(Path("b/g")), "payload");

  Status missing = RenameDurable(Path("a/f"), Path("b/h"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.code(), StatusCode::kNotFound);
  EXPECT_NE(missing.message().find(Path("a/f")), std::string::npos) << missing.message();
}

TEST_F(TempDirTest, LinkOrCopyLinksOnOneFilesystem) {
  ASSERT_TRUE(WriteFileAtomic(Path("src"), "shared bytes").ok());
  ASSERT_TRUE(WriteFileAtomic(Path("dst"), "old content").ok());
  ASSERT_TRUE(LinkOrCopy(Path("src"), Path("dst")).ok());
  EXPECT_EQ(*ReadFile(Path("dst")), "shared bytes");
  struct stat a, b;
  ASSERT_EQ(::stat(Path("src").c_str(), &a), 0);
  ASSERT_EQ(::stat(Path("dst").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);  // a hard link, not a copy

  // Linking again (to the same inode) is a no-op and leaves no temp names.
  ASSERT_TRUE(LinkOrCopy(Path("src"), Path("dst")).ok());
  EXPECT_EQ(*ListDir(dir_), (std::vector<std::string>{"dst", "src"}));
}

TEST_F(TempDirTest, LinkOrCopyCopiesAcrossFilesystems) {
  // /dev/shm is a tmpfs on Linux; when the temp dir is elsewhere, link()
  // fails with EXDEV and the copy path runs.
  struct stat shm, tmp;
  if (::stat("/dev/shm", &shm) != 0 || ::stat(dir_.c_str(), &tmp) != 0 ||
      shm.st_dev == tmp.st_dev) {
    GTEST_SKIP() << "no second filesystem at /dev/shm";
  }
  std::string shm_dir = "/dev/shm/ff-util-test-" + std::to_string(::getpid());
  ASSERT_TRUE(MakeDirs(shm_dir).ok());
  std::string src = JoinPath(shm_dir, "src");
  ASSERT_TRUE(WriteFileAtomic(src, "cross-device", 0640).ok());
  Status s = LinkOrCopy(src, Path("copy"));
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(*ReadFile(Path("copy")), "cross-device");
  struct stat st;
  ASSERT_EQ(::stat(Path("copy").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  EXPECT_EQ(*ListDir(dir_), std::vector<std::string>{"copy"});
  EXPECT_TRUE(RemoveAll(shm_dir).ok());
}

TEST_F(TempDirTest, LinkOrCopyErrors) {
  Status missing = LinkOrCopy(Path("missing"), Path("dst"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.code(), StatusCode::kNotFound);
  EXPECT_NE(missing.message().find(Path("missing")), std::string::npos);

  ASSERT_TRUE(MakeDirs(Path("dir")).ok());
  Status dir = LinkOrCopy(Path("dir"), Path("dst"));
  ASSERT_FALSE(dir.ok());
  EXPECT_EQ(dir.code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(PathExists(Path("dst")));
}

TEST_F(TempDirTest, ListDirIsSortedAndSkipsDots) {
  for (const char* name : {"zeta", "alpha", "Mid", "beta.txt"}) {
    ASSERT_TRUE(WriteFileAtomic(Path(name), name).ok());
  }
  ASSERT_TRUE(MakeDirs(Path("sub")).ok());
  Result<std::vector<std::string>> names = ListDir(dir_);
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, (std::vector<std::string>{"Mid", "alpha", "beta.txt", "sub", "zeta"}));

  Result<std::vector<std::string>> empty = ListDir(Path("sub"));
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());

  Result<std::vector<std::string>> missing = ListDir(Path("missing"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find(Path("missing")), std::string::npos);
}

TEST_F(TempDirTest, MakeDirsCreatesParentsAndIsIdempotent) {
  std::string deep = Path("a/b//c/d/");
  ASSERT_TRUE(MakeDirs(deep, 0750).ok());
  struct stat st;
  ASSERT_EQ(::stat(Path("a/b/c/d").c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_TRUE(MakeDirs(deep).ok());
  EXPECT_TRUE(MakeDirs(dir_).ok());
  EXPECT_TRUE(MakeDirs("/").ok());

  ASSERT_TRUE(WriteFileAtomic(Path("file"), "x").ok());
  Status blocked = MakeDirs(Path("file/sub"));
  ASSERT_FALSE(blocked.ok());
  EXPECT_NE(blocked.message().find(Path("file")), std::string::npos) << blocked.message();
  // An existing file is not a directory.
  blocked = MakeDirs(Path("file"));
  ASSERT_FALSE(blocked.ok());
  EXPECT_NE(blocked.message().find(Path("file")), std::string::npos) << blocked.message();

  EXPECT_EQ(MakeDirs("").code(), StatusCode::kInvalidArgument);
}

TEST_F(TempDirTest, RemoveContentsKeepsTheDirectory) {
  ASSERT_TRUE(MakeDirs(Path("d/sub/deeper")).ok());
  ASSERT_TRUE(WriteFileAtomic(Path("d/sub/deeper/f"), "1").ok());
  ASSERT_TRUE(WriteFileAtomic(Path("d/g"), "2").ok());
  ASSERT_EQ(::symlink("/", Path("d/link").c_str()), 0);  // removed, not followed
  ASSERT_TRUE(RemoveContents(Path("d")).ok());
  auto left = ListDir(Path("d"));
  ASSERT_TRUE(left.ok()) << left.status().ToString();
  EXPECT_TRUE(left->empty());
  EXPECT_TRUE(RemoveContents(Path("d")).ok());  // already empty
  EXPECT_TRUE(PathExists("/"));
  Status missing = RemoveContents(Path("missing"));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.message().find(Path("missing")), std::string::npos) << missing.message();
}

TEST_F(TempDirTest, RemoveAllRemovesTreesAndToleratesMissing) {
  ASSERT_TRUE(MakeDirs(Path("t/x/y")).ok());
  ASSERT_TRUE(WriteFileAtomic(Path("t/x/y/f"), "1").ok());
  ASSERT_TRUE(WriteFileAtomic(Path("t/g"), "2").ok());
  ASSERT_EQ(::symlink("/", Path("t/link").c_str()), 0);  // must not be followed
  ASSERT_TRUE(RemoveAll(Path("t")).ok());
  EXPECT_FALSE(PathExists(Path("t")));
  EXPECT_TRUE(PathExists("/"));
  EXPECT_TRUE(RemoveAll(Path("t")).ok());

  ASSERT_TRUE(WriteFileAtomic(Path("plain"), "3").ok());
  EXPECT_TRUE(RemoveAll(Path("plain")).ok());
  EXPECT_FALSE(PathExists(Path("plain")));
}

TEST(FsTest, MakeTempDirIsFreshAndHonoursPrefix) {
  Result<std::string> a = MakeTempDir("ff-prefix");
  Result<std::string> b = MakeTempDir("ff-prefix");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);
  EXPECT_EQ(BaseName(*a).rfind("ff-prefix-", 0), 0u) << *a;
  EXPECT_EQ(BaseName(*a).size(), std::string("ff-prefix-XXXXXX").size());
  struct stat st;
  ASSERT_EQ(::stat(a->c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_TRUE(RemoveAll(*a).ok());
  EXPECT_TRUE(RemoveAll(*b).ok());

  EXPECT_EQ(MakeTempDir("a/b").status().code(), StatusCode::kInvalidArgument);
}

TEST(FsTest, TempNamesOfTheAtomicWritersAreRecognisedAndSwept) {
  EXPECT_TRUE(IsTempName(".chunk-2.attempt-1.log.tmp-PTRBO6"));
  EXPECT_TRUE(IsTempName(".frame_0001.png.copy-a1B2c3"));
  EXPECT_TRUE(IsTempName(".frame_0001.png.link-123-4-56789"));
  EXPECT_FALSE(IsTempName("frame.tmp-123456"));  // not hidden: a user's name
  EXPECT_FALSE(IsTempName(".tmp-"));
  EXPECT_FALSE(IsTempName(".hidden"));
  EXPECT_FALSE(IsTempName("."));

  auto dir = MakeTempDir("ff-sweep");
  ASSERT_TRUE(dir.ok());
  ASSERT_TRUE(MakeDirs(*dir + "/logs").ok());
  // A real write leaves nothing; the names a kill would leave are swept.
  ASSERT_TRUE(WriteFileAtomic(*dir + "/f_0001.png", "frame").ok());
  ASSERT_TRUE(WriteFileAtomic(*dir + "/logs/.chunk-0.log.tmp-AbCdEf", "half").ok());
  ASSERT_TRUE(WriteFileAtomic(*dir + "/.f_0002.png.link-1-2-3", "half").ok());
  auto swept = RemoveTempFiles(*dir);
  ASSERT_TRUE(swept.ok()) << swept.status().message();
  EXPECT_EQ(*swept, 2);
  EXPECT_TRUE(PathExists(*dir + "/f_0001.png"));
  EXPECT_FALSE(PathExists(*dir + "/logs/.chunk-0.log.tmp-AbCdEf"));
  EXPECT_FALSE(PathExists(*dir + "/.f_0002.png.link-1-2-3"));
  auto missing = RemoveTempFiles(*dir + "/nothing-here");
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(*missing, 0);
  ASSERT_TRUE(RemoveAll(*dir).ok());
}

TEST(FsTest, JoinPath) {
  EXPECT_EQ(JoinPath("a", "b"), "a/b");
  EXPECT_EQ(JoinPath("a/", "b"), "a/b");
  EXPECT_EQ(JoinPath("a//", "b"), "a/b");
  EXPECT_EQ(JoinPath("/", "b"), "/b");
  EXPECT_EQ(JoinPath("", "b"), "b");
  EXPECT_EQ(JoinPath("a", ""), "a");
  EXPECT_EQ(JoinPath("", ""), "");
  EXPECT_EQ(JoinPath("a/b", "c/d"), "a/b/c/d");
  // An absolute second part stays under the first.
  EXPECT_EQ(JoinPath("/secure/job", "/etc/passwd"), "/secure/job/etc/passwd");
}

TEST(FsTest, DirName) {
  EXPECT_EQ(DirName("/a/b"), "/a");
  EXPECT_EQ(DirName("/a/b/"), "/a");
  EXPECT_EQ(DirName("a/b"), "a");
  EXPECT_EQ(DirName("a//b"), "a");
  EXPECT_EQ(DirName("/a"), "/");
  EXPECT_EQ(DirName("a"), ".");
  EXPECT_EQ(DirName("/"), "/");
  EXPECT_EQ(DirName(""), ".");
}

TEST(FsTest, BaseName) {
  EXPECT_EQ(BaseName("/a/b"), "b");
  EXPECT_EQ(BaseName("/a/b/"), "b");
  EXPECT_EQ(BaseName("a"), "a");
  EXPECT_EQ(BaseName("a.tar.gz"), "a.tar.gz");
  EXPECT_EQ(BaseName("/"), "/");
  EXPECT_EQ(BaseName(""), "");
}

}  // namespace
}  // namespace ff

namespace ff {
namespace {

TEST(StatusTest, FullDiskIsResourceExhaustedAndNamesThePath) {
  Status full = ErrnoError("cannot write", "/srv/site/storage/blobs/tmp/x", ENOSPC);
  EXPECT_EQ(full.code(), StatusCode::kResourceExhausted);
  EXPECT_TRUE(IsDiskFull(full));
  EXPECT_NE(full.message().find("/srv/site/storage/blobs/tmp/x"), std::string::npos);
  EXPECT_NE(full.message().find("No space left on device"), std::string::npos);
  EXPECT_TRUE(IsDiskFull(ErrnoError("cannot write", "/q", EDQUOT)));
  EXPECT_TRUE(IsDiskFull(full.WithContext("upload")));
  EXPECT_FALSE(IsDiskFull(ErrnoError("cannot write", "/x", EIO)));
  EXPECT_EQ(ErrnoError("cannot write", "/x", EIO).code(), StatusCode::kIoError);
}

TEST(FsTest, FreeBytesOfAFilesystemAndOfAMissingPath) {
  auto free = FreeBytes("/");
  ASSERT_TRUE(free.ok()) << free.status().message();
  EXPECT_GE(*free, 0);
  auto missing = FreeBytes("/no/such/dir/for/frameflow");
  EXPECT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("/no/such/dir/for/frameflow"), std::string::npos);
}

}  // namespace
}  // namespace ff

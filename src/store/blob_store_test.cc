#include "store/blob_store.h"

#include <string>

#include "gtest/gtest.h"
#include "util/fs.h"
#include "util/sha256.h"
#include "util/test_fixtures.h"

namespace ff {
namespace {

class BlobStorePartialTest : public TempDirFixture {
 protected:
  std::unique_ptr<BlobStore> OpenStore() {
    Result<std::unique_ptr<BlobStore>> s = BlobStore::Open(Path("blobs"));
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(*s) : nullptr;
  }
  int64_t Held(const BlobStore& s, const std::string& sha) {
    Result<int64_t> n = s.PartialSize(sha);
    EXPECT_TRUE(n.ok()) << n.status().ToString();
    return n.ok() ? *n : -1;
  }
};

std::string Data() {
  std::string d;
  for (uint32_t i = 0; i < 300000; ++i) d.push_back(static_cast<char>((i * 7919u) >> 3));
  return d;
}

TEST_F(BlobStorePartialTest, AppendReopenContinueComplete) {
  const std::string data = Data();
  const std::string sha = Sha256Hex(data);
  const int64_t size = static_cast<int64_t>(data.size());
  {
    auto store = OpenStore();
    EXPECT_EQ(Held(*store, sha), 0);
    ASSERT_TRUE(store->AppendPartial(sha, size, 0, std::string_view(data).substr(0, 1000)).ok());
    ASSERT_TRUE(
        store->AppendPartial(sha, size, 1000, std::string_view(data).substr(1000, 99000)).ok());
    ASSERT_TRUE(store->SyncPartial(sha).ok());
    EXPECT_EQ(Held(*store, sha), 100000);
    EXPECT_FALSE(store->Has(sha));
    // Not complete yet: kept.
    Status s = store->CompletePartial(sha, size);
    EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
    EXPECT_TRUE(HasSubstr(s.message(), "100000 of 300000 bytes"));
    EXPECT_EQ(Held(*store, sha), 100000);
  }
  // A new process (store) continues where the last one stopped.
  auto store = OpenStore();
  EXPECT_EQ(Held(*store, sha), 100000);
  ASSERT_TRUE(store->AppendPartial(sha, size, 100000, std::string_view(data).substr(100000)).ok());
  Status s = store->CompletePartial(sha, size);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(store->Has(sha));
  EXPECT_EQ(*ReadFile(store->PathOf(sha)), data);
  EXPECT_EQ(Held(*store, sha), 0);
  EXPECT_FALSE(PathExists(store->PartialPathOf(sha)));
}

TEST_F(BlobStorePartialTest, WrongOffsetIsAnError) {
  const std::string data = Data();
  const std::string sha = Sha256Hex(data);
  auto store = OpenStore();
  ASSERT_TRUE(store->AppendPartial(sha, data.size(), 0, data.substr(0, 10)).ok());
  Status s = store->AppendPartial(sha, data.size(), 5, data.substr(5, 10));
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(HasSubstr(s.message(), "write at offset 5 but the receiver holds 10 bytes"));
  s = store->AppendPartial(sha, data.size(), 20, "x");
  EXPECT_FALSE(s.ok());
  // Past the declared size.
  s = store->AppendPartial(sha, 12, 10, "abc");
  EXPECT_TRUE(HasSubstr(s.message(), "longer than its declared size 12"));
  EXPECT_EQ(Held(*store, sha), 10);
  // Bad digest.
  EXPECT_TRUE(HasSubstr(store->AppendPartial("../x", 1, 0, "a").message(), "sha256:"));
}

TEST_F(BlobStorePartialTest, TamperedContentIsRejectedAndDiscarded) {
  std::string data = Data();
  const std::string sha = Sha256Hex(data);
  data[12345] ^= 1;
  auto store = OpenStore();
  ASSERT_TRUE(store->AppendPartial(sha, data.size(), 0, data).ok());
  Status s = store->CompletePartial(sha, data.size());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(HasSubstr(s.message(), "does not match its sha256"));
  EXPECT_FALSE(store->Has(sha));
  EXPECT_EQ(Held(*store, sha), 0);
}

TEST_F(BlobStorePartialTest, ExistingWritesStillWork) {
  auto store = OpenStore();
  Result<std::unique_ptr<BlobStore::Writer>> w = store->BeginWrite(Sha256Hex("abc"), 3);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Append("abc").ok());
  ASSERT_TRUE((*w)->Commit().ok());
  EXPECT_TRUE(store->Has(Sha256Hex("abc")));
  // Completing a partial of a blob already held just drops the partial.
  ASSERT_TRUE(store->AppendPartial(Sha256Hex("abc"), 3, 0, "ab").ok());
  EXPECT_TRUE(store->CompletePartial(Sha256Hex("abc"), 3).ok());
  EXPECT_EQ(Held(*store, Sha256Hex("abc")), 0);
}

TEST_F(BlobStorePartialTest, OpenRemovesHalfWrittenBlobsOfDeadWritersOnly) {
  auto store = OpenStore();
  // A writer of this (live) process, and one of a pid that cannot exist
  // (above pid_max's ceiling of 2^22).
  Result<std::unique_ptr<BlobStore::Writer>> live = store->BeginWrite(Sha256Hex("live"), 4);
  ASSERT_TRUE(live.ok());
  const std::string dead = Path("blobs/tmp/" + Sha256Hex("dead") + ".99999999.0");
  ASSERT_TRUE(WriteFileAtomic(dead, "half").ok());
  auto reopened = OpenStore();
  EXPECT_FALSE(PathExists(dead));
  ASSERT_TRUE((*live)->Append("live").ok());
  ASSERT_TRUE((*live)->Commit().ok());
  EXPECT_TRUE(reopened->Has(Sha256Hex("live")));
}

}  // namespace
}  // namespace ff

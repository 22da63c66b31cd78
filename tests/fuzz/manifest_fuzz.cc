// Fuzz target: package manifests (transfer/package.h), the JSON a peer site
// offers over the site link and leaves in a hot folder.
//
// Input: the manifest text. A manifest that parses must pass the checks the
// parser promises (safe names, clean relative paths, hex digests, sizes
// >= 0), print back (ManifestToJson) to a manifest that parses to the same
// text, and go through CheckLimits() under the default, small and zero
// limits without overflow.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "fuzz_common.h"
#include "transfer/job_package.h"
#include "util/sha256.h"

namespace {

void CheckManifest(const ff::JobPackageManifest& m) {
  FUZZ_CHECK(!m.name.empty() && m.name.size() <= 128 && m.name[0] != '.', m.name);
  FUZZ_CHECK(m.name.find('/') == std::string::npos, m.name);
  FUZZ_CHECK(m.origin_job_id >= 0 && m.created_ms >= 0 && m.remote_job_id >= 0, "negative id");
  std::set<std::string> paths;
  for (const ff::JobPackageFile& f : m.files) {
    FUZZ_CHECK(!f.path.empty() && f.path[0] != '/', f.path);
    FUZZ_CHECK(f.path != "manifest.json", f.path);
    FUZZ_CHECK(("/" + f.path + "/").find("/../") == std::string::npos, f.path);
    FUZZ_CHECK(("/" + f.path + "/").find("/./") == std::string::npos, f.path);
    FUZZ_CHECK(f.path.find("//") == std::string::npos, f.path);
    FUZZ_CHECK(f.size >= 0, std::to_string(f.size));
    FUZZ_CHECK(ff::IsSha256Hex(f.sha256), f.sha256);
    FUZZ_CHECK(paths.insert(f.path).second, "duplicate " + f.path);
  }
  if (m.kind == ff::JobPackageKind::kJob) FUZZ_CHECK(paths.count(m.description) == 1, m.description);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto m = ff::ParseManifest(text, "manifest.json");
  if (!m.ok()) return 0;
  CheckManifest(*m);

  const std::string json = ff::ManifestToJson(*m);
  auto again = ff::ParseManifest(json, "printed");
  FUZZ_CHECK(again.ok(),
             "ManifestToJson() does not parse: " + again.status().message() + "\n" + json);
  FUZZ_CHECK(ff::ManifestToJson(*again) == json, "the manifest changes when printed twice");

  ff::JobPackageLimits small;
  small.max_package_bytes = 1000;
  small.max_file_bytes = 600;
  small.max_files = 3;
  for (const ff::JobPackageLimits& limits : {ff::JobPackageLimits{}, small, ff::JobPackageLimits{0, 0, 0}}) {
    ff::Status st = ff::CheckLimits(*m, limits);
    if (st.ok()) {
      int64_t total = 0;
      for (const auto& f : m->files) total += f.size;
      FUZZ_CHECK(static_cast<int64_t>(m->files.size()) <= limits.max_files, "too many files");
      FUZZ_CHECK(total <= limits.max_package_bytes, "over the package limit");
    }
  }
  return 0;
}

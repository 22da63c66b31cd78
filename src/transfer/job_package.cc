#include "transfer/job_package.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "base/open_beneath.h"
#include "base/unique_fd.h"
#include "store/blob_store.h"
#include "util/fs.h"
#include "util/sha256.h"

namespace ff {

namespace {

using Json = nlohmann::json;

constexpr char kManifestFile[] = "manifest.json";
// A manifest is a few hundred bytes per file; this bounds what a hostile
// package can make a reader hold in memory.
constexpr int64_t kMaxManifestBytes = 64LL << 20;
constexpr size_t kMaxPathBytes = 4096;
constexpr size_t kMaxComponentBytes = 255;

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

bool IsSafeName(std::string_view s, size_t max_len) {
  // Names become path components (secure/<client>/...): never ".", "..",
  // or hidden.
  if (s.empty() || s.size() > max_len || s[0] == '.') return false;
  return std::all_of(s.begin(), s.end(), IsNameChar);
}

std::string Quote(std::string_view s) {
  // Json::dump escapes control characters, so a hostile value cannot forge
  // log lines or error text.
  return Json(std::string(s)).dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (;;) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) {
      parts.push_back(path.substr(start));
      return parts;
    }
    parts.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
}

// Checks one relative file path of a package; returns the problem or "".
std::string PathProblem(std::string_view path) {
  if (path.empty()) return "is empty";
  if (path.size() > kMaxPathBytes) {
    return "is longer than " + std::to_string(kMaxPathBytes) + " bytes";
  }
  if (path.find('\0') != std::string_view::npos) return Quote(path) + " contains a NUL byte";
  if (path.front() == '/') return Quote(path) + " is absolute";
  for (std::string_view part : SplitPath(path)) {
    if (part == "..") return Quote(path) + " leaves the package";
    if (part == ".") return Quote(path) + " has a '.' component";
    if (part.empty()) return Quote(path) + " has an empty component";
    if (part.size() > kMaxComponentBytes) {
      return Quote(path) + " has a component longer than " + std::to_string(kMaxComponentBytes) +
             " bytes";
    }
  }
  if (path == kManifestFile) return "'manifest.json' is reserved for the manifest itself";
  return "";
}

// Every strict parent directory of `path` ("a/b/c" -> "a", "a/b").
std::vector<std::string> ParentDirs(const std::string& path) {
  std::vector<std::string> dirs;
  for (size_t pos = path.find('/'); pos != std::string::npos; pos = path.find('/', pos + 1)) {
    dirs.push_back(path.substr(0, pos));
  }
  return dirs;
}

Result<JobPackageKind> KindFromName(std::string_view s) {
  if (s == "job") return JobPackageKind::kJob;
  if (s == "result") return JobPackageKind::kResult;
  if (s == "cancel") return JobPackageKind::kCancel;
  if (s == "rejection") return JobPackageKind::kRejection;
  return InvalidArgument("");
}

// Reads typed fields out of a JSON object, naming the field in every error.
class FieldReader {
 public:
  FieldReader(const Json& obj, std::string where, std::string prefix)
      : obj_(obj), where_(std::move(where)), prefix_(std::move(prefix)) {}

  Status Error(const std::string& key, const std::string& problem) const {
    return InvalidArgument(where_ + ": " + prefix_ + key + ": " + problem);
  }

  // `allowed` lists every key the object may hold.
  Status CheckKeys(const std::set<std::string>& allowed) const {
    for (auto it = obj_.begin(); it != obj_.end(); ++it) {
      if (allowed.count(it.key()) == 0) return Error(it.key(), "unknown key");
    }
    return Status::Ok();
  }

  bool Has(const std::string& key) const { return obj_.contains(key); }

  Result<std::string> String(const std::string& key, bool required) const {
    auto it = obj_.find(key);
    if (it == obj_.end()) {
      if (required) return Error(key, "is missing");
      return std::string();
    }
    if (!it->is_string()) return Error(key, "must be a string");
    return it->get<std::string>();
  }

  Result<int64_t> Int(const std::string& key, bool required) const {
    auto it = obj_.find(key);
    if (it == obj_.end()) {
      if (required) return Error(key, "is missing");
      return int64_t{0};
    }
    if (it->is_number_unsigned()) {
      uint64_t v = it->get<uint64_t>();
      if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return Error(key, "is too large");
      }
      return static_cast<int64_t>(v);
    }
    if (it->is_number_integer()) return it->get<int64_t>();
    return Error(key, "must be an integer");
  }

 private:
  const Json& obj_;
  std::string where_;
  std::string prefix_;
};

Status CheckSiteName(const FieldReader& r, const std::string& key, const std::string& v) {
  if (!IsSafeName(v, 64)) {
    return r.Error(key, Quote(v) + " is not a site name ([A-Za-z0-9._-]{1,64})");
  }
  return Status::Ok();
}

// ---- opening files beneath a directory without following symlinks ----

// Opens the directory `rel` (a validated relative path, "" for root_fd
// itself) beneath root_fd; no component may be a symlink. -1 with errno.
int OpenDirBeneath(int root_fd, const std::string& rel) {
  return OpenBeneath(root_fd, rel, O_RDONLY | O_DIRECTORY);
}

const char* FileTypeProblem(mode_t mode) {
  if (S_ISLNK(mode)) return "is a symlink";
  if (S_ISFIFO(mode)) return "is a FIFO";
  if (S_ISCHR(mode) || S_ISBLK(mode)) return "is a device";
  if (S_ISSOCK(mode)) return "is a socket";
  if (S_ISDIR(mode)) return "is a directory";
  if (!S_ISREG(mode)) return "is not a regular file";
  return nullptr;
}

// Why `rel` cannot be opened beneath root_fd: walks it with lstat-like
// calls to name the component at fault.
std::string DiagnoseOpen(int root_fd, const std::string& rel, int err) {
  std::string prefix;
  for (std::string_view part : SplitPath(rel)) {
    prefix = prefix.empty() ? std::string(part) : prefix + "/" + std::string(part);
    struct stat st;
    if (::fstatat(root_fd, prefix.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) return prefix == rel ? "missing" : prefix + " is missing";
      return std::string("cannot stat ") + prefix + ": " + std::strerror(errno);
    }
    if (S_ISLNK(st.st_mode)) return prefix == rel ? "is a symlink" : prefix + " is a symlink";
    if (prefix != rel && !S_ISDIR(st.st_mode)) return prefix + " is not a directory";
  }
  return std::string("cannot open: ") + std::strerror(err);
}

// Opens the regular file `rel` beneath root_fd for reading. Never follows a
// symlink, never opens a FIFO or device (it is checked before opening, and
// O_NONBLOCK keeps a FIFO swapped in afterwards from blocking the open).
Result<UniqueFd> OpenFileBeneath(int root_fd, const std::string& rel, const std::string& where,
                                 struct stat* st_out) {
  size_t slash = rel.rfind('/');
  std::string parent = slash == std::string::npos ? "" : rel.substr(0, slash);
  std::string leaf = slash == std::string::npos ? rel : rel.substr(slash + 1);
  UniqueFd dir(OpenDirBeneath(root_fd, parent));
  if (!dir.valid()) {
    int err = errno;
    std::string why = DiagnoseOpen(root_fd, rel, err);
    if (err == ENOENT) return NotFound(where + ": " + why);
    return InvalidArgument(where + ": " + why);
  }
  struct stat st;
  if (::fstatat(dir.get(), leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return NotFound(where + ": missing");
    return ErrnoError("cannot stat", where, errno);
  }
  if (const char* problem = FileTypeProblem(st.st_mode)) {
    return InvalidArgument(where + ": " + problem);
  }
  UniqueFd fd(::openat(dir.get(), leaf.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ELOOP) return InvalidArgument(where + ": is a symlink");
    return ErrnoError("cannot open", where, errno);
  }
  if (::fstat(fd.get(), &st) != 0) return ErrnoError("cannot stat", where, errno);
  if (const char* problem = FileTypeProblem(st.st_mode)) {
    return InvalidArgument(where + ": " + problem);
  }
  if (st_out) *st_out = st;
  return fd;
}

Result<std::string> ReadAllFd(int fd, int64_t limit, const std::string& where) {
  std::string data;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("cannot read", where, errno);
    }
    if (n == 0) return data;
    data.append(buf, static_cast<size_t>(n));
    if (static_cast<int64_t>(data.size()) > limit) {
      return InvalidArgument(where + ": larger than " + std::to_string(limit) + " bytes");
    }
  }
}

// Hashes at most `limit + 1` bytes of fd; *len receives the count read.
Result<std::string> HashFd(int fd, int64_t limit, int64_t* len, const std::string& where) {
  Sha256 h;
  int64_t total = 0;
  std::string buf(1 << 20, '\0');
  while (total <= limit) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("cannot read", where, errno);
    }
    if (n == 0) break;
    h.Update(buf.data(), static_cast<size_t>(n));
    total += n;
  }
  *len = total;
  return h.Finish();
}

// Walks the whole tree under root_fd; every entry must be manifest.json at
// the top, a listed regular file, or a parent directory of one.
Status CheckTree(int root_fd, const std::string& dir, const std::set<std::string>& files,
                 const std::set<std::string>& dirs) {
  std::vector<std::string> pending = {""};
  while (!pending.empty()) {
    std::string rel_dir = std::move(pending.back());
    pending.pop_back();
    UniqueFd dfd(OpenDirBeneath(root_fd, rel_dir));
    std::string shown_dir = rel_dir.empty() ? dir : JoinPath(dir, rel_dir);
    if (!dfd.valid()) return ErrnoError("cannot open directory", shown_dir, errno);
    int list_fd = ::fcntl(dfd.get(), F_DUPFD_CLOEXEC, 0);
    if (list_fd < 0) return ErrnoError("cannot open directory", shown_dir, errno);
    DIR* d = ::fdopendir(list_fd);
    if (d == nullptr) {
      ::close(list_fd);
      return ErrnoError("cannot open directory", shown_dir, errno);
    }
    std::vector<std::string> names;
    for (;;) {
      errno = 0;
      struct dirent* e = ::readdir(d);
      if (e == nullptr) {
        int err = errno;
        ::closedir(d);
        if (err != 0) return ErrnoError("cannot read directory", shown_dir, err);
        break;
      }
      std::string_view name = e->d_name;
      if (name == "." || name == "..") continue;
      names.emplace_back(name);
    }
    std::sort(names.begin(), names.end());
    for (const std::string& name : names) {
      std::string rel = rel_dir.empty() ? name : rel_dir + "/" + name;
      std::string where = JoinPath(dir, rel);
      struct stat st;
      if (::fstatat(dfd.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        return ErrnoError("cannot stat", where, errno);
      }
      if (S_ISDIR(st.st_mode)) {
        if (dirs.count(rel) == 0) {
          if (files.count(rel) != 0) {
            return InvalidArgument(where + ": is a directory but the manifest lists a file");
          }
          return InvalidArgument(where + ": is a directory not listed in the manifest");
        }
        pending.push_back(rel);
        continue;
      }
      if (const char* problem = FileTypeProblem(st.st_mode)) {
        return InvalidArgument(where + ": " + problem);
      }
      if (rel == kManifestFile) continue;
      if (files.count(rel) == 0) {
        if (dirs.count(rel) != 0) {
          return InvalidArgument(where + ": is a file but the manifest lists files under it");
        }
        return InvalidArgument(where + ": is not listed in the manifest");
      }
    }
  }
  return Status::Ok();
}

// ---- staging ----

Status SyncPath(const std::string& path, int flags) {
  UniqueFd fd(::open(path.c_str(), flags | O_CLOEXEC));
  if (!fd.valid()) return ErrnoError("cannot open", path, errno);
  if (::fsync(fd.get()) != 0 && errno != EINVAL) return ErrnoError("cannot sync", path, errno);
  return Status::Ok();
}

Status WriteNewFile(const std::string& path, std::string_view data) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!fd.valid()) return ErrnoError("cannot create", path, errno);
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd.get(), data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("cannot write", path, errno);
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd.get()) != 0) return ErrnoError("cannot sync", path, errno);
  return Status::Ok();
}

// Places one file at `dest` (its parent directories exist) and returns its
// digest and size.
using PlaceFile = std::function<Status(size_t index, const std::string& dest)>;

// Builds <hotfolder>/.staging-<name>, calls `place` for each relative path,
// writes the manifest text from `manifest_text()` (called after every file
// is placed), syncs everything and renames the staging directory into place.
// Returns false in *published when <hotfolder>/<name> already existed.
Status Stage(const std::string& hotfolder, const std::string& name,
             const std::vector<std::string>& paths, const PlaceFile& place,
             const std::function<Result<std::string>()>& manifest_text, bool* published) {
  *published = false;
  FF_RETURN_IF_ERROR(MakeDirs(hotfolder));
  const std::string final_dir = JoinPath(hotfolder, name);
  if (PathExists(final_dir)) return Status::Ok();
  const std::string staging = JoinPath(hotfolder, ".staging-" + name);
  FF_RETURN_IF_ERROR(RemoveAll(staging));
  if (::mkdir(staging.c_str(), 0755) != 0) return ErrnoError("cannot create", staging, errno);
  auto fail = [&](Status s) {
    (void)RemoveAll(staging);
    return s;
  };

  std::set<std::string> dirs;
  for (size_t i = 0; i < paths.size(); ++i) {
    for (const std::string& d : ParentDirs(paths[i])) {
      if (dirs.insert(d).second) {
        std::string full = JoinPath(staging, d);
        if (::mkdir(full.c_str(), 0755) != 0 && errno != EEXIST) {
          return fail(ErrnoError("cannot create directory", full, errno));
        }
      }
    }
    Status s = place(i, JoinPath(staging, paths[i]));
    if (!s.ok()) return fail(s);
  }
  Result<std::string> text = manifest_text();
  if (!text.ok()) return fail(text.status());
  if (Status s = WriteNewFile(JoinPath(staging, kManifestFile), *text); !s.ok()) return fail(s);
  // Deepest directories first: a directory's entry in its parent is synced
  // after its own content.
  for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) {
    if (Status s = SyncPath(JoinPath(staging, *it), O_RDONLY | O_DIRECTORY); !s.ok()) {
      return fail(s);
    }
  }
  if (Status s = SyncPath(staging, O_RDONLY | O_DIRECTORY); !s.ok()) return fail(s);
  if (::rename(staging.c_str(), final_dir.c_str()) != 0) {
    int err = errno;
    // Another writer published the same package first: same content by
    // the naming contract, so this is success.
    if ((err == EEXIST || err == ENOTEMPTY) && PathExists(final_dir)) {
      return fail(Status::Ok());
    }
    return fail(ErrnoError("cannot rename '" + staging + "' to", final_dir, err));
  }
  FF_RETURN_IF_ERROR(SyncDir(hotfolder));
  *published = true;
  return Status::Ok();
}

Result<JobPackageManifest> ReadExistingManifest(const std::string& dir) {
  FF_ASSIGN_OR_RETURN(std::string text, ReadFile(JoinPath(dir, kManifestFile)));
  return ParseManifest(text, JoinPath(dir, kManifestFile));
}

}  // namespace

const char* JobPackageKindName(JobPackageKind k) {
  switch (k) {
    case JobPackageKind::kJob:
      return "job";
    case JobPackageKind::kResult:
      return "result";
    case JobPackageKind::kCancel:
      return "cancel";
    case JobPackageKind::kRejection:
      return "rejection";
  }
  return "unknown";
}

std::string ManifestToJson(const JobPackageManifest& m) {
  auto s = [](const std::string& v) { return Quote(v); };
  std::string out = "{\n";
  auto line = [&](const std::string& key, const std::string& value) {
    out += "  \"" + key + "\": " + value + ",\n";
  };
  line("format", s(std::string(kJobPackageFormat)));
  line("kind", s(JobPackageKindName(m.kind)));
  line("name", s(m.name));
  line("origin_site", s(m.origin_site));
  line("origin_job_id", std::to_string(m.origin_job_id));
  line("from_site", s(m.from_site));
  line("to_site", s(m.to_site));
  line("client", s(m.client));
  line("created_ms", std::to_string(m.created_ms));
  if (m.kind == JobPackageKind::kJob || !m.description.empty())
    line("description", s(m.description));
  if (m.kind == JobPackageKind::kResult || !m.state.empty()) line("state", s(m.state));
  if (m.kind != JobPackageKind::kJob || !m.reason.empty()) line("reason", s(m.reason));
  if (m.kind == JobPackageKind::kResult || m.remote_job_id != 0) {
    line("remote_job_id", std::to_string(m.remote_job_id));
  }
  out += "  \"files\": [";
  for (size_t i = 0; i < m.files.size(); ++i) {
    const JobPackageFile& f = m.files[i];
    out += i == 0 ? "\n" : ",\n";
    out += "    {\"path\": " + s(f.path) + ", \"size\": " + std::to_string(f.size) +
           ", \"sha256\": " + s(f.sha256) + "}";
  }
  out += m.files.empty() ? "]\n" : "\n  ]\n";
  out += "}\n";
  return out;
}

Result<JobPackageManifest> ParseManifest(std::string_view json, const std::string& where) {
  Json doc = Json::parse(json.begin(), json.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return InvalidArgument(where + ": not valid JSON");
  if (!doc.is_object()) return InvalidArgument(where + ": must be a JSON object");
  FieldReader r(doc, where, "");
  FF_RETURN_IF_ERROR(r.CheckKeys({"format", "kind", "name", "origin_site", "origin_job_id",
                                  "from_site", "to_site", "client", "created_ms", "description",
                                  "state", "reason", "remote_job_id", "files"}));
  JobPackageManifest m;
  FF_ASSIGN_OR_RETURN(std::string format, r.String("format", true));
  if (format != kJobPackageFormat) {
    return r.Error("format", Quote(format) + " is not " + std::string(kJobPackageFormat));
  }
  FF_ASSIGN_OR_RETURN(std::string kind, r.String("kind", true));
  Result<JobPackageKind> k = KindFromName(kind);
  if (!k.ok()) {
    return r.Error("kind", Quote(kind) + " is not one of job, result, cancel, rejection");
  }
  m.kind = *k;
  FF_ASSIGN_OR_RETURN(m.name, r.String("name", true));
  if (!IsSafeName(m.name, 128) || m.name.front() == '.') {
    return r.Error("name", Quote(m.name) +
                               " is not a package name ([A-Za-z0-9._-]{1,128}, not starting "
                               "with '.')");
  }
  FF_ASSIGN_OR_RETURN(m.origin_site, r.String("origin_site", true));
  FF_RETURN_IF_ERROR(CheckSiteName(r, "origin_site", m.origin_site));
  FF_ASSIGN_OR_RETURN(m.from_site, r.String("from_site", true));
  FF_RETURN_IF_ERROR(CheckSiteName(r, "from_site", m.from_site));
  FF_ASSIGN_OR_RETURN(m.to_site, r.String("to_site", true));
  FF_RETURN_IF_ERROR(CheckSiteName(r, "to_site", m.to_site));
  FF_ASSIGN_OR_RETURN(m.origin_job_id, r.Int("origin_job_id", true));
  // A rejection may answer a package whose manifest was unreadable, so its
  // job is not always known.
  if (m.kind == JobPackageKind::kRejection ? m.origin_job_id < 0 : m.origin_job_id <= 0) {
    return r.Error("origin_job_id", std::to_string(m.origin_job_id) + " must be positive");
  }
  FF_ASSIGN_OR_RETURN(m.client, r.String("client", m.kind == JobPackageKind::kJob));
  if ((m.kind == JobPackageKind::kJob || !m.client.empty()) && !IsSafeName(m.client, 64)) {
    return r.Error("client", Quote(m.client) + " is not a client name ([A-Za-z0-9._-]{1,64})");
  }
  FF_ASSIGN_OR_RETURN(m.created_ms, r.Int("created_ms", true));
  if (m.created_ms < 0) return r.Error("created_ms", "must not be negative");
  FF_ASSIGN_OR_RETURN(m.description, r.String("description", m.kind == JobPackageKind::kJob));
  FF_ASSIGN_OR_RETURN(m.state, r.String("state", m.kind == JobPackageKind::kResult));
  if (m.kind == JobPackageKind::kResult && m.state != "done" && m.state != "failed" &&
      m.state != "cancelled") {
    return r.Error("state", Quote(m.state) + " is not one of done, failed, cancelled");
  }
  FF_ASSIGN_OR_RETURN(m.reason, r.String("reason", m.kind == JobPackageKind::kRejection));
  FF_ASSIGN_OR_RETURN(m.remote_job_id, r.Int("remote_job_id", m.kind == JobPackageKind::kResult));
  if (m.remote_job_id < 0) return r.Error("remote_job_id", "must not be negative");

  if (!r.Has("files")) return r.Error("files", "is missing");
  const Json& files = doc["files"];
  if (!files.is_array()) return r.Error("files", "must be an array");
  std::map<std::string, size_t> seen;
  std::set<std::string> dirs;
  m.files.reserve(files.size());
  for (size_t i = 0; i < files.size(); ++i) {
    const std::string prefix = "files[" + std::to_string(i) + "].";
    if (!files[i].is_object()) {
      return InvalidArgument(where + ": files[" + std::to_string(i) + "]: must be an object");
    }
    FieldReader fr(files[i], where, prefix);
    FF_RETURN_IF_ERROR(fr.CheckKeys({"path", "size", "sha256"}));
    JobPackageFile f;
    FF_ASSIGN_OR_RETURN(f.path, fr.String("path", true));
    if (std::string problem = PathProblem(f.path); !problem.empty()) {
      return fr.Error("path", problem);
    }
    if (auto it = seen.find(f.path); it != seen.end()) {
      return fr.Error("path",
                      Quote(f.path) + " duplicates files[" + std::to_string(it->second) + "].path");
    }
    seen.emplace(f.path, i);
    for (std::string& d : ParentDirs(f.path)) dirs.insert(std::move(d));
    FF_ASSIGN_OR_RETURN(f.size, fr.Int("size", true));
    if (f.size < 0) return fr.Error("size", std::to_string(f.size) + " is negative");
    FF_ASSIGN_OR_RETURN(f.sha256, fr.String("sha256", true));
    if (!IsSha256Hex(f.sha256)) {
      return fr.Error("sha256", Quote(f.sha256) + " is not a lower-case hex SHA-256 digest");
    }
    m.files.push_back(std::move(f));
  }
  // "a" and "a/b" cannot both be files.
  for (size_t i = 0; i < m.files.size(); ++i) {
    if (dirs.count(m.files[i].path) != 0) {
      return InvalidArgument(where + ": files[" + std::to_string(i) + "].path: " +
                             Quote(m.files[i].path) + " is also a directory of another file");
    }
  }
  if (m.kind == JobPackageKind::kJob && seen.count(m.description) == 0) {
    return r.Error("description", Quote(m.description) + " is not one of the package's files");
  }
  return m;
}

Status CheckLimits(const JobPackageManifest& m, const JobPackageLimits& limits) {
  const std::string pkg = "package " + Quote(m.name);
  if (static_cast<int64_t>(m.files.size()) > limits.max_files) {
    return InvalidArgument(pkg + ": " + std::to_string(m.files.size()) +
                           " files exceed the limit of " + std::to_string(limits.max_files) +
                           " by " + std::to_string(m.files.size() - limits.max_files));
  }
  int64_t total = 0;
  for (size_t i = 0; i < m.files.size(); ++i) {
    const JobPackageFile& f = m.files[i];
    if (f.size > limits.max_file_bytes) {
      return InvalidArgument(pkg + ": files[" + std::to_string(i) + "] " + Quote(f.path) +
                             ": size " + std::to_string(f.size) +
                             " bytes exceeds the per-file limit of " +
                             std::to_string(limits.max_file_bytes) + " by " +
                             std::to_string(f.size - limits.max_file_bytes));
    }
    // Each size is at most max_file_bytes here, so saturating is enough to
    // avoid overflow and still exceed the package limit.
    if (__builtin_add_overflow(total, f.size, &total)) total = std::numeric_limits<int64_t>::max();
  }
  if (total > limits.max_package_bytes) {
    return InvalidArgument(pkg + ": total size " + std::to_string(total) +
                           " bytes exceeds the package limit of " +
                           std::to_string(limits.max_package_bytes) + " by " +
                           std::to_string(total - limits.max_package_bytes));
  }
  return Status::Ok();
}

Result<JobPackageManifest> VerifyPackage(const std::string& dir, const JobPackageLimits& limits) {
  UniqueFd root(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!root.valid()) {
    int err = errno;
    if (err == ENOENT) return NotFound(dir + ": missing");
    if (err == ELOOP || err == ENOTDIR) {
      struct stat st;
      if (::lstat(dir.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
        return InvalidArgument(dir + ": is a symlink");
      }
      return InvalidArgument(dir + ": is not a directory");
    }
    return ErrnoError("cannot open directory", dir, err);
  }
  const std::string manifest_path = JoinPath(dir, kManifestFile);
  struct stat st;
  FF_ASSIGN_OR_RETURN(UniqueFd mfd, OpenFileBeneath(root.get(), kManifestFile, manifest_path, &st));
  FF_ASSIGN_OR_RETURN(std::string text, ReadAllFd(mfd.get(), kMaxManifestBytes, manifest_path));
  mfd.Reset();
  FF_ASSIGN_OR_RETURN(JobPackageManifest m, ParseManifest(text, manifest_path));
  FF_RETURN_IF_ERROR(CheckLimits(m, limits).WithContext(dir));

  std::set<std::string> files;
  std::set<std::string> dirs;
  for (const JobPackageFile& f : m.files) {
    files.insert(f.path);
    for (std::string& d : ParentDirs(f.path)) dirs.insert(std::move(d));
  }
  FF_RETURN_IF_ERROR(CheckTree(root.get(), dir, files, dirs));

  for (const JobPackageFile& f : m.files) {
    const std::string where = JoinPath(dir, f.path);
    FF_ASSIGN_OR_RETURN(UniqueFd fd, OpenFileBeneath(root.get(), f.path, where, &st));
    if (st.st_size != f.size) {
      return InvalidArgument(where + ": size " + std::to_string(st.st_size) +
                             " but the manifest says " + std::to_string(f.size));
    }
    int64_t len = 0;
    FF_ASSIGN_OR_RETURN(std::string sha, HashFd(fd.get(), f.size, &len, where));
    if (len != f.size) {
      return InvalidArgument(where + ": size " + std::to_string(len) + " but the manifest says " +
                             std::to_string(f.size));
    }
    if (sha != f.sha256) {
      return InvalidArgument(where + ": SHA-256 mismatch (manifest " + f.sha256 + ", file " + sha +
                             ")");
    }
  }
  return m;
}

Result<JobPackageManifest> WritePackage(const std::string& hotfolder, JobPackageManifest manifest,
                                        const std::vector<JobPackageSource>& sources) {
  const std::string where = "package " + Quote(manifest.name);
  if (!IsSafeName(manifest.name, 128) || manifest.name.front() == '.') {
    return InvalidArgument(where + ": name is not [A-Za-z0-9._-]{1,128} not starting with '.'");
  }
  std::vector<std::string> paths;
  std::set<std::string> seen;
  for (size_t i = 0; i < sources.size(); ++i) {
    const JobPackageSource& src = sources[i];
    if (std::string problem = PathProblem(src.path); !problem.empty()) {
      return InvalidArgument(where + ": sources[" + std::to_string(i) + "].path: " + problem);
    }
    if (!seen.insert(src.path).second) {
      return InvalidArgument(where + ": sources[" + std::to_string(i) +
                             "].path: " + Quote(src.path) + " is listed twice");
    }
    paths.push_back(src.path);
  }
  manifest.files.assign(sources.size(), JobPackageFile{});
  auto place = [&](size_t i, const std::string& dest) -> Status {
    const JobPackageSource& src = sources[i];
    JobPackageFile& f = manifest.files[i];
    f.path = src.path;
    if (src.source_file.empty()) {
      FF_RETURN_IF_ERROR(WriteNewFile(dest, src.content));
      f.size = static_cast<int64_t>(src.content.size());
      f.sha256 = Sha256Hex(src.content);
      return Status::Ok();
    }
    FF_RETURN_IF_ERROR(LinkOrCopy(src.source_file, dest, DirSync::kByCaller));
    // Hash what is in the package (not the source path, which may change
    // after linking), and sync it: a hard link shares possibly unsynced data.
    UniqueFd fd(::open(dest.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.valid()) return ErrnoError("cannot open", dest, errno);
    FF_ASSIGN_OR_RETURN(f.sha256,
                        HashFd(fd.get(), std::numeric_limits<int64_t>::max() - 1, &f.size, dest));
    if (::fsync(fd.get()) != 0) return ErrnoError("cannot sync", dest, errno);
    return Status::Ok();
  };
  auto text = [&]() -> Result<std::string> {
    std::string json = ManifestToJson(manifest);
    // What is published must parse: catches a bad kind-specific field
    // before anything becomes visible.
    FF_RETURN_IF_ERROR(ParseManifest(json, where + ": manifest.json").status());
    return json;
  };
  bool published = false;
  FF_RETURN_IF_ERROR(Stage(hotfolder, manifest.name, paths, place, text, &published));
  if (!published) {
    Result<JobPackageManifest> existing = ReadExistingManifest(JoinPath(hotfolder, manifest.name));
    if (!existing.ok()) {
      return Status(
          StatusCode::kAlreadyExists,
          JoinPath(hotfolder, manifest.name) +
              " already exists but is not a readable package: " + existing.status().message());
    }
    return existing;
  }
  return manifest;
}

Status MaterializePackage(const std::string& hotfolder, const JobPackageManifest& manifest,
                          std::string_view manifest_json, const BlobStore& blobs) {
  const std::string where = "package " + Quote(manifest.name);
  if (!IsSafeName(manifest.name, 128) || manifest.name.front() == '.') {
    return InvalidArgument(where + ": name is not [A-Za-z0-9._-]{1,128} not starting with '.'");
  }
  std::vector<std::string> paths;
  for (const JobPackageFile& f : manifest.files) {
    if (std::string problem = PathProblem(f.path); !problem.empty()) {
      return InvalidArgument(where + ": " + problem);
    }
    if (!blobs.Has(f.sha256)) {
      return NotFound(where + ": blob " + f.sha256 + " of " + Quote(f.path) +
                      " is not in the blob store");
    }
    paths.push_back(f.path);
  }
  auto place = [&](size_t i, const std::string& dest) -> Status {
    const JobPackageFile& f = manifest.files[i];
    FF_RETURN_IF_ERROR(LinkOrCopy(blobs.PathOf(f.sha256), dest, DirSync::kByCaller));
    return SyncPath(dest, O_RDONLY | O_NOFOLLOW);
  };
  auto text = [&]() -> Result<std::string> { return std::string(manifest_json); };
  bool published = false;
  return Stage(hotfolder, manifest.name, paths, place, text, &published);
}

Result<std::string> QuarantinePackage(const std::string& package_dir,
                                      const std::string& quarantine_dir,
                                      const std::string& reason) {
  FF_RETURN_IF_ERROR(MakeDirs(quarantine_dir));
  const std::string name = BaseName(package_dir);
  std::string target = JoinPath(quarantine_dir, name);
  for (int i = 1; PathExists(target) || PathExists(target + ".reason.txt"); ++i) {
    if (i > 100000) return IoError("no free name for " + name + " in " + quarantine_dir);
    target = JoinPath(quarantine_dir, name + "." + std::to_string(i));
  }
  if (::rename(package_dir.c_str(), target.c_str()) != 0) {
    return ErrnoError("cannot move '" + package_dir + "' to", target, errno);
  }
  std::string text = reason;
  if (text.empty() || text.back() != '\n') text.push_back('\n');
  FF_RETURN_IF_ERROR(WriteFileAtomic(target + ".reason.txt", text));
  const std::string from_dir = DirName(package_dir);
  if (from_dir != quarantine_dir) FF_RETURN_IF_ERROR(SyncDir(from_dir));
  return target;
}

Result<std::vector<std::string>> ListPackages(const std::string& hotfolder) {
  FF_ASSIGN_OR_RETURN(std::vector<std::string> names, ListDir(hotfolder));
  struct Entry {
    int64_t mtime_ns;
    std::string name;
  };
  std::vector<Entry> entries;
  for (std::string& name : names) {
    if (name.empty() || name.front() == '.') continue;
    struct stat st;
    // A package vanishing between the listing and the stat was just
    // consumed: not an error.
    if (::lstat(JoinPath(hotfolder, name).c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;
    entries.push_back({static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec,
                       std::move(name)});
  }
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.mtime_ns != b.mtime_ns ? a.mtime_ns < b.mtime_ns : a.name < b.name;
  });
  std::vector<std::string> out;
  out.reserve(entries.size());
  for (Entry& e : entries) out.push_back(std::move(e.name));
  return out;
}

}  // namespace ff

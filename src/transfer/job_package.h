// Package: the unit that travels between sites through hot folders.
//
// A package is a directory <hotfolder>/<name>/ holding manifest.json and
// every file the manifest lists, at its relative path:
//
//   job-studio-17/
//     manifest.json          the JobPackageManifest below, as JSON
//     job.toml               (job packages) the job description
//     files/scene.pov        (job packages) the job's files, by job path
//     files/tex/wood.png
//     frames/clock_0001.png  (result packages) the frames
//     logs/chunk-0-1.log     (result packages) the renderers' logs
//     report.json            (result packages) checksums, who rendered what
//
// Packages appear in a hot folder atomically: they are staged under a name
// starting with '.', fsynced, then renamed into place. Readers ignore names
// starting with '.', so they never see half a package. A package written by
// hand (or by rsync into a dot-name and renamed) is read the same way.
//
// Thread-safety: free functions; safe to call concurrently on different
// packages.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace ff {

class BlobStore;

enum class JobPackageKind {
  kJob,        // origin -> remote: render this job
  kResult,     // remote -> origin: the job ended (done, failed or cancelled)
  kCancel,     // origin -> remote: cancel this job
  kRejection,  // remote -> origin: your package was quarantined, here is why
};
const char* JobPackageKindName(JobPackageKind k);

struct JobPackageFile {
  std::string path;  // relative to the package directory, '/'-separated
  int64_t size = 0;
  std::string sha256;  // lower-case hex
};

inline constexpr std::string_view kJobPackageFormat = "frameflow-package/1";

struct JobPackageManifest {
  JobPackageKind kind = JobPackageKind::kJob;
  std::string name;           // directory name: [A-Za-z0-9._-]{1,128}, not starting with '.'
  std::string origin_site;    // the site where the job was submitted
  int64_t origin_job_id = 0;  // the job's id at the origin site, > 0
  std::string from_site;      // the site that wrote this package
  std::string to_site;        // the site it is addressed to
  std::string client;         // who owns the job at the remote site ([A-Za-z0-9._-]{1,64})
  int64_t created_ms = 0;     // unix ms, when the package was written
  std::vector<JobPackageFile> files;  // every file of the package but manifest.json

  // kJob: path of the job description among `files` (e.g. "job.toml").
  std::string description;
  // kResult: "done" | "failed" | "cancelled".
  std::string state;
  // kResult: the job's error; kCancel: why; kRejection: why it was quarantined.
  std::string reason;
  // kResult: the job's id at the sending site.
  int64_t remote_job_id = 0;
};

// JSON text of a manifest (stable key order, one file per line).
std::string ManifestToJson(const JobPackageManifest& m);

// Parses and checks a manifest: required keys and types, format version,
// kind, name, every file path relative, normalised, without "..", "." or
// empty components, no duplicates, not "manifest.json"; sizes >= 0; digests
// are hex SHA-256; kind-specific keys present. Errors name the field, e.g.
// "manifest.json: files[3].path: '../etc/passwd' leaves the package".
// `where` prefixes the messages (usually the manifest path).
Result<JobPackageManifest> ParseManifest(std::string_view json, const std::string& where);

// Size limits a receiving site enforces (site.toml [hotfolders]).
struct JobPackageLimits {
  int64_t max_package_bytes = 64LL << 30;  // sum of all file sizes
  int64_t max_file_bytes = 16LL << 30;
  int max_files = 100000;
};
// Checks the manifest's declared sizes against the limits; the error says
// which limit and by how much.
Status CheckLimits(const JobPackageManifest& m, const JobPackageLimits& limits);

// Verifies a package directory completely: parses <dir>/manifest.json,
// checks limits, and for every listed file opens it beneath `dir` without
// following symlinks at any component (openat2 RESOLVE_BENEATH|
// RESOLVE_NO_SYMLINKS, or an O_NOFOLLOW walk), requires a regular file of
// exactly the declared size and SHA-256. Anything else in the directory
// tree that is not a listed file or one of their parent directories
// (symlinks, FIFOs, devices, unlisted files) is an error too. Returns the
// manifest on success; the error names the file and what is wrong
// ("files/tex/wood.png: size 100 but the manifest says 4096",
// "...: SHA-256 mismatch", "...: is a symlink", "...: missing").
Result<JobPackageManifest> VerifyPackage(const std::string& dir, const JobPackageLimits& limits);

// One file to put in a package: its path inside the package and either a
// source file to link or copy, or literal content.
struct JobPackageSource {
  std::string path;         // relative path inside the package
  std::string source_file;  // absolute path of the bytes, or empty
  std::string content;      // used when source_file is empty
};

// Writes a package atomically into `hotfolder`: stages it in
// <hotfolder>/.staging-<name>, hard-links (or copies) each source, hashes
// it, fills manifest.files (in `sources` order), writes manifest.json,
// fsyncs every file and directory, then renames it to <hotfolder>/<name>
// and fsyncs `hotfolder`. If <hotfolder>/<name> already exists the call
// succeeds without touching it (package names are unique per job and kind,
// so a rewrite after a crash is a no-op). Leftover staging directories of
// the same name are removed first. Returns the manifest as written.
Result<JobPackageManifest> WritePackage(const std::string& hotfolder, JobPackageManifest manifest,
                                        const std::vector<JobPackageSource>& sources);

// Builds a package in `hotfolder` from blobs held by `blobs` (the receiving
// end of the communications medium): the same staging, fsync and rename as
// WritePackage, every file hard-linked or copied from the blob store, the
// manifest written from `manifest_json` byte for byte. Fails (writing
// nothing) if a blob is missing. Idempotent like WritePackage.
Status MaterializePackage(const std::string& hotfolder, const JobPackageManifest& manifest,
                          std::string_view manifest_json, const BlobStore& blobs);

// Moves the package directory `package_dir` into `quarantine_dir` (created
// if missing) under the same name (suffixed .1, .2... if taken) and writes
// <quarantine_dir>/<name>.reason.txt holding `reason`. The package is
// renamed, never copied, so its content is kept as it arrived.
// Returns the new path of the package.
Result<std::string> QuarantinePackage(const std::string& package_dir,
                                      const std::string& quarantine_dir, const std::string& reason);

// Names of the packages in a hot folder (directories not starting with '.'),
// oldest first (by mtime, then name).
Result<std::vector<std::string>> ListPackages(const std::string& hotfolder);

}  // namespace ff

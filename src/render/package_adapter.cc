#include "render/package_adapter.h"

#include <algorithm>
#include <cctype>

#include "core/frame_set.h"
#include "core/job_profile.h"
#include "util/fs.h"

namespace ff {

std::vector<std::string> OutputSubdirs(const ChunkSpec& spec) {
  std::vector<std::string> out;
  if (spec.output_pattern.find('/') == std::string::npos) return out;
  for (int64_t f : spec.frames) {
    std::string dir = DirName(ExpandOutputPattern(spec.output_pattern, f));
    if (!dir.empty() && dir != "." && std::find(out.begin(), out.end(), dir) == out.end()) {
      out.push_back(dir);
    }
  }
  return out;
}

std::string ExpandOutputPattern(const std::string& pattern, int64_t frame) {
  JobProfile p;
  p.output = pattern;
  return p.OutputName(frame);
}

namespace {

// The job's size, or `fallback` when the job sets none (0).
int WidthOr(const ChunkSpec& spec, int fallback) { return spec.width > 0 ? spec.width : fallback; }
int HeightOr(const ChunkSpec& spec, int fallback) {
  return spec.height > 0 ? spec.height : fallback;
}

// Frame numbers from renderer output; absurd lengths map to -1 instead of
// throwing (output is untrusted text).
int64_t ParseFrameNumber(const std::string& digits) {
  if (digits.empty() || digits.size() > 12) return -1;
  return std::strtoll(digits.c_str(), nullptr, 10);
}

// Renderer output is matched by hand, in linear time and constant stack:
// std::regex recurses once per character it matches, and a long line (a
// scene can print 64 KiB of dots) overflowed the slot thread's stack.

bool LooksLikeError(const std::string& line) {
  std::string lower = line;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const char* word : {"error", "cannot", "can't", "failed", "not found", "fatal"}) {
    if (lower.find(word) != std::string::npos) return true;
  }
  return false;
}

// The digits of "-?[0-9]+" starting at `pos`, and where they end; empty if
// there are none.
std::string FrameDigitsAt(const std::string& line, size_t pos, size_t* end) {
  size_t i = pos;
  if (i < line.size() && line[i] == '-') ++i;
  const size_t first_digit = i;
  while (i < line.size() && std::isdigit(static_cast<unsigned char>(line[i]))) ++i;
  if (i == first_digit) return "";
  *end = i;
  return line.substr(pos, i - pos);
}

// POV-Ray's "  Output file........../dir/f07.png, 24 bpp PNG": the frame
// number of the last "/f<number>.png" after "Output file" and its dots
// (what the pattern "Output file\.+.*/f(-?[0-9]+)\.png" matched), or "".
std::string PovrayOutputFrame(const std::string& line) {
  const std::string key = "Output file";
  size_t dots = std::string::npos;
  for (size_t at = line.find(key); at != std::string::npos; at = line.find(key, at + 1)) {
    if (at + key.size() < line.size() && line[at + key.size()] == '.') {
      dots = at + key.size();
      break;
    }
  }
  if (dots == std::string::npos) return "";
  for (size_t i = line.size(); i-- > dots + 1;) {
    if (line[i] != '/' || i + 1 >= line.size() || line[i + 1] != 'f') continue;
    size_t end = 0;
    std::string digits = FrameDigitsAt(line, i + 2, &end);
    if (!digits.empty() && line.compare(end, 4, ".png") == 0) return digits;
  }
  return "";
}

// Blender's "Fra:3 Mem:10.50M ...": the frame number, or "".
std::string BlenderFrame(const std::string& line) {
  if (line.rfind("Fra:", 0) != 0) return "";
  size_t end = 0;
  std::string digits = FrameDigitsAt(line, 4, &end);
  return !digits.empty() && end < line.size() && line[end] == ' ' ? digits : "";
}

// Files in `dir` named <prefix><integer>.png, mapped by the integer.
Result<std::map<int64_t, std::string>> ScanNumbered(const std::string& dir,
                                                    const std::string& prefix) {
  std::map<int64_t, std::string> out;
  FF_ASSIGN_OR_RETURN(auto names, ListDir(dir));
  for (const auto& n : names) {
    if (n.size() <= prefix.size() + 4 || n.compare(0, prefix.size(), prefix) != 0) continue;
    if (n.compare(n.size() - 4, 4, ".png") != 0) continue;
    std::string digits = n.substr(prefix.size(), n.size() - prefix.size() - 4);
    size_t start = digits[0] == '-' ? 1 : 0;
    if (start == digits.size()) continue;
    if (!std::all_of(digits.begin() + start, digits.end(),
                     [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
      continue;
    }
    if (digits.size() > 12) continue;
    out[ParseFrameNumber(digits)] = JoinPath(dir, n);
  }
  return out;
}

// The built-in renderers write image frames named by the job's output
// pattern; a job without one cannot be rendered by them.
Status RequireOutput(const ChunkSpec& spec, const std::string& package) {
  if (!spec.output_pattern.empty()) return Status::Ok();
  return FailedPrecondition("render.output: the job names no output pattern, but package '" +
                            package + "' renders image frames and needs one");
}

class PovrayAdapter final : public PackageAdapter {
 public:
  explicit PovrayAdapter(std::string exe) : exe_(std::move(exe)) {}
  std::string kind() const override { return "povray"; }

  Result<std::vector<ProcessSpec>> Commands(const ChunkSpec& spec) const override {
    FF_RETURN_IF_ERROR(RequireOutput(spec, "povray"));
    std::vector<ProcessSpec> out;
    std::string scene_path = JoinPath(spec.job_dir, spec.scene);
    bool ini = spec.scene.size() > 4 && spec.scene.substr(spec.scene.size() - 4) == ".ini";
    for (const auto& [a, b] : FrameSet(spec.frames).ConsecutiveRuns()) {
      ProcessSpec p;
      p.cwd = DirName(scene_path);
      if (!spec.renderer_home.empty()) p.env.push_back("HOME=" + spec.renderer_home);
      p.argv.push_back(exe_);
      // An .ini scene defines its own animation (frame range, clock); a bare
      // .pov gets the job's frame range mapped to clock 0..1. +SF/+EF then
      // pick this chunk's frames without redefining the animation.
      p.argv.push_back(ini ? BaseName(scene_path) : "+I" + BaseName(scene_path));
      if (!ini) {
        // The animation's range ([render] animation, else the job's frames).
        p.argv.push_back("+KFI" + std::to_string(spec.job_first_frame));
        p.argv.push_back("+KFF" + std::to_string(spec.job_last_frame));
        p.argv.push_back("+KI0");
        p.argv.push_back("+KF1");
      }
      p.argv.push_back("-D");  // the system ini turns the display on
      p.argv.push_back("-P");  // never pause
      p.argv.push_back("+W" + std::to_string(WidthOr(spec, JobProfile::kDefaultWidth)));
      p.argv.push_back("+H" + std::to_string(HeightOr(spec, JobProfile::kDefaultHeight)));
      // The job's own arguments come after frameflow's defaults, so they can
      // change the clock or the size; the frames and the output stay ours.
      for (const auto& arg : spec.args) p.argv.push_back(arg);
      p.argv.push_back("+SF" + std::to_string(a));
      p.argv.push_back("+EF" + std::to_string(b));
      p.argv.push_back("+FN");
      p.argv.push_back("+O" + JoinPath(spec.out_dir, "f.png"));
      p.argv.push_back("+WT" + std::to_string(std::max(1, spec.threads)));
      out.push_back(std::move(p));
    }
    return out;
  }

  void ObserveLine(const std::string& line, ChunkProgressState* s) const override {
    // POV-Ray wraps its messages at 80 columns: lines after its error line
    // that start no message of their own are the rest of it.
    const bool continues = s->error_may_continue;
    s->error_may_continue = false;
    if (continues && !line.empty() && line.rfind("File '", 0) != 0 && !LooksLikeError(line) &&
        PovrayOutputFrame(line).empty() && line.rfind("==", 0) != 0) {
      size_t from = line.find_first_not_of(' ');
      if (from != std::string::npos) s->last_error_line += " " + line.substr(from);
      s->error_may_continue = true;
      return;
    }
    // "  Output file........../dir/f07.png, 24 bpp PNG" starts a frame.
    if (const std::string frame = PovrayOutputFrame(line); !frame.empty()) {
      if (s->current_frame != -1) ++s->frames_done;
      s->current_frame = ParseFrameNumber(frame);
    } else if (IsBenign(line)) {
      // Matches the error pattern but is printed by every run.
    } else if (line.find("Possible Parse Error") != std::string::npos) {
      s->NoteError(line, 1);  // a warning that precedes the real error
    } else if (line.find("Parse Error:") != std::string::npos ||
               line.find("Fatal error") != std::string::npos) {
      // "File 'clock.pov' line 3: Parse Error: Cannot open include file x.inc."
      const bool first = s->last_error_rank < 2;
      s->NoteError(line, 2);
      s->error_may_continue = first;
    } else if (LooksLikeError(line)) {
      s->NoteError(line, 1);  // e.g. "Render failed", after the real error
    }
  }

  Result<std::map<int64_t, std::string>> FindOutputs(const ChunkSpec& spec) const override {
    FF_ASSIGN_OR_RETURN(auto found, ScanNumbered(spec.out_dir, "f"));
    // A one-frame animation is not an animation to POV-Ray: no number.
    std::string single = JoinPath(spec.out_dir, "f.png");
    if (spec.frames.size() == 1 && PathExists(single)) found[spec.frames[0]] = single;
    return found;
  }

 private:
  // "  Fatal Stream to console.........On" (the option listing) and the
  // missing ~/.povray/3.7/povray.conf notice.
  static bool IsBenign(const std::string& line) {
    return line.find("Stream to console") != std::string::npos ||
           line.find("cannot open the user configuration file") != std::string::npos;
  }

  std::string exe_;
};

// Runs before rendering inside Blender: applies the job's resolution and
// refuses to render when an image or library the scene uses is missing
// (Blender would otherwise render it pink and exit 0).
constexpr const char* kBlenderPrelude = R"PY(
import bpy, os
scene = bpy.context.scene
{RESOLUTION}
missing = []
for img in bpy.data.images:
    if img.source in ('FILE', 'SEQUENCE', 'MOVIE') and img.packed_file is None and img.filepath:
        if not os.path.exists(bpy.path.abspath(img.filepath)):
            missing.append(img.filepath)
for lib in bpy.data.libraries:
    if not os.path.exists(bpy.path.abspath(lib.filepath)):
        missing.append(lib.filepath)
if missing:
    raise RuntimeError('frameflow: missing file(s) the scene needs: ' + ', '.join(missing))
)PY";

class BlenderAdapter final : public PackageAdapter {
 public:
  explicit BlenderAdapter(std::string exe) : exe_(std::move(exe)) {}
  std::string kind() const override { return "blender"; }

  Result<std::vector<ProcessSpec>> Commands(const ChunkSpec& spec) const override {
    FF_RETURN_IF_ERROR(RequireOutput(spec, "blender"));
    std::string prelude = kBlenderPrelude;
    auto replace = [&](const std::string& key, const std::string& v) {
      size_t pos = prelude.find(key);
      if (pos != std::string::npos) prelude.replace(pos, key.size(), v);
    };
    if (spec.width > 0 && spec.height > 0) {
      replace("{RESOLUTION}", "scene.render.resolution_x = " + std::to_string(spec.width) +
                                  "\nscene.render.resolution_y = " + std::to_string(spec.height) +
                                  "\nscene.render.resolution_percentage = 100");
    } else {
      replace("{RESOLUTION}", "# the job sets no size: the scene's own resolution");
    }
    std::string scene_path = JoinPath(spec.job_dir, spec.scene);
    ProcessSpec p;
    p.cwd = DirName(scene_path);
    // -noaudio: a farm render has no sound device (without it Blender's
    // audio back-ends fill every log with PulseAudio/ALSA warnings).
    p.argv = {exe_,   "-b", scene_path, "-noaudio", "--python-exit-code", "3", "--python-expr",
              prelude};
    for (const auto& arg : spec.args) p.argv.push_back(arg);
    p.argv.insert(p.argv.end(), {"-o", JoinPath(spec.out_dir, "f_#####"), "-F", "PNG", "-x", "1",
                                 "-t", std::to_string(std::max(1, spec.threads))});
    // Options apply in order, so each run's -s/-e precedes its -a.
    for (const auto& [a, b] : FrameSet(spec.frames).ConsecutiveRuns()) {
      p.argv.insert(p.argv.end(), {"-s", std::to_string(a), "-e", std::to_string(b), "-a"});
    }
    return std::vector<ProcessSpec>{p};
  }

  void ObserveLine(const std::string& line, ChunkProgressState* s) const override {
    if (line.rfind("Saved: '", 0) == 0) {
      ++s->frames_done;
    } else if (const std::string frame = BlenderFrame(line); !frame.empty()) {
      s->current_frame = ParseFrameNumber(frame);
    } else if (line.rfind("Error: script failed, expr:", 0) == 0) {
      // Blender quoting frameflow's own prelude back: never the cause.
    } else if (const size_t at = line.find("RuntimeError: frameflow: "); at != std::string::npos) {
      s->NoteError(line.substr(at + 14), 2);  // the prelude's check: missing files
    } else if (line.rfind("Error: ", 0) == 0 && line.rfind("Error: Python: Traceback", 0) != 0) {
      s->NoteError(line, 2);  // "Error: Cannot read file '…': No such file or directory"
    } else if (LooksLikeError(line)) {
      s->NoteError(line, 1);
    }
  }

  Result<std::map<int64_t, std::string>> FindOutputs(const ChunkSpec& spec) const override {
    return ScanNumbered(spec.out_dir, "f_");
  }

 private:
  std::string exe_;
};

class CommandAdapter final : public PackageAdapter {
 public:
  explicit CommandAdapter(CommandPackageConfig pkg) : pkg_(std::move(pkg)) {}
  std::string kind() const override { return "command"; }

  Result<std::vector<ProcessSpec>> Commands(const ChunkSpec& spec) const override {
    FF_ASSIGN_OR_RETURN(auto words, SplitCommandTemplate(pkg_.command));
    bool per_frame = pkg_.command.find("{frame}") != std::string::npos;
    const bool has_output = !spec.output_pattern.empty();
    if (!has_output && pkg_.command.find("{output}") != std::string::npos) {
      return FailedPrecondition(
          "render.output: the job names no output pattern, but the command "
          "template of package '" +
          pkg_.name + "' uses {output}");
    }
    std::vector<ProcessSpec> out;
    auto expand = [&](int64_t frame, int64_t first, int64_t last) {
      ProcessSpec p;
      p.cwd = DirName(JoinPath(spec.job_dir, spec.scene));
      std::map<std::string, std::string> tokens = {
          {"{first}", std::to_string(first)},
          {"{last}", std::to_string(last)},
          {"{outdir}", spec.out_dir},
          {"{scene}", JoinPath(spec.job_dir, spec.scene)},
          {"{width}", std::to_string(WidthOr(spec, JobProfile::kDefaultWidth))},
          {"{height}", std::to_string(HeightOr(spec, JobProfile::kDefaultHeight))},
          {"{threads}", std::to_string(std::max(1, spec.threads))},
          {"{job}", std::to_string(spec.job_id)},
          {"{chunk}", std::to_string(spec.chunk)},
      };
      if (has_output) {
        tokens["{output}"] =
            per_frame ? JoinPath(spec.out_dir, ExpandOutputPattern(spec.output_pattern, frame))
                      : JoinPath(spec.out_dir, spec.output_pattern);
      }
      if (per_frame) tokens["{frame}"] = std::to_string(frame);
      for (std::string w : words) {
        for (const auto& [k, v] : tokens) {
          for (size_t pos = w.find(k); pos != std::string::npos; pos = w.find(k, pos + v.size())) {
            w.replace(pos, k.size(), v);
          }
        }
        p.argv.push_back(std::move(w));
      }
      for (const auto& arg : spec.args) p.argv.push_back(arg);
      p.env.push_back("FRAMEFLOW_JOB=" + std::to_string(spec.job_id));
      p.env.push_back("FRAMEFLOW_CHUNK=" + std::to_string(spec.chunk));
      return p;
    };
    if (per_frame) {
      for (int64_t f : spec.frames) out.push_back(expand(f, f, f));
    } else {
      out.push_back(expand(spec.frames.front(), spec.frames.front(), spec.frames.back()));
    }
    // Sub-directories the output pattern names are made by the render
    // server (OutputSubdirs): Commands() never touches the filesystem, whose
    // paths may be the I/O wrapper's, not the host's.
    return out;
  }

  void ObserveLine(const std::string& line, ChunkProgressState* s) const override {
    if (LooksLikeError(line)) s->last_error_line = line;
  }

  Result<std::map<int64_t, std::string>> FindOutputs(const ChunkSpec& spec) const override {
    std::map<int64_t, std::string> out;
    if (spec.output_pattern.empty()) return out;  // the job writes no files
    for (int64_t f : spec.frames) {
      std::string p = JoinPath(spec.out_dir, ExpandOutputPattern(spec.output_pattern, f));
      if (PathExists(p)) out[f] = p;
    }
    return out;
  }

 private:
  CommandPackageConfig pkg_;
};

}  // namespace

std::unique_ptr<PackageAdapter> MakePovrayAdapter(const std::string& executable) {
  return std::make_unique<PovrayAdapter>(executable);
}
std::unique_ptr<PackageAdapter> MakeBlenderAdapter(const std::string& executable) {
  return std::make_unique<BlenderAdapter>(executable);
}
std::unique_ptr<PackageAdapter> MakeCommandAdapter(const CommandPackageConfig& package) {
  return std::make_unique<CommandAdapter>(package);
}

}  // namespace ff

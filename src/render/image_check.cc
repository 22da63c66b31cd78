#include "render/image_check.h"

#include <png.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace ff {

namespace {

// Files smaller than this cannot hold a real rendered image in any of the
// signature-checked formats.
constexpr int64_t kMinImageBytes = 32;
// ReadPngRgba refuses images whose RGBA buffer would exceed this.
constexpr uint64_t kMaxRgbaBytes = uint64_t{1} << 32;

// ---------------------------------------------------------------------------
// PNG decoding. libpng reports errors by longjmp, which skips C++
// destructors, so everything between setjmp and the libpng calls is plain C:
// PngJob is trivial, PngGuarded holds no locals, and PngBody (the frame that
// a longjmp abandons) owns nothing; buffers are freed by the C++ caller.

struct PngJob {
  png_structp png;
  png_infop info;
  FILE* file;
  int keep_pixels;        // decode to RGBA8 into `pixels`
  unsigned char* pixels;  // malloc'd, width*height*4 when keep_pixels
  unsigned char* row;     // malloc'd scratch row when !keep_pixels
  png_uint_32 width;
  png_uint_32 height;
  int truncated;  // the file ended before the PNG did
  char error[256];
};

void PngOnError(png_structp png, png_const_charp message) {
  auto* job = static_cast<PngJob*>(png_get_error_ptr(png));
  if (job->error[0] == '\0') std::snprintf(job->error, sizeof job->error, "%s", message);
  png_longjmp(png, 1);
}

void PngOnWarning(png_structp, png_const_charp) {}

void PngRead(png_structp png, png_bytep data, size_t length) {
  auto* job = static_cast<PngJob*>(png_get_io_ptr(png));
  size_t got = std::fread(data, 1, length, job->file);
  if (got != length) {
    if (std::feof(job->file)) {
      job->truncated = 1;
      png_error(png, "unexpected end of file");
    }
    png_error(png, "read error");
  }
}

void PngBody(PngJob* job) {
  png_structp png = job->png;
  png_infop info = job->info;
  png_set_read_fn(png, job, PngRead);
  // A corrupt ancillary chunk means a corrupt file, not one to shrug off.
  png_set_crc_action(png, PNG_CRC_ERROR_QUIT, PNG_CRC_ERROR_QUIT);
  png_read_info(png, info);
  job->width = png_get_image_width(png, info);
  job->height = png_get_image_height(png, info);

  if (job->keep_pixels) {
    int color_type = png_get_color_type(png, info);
    png_set_expand(png);  // palette -> RGB, low-bit gray -> 8 bit, tRNS -> alpha
    png_set_scale_16(png);
    if (color_type == PNG_COLOR_TYPE_GRAY || color_type == PNG_COLOR_TYPE_GRAY_ALPHA) {
      png_set_gray_to_rgb(png);
    }
    if (!(color_type & PNG_COLOR_MASK_ALPHA) && !png_get_valid(png, info, PNG_INFO_tRNS)) {
      png_set_add_alpha(png, 0xff, PNG_FILLER_AFTER);
    }
  }
  int passes = png_set_interlace_handling(png);
  png_read_update_info(png, info);
  size_t rowbytes = png_get_rowbytes(png, info);

  if (job->keep_pixels) {
    if (rowbytes != static_cast<size_t>(job->width) * 4) png_error(png, "cannot convert to RGBA8");
    uint64_t total = static_cast<uint64_t>(rowbytes) * job->height;
    if (total > kMaxRgbaBytes) png_error(png, "image too large to decode");
    job->pixels = static_cast<unsigned char*>(std::calloc(total > 0 ? total : 1, 1));
    if (job->pixels == nullptr) png_error(png, "out of memory");
  } else {
    job->row = static_cast<unsigned char*>(std::malloc(rowbytes > 0 ? rowbytes : 1));
    if (job->row == nullptr) png_error(png, "out of memory");
  }
  for (int pass = 0; pass < passes; ++pass) {
    for (png_uint_32 y = 0; y < job->height; ++y) {
      unsigned char* dst =
          job->keep_pixels ? job->pixels + static_cast<size_t>(y) * rowbytes : job->row;
      png_read_row(png, dst, nullptr);
    }
  }
  // Reads and checks everything after the image data up to IEND, so a file
  // cut short after its last IDAT chunk fails too.
  png_read_end(png, nullptr);
}

int PngGuarded(PngJob* job) {
  if (setjmp(png_jmpbuf(job->png))) return 0;
  PngBody(job);
  return 1;
}

// Decodes the PNG at `path`; with keep_pixels, returns its RGBA8 pixels.
Result<RgbaImage> DecodePng(const std::string& path, bool keep_pixels) {
  FILE* file = std::fopen(path.c_str(), "rbe");
  if (file == nullptr) {
    int err = errno;
    if (err == ENOENT) return NotFound("image '" + path + "' does not exist");
    return ErrnoError("cannot open image", path, err);
  }
  PngJob job;
  std::memset(&job, 0, sizeof job);
  job.file = file;
  job.keep_pixels = keep_pixels ? 1 : 0;
  job.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &job, PngOnError, PngOnWarning);
  if (job.png != nullptr) job.info = png_create_info_struct(job.png);
  int ok = 0;
  if (job.png != nullptr && job.info != nullptr) {
    ok = PngGuarded(&job);
  } else {
    std::snprintf(job.error, sizeof job.error, "cannot initialise libpng");
  }
  png_destroy_read_struct(job.png != nullptr ? &job.png : nullptr,
                          job.info != nullptr ? &job.info : nullptr, nullptr);
  std::fclose(file);
  std::free(job.row);

  if (!ok) {
    std::free(job.pixels);
    std::string why = job.truncated ? "file is truncated" : job.error;
    return InvalidArgument("'" + path + "' is not a valid PNG: " + why);
  }
  RgbaImage image;
  image.width = static_cast<int>(job.width);
  image.height = static_cast<int>(job.height);
  if (keep_pixels) {
    image.rgba.assign(job.pixels, job.pixels + static_cast<size_t>(job.width) * job.height * 4);
    std::free(job.pixels);
  }
  return image;
}

// ---------------------------------------------------------------------------
// Signature-only formats.

uint32_t Le32(const unsigned char* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}
uint16_t Le16(const unsigned char* p) { return static_cast<uint16_t>(p[0] | p[1] << 8); }
uint32_t Be32(const unsigned char* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | uint32_t{p[3]};
}

bool StartsWith(const std::string& data, std::initializer_list<unsigned char> sig) {
  if (data.size() < sig.size()) return false;
  size_t i = 0;
  for (unsigned char c : sig) {
    if (static_cast<unsigned char>(data[i++]) != c) return false;
  }
  return true;
}

std::string HexPrefix(const std::string& data, size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n && i < data.size(); ++i) {
    auto c = static_cast<unsigned char>(data[i]);
    if (!out.empty()) out.push_back(' ');
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 0xf]);
  }
  return out;
}

// Reads up to `len` bytes at `offset` (negative: from the end of the file).
Result<std::string> ReadAt(const std::string& path, int64_t offset, size_t len) {
  FILE* f = std::fopen(path.c_str(), "rbe");
  if (f == nullptr) return ErrnoError("cannot open image", path, errno);
  std::string data(len, '\0');
  errno = 0;
  bool ok = std::fseek(f, static_cast<long>(offset), offset < 0 ? SEEK_END : SEEK_SET) == 0;
  size_t n = ok ? std::fread(data.data(), 1, len, f) : 0;
  ok = ok && !std::ferror(f);
  int err = errno;
  std::fclose(f);
  if (!ok) return ErrnoError("cannot read image", path, err != 0 ? err : EIO);
  data.resize(n);
  return data;
}

// A TGA has no leading signature; version 2 files end with a footer, older
// ones are accepted only when the 18-byte header is self-consistent and the
// file is long enough for the pixels it declares.
// `head` is the start of the file, `tail` its last 26 bytes.
bool LooksLikeTga(const std::string& head, const std::string& tail, int64_t size, ImageInfo* info) {
  static constexpr char kFooter[] = "TRUEVISION-XFILE.";  // followed by '\0'
  const auto* p = reinterpret_cast<const unsigned char*>(head.data());
  if (head.size() < 18) return false;
  bool footer = size >= 18 + 26 && tail.size() == 26 && tail.compare(8, 17, kFooter) == 0 &&
                tail.back() == '\0';
  int id_length = p[0];
  int colormap_type = p[1];
  int image_type = p[2];
  int colormap_length = Le16(p + 5);
  int colormap_depth = p[7];
  int width = Le16(p + 12);
  int height = Le16(p + 14);
  int depth = p[16];
  bool mapped = image_type == 1 || image_type == 9;
  bool known_type =
      mapped || image_type == 2 || image_type == 3 || image_type == 10 || image_type == 11;
  bool depth_ok = depth == 8 || depth == 15 || depth == 16 || depth == 24 || depth == 32;
  bool header_ok = known_type && depth_ok && width > 0 && height > 0 &&
                   colormap_type == (mapped ? 1 : 0) && (p[17] & 0xc0) == 0;
  if (!header_ok) return false;
  if (!footer) {
    uint64_t need = 18 + id_length + uint64_t(colormap_length) * ((colormap_depth + 7) / 8);
    if (image_type < 9)
      need += uint64_t(width) * height * ((depth + 7) / 8);
    else
      need += 1;
    if (static_cast<uint64_t>(size) < need) return false;
  }
  info->format = "tga";
  info->width = width;
  info->height = height;
  return true;
}

}  // namespace

Result<ImageInfo> CheckImage(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    int err = errno;
    if (err == ENOENT) return NotFound("image '" + path + "' does not exist");
    return ErrnoError("cannot stat image", path, err);
  }
  if (!S_ISREG(st.st_mode)) return InvalidArgument("image '" + path + "' is not a regular file");
  if (st.st_size == 0) return InvalidArgument("image '" + path + "' is empty");

  // Enough for every signature and header field looked at below.
  FF_ASSIGN_OR_RETURN(std::string head, ReadAt(path, 0, 64));

  ImageInfo info;
  if (StartsWith(head, {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'})) {
    FF_ASSIGN_OR_RETURN(RgbaImage decoded, DecodePng(path, /*keep_pixels=*/false));
    info.format = "png";
    info.width = decoded.width;
    info.height = decoded.height;
    return info;
  }

  auto too_small = [&](const char* format) {
    return InvalidArgument("image '" + path + "' has a " + format + " signature but only " +
                           std::to_string(st.st_size) + " bytes; it is truncated");
  };
  const auto* p = reinterpret_cast<const unsigned char*>(head.data());

  if (StartsWith(head, {0x76, 0x2f, 0x31, 0x01})) {
    if (st.st_size < kMinImageBytes) return too_small("OpenEXR");
    info.format = "exr";
    return info;
  }
  if (StartsWith(head, {0xff, 0xd8, 0xff})) {
    if (st.st_size < kMinImageBytes) return too_small("JPEG");
    // A complete JPEG ends with the EOI marker (FF D9); writers may pad after it.
    int64_t tail_len = std::min<int64_t>(st.st_size, 4096);
    FF_ASSIGN_OR_RETURN(std::string data, ReadAt(path, -tail_len, static_cast<size_t>(tail_len)));
    size_t end = data.find_last_not_of('\0');
    if (end == std::string::npos || end < 1 || static_cast<unsigned char>(data[end]) != 0xd9 ||
        static_cast<unsigned char>(data[end - 1]) != 0xff) {
      return InvalidArgument("image '" + path +
                             "' is not a complete JPEG: no end-of-image marker; it is truncated");
    }
    info.format = "jpeg";
    return info;
  }
  bool tiff_le = StartsWith(head, {'I', 'I', 0x2a, 0x00});
  if (tiff_le || StartsWith(head, {'M', 'M', 0x00, 0x2a})) {
    if (st.st_size < kMinImageBytes) return too_small("TIFF");
    uint32_t ifd = tiff_le ? Le32(p + 4) : Be32(p + 4);
    if (ifd < 8 || ifd >= static_cast<uint64_t>(st.st_size)) {
      return InvalidArgument("image '" + path + "' is not a valid TIFF: its first directory (at " +
                             std::to_string(ifd) + ") lies outside the file");
    }
    info.format = "tiff";
    return info;
  }
  if (StartsWith(head, {'B', 'M'})) {
    if (st.st_size < kMinImageBytes || head.size() < 26) return too_small("BMP");
    uint32_t declared = Le32(p + 2);
    uint32_t pixels_at = Le32(p + 10);
    if (declared > static_cast<uint64_t>(st.st_size) ||
        pixels_at >= static_cast<uint64_t>(st.st_size)) {
      return InvalidArgument("image '" + path + "' is not a complete BMP: it declares " +
                             std::to_string(declared) + " bytes but has " +
                             std::to_string(st.st_size));
    }
    uint32_t dib_size = Le32(p + 14);
    if (dib_size == 12) {  // OS/2 BITMAPCOREHEADER
      info.width = Le16(p + 18);
      info.height = Le16(p + 20);
    } else if (dib_size >= 40) {
      auto h = static_cast<int32_t>(Le32(p + 22));
      info.width = static_cast<int32_t>(Le32(p + 18));
      info.height = h < 0 ? -h : h;  // negative: rows stored top-down
    }
    info.format = "bmp";
    return info;
  }

  std::string tail;
  if (st.st_size >= 26) {
    FF_ASSIGN_OR_RETURN(tail, ReadAt(path, -26, 26));
  }
  if (LooksLikeTga(head, tail, st.st_size, &info)) return info;

  return InvalidArgument("'" + path +
                         "' is not a recognised image (expected PNG, OpenEXR, JPEG, TIFF, BMP or "
                         "TGA; the file starts with " +
                         HexPrefix(head, 8) + ")");
}

Result<RgbaImage> ReadPngRgba(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0) {
    return InvalidArgument("image '" + path + "' is empty");
  }
  return DecodePng(path, /*keep_pixels=*/true);
}

}  // namespace ff

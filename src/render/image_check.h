// Checks that a renderer's output file is a complete, valid image before a
// chunk is reported as successful.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"

namespace ff {

struct ImageInfo {
  std::string format;  // "png", "exr", "jpeg", "tiff", "bmp", "tga"
  int width = 0;       // 0 when the format is only recognised, not decoded
  int height = 0;
};

// PNG is fully decoded with libpng (every chunk CRC and the zlib stream are
// checked, so a truncated file fails). OpenEXR, JPEG, TIFF and BMP are
// recognised by their signature and must be non-trivially sized. Errors name
// the file and say what is wrong.
Result<ImageInfo> CheckImage(const std::string& path);

// Decoded 8-bit RGBA pixels of a PNG (for pixel comparisons: PNG files embed
// timestamps, so compare pixels, not bytes).
struct RgbaImage {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> rgba;  // width*height*4
};
Result<RgbaImage> ReadPngRgba(const std::string& path);

}  // namespace ff

#include <png.h>
#include <sys/stat.h>

#include <cstring>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "core/version.h"
#include "gtest/gtest.h"
#include "render/host_probe.h"
#include "render/image_check.h"
#include "util/fs.h"
#include "util/test_fixtures.h"

namespace ff {
namespace {

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

class ProbeTest : public TempDirFixture {
 protected:
  // Writes an executable shell script and returns its path.
  std::string Script(const std::string& name, const std::string& body) {
    std::string path = Path(name);
    EXPECT_TRUE(WriteFileAtomic(path, "#!/bin/sh\n" + body, 0755).ok());
    return path;
  }

  void Write(const std::string& name, const std::string& data) {
    ASSERT_TRUE(WriteFileAtomic(Path(name), data).ok());
  }

  // Writes a PNG with libpng's simplified API; `format` is a PNG_FORMAT_*.
  void WritePng(const std::string& name, int width, int height, png_uint_32 format,
                const std::vector<uint8_t>& pixels) {
    png_image image;
    std::memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    image.width = static_cast<png_uint_32>(width);
    image.height = static_cast<png_uint_32>(height);
    image.format = format;
    ASSERT_EQ(pixels.size(), PNG_IMAGE_SIZE(image));
    ASSERT_NE(png_image_write_to_file(&image, Path(name).c_str(), 0, pixels.data(), 0, nullptr), 0)
        << image.message;
  }

  // A 7x5 RGBA test image whose pixels all differ.
  static std::vector<uint8_t> TestPixels() {
    std::vector<uint8_t> rgba;
    for (int y = 0; y < 5; ++y) {
      for (int x = 0; x < 7; ++x) {
        rgba.push_back(static_cast<uint8_t>(x * 36));
        rgba.push_back(static_cast<uint8_t>(y * 60));
        rgba.push_back(static_cast<uint8_t>((x * 13 + y * 29) % 256));
        rgba.push_back(static_cast<uint8_t>(255 - x - y));
      }
    }
    return rgba;
  }
};

// --- Hardware and packages ---------------------------------------------------

TEST(HostProbeTest, HardwareHasCoresMemoryAndOs) {
  HostRecord host = ProbeHardware("render-7");
  EXPECT_EQ(host.name, "render-7");
  EXPECT_GT(host.cores, 0);
  EXPECT_GT(host.memory_bytes, 0);
  EXPECT_FALSE(host.os.empty());
  // Not every architecture names its CPU, so only log it.
  std::cout << "cpu: " << host.cpu_model << ", os: " << host.os << ", gpus: " << host.gpus.size()
            << "\n";
}

TEST(HostProbeTest, FindsPovray37) {
  if (!FindExecutable("povray").ok()) GTEST_SKIP() << "povray is not installed";
  Result<PackageRecord> pkg = ProbePovray();
  ASSERT_TRUE(pkg.ok()) << pkg.status().ToString();
  EXPECT_EQ(pkg->kind, "povray");
  EXPECT_EQ(pkg->name, "povray");
  EXPECT_EQ(pkg->executable.front(), '/');
  EXPECT_EQ(pkg->version.rfind("3.7", 0), 0u) << pkg->version;
  EXPECT_EQ(pkg->version.find_first_not_of("0123456789."), std::string::npos) << pkg->version;
  Result<Version> version = Version::Parse(pkg->version);
  ASSERT_TRUE(version.ok()) << version.status().ToString();
  EXPECT_GE(Version::Compare(*version, *Version::Parse("3.7")), 0);
  EXPECT_LT(Version::Compare(*version, *Version::Parse("3.8")), 0);
}

TEST(HostProbeTest, FindsBlender34) {
  if (!FindExecutable("blender").ok()) GTEST_SKIP() << "blender is not installed";
  Result<PackageRecord> pkg = ProbeBlender();
  ASSERT_TRUE(pkg.ok()) << pkg.status().ToString();
  EXPECT_EQ(pkg->kind, "blender");
  EXPECT_EQ(pkg->name, "blender");
  EXPECT_EQ(pkg->executable.front(), '/');
  EXPECT_EQ(pkg->version.rfind("3.4", 0), 0u) << pkg->version;
  EXPECT_TRUE(Version::Parse(pkg->version).ok()) << pkg->version;
}

TEST(HostProbeTest, MissingExecutableIsNotFound) {
  Result<PackageRecord> by_path = ProbePovray("/nonexistent/dir/povray");
  ASSERT_FALSE(by_path.ok());
  EXPECT_EQ(by_path.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(Contains(by_path.status().message(), "/nonexistent/dir/povray"));

  Result<PackageRecord> by_name = ProbeBlender("ff-no-such-renderer");
  ASSERT_FALSE(by_name.ok());
  EXPECT_EQ(by_name.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(Contains(by_name.status().message(), "ff-no-such-renderer"));
}

TEST(HostProbeTest, FindExecutable) {
  Result<std::string> sh = FindExecutable("sh");
  ASSERT_TRUE(sh.ok()) << sh.status().ToString();
  EXPECT_EQ(sh->front(), '/');
  EXPECT_EQ(BaseName(*sh), "sh");

  Result<std::string> direct = FindExecutable(*sh);
  ASSERT_TRUE(direct.ok());
  EXPECT_EQ(*direct, *sh);

  EXPECT_EQ(FindExecutable("").status().code(), StatusCode::kNotFound);
}

TEST_F(ProbeTest, FindExecutableRejectsDirectoriesAndPlainFiles) {
  EXPECT_EQ(FindExecutable(dir_).status().code(), StatusCode::kNotFound);
  Write("plain", "#!/bin/sh\necho POV-Ray 3.7.0\n");  // mode 0644
  Result<std::string> plain = FindExecutable(Path("plain"));
  ASSERT_FALSE(plain.ok());
  EXPECT_EQ(plain.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(Contains(plain.status().message(), Path("plain")));
}

TEST_F(ProbeTest, VersionIsReadFromStderrAmidNoise) {
  std::string fake = Script("povray",
                            "echo 'povray: cannot open the user configuration file' >&2\n"
                            "echo 'POV-Ray 3.8.0-beta.2' >&2\n"
                            "echo 'This is an unofficial version'\n");
  Result<PackageRecord> pkg = ProbePovray(fake);
  ASSERT_TRUE(pkg.ok()) << pkg.status().ToString();
  EXPECT_EQ(pkg->version, "3.8.0");
  EXPECT_EQ(pkg->executable, fake);

  std::string blender = Script("blender",
                               "echo 'Warning: Blender 3 config dir missing'\n"
                               "echo 'Blender 4.1.1'\n"
                               "echo '\tbuild date: 2024-04-16'\n");
  Result<PackageRecord> b = ProbeBlender(blender);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(b->version, "4.1.1");
}

TEST_F(ProbeTest, NoVersionIsInvalidArgument) {
  std::string silent = Script("silent", "echo 'usage: silent [options]'\nexit 3\n");
  Result<PackageRecord> pkg = ProbePovray(silent);
  ASSERT_FALSE(pkg.ok());
  EXPECT_EQ(pkg.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(pkg.status().message(), silent)) << pkg.status().message();
  EXPECT_TRUE(Contains(pkg.status().message(), "status 3")) << pkg.status().message();
  EXPECT_TRUE(Contains(pkg.status().message(), "usage: silent")) << pkg.status().message();

  // stdin is /dev/null, so a program that reads it does not hang.
  std::string reader = Script("reader", "cat\necho 'POV-Ray 3.7.0.10'\n");
  Result<PackageRecord> r = ProbePovray(reader);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->version, "3.7.0.10");
}

// --- Images ------------------------------------------------------------------

TEST_F(ProbeTest, CheckImageAcceptsAValidPng) {
  WritePng("frame.png", 7, 5, PNG_FORMAT_RGBA, TestPixels());
  Result<ImageInfo> info = CheckImage(Path("frame.png"));
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->format, "png");
  EXPECT_EQ(info->width, 7);
  EXPECT_EQ(info->height, 5);
}

TEST_F(ProbeTest, CheckImageRejectsTruncatedAndCorruptPngs) {
  WritePng("frame.png", 7, 5, PNG_FORMAT_RGBA, TestPixels());
  std::string png = *ReadFile(Path("frame.png"));
  ASSERT_GT(png.size(), 60u);

  Write("half.png", png.substr(0, png.size() / 2));
  Result<ImageInfo> half = CheckImage(Path("half.png"));
  ASSERT_FALSE(half.ok());
  EXPECT_EQ(half.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(half.status().message(), Path("half.png"))) << half.status().message();
  EXPECT_TRUE(Contains(half.status().message(), "truncated")) << half.status().message();

  // Only the 12-byte IEND chunk missing: the pixels decode, the file is still cut.
  Write("no-iend.png", png.substr(0, png.size() - 12));
  EXPECT_FALSE(CheckImage(Path("no-iend.png")).ok());

  // One flipped byte inside the image data breaks its chunk CRC.
  std::string flipped = png;
  size_t idat = flipped.find("IDAT");
  ASSERT_NE(idat, std::string::npos);
  flipped[idat + 6] = static_cast<char>(flipped[idat + 6] ^ 0x40);
  Write("flipped.png", flipped);
  Result<ImageInfo> bad = CheckImage(Path("flipped.png"));
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(Contains(bad.status().message(), Path("flipped.png"))) << bad.status().message();
  EXPECT_FALSE(ReadPngRgba(Path("flipped.png")).ok());
}

TEST_F(ProbeTest, CheckImageRejectsEmptyMissingAndRandomFiles) {
  Write("empty.png", "");
  Result<ImageInfo> empty = CheckImage(Path("empty.png"));
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(empty.status().message(), Path("empty.png")));
  EXPECT_TRUE(Contains(empty.status().message(), "empty"));

  Result<ImageInfo> missing = CheckImage(Path("missing.png"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(Contains(missing.status().message(), Path("missing.png")));

  std::mt19937 rng(12345);
  std::string noise(4096, '\0');
  for (char& c : noise) c = static_cast<char>(rng());
  Write("noise.png", noise);
  Result<ImageInfo> random = CheckImage(Path("noise.png"));
  ASSERT_FALSE(random.ok());
  EXPECT_EQ(random.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(
      Contains(random.status().message(), "'" + Path("noise.png") + "' is not a recognised image"))
      << random.status().message();

  Write("text.exr", "frame 1 failed: out of memory\n");
  EXPECT_FALSE(CheckImage(Path("text.exr")).ok());

  EXPECT_FALSE(CheckImage(dir_).ok());
}

TEST_F(ProbeTest, CheckImageRecognisesOtherFormatsBySignature) {
  std::string pad(100, '\x11');

  Write("a.exr", std::string("\x76\x2f\x31\x01\x02\x00\x00\x00", 8) + pad);
  Result<ImageInfo> exr = CheckImage(Path("a.exr"));
  ASSERT_TRUE(exr.ok()) << exr.status().ToString();
  EXPECT_EQ(exr->format, "exr");
  EXPECT_EQ(exr->width, 0);

  Write("tiny.exr", std::string("\x76\x2f\x31\x01\x02\x00", 6));
  Result<ImageInfo> tiny = CheckImage(Path("tiny.exr"));
  ASSERT_FALSE(tiny.ok());
  EXPECT_TRUE(Contains(tiny.status().message(), Path("tiny.exr")));

  Write("a.jpg", std::string("\xff\xd8\xff\xe0", 4) + pad + "\xff\xd9");
  Result<ImageInfo> jpeg = CheckImage(Path("a.jpg"));
  ASSERT_TRUE(jpeg.ok()) << jpeg.status().ToString();
  EXPECT_EQ(jpeg->format, "jpeg");
  Write("cut.jpg", std::string("\xff\xd8\xff\xe0", 4) + pad);
  EXPECT_FALSE(CheckImage(Path("cut.jpg")).ok());

  Write("le.tif", std::string("II*\0\x08\0\0\0", 8) + pad);
  Write("be.tif", std::string("MM\0*\0\0\0\x08", 8) + pad);
  for (const char* name : {"le.tif", "be.tif"}) {
    Result<ImageInfo> tiff = CheckImage(Path(name));
    ASSERT_TRUE(tiff.ok()) << tiff.status().ToString();
    EXPECT_EQ(tiff->format, "tiff");
  }
  Write("bad.tif", std::string("II*\0\xff\xff\0\0", 8) + pad);
  EXPECT_FALSE(CheckImage(Path("bad.tif")).ok());

  // 2x3 24-bit BMP: 14-byte file header, 40-byte info header, 3 rows of 8 bytes.
  std::string bmp(54 + 24, '\0');
  auto le32 = [&](size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) bmp[at + i] = static_cast<char>(v >> (8 * i));
  };
  bmp[0] = 'B';
  bmp[1] = 'M';
  le32(2, static_cast<uint32_t>(bmp.size()));
  le32(10, 54);
  le32(14, 40);
  le32(18, 2);
  le32(22, 3);
  bmp[26] = 1;
  bmp[28] = 24;
  Write("a.bmp", bmp);
  Result<ImageInfo> b = CheckImage(Path("a.bmp"));
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(b->format, "bmp");
  EXPECT_EQ(b->width, 2);
  EXPECT_EQ(b->height, 3);
  Write("cut.bmp", bmp.substr(0, 60));
  EXPECT_FALSE(CheckImage(Path("cut.bmp")).ok());

  // 4x2 uncompressed 24-bit TGA, without and with the version-2 footer.
  std::string tga(18 + 4 * 2 * 3, '\x22');
  std::string header = std::string("\0\0\x02\0\0\0\0\0\0\0\0\0\x04\0\x02\0\x18\0", 18);
  tga.replace(0, 18, header);
  Write("a.tga", tga);
  Result<ImageInfo> t = CheckImage(Path("a.tga"));
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->format, "tga");
  EXPECT_EQ(t->width, 4);
  EXPECT_EQ(t->height, 2);
  Write("cut.tga", tga.substr(0, tga.size() - 1));
  EXPECT_FALSE(CheckImage(Path("cut.tga")).ok());
  Write("v2.tga", tga + std::string(8, '\0') + std::string("TRUEVISION-XFILE.\0", 18));
  EXPECT_TRUE(CheckImage(Path("v2.tga")).ok());
}

TEST_F(ProbeTest, ReadPngRgbaRoundTrips) {
  std::vector<uint8_t> pixels = TestPixels();
  WritePng("rgba.png", 7, 5, PNG_FORMAT_RGBA, pixels);
  Result<RgbaImage> image = ReadPngRgba(Path("rgba.png"));
  ASSERT_TRUE(image.ok()) << image.status().ToString();
  EXPECT_EQ(image->width, 7);
  EXPECT_EQ(image->height, 5);
  EXPECT_EQ(image->rgba, pixels);
}

TEST_F(ProbeTest, ReadPngRgbaExpandsRgbAndGray) {
  std::vector<uint8_t> rgb = {10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120};  // 2x2
  WritePng("rgb.png", 2, 2, PNG_FORMAT_RGB, rgb);
  Result<RgbaImage> color = ReadPngRgba(Path("rgb.png"));
  ASSERT_TRUE(color.ok()) << color.status().ToString();
  EXPECT_EQ(color->rgba, (std::vector<uint8_t>{10, 20, 30, 255, 40, 50, 60, 255, 70, 80, 90, 255,
                                               100, 110, 120, 255}));

  std::vector<uint8_t> gray = {0, 128, 255};  // 3x1
  WritePng("gray.png", 3, 1, PNG_FORMAT_GRAY, gray);
  Result<RgbaImage> g = ReadPngRgba(Path("gray.png"));
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(g->rgba, (std::vector<uint8_t>{0, 0, 0, 255, 128, 128, 128, 255, 255, 255, 255, 255}));
}

TEST_F(ProbeTest, ReadPngRgbaErrorsNameTheFile) {
  Write("not.png", "GIF89a, not a png at all");
  Result<RgbaImage> image = ReadPngRgba(Path("not.png"));
  ASSERT_FALSE(image.ok());
  EXPECT_EQ(image.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(image.status().message(), Path("not.png"))) << image.status().message();

  EXPECT_EQ(ReadPngRgba(Path("missing.png")).status().code(), StatusCode::kNotFound);
  Write("empty.png", "");
  EXPECT_EQ(ReadPngRgba(Path("empty.png")).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ff

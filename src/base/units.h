// Byte sizes as users write and read them: "512M", "2G", "1048576" in
// configuration and job descriptions; "64 MiB", "1.5 GiB" in messages.
// K, M, G and T are powers of 1024.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"

namespace ff {

// A whole number of bytes, optionally followed by one of K, M, G, T (either
// case), surrounding whitespace ignored. Errors quote the text ("byte size
// '1.5G': unknown suffix '.5G' ...").
Result<int64_t> ParseByteSize(std::string_view text);

enum class ByteStyle {
  kShortest,    // "64 MiB", "1.5 KiB", "100 bytes"
  kOneDecimal,  // "64.0 MiB", "1.5 KiB", "100 B": fixed width, for tables and comparisons
};
std::string FormatBytes(int64_t bytes, ByteStyle style = ByteStyle::kShortest);

}  // namespace ff

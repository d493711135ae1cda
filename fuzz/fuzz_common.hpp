// Shared by the fuzz targets: a failed invariant aborts, so libFuzzer keeps
// the input that broke it.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#define XFP_FUZZ_CHECK(cond)                                                          \
  do {                                                                                \
    if (!(cond)) {                                                                    \
      std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                   \
    }                                                                                 \
  } while (0)

namespace xfp::fuzz {

// Reads a fuzz input front to back; past its end every byte reads as 0, so
// a target never needs to check lengths before it asks.
struct ByteReader {
  const uint8_t* p;
  size_t n;

  uint8_t byte() {
    if (n == 0) return 0;
    --n;
    return *p++;
  }
  // `bytes` bytes, little-endian.
  uint64_t le(int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(byte()) << (8 * i);
    return v;
  }
  // Up to `len` raw bytes (fewer at the end of the input).
  std::vector<uint8_t> bytes(size_t len) {
    len = std::min(len, n);
    std::vector<uint8_t> out(p, p + len);
    p += len;
    n -= len;
    return out;
  }
  // A C string of up to `max_len` bytes (a NUL inside ends it early).
  std::unique_ptr<char[]> string(size_t max_len) {
    const size_t len = byte() % (max_len + 1);
    auto s = std::make_unique<char[]>(len + 1);
    for (size_t i = 0; i < len; ++i) s[i] = static_cast<char>(byte());
    s[len] = '\0';
    return s;
  }
};

}  // namespace xfp::fuzz

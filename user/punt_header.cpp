#include "xfp/punt_header.hpp"

#include <cstring>

namespace xfp {

PuntHeaderSource take_punt_header(uint8_t*& data, uint64_t& offset, uint32_t& len, xfp_punt_meta& out) {
  constexpr uint32_t kSize = sizeof(xfp_punt_meta);
  if (offset >= kSize) {
    std::memcpy(&out, data - kSize, kSize);
    if (out.magic == XFP_PUNT_MAGIC) {
      // The kernel writes the metadata area only for frames it gives it to;
      // the bytes stay in the chunk after the frame is done.
      std::memset(data - kSize, 0, sizeof out.magic);
      return PuntHeaderSource::Metadata;
    }
  }
  if (len >= kSize) {
    std::memcpy(&out, data, kSize);
    if (out.magic == XFP_PUNT_MAGIC) {
      data += kSize;
      offset += kSize;
      len -= kSize;
      return PuntHeaderSource::InBand;
    }
  }
  return PuntHeaderSource::None;
}

}  // namespace xfp

// Reads a punted frame's header (abi.h, xfp_punt_meta) off a received AF_XDP
// descriptor, whichever carrier brought it.
#pragma once

#include <cstdint>

#include "xfp/abi.h"

namespace xfp {

enum class PuntHeaderSource : uint8_t { None, Metadata, InBand };

// `data` points at the descriptor's bytes, `offset` is their offset in the
// UMEM chunk, `len` the descriptor's length. A header in the metadata area
// (the 32 bytes before `data`, inside the chunk) is copied to `out` and its
// magic cleared in the UMEM, so that a later in-band frame of the same chunk
// never finds it stale. Otherwise the descriptor must start with an in-band
// header: it is copied out and stripped (data, offset and len then describe
// the frame alone). None: neither carried a header with XFP_PUNT_MAGIC, and
// nothing was changed.
PuntHeaderSource take_punt_header(uint8_t*& data, uint64_t& offset, uint32_t& len, xfp_punt_meta& out);

}  // namespace xfp

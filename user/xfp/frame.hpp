// Frames: the host side of the callout ABI's opaque struct xfp_frame
// (include/xfp/callout.h), the counterpart of a NET_BUFFER_LIST.
//
// A frame is bytes [data, data + len) inside a storage buffer, with headroom
// in front (room to push VLAN tags) and tailroom behind, a reference count,
// and a `next` link that chains frames. Its storage is one of:
//  - pooled: a buffer of kFramePoolBufferBytes from the frame pool (frames
//    that fit, which is every frame of a standard MTU);
//  - heap: a buffer of its own (larger frames);
//  - borrowed: someone else's memory, an AF_XDP UMEM chunk in practice. The
//    worker wraps a received frame without copying it (frame_borrow) and, when
//    a callout absorbs it or takes a reference, copies the bytes out
//    (frame_make_owned) so that the chunk goes back to the fill ring at once.
//
// Frame objects and pooled buffers come from per-thread caches backed by a
// shared list (a frame per punted packet must not cost two mallocs); a frame
// may be freed on another thread than the one that allocated it.
//
// Every function here is noexcept and safe to hand to a plugin as is: they
// are the frame functions of struct xfp_host_api. Null frames are tolerated
// (NULL result, -EINVAL, or nothing done).
#pragma once

#include <atomic>
#include <cstdint>

#include "xfp/callout.h"
#include "xfp/result.hpp"

namespace xfp {

inline constexpr uint32_t kFrameDefaultHeadroom = 64;   // a few VLAN tags and then some
inline constexpr uint32_t kFrameDefaultTailroom = 64;   // for frames too large for a pooled buffer
inline constexpr uint32_t kFramePoolBufferBytes = 2048; // headroom + a 1518-byte frame fit
inline constexpr uint32_t kFrameMaxBytes = 1u << 20;    // frame_alloc refuses more (nonsense, not a frame)

enum class FrameStorage : uint8_t { Pooled, Heap, Borrowed };

}  // namespace xfp

// The ABI's opaque type (global namespace, as callout.h declares it).
struct xfp_frame {
  uint8_t* storage = nullptr;  // start of the buffer (headroom begins here)
  uint32_t capacity = 0;       // bytes at storage
  uint32_t offset = 0;         // data = storage + offset
  uint32_t length = 0;         // data bytes
  xfp::FrameStorage kind = xfp::FrameStorage::Pooled;
  std::atomic<uint32_t> refs{1};
  xfp_frame* next = nullptr;   // chain link, not owned: freeing a frame leaves its `next` alone
};

namespace xfp {

// ---- the ABI's frame functions ------------------------------------------------
// `len` bytes (uninitialised), kFrameDefaultHeadroom in front; NULL when len
// exceeds kFrameMaxBytes or memory is short.
xfp_frame* frame_alloc(uint32_t len) noexcept;
// Deep copy of the bytes (own storage, refcount 1, no `next`, default headroom).
xfp_frame* frame_clone(const xfp_frame* frame) noexcept;
void frame_ref(xfp_frame* frame) noexcept;
// Drops one reference; at zero the frame and its storage (not borrowed memory)
// go back to the pool. Only this frame: a chain is freed frame by frame.
void frame_free(xfp_frame* frame) noexcept;
uint8_t* frame_data(xfp_frame* frame) noexcept;
uint32_t frame_len(const xfp_frame* frame) noexcept;
// Grow at the front by n bytes: 0, or -ENOSPC when the headroom is smaller.
int frame_push(xfp_frame* frame, uint32_t n) noexcept;
// Shrink at the front by n bytes: 0, or -EINVAL when the frame is shorter.
int frame_pull(xfp_frame* frame, uint32_t n) noexcept;
// Grow or shrink at the end: 0, or -ENOSPC when the tailroom is too small.
int frame_set_len(xfp_frame* frame, uint32_t len) noexcept;
xfp_frame* frame_next(const xfp_frame* frame) noexcept;
void frame_set_next(xfp_frame* frame, xfp_frame* next) noexcept;

// ---- host-only ---------------------------------------------------------------
// Wraps `len` bytes at chunk + data_offset without copying; the headroom and
// tailroom are the rest of the chunk. The frame never frees the chunk: its
// owner must not recycle it while the frame is borrowed (see frame_make_owned).
// NULL when the span does not fit the chunk or memory is short.
xfp_frame* frame_borrow(uint8_t* chunk, uint32_t chunk_size, uint32_t data_offset, uint32_t len) noexcept;
// Copies a borrowed frame's bytes into storage of its own; the frame object
// (its address, refcount and `next`) stays the same, so references a callout
// holds remain valid, but a data pointer taken before does not. Afterwards the
// chunk is no longer referenced. A frame that owns its bytes is left alone.
// The caller must be the only thread touching the frame during the call.
Status frame_make_owned(xfp_frame* frame) noexcept;
bool frame_is_borrowed(const xfp_frame* frame) noexcept;
uint32_t frame_headroom(const xfp_frame* frame) noexcept;
uint32_t frame_tailroom(const xfp_frame* frame) noexcept;
uint32_t frame_refcount(const xfp_frame* frame) noexcept;

}  // namespace xfp

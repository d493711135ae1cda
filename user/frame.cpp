// Frames and the frame pool (see xfp/frame.hpp).
#include "xfp/frame.hpp"

#include <cerrno>
#include <cstring>
#include <mutex>
#include <new>

namespace xfp {
namespace {

// ---- the pool -------------------------------------------------------------------
// Two kinds of fixed-size blocks: frame objects and pooled buffers. Each
// thread keeps a small cache of free blocks per kind (no lock, no atomic on
// the common path); a cache that runs dry takes a batch from the shared list,
// one that overflows gives a batch back, and a thread that exits gives all of
// its cache back. The shared list keeps at most kSharedMax blocks per kind;
// beyond that blocks go back to the allocator.

enum BlockKind { kFrameObject = 0, kPoolBuffer = 1, kBlockKinds = 2 };
constexpr size_t kBlockBytes[kBlockKinds] = {sizeof(xfp_frame), kFramePoolBufferBytes};
constexpr uint32_t kCacheMax = 256;    // blocks per thread and kind
constexpr uint32_t kCacheBatch = 64;   // moved at once between a cache and the shared list
constexpr uint32_t kSharedMax = 16384; // blocks per kind in the shared list (32 MiB of buffers)

struct FreeBlock {
  FreeBlock* next;
};

struct SharedFreelist {
  std::mutex mutex;
  FreeBlock* head = nullptr;
  uint32_t count = 0;
};
// Never destroyed in a way that matters: std::mutex has a trivial destructor,
// so threads still freeing frames during exit find a usable list.
constinit SharedFreelist g_shared[kBlockKinds];

// Per-thread cache: plain data, so that reading it costs no guard check.
struct ThreadCache {
  FreeBlock* head[kBlockKinds];
  uint32_t count[kBlockKinds];
  bool flusher_armed;  // the thread's Flusher exists (it is created on first use)
  bool thread_exiting; // the Flusher has run: bypass the cache from now on
};
thread_local constinit ThreadCache t_cache{};

void shared_put_chain(int kind, FreeBlock* first, FreeBlock* last, uint32_t n) noexcept {
  SharedFreelist& shared = g_shared[kind];
  {
    std::lock_guard lock(shared.mutex);
    if (shared.count + n <= kSharedMax) {
      last->next = shared.head;
      shared.head = first;
      shared.count += n;
      return;
    }
  }
  while (first) {  // the shared list is full: give the memory back
    FreeBlock* next = first->next;
    ::operator delete(first);
    first = next;
  }
}

// Gives a thread's cache back when the thread exits.
struct Flusher {
  ~Flusher() {
    for (int kind = 0; kind < kBlockKinds; ++kind) {
      FreeBlock* first = t_cache.head[kind];
      if (!first) continue;
      FreeBlock* last = first;
      while (last->next) last = last->next;
      shared_put_chain(kind, first, last, t_cache.count[kind]);
      t_cache.head[kind] = nullptr;
      t_cache.count[kind] = 0;
    }
    t_cache.thread_exiting = true;
  }
};

void arm_flusher() noexcept {
  thread_local Flusher flusher;
  (void)flusher;
  t_cache.flusher_armed = true;
}

void* block_get(int kind) noexcept {
  ThreadCache& cache = t_cache;
  if (!cache.head[kind] && !cache.thread_exiting) {
    if (!cache.flusher_armed) arm_flusher();  // the cache is about to hold blocks
    SharedFreelist& shared = g_shared[kind];
    std::lock_guard lock(shared.mutex);
    for (uint32_t i = 0; i < kCacheBatch && shared.head; ++i) {
      FreeBlock* b = shared.head;
      shared.head = b->next;
      --shared.count;
      b->next = cache.head[kind];
      cache.head[kind] = b;
      ++cache.count[kind];
    }
  }
  if (FreeBlock* b = cache.head[kind]) {
    cache.head[kind] = b->next;
    --cache.count[kind];
    return b;
  }
  return ::operator new(kBlockBytes[kind], std::nothrow);
}

void block_put(int kind, void* p) noexcept {
  ThreadCache& cache = t_cache;
  auto* b = static_cast<FreeBlock*>(p);
  if (cache.thread_exiting) {
    shared_put_chain(kind, b, b, 1);
    return;
  }
  if (!cache.flusher_armed) arm_flusher();
  b->next = cache.head[kind];
  cache.head[kind] = b;
  if (++cache.count[kind] <= kCacheMax) return;
  // Overflow: hand the newest kCacheBatch blocks to the shared list.
  FreeBlock* first = cache.head[kind];
  FreeBlock* last = first;
  for (uint32_t i = 1; i < kCacheBatch; ++i) last = last->next;
  cache.head[kind] = last->next;
  cache.count[kind] -= kCacheBatch;
  last->next = nullptr;
  shared_put_chain(kind, first, last, kCacheBatch);
}

// ---- frame objects and storage ------------------------------------------------------

xfp_frame* new_frame_object() noexcept {
  void* p = block_get(kFrameObject);
  return p ? new (p) xfp_frame() : nullptr;
}

void delete_frame_object(xfp_frame* f) noexcept {
  f->~xfp_frame();
  block_put(kFrameObject, f);
}

// Storage for `len` bytes with the default headroom: a pooled buffer when it
// fits, else a heap buffer with the default tailroom. False when memory is short.
bool attach_storage(xfp_frame* f, uint32_t len) noexcept {
  if (len > kFrameMaxBytes) return false;
  if (kFrameDefaultHeadroom + len <= kFramePoolBufferBytes) {
    void* buf = block_get(kPoolBuffer);
    if (!buf) return false;
    f->storage = static_cast<uint8_t*>(buf);
    f->capacity = kFramePoolBufferBytes;
    f->kind = FrameStorage::Pooled;
  } else {
    uint32_t capacity = kFrameDefaultHeadroom + len + kFrameDefaultTailroom;
    void* buf = ::operator new(capacity, std::nothrow);
    if (!buf) return false;
    f->storage = static_cast<uint8_t*>(buf);
    f->capacity = capacity;
    f->kind = FrameStorage::Heap;
  }
  f->offset = kFrameDefaultHeadroom;
  f->length = len;
  return true;
}

void release_storage(xfp_frame* f) noexcept {
  switch (f->kind) {
    case FrameStorage::Pooled: block_put(kPoolBuffer, f->storage); break;
    case FrameStorage::Heap: ::operator delete(f->storage); break;
    case FrameStorage::Borrowed: break;  // the chunk's owner recycles it
  }
  f->storage = nullptr;
}

}  // namespace

xfp_frame* frame_alloc(uint32_t len) noexcept {
  if (len > kFrameMaxBytes) return nullptr;
  xfp_frame* f = new_frame_object();
  if (!f) return nullptr;
  if (!attach_storage(f, len)) {
    delete_frame_object(f);
    return nullptr;
  }
  return f;
}

xfp_frame* frame_clone(const xfp_frame* frame) noexcept {
  if (!frame) return nullptr;
  xfp_frame* copy = frame_alloc(frame->length);
  if (copy) std::memcpy(copy->storage + copy->offset, frame->storage + frame->offset, frame->length);
  return copy;
}

void frame_ref(xfp_frame* frame) noexcept {
  if (frame) frame->refs.fetch_add(1, std::memory_order_relaxed);
}

void frame_free(xfp_frame* frame) noexcept {
  if (!frame) return;
  // acq_rel: the last owner must see every other owner's writes to the bytes
  // before it recycles them.
  if (frame->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  release_storage(frame);
  delete_frame_object(frame);
}

uint8_t* frame_data(xfp_frame* frame) noexcept { return frame ? frame->storage + frame->offset : nullptr; }

uint32_t frame_len(const xfp_frame* frame) noexcept { return frame ? frame->length : 0; }

int frame_push(xfp_frame* frame, uint32_t n) noexcept {
  if (!frame) return -EINVAL;
  if (n > frame->offset) return -ENOSPC;
  frame->offset -= n;
  frame->length += n;
  return 0;
}

int frame_pull(xfp_frame* frame, uint32_t n) noexcept {
  if (!frame || n > frame->length) return -EINVAL;
  frame->offset += n;
  frame->length -= n;
  return 0;
}

int frame_set_len(xfp_frame* frame, uint32_t len) noexcept {
  if (!frame) return -EINVAL;
  if (len > frame->capacity - frame->offset) return -ENOSPC;
  frame->length = len;
  return 0;
}

xfp_frame* frame_next(const xfp_frame* frame) noexcept { return frame ? frame->next : nullptr; }

void frame_set_next(xfp_frame* frame, xfp_frame* next) noexcept {
  if (frame) frame->next = next;
}

xfp_frame* frame_borrow(uint8_t* chunk, uint32_t chunk_size, uint32_t data_offset, uint32_t len) noexcept {
  if (!chunk || data_offset > chunk_size || len > chunk_size - data_offset) return nullptr;
  xfp_frame* f = new_frame_object();
  if (!f) return nullptr;
  f->storage = chunk;
  f->capacity = chunk_size;
  f->offset = data_offset;
  f->length = len;
  f->kind = FrameStorage::Borrowed;
  return f;
}

Status frame_make_owned(xfp_frame* frame) noexcept {
  if (!frame) return make_error(EINVAL, "no frame");
  if (frame->kind != FrameStorage::Borrowed) return Ok{};
  const uint8_t* bytes = frame->storage + frame->offset;  // in the chunk
  // attach_storage changes nothing when it fails: the frame stays borrowed.
  if (!attach_storage(frame, frame->length)) return make_error(ENOMEM, "out of memory");  // SSO: no allocation
  std::memcpy(frame->storage + frame->offset, bytes, frame->length);
  return Ok{};
}

bool frame_is_borrowed(const xfp_frame* frame) noexcept {
  return frame && frame->kind == FrameStorage::Borrowed;
}

uint32_t frame_headroom(const xfp_frame* frame) noexcept { return frame ? frame->offset : 0; }

uint32_t frame_tailroom(const xfp_frame* frame) noexcept {
  return frame ? frame->capacity - frame->offset - frame->length : 0;
}

uint32_t frame_refcount(const xfp_frame* frame) noexcept {
  return frame ? frame->refs.load(std::memory_order_relaxed) : 0;
}

}  // namespace xfp

// Frames: allocation and the pool, clones, reference counts, push/pull/set_len
// bounds, chains, borrowed frames and their conversion to owned ones.
#include "xfp/frame.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <thread>
#include <vector>

namespace xfp {
namespace {

TEST(Frame, AllocGivesLenWithRoomAround) {
  xfp_frame* f = frame_alloc(100);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(frame_len(f), 100u);
  EXPECT_EQ(frame_headroom(f), kFrameDefaultHeadroom);
  EXPECT_EQ(frame_tailroom(f), kFramePoolBufferBytes - kFrameDefaultHeadroom - 100);
  EXPECT_EQ(frame_refcount(f), 1u);
  EXPECT_FALSE(frame_is_borrowed(f));
  EXPECT_EQ(frame_next(f), nullptr);
  std::memset(frame_data(f), 0xab, 100);
  frame_free(f);
}

TEST(Frame, LargeFramesGetStorageOfTheirOwn) {
  xfp_frame* f = frame_alloc(9000);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(frame_len(f), 9000u);
  EXPECT_EQ(frame_headroom(f), kFrameDefaultHeadroom);
  EXPECT_EQ(frame_tailroom(f), kFrameDefaultTailroom);
  std::memset(frame_data(f), 1, 9000);
  frame_free(f);
  EXPECT_EQ(frame_alloc(kFrameMaxBytes + 1), nullptr);
  EXPECT_EQ(frame_alloc(UINT32_MAX), nullptr);
}

TEST(Frame, CloneIsADeepCopyWithoutTheChain) {
  xfp_frame* f = frame_alloc(60);
  xfp_frame* other = frame_alloc(10);
  for (int i = 0; i < 60; ++i) frame_data(f)[i] = static_cast<uint8_t>(i);
  frame_set_next(f, other);
  frame_ref(f);
  xfp_frame* c = frame_clone(f);
  ASSERT_NE(c, nullptr);
  EXPECT_NE(frame_data(c), frame_data(f));
  EXPECT_EQ(frame_len(c), 60u);
  EXPECT_EQ(std::memcmp(frame_data(c), frame_data(f), 60), 0);
  EXPECT_EQ(frame_refcount(c), 1u);
  EXPECT_EQ(frame_next(c), nullptr);
  frame_data(c)[0] = 0xff;
  EXPECT_EQ(frame_data(f)[0], 0);
  frame_free(c);
  frame_free(f);
  frame_free(f);
  frame_free(other);
  EXPECT_EQ(frame_clone(nullptr), nullptr);
}

TEST(Frame, ReferencesKeepTheFrame) {
  xfp_frame* f = frame_alloc(20);
  frame_ref(f);
  frame_ref(f);
  EXPECT_EQ(frame_refcount(f), 3u);
  frame_free(f);
  frame_free(f);
  EXPECT_EQ(frame_refcount(f), 1u);
  std::memset(frame_data(f), 7, 20);  // still ours (ASan would object otherwise)
  frame_free(f);
  frame_ref(nullptr);
  frame_free(nullptr);
}

TEST(Frame, PushPullSetLenStayInBounds) {
  xfp_frame* f = frame_alloc(14);
  uint8_t* data = frame_data(f);
  // Insert a VLAN tag after the MACs, as a callout would.
  for (int i = 0; i < 14; ++i) data[i] = static_cast<uint8_t>(i);
  ASSERT_EQ(frame_push(f, 4), 0);
  EXPECT_EQ(frame_data(f), data - 4);
  EXPECT_EQ(frame_len(f), 18u);
  std::memmove(frame_data(f), frame_data(f) + 4, 12);
  const uint8_t tag[4] = {0x81, 0x00, 0x00, 0x64};
  std::memcpy(frame_data(f) + 12, tag, 4);
  EXPECT_EQ(frame_data(f)[11], 11);
  EXPECT_EQ(frame_data(f)[16], 12);  // the EtherType moved behind the tag

  EXPECT_EQ(frame_push(f, frame_headroom(f) + 1), -ENOSPC);
  EXPECT_EQ(frame_len(f), 18u);
  EXPECT_EQ(frame_push(f, frame_headroom(f)), 0);  // all of it is fine
  EXPECT_EQ(frame_headroom(f), 0u);
  EXPECT_EQ(frame_push(f, 1), -ENOSPC);
  EXPECT_EQ(frame_pull(f, frame_len(f) - 18), 0);
  EXPECT_EQ(frame_len(f), 18u);

  EXPECT_EQ(frame_pull(f, 19), -EINVAL);
  EXPECT_EQ(frame_len(f), 18u);
  EXPECT_EQ(frame_pull(f, 4), 0);
  EXPECT_EQ(frame_len(f), 14u);

  uint32_t room = frame_tailroom(f);
  EXPECT_EQ(frame_set_len(f, 14 + room + 1), -ENOSPC);
  EXPECT_EQ(frame_len(f), 14u);
  EXPECT_EQ(frame_set_len(f, 14 + room), 0);
  EXPECT_EQ(frame_tailroom(f), 0u);
  EXPECT_EQ(frame_set_len(f, 0), 0);
  EXPECT_EQ(frame_len(f), 0u);
  EXPECT_EQ(frame_pull(f, 0), 0);
  EXPECT_EQ(frame_push(f, 0), 0);
  frame_free(f);

  EXPECT_EQ(frame_push(nullptr, 1), -EINVAL);
  EXPECT_EQ(frame_pull(nullptr, 1), -EINVAL);
  EXPECT_EQ(frame_set_len(nullptr, 1), -EINVAL);
  EXPECT_EQ(frame_data(nullptr), nullptr);
  EXPECT_EQ(frame_len(nullptr), 0u);
}

TEST(Frame, ChainsAreLinksNotOwnership) {
  xfp_frame* a = frame_alloc(1);
  xfp_frame* b = frame_alloc(2);
  xfp_frame* c = frame_alloc(3);
  frame_set_next(a, b);
  frame_set_next(b, c);
  uint32_t total = 0;
  for (xfp_frame* f = a; f; f = frame_next(f)) total += frame_len(f);
  EXPECT_EQ(total, 6u);
  frame_free(a);  // only a: b and c are still ours
  EXPECT_EQ(frame_next(b), c);
  frame_set_next(b, nullptr);
  EXPECT_EQ(frame_next(b), nullptr);
  frame_free(b);
  frame_free(c);
  EXPECT_EQ(frame_next(nullptr), nullptr);
}

TEST(Frame, BorrowedFrameUsesTheChunkUntilMadeOwned) {
  std::vector<uint8_t> chunk(4096, 0);
  for (int i = 0; i < 100; ++i) chunk[256 + i] = static_cast<uint8_t>(i + 1);
  xfp_frame* f = frame_borrow(chunk.data(), 4096, 256, 100);
  ASSERT_NE(f, nullptr);
  EXPECT_TRUE(frame_is_borrowed(f));
  EXPECT_EQ(frame_data(f), chunk.data() + 256);
  EXPECT_EQ(frame_headroom(f), 256u);
  EXPECT_EQ(frame_tailroom(f), 4096u - 356u);
  EXPECT_EQ(frame_push(f, 4), 0);  // the chunk's headroom is usable
  EXPECT_EQ(frame_pull(f, 4), 0);

  // A callout takes a reference and chains it: the worker then makes it owned.
  xfp_frame* other = frame_alloc(1);
  frame_ref(f);
  frame_set_next(f, other);
  ASSERT_TRUE(frame_make_owned(f).ok());
  EXPECT_FALSE(frame_is_borrowed(f));
  EXPECT_EQ(frame_len(f), 100u);
  EXPECT_EQ(frame_refcount(f), 2u);
  EXPECT_EQ(frame_next(f), other);
  uint8_t* data = frame_data(f);
  EXPECT_TRUE(data < chunk.data() || data >= chunk.data() + chunk.size());
  std::memset(chunk.data(), 0xee, chunk.size());  // the chunk is recycled
  for (int i = 0; i < 100; ++i) ASSERT_EQ(data[i], i + 1) << i;
  EXPECT_EQ(frame_headroom(f), kFrameDefaultHeadroom);
  EXPECT_TRUE(frame_make_owned(f).ok());  // already owned: nothing to do
  EXPECT_EQ(frame_data(f), data);
  frame_free(f);
  frame_free(f);
  frame_free(other);
}

TEST(Frame, FreeingABorrowedFrameLeavesTheChunkAlone) {
  std::vector<uint8_t> chunk(2048, 0x5a);
  xfp_frame* f = frame_borrow(chunk.data(), 2048, 0, 2048);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(frame_tailroom(f), 0u);
  EXPECT_EQ(frame_headroom(f), 0u);
  frame_free(f);
  for (uint8_t b : chunk) ASSERT_EQ(b, 0x5a);
}

TEST(Frame, BorrowRefusesSpansOutsideTheChunk) {
  std::vector<uint8_t> chunk(2048);
  EXPECT_EQ(frame_borrow(chunk.data(), 2048, 2000, 49), nullptr);
  EXPECT_EQ(frame_borrow(chunk.data(), 2048, 2049, 0), nullptr);
  EXPECT_EQ(frame_borrow(chunk.data(), 2048, 100, UINT32_MAX), nullptr);
  EXPECT_EQ(frame_borrow(nullptr, 2048, 0, 10), nullptr);
  EXPECT_FALSE(frame_make_owned(nullptr).ok());
  EXPECT_FALSE(frame_is_borrowed(nullptr));
}

// Frames allocated on one thread and freed on another (completions do that),
// with threads exiting while their caches hold blocks.
TEST(Frame, PoolWorksAcrossThreads) {
  for (int round = 0; round < 4; ++round) {
    std::vector<xfp_frame*> frames(3000);
    std::thread producer([&] {
      for (auto& f : frames) {
        f = frame_alloc(64);
        ASSERT_NE(f, nullptr);
        std::memset(frame_data(f), round, 64);
      }
    });
    producer.join();
    std::thread consumer([&] {
      for (auto* f : frames) {
        ASSERT_EQ(frame_data(f)[63], round);
        frame_free(f);
      }
    });
    consumer.join();
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t)
    threads.emplace_back([] {
      for (int i = 0; i < 20000; ++i) {
        xfp_frame* f = frame_alloc(static_cast<uint32_t>(i % 3000));
        ASSERT_NE(f, nullptr);
        xfp_frame* c = frame_clone(f);
        frame_free(f);
        frame_free(c);
      }
    });
  for (auto& t : threads) t.join();
}

}  // namespace
}  // namespace xfp

// take_punt_header(): the worker's reading of a descriptor, whichever carrier
// brought the punt header, and what it refuses.
#include "xfp/punt_header.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

namespace xfp {
namespace {

constexpr uint64_t kHeadroom = 256;  // where the kernel puts a frame in a chunk

xfp_punt_meta header(uint32_t rank) {
  xfp_punt_meta m{};
  m.magic = XFP_PUNT_MAGIC;
  m.layer = XFP_LAYER_INBOUND;
  m.rank = rank;
  m.flow = 0x1122334455667788ull;
  return m;
}

const std::vector<uint8_t> kFrame = {0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x88, 0xb5, 0xaa, 0xbb};

struct Chunk {
  std::vector<uint8_t> bytes = std::vector<uint8_t>(2048);
  uint8_t* data = bytes.data() + kHeadroom;
  uint64_t offset = kHeadroom;
  uint32_t len = 0;

  void metadata(const xfp_punt_meta& m, const std::vector<uint8_t>& frame) {
    std::memcpy(data - sizeof m, &m, sizeof m);
    std::memcpy(data, frame.data(), frame.size());
    len = static_cast<uint32_t>(frame.size());
  }
  void in_band(const xfp_punt_meta& m, const std::vector<uint8_t>& frame) {
    std::memcpy(data, &m, sizeof m);
    std::memcpy(data + sizeof m, frame.data(), frame.size());
    len = static_cast<uint32_t>(sizeof m + frame.size());
  }
  void reset() {
    data = bytes.data() + kHeadroom;
    offset = kHeadroom;
  }
};

TEST(PuntHeader, TheMetadataCarrierLeavesTheFrameAsItIsAndClearsTheHeadersMagic) {
  Chunk c;
  c.metadata(header(5), kFrame);
  xfp_punt_meta out{};
  ASSERT_EQ(take_punt_header(c.data, c.offset, c.len, out), PuntHeaderSource::Metadata);
  EXPECT_EQ(out.rank, 5u);
  EXPECT_EQ(out.flow, 0x1122334455667788ull);
  EXPECT_EQ(c.offset, kHeadroom);
  EXPECT_EQ(std::vector<uint8_t>(c.data, c.data + c.len), kFrame);
  uint16_t magic;
  std::memcpy(&magic, c.data - sizeof(xfp_punt_meta), sizeof magic);
  EXPECT_EQ(magic, 0u);
}

TEST(PuntHeader, TheInBandCarrierIsStrippedFromTheFrontOfTheDescriptor) {
  Chunk c;
  c.in_band(header(9), kFrame);
  xfp_punt_meta out{};
  ASSERT_EQ(take_punt_header(c.data, c.offset, c.len, out), PuntHeaderSource::InBand);
  EXPECT_EQ(out.rank, 9u);
  EXPECT_EQ(c.offset, kHeadroom + sizeof(xfp_punt_meta));
  EXPECT_EQ(std::vector<uint8_t>(c.data, c.data + c.len), kFrame);
}

TEST(PuntHeader, AnInBandFrameAfterAMetadataFrameInTheSameChunkIsNotReadAsMetadata) {
  Chunk c;
  c.metadata(header(1), kFrame);
  xfp_punt_meta out{};
  ASSERT_EQ(take_punt_header(c.data, c.offset, c.len, out), PuntHeaderSource::Metadata);
  c.reset();
  c.in_band(header(2), kFrame);  // the old header's bytes (but its magic) stay in front
  ASSERT_EQ(take_punt_header(c.data, c.offset, c.len, out), PuntHeaderSource::InBand);
  EXPECT_EQ(out.rank, 2u);
  EXPECT_EQ(std::vector<uint8_t>(c.data, c.data + c.len), kFrame);
}

TEST(PuntHeader, ADescriptorWithoutAHeaderIsRefusedAndLeftAlone) {
  Chunk c;
  c.len = static_cast<uint32_t>(kFrame.size());
  std::memcpy(c.data, kFrame.data(), kFrame.size());
  xfp_punt_meta out{};
  uint8_t* before = c.data;
  EXPECT_EQ(take_punt_header(c.data, c.offset, c.len, out), PuntHeaderSource::None);
  EXPECT_EQ(c.data, before);
  EXPECT_EQ(c.len, kFrame.size());
  // Shorter than a header, at the very start of a chunk: nothing to read.
  uint8_t tiny[8] = {0x46, 0x58};
  uint8_t* d = tiny;
  uint64_t off = 0;
  uint32_t len = sizeof tiny;
  EXPECT_EQ(take_punt_header(d, off, len, out), PuntHeaderSource::None);
}

}  // namespace
}  // namespace xfp

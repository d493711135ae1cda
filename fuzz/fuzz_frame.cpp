// xfp_parse_frame (include/xfp/frame_parse.h) on arbitrary bytes.
//
// Input: byte 0 picks the layer (bit 0) and whether the wire length is the
// buffer's (bit 1 clear) or the 4 bytes that follow (bit 1 set, a frame cut
// short by the capture); the rest is the frame. The frame is copied into a
// buffer of exactly its size, so ASan reports any read past `end`.
//
// Invariants: the fields equal those of an independent reference parser
// written below as a loop (MACs by layer, address types, tag count, VIDs,
// EtherType, flags), frame_len is the saturated wire length, and a frame
// shorter than 14 bytes is malformed with nothing but its length parsed.
#include <cstdint>
#include <cstring>
#include <memory>

#include "fuzz_common.hpp"
#include "xfp/frame_parse.h"

namespace {

uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
bool is_tpid(uint16_t v) { return v == 0x8100 || v == 0x88a8 || v == 0x9100; }

uint8_t addr_type(const uint8_t* m) {
  bool all = true;
  for (int i = 0; i < 6; ++i) all = all && m[i] == 0xff;
  if (all) return XFP_ADDR_BROADCAST;
  return (m[0] & 1) ? XFP_ADDR_MULTICAST : XFP_ADDR_UNICAST;
}

// The reference: same rules as docs/ARCHITECTURE.md "Fields", written as a loop.
xfp_fields reference(const uint8_t* d, size_t n, uint32_t wire, uint8_t layer) {
  xfp_fields f{};
  f.layer = layer;
  f.frame_len = static_cast<uint16_t>(wire > 0xffff ? 0xffff : wire);
  f.l2_flags = XFP_L2_NATIVE_ETHERNET;
  if (n < 14) {
    f.l2_flags |= XFP_L2_MALFORMED;
    return f;
  }
  const uint8_t* dst = d;
  const uint8_t* src = d + 6;
  std::memcpy(f.local_mac, layer == XFP_LAYER_INBOUND ? dst : src, 6);
  std::memcpy(f.remote_mac, layer == XFP_LAYER_INBOUND ? src : dst, 6);
  f.local_addr_type = addr_type(f.local_mac);
  f.remote_addr_type = addr_type(f.remote_mac);
  size_t off = 12;
  uint16_t proto = be16(d + off);
  off += 2;
  for (int tag = 0; tag < 2 && is_tpid(proto); ++tag) {
    f.l2_flags |= tag == 0 ? XFP_L2_VLAN_TAGGED : XFP_L2_QINQ;
    if (off + 4 > n) {
      f.l2_flags |= XFP_L2_MALFORMED;
      return f;  // EtherType stays 0
    }
    (tag == 0 ? f.vlan : f.inner_vlan) = be16(d + off) & 0x0fff;
    proto = be16(d + off + 2);
    off += 4;
    if (tag == 1 && is_tpid(proto)) f.l2_flags |= XFP_L2_TAG_STACK_DEEP;
  }
  f.ethertype = proto;
  if (proto < 0x0600) {
    f.l2_flags |= XFP_L2_LLC;
  } else if (proto == 0x0800) {
    if (off + 20 > n || (d[off] >> 4) != 4 || (d[off] & 0x0f) < 5)
      f.l2_flags |= XFP_L2_MALFORMED;
    else if (be16(d + off + 6) & 0x3fff)
      f.l2_flags |= XFP_L2_IP_FRAGMENT;
  }
  return f;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t mode = data[0];
  const uint8_t layer = (mode & 1) ? XFP_LAYER_OUTBOUND : XFP_LAYER_INBOUND;
  ++data;
  --size;
  uint32_t wire = static_cast<uint32_t>(size);
  if (mode & 2) {
    if (size < 4) return 0;
    std::memcpy(&wire, data, 4);
    data += 4;
    size -= 4;
  }
  // Exactly `size` bytes on the heap (never a null pointer, as with an
  // empty std::vector: the callers always hand over a real buffer).
  std::unique_ptr<uint8_t[]> frame(new uint8_t[size]);
  if (size) std::memcpy(frame.get(), data, size);
  const uint8_t* begin = frame.get();

  for (int pass = 0; pass < 2; ++pass) {
    const uint8_t l = pass == 0 ? layer : static_cast<uint8_t>(layer ^ 1);
    xfp_fields got{};
    xfp_parse_frame(begin, begin + size, wire, l, &got);
    const xfp_fields want = reference(begin, size, wire, l);

    XFP_FUZZ_CHECK(got.layer == l);
    XFP_FUZZ_CHECK(got.frame_len == want.frame_len);
    XFP_FUZZ_CHECK(got.l2_flags & XFP_L2_NATIVE_ETHERNET);
    if (size < 14) {
      XFP_FUZZ_CHECK(got.l2_flags == (XFP_L2_NATIVE_ETHERNET | XFP_L2_MALFORMED));
      XFP_FUZZ_CHECK(got.ethertype == 0 && got.vlan == 0 && got.inner_vlan == 0);
    }
    if (got.l2_flags & XFP_L2_QINQ) XFP_FUZZ_CHECK(got.l2_flags & XFP_L2_VLAN_TAGGED);
    if (got.l2_flags & XFP_L2_TAG_STACK_DEEP) XFP_FUZZ_CHECK(got.l2_flags & XFP_L2_QINQ);
    XFP_FUZZ_CHECK(got.vlan <= 0x0fff && got.inner_vlan <= 0x0fff);
    XFP_FUZZ_CHECK(std::memcmp(got.local_mac, want.local_mac, 6) == 0);
    XFP_FUZZ_CHECK(std::memcmp(got.remote_mac, want.remote_mac, 6) == 0);
    XFP_FUZZ_CHECK(got.local_addr_type == want.local_addr_type);
    XFP_FUZZ_CHECK(got.remote_addr_type == want.remote_addr_type);
    XFP_FUZZ_CHECK(got.ethertype == want.ethertype);
    XFP_FUZZ_CHECK(got.vlan == want.vlan);
    XFP_FUZZ_CHECK(got.inner_vlan == want.inner_vlan);
    XFP_FUZZ_CHECK(got.l2_flags == want.l2_flags);
    // The fields the caller owns are left alone.
    XFP_FUZZ_CHECK(got.ifindex == 0 && got.compartment == 0);
  }
  return 0;
}

// Writes the frame seeds of fuzz/corpus/frame and fuzz/corpus/punt_meta from
// tests/support/frame_builder (the frames the unit, BPF and integration tests
// send). Run once when the frame shapes change:
//   build-fuzz/fuzz/xfp_fuzz_make_seeds fuzz/corpus
// Input layouts: see fuzz_frame.cpp and fuzz_punt_meta.cpp.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "support/frame_builder.hpp"
#include "xfp/abi.h"

using xfp::test::FrameBuilder;
namespace et = xfp::test::ethertype;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  const xfp::test::Mac src{0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
  const xfp::test::Mac dst{0x02, 0x00, 0x00, 0x00, 0x00, 0x02};
  const xfp::test::Mac bad{0x02, 0x0b, 0xad, 0x00, 0x00, 0x07};
  xfp::test::Ipv4Options frag;
  frag.more_fragments = true;
  const std::vector<std::pair<std::string, std::vector<uint8_t>>> frames = {
      {"ipv4_udp", FrameBuilder().src(src).dst(dst).ipv4().udp().payload("fuzz").build()},
      {"arp_broadcast", FrameBuilder().src(src).ethertype(et::kArp).build()},
      {"lldp", FrameBuilder().src(src).dst({0x01, 0x80, 0xc2, 0, 0, 0x0e}).ethertype(et::kLldp).build()},
      {"vlan100_ipv4", FrameBuilder().src(src).dst(dst).vlan(100).ipv4().udp().build()},
      {"qinq_ipv4", FrameBuilder().src(src).dst(dst).qinq(10, 20).ipv4().build()},
      {"three_tags", FrameBuilder().src(src).dst(dst).qinq(10, 20).vlan(30).ipv4().build()},
      {"ipv4_fragment", FrameBuilder().src(bad).dst(dst).ipv4(frag).build()},
      {"llc_length", FrameBuilder().src(src).dst(dst).ethertype(0x0026).build()},
      {"runt_13", FrameBuilder().src(src).dst(dst).truncate_to(13).build()},
      {"cut_tag", FrameBuilder().src(src).dst(dst).vlan(5).truncate_to(16).build()},
      {"cut_ipv4", FrameBuilder().src(src).dst(dst).ipv4().truncate_to(30).build()},
  };
  int written = 0;
  auto write = [&](const std::string& path, const std::vector<uint8_t>& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    if (!out) {
      std::fprintf(stderr, "cannot write %s\n", path.c_str());
      std::exit(1);
    }
    ++written;
  };
  uint32_t rank = 0;
  for (const auto& [name, frame] : frames) {
    // fuzz_frame: [mode][frame]; mode bit 0 = outbound.
    std::vector<uint8_t> in{0};
    in.insert(in.end(), frame.begin(), frame.end());
    write(dir + "/frame/" + name, in);
    // fuzz_punt_meta: [meta][control][4 verdicts][frame], a meta as the
    // kernel writes it (magic, layer, slot, arb, rank, generation forced by
    // the control byte), ranks cycled over the fixed policy's first ranks.
    xfp_punt_meta meta{};
    meta.magic = XFP_PUNT_MAGIC;
    meta.layer = XFP_LAYER_INBOUND;
    meta.sublayer = static_cast<uint8_t>(rank % 4);
    meta.arb = static_cast<uint8_t>(rank % 3);
    meta.rank = rank++ % 12;
    std::vector<uint8_t> pm(sizeof meta);
    std::memcpy(pm.data(), &meta, sizeof meta);
    pm.push_back(0x07);
    for (uint8_t v : {0x01, 0x03, 0x05, 0x09}) pm.push_back(v);
    pm.insert(pm.end(), frame.begin(), frame.end());
    write(dir + "/punt_meta/" + name, pm);
  }
  std::printf("%d seeds written under %s\n", written, dir.c_str());
  return 0;
}

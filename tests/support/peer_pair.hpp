// The topology most datapath tests run on: two network namespaces of the
// test's own, "peer" and "xfp", joined by a veth pair (end a in peer, end b
// in xfp, with the MACs the test gives), and a packet socket on each end.
// A mixin for test fixtures: the members keep the names the tests use, and
// as a base they outlive the fixture's own members (a Datapath or runtime
// the fixture holds goes first, then the sockets, the pair, the namespaces).
#pragma once

#include <optional>

#include "support/frame_builder.hpp"
#include "support/netns.hpp"
#include "support/packet_io.hpp"
#include "xfp/result.hpp"

namespace xfp::test {

class PeerPair {
 protected:
  // Creates the namespaces, the pair and both sockets; the error names the
  // step that failed.
  Status create_peer_pair(const Mac& peer_mac, const Mac& xfp_mac);

  std::optional<NetNs> peer_ns_, xfp_ns_;
  std::optional<VethPair> pair_;
  std::optional<PacketSocket> peer_sock_, xfp_sock_;
};

}  // namespace xfp::test

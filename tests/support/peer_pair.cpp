#include "support/peer_pair.hpp"

namespace xfp::test {

Status PeerPair::create_peer_pair(const Mac& peer_mac, const Mac& xfp_mac) {
  auto peer = NetNs::create();
  if (!peer) return std::move(peer).error().context("peer namespace");
  peer_ns_.emplace(std::move(peer).value());
  auto xfp = NetNs::create();
  if (!xfp) return std::move(xfp).error().context("xfp namespace");
  xfp_ns_.emplace(std::move(xfp).value());
  VethOptions opt;
  opt.mac_a = peer_mac;
  opt.mac_b = xfp_mac;
  auto pair = VethPair::create(*peer_ns_, *xfp_ns_, opt);
  if (!pair) return std::move(pair).error().context("veth pair");
  pair_.emplace(std::move(pair).value());
  auto ps = PacketSocket::open(*peer_ns_, pair_->a().name);
  if (!ps) return std::move(ps).error().context("packet socket on " + pair_->a().name);
  peer_sock_.emplace(std::move(ps).value());
  auto xs = PacketSocket::open(*xfp_ns_, pair_->b().name);
  if (!xs) return std::move(xs).error().context("packet socket on " + pair_->b().name);
  xfp_sock_.emplace(std::move(xs).value());
  return {};
}

}  // namespace xfp::test

// The flow service's OffloadBackend on the Datapath's offload map
// (xfp_offload_v2: Datapath::offload_flow and friends).
#pragma once

#include "xfp/datapath.hpp"
#include "xfp/flow_service_impl.hpp"

namespace xfp {

class DatapathOffloads final : public OffloadBackend {
 public:
  explicit DatapathOffloads(Datapath& dp) : dp_(dp) {}
  Status offload(const xfp_offload_key& key, uint8_t verdict, uint32_t generation) override;
  Status remove(const xfp_offload_key& key) override;
  Status read_all(const std::function<void(const xfp_offload_key&, const xfp_offload&)>& fn) override;
  Status revalidate(uint64_t next, const std::function<bool(const xfp_offload_key&)>& keep) override;

 private:
  Datapath& dp_;
};

}  // namespace xfp

// What the callout host needs from flows (FwpsFlowAssociateContext0,
// FwpsFlowRemoveContext0, flow-verdict offload): the host's function table
// forwards the ABI's flow functions here, after checking that the callout id
// is one of the calling plugin's. Redirect records: redirect_service.hpp.
//
// Every method is called straight from plugin code (classify on the workers,
// plugin threads of their own) and must be thread-safe and never throw.
// Return values follow the ABI (0 or a negative errno), see include/xfp/callout.h.
#pragma once

#include <cstdint>
#include <string>

#include "xfp/callout.h"

namespace xfp {

struct RegisteredCallout;

class FlowService {
 public:
  virtual ~FlowService() = default;

  // `callout` is the caller's own callout (checked by the host); it may still
  // lack a flow_delete hook, which associate refuses with -EINVAL.
  virtual int associate_context(const RegisteredCallout& callout, uint64_t flow_handle, uint8_t layer,
                                uint64_t context) noexcept = 0;
  virtual int remove_context(const RegisteredCallout& callout, uint64_t flow_handle, uint8_t layer) noexcept = 0;

  virtual int offload(const RegisteredCallout& callout, const xfp_classify_item* item, uint32_t verdict) noexcept = 0;
  virtual int offload_remove(uint64_t flow_handle, uint8_t layer) noexcept = 0;

  // Unloading: the callout is out of service (no classify runs any
  // more, none will start) and its plugin's fini has not run yet: every
  // context of the callout ends here, flow_delete once each, and its
  // offloaded verdicts are taken back.
  virtual void retire_callout(const RegisteredCallout& callout) noexcept = 0;
};

}  // namespace xfp

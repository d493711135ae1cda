// What the callout host needs from redirect records
// (FwpsRedirectHandleCreate0, FwpsQueryConnectionRedirectState0, and the
// redirect itself): the host's function table forwards the ABI's redirect
// functions here.
//
// Every method is called straight from plugin code (classify on the workers,
// plugin threads of their own) and must be thread-safe and never throw.
// Return values follow the ABI (0 or a negative errno), see include/xfp/callout.h.
#pragma once

#include <cstdint>
#include <string>

#include "xfp/callout.h"

namespace xfp {

class RedirectService {
 public:
  virtual ~RedirectService() = default;

  // A handle owned by the plugin named `plugin`: 0 and *handle set, or a negative code.
  virtual int create_handle(const std::string& plugin, xfp_redirect_handle** handle) noexcept = 0;
  virtual void destroy_handle(xfp_redirect_handle* handle) noexcept = 0;
  virtual xfp_redirect_state redirect_state(const xfp_redirect_handle* handle,
                                            const xfp_classify_item* item) noexcept = 0;
  virtual int redirect_flow(xfp_redirect_handle* handle, xfp_classify_item* item, const char* ifname,
                            const void* context, uint32_t context_len, uint32_t flags) noexcept = 0;

  // Unloading, after the plugin's fini: destroys the handles it still owns.
  virtual void destroy_all_of(const std::string& plugin) noexcept = 0;
};

}  // namespace xfp

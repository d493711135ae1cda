// What the callout host needs from injection (FwpsInjectionHandleCreate,
// FwpsInjectMacReceiveAsync/SendAsync, FwpsQueryPacketInjectionState): the
// host's function table forwards the ABI's injection functions here.
//
// Every method is called straight from plugin code (classify on the workers,
// completions, plugin threads of their own) and must therefore be
// thread-safe and never throw: the overriders are noexcept as well. Return
// values follow the ABI (0, a negative errno or an XFP_STATUS_* code).
#pragma once

#include <cstdint>
#include <string>

#include "xfp/callout.h"

namespace xfp {

class InjectionService {
 public:
  virtual ~InjectionService() = default;

  // A handle of `type` (enum xfp_injection_type) owned by the plugin named
  // `plugin`: 0 and *handle set, or a negative code (*handle untouched).
  virtual int create_handle(const std::string& plugin, uint32_t type, xfp_injection_handle** handle) noexcept = 0;
  // Completes every frame still pending on the handle with
  // XFP_STATUS_HANDLE_CLOSING, then forgets it.
  virtual void destroy_handle(xfp_injection_handle* handle) noexcept = 0;

  // The ABI's inject_receive and inject_send: on 0 `complete` runs once per
  // frame of the chain, later; on failure never, and the caller keeps the frames.
  virtual int inject_receive(xfp_injection_handle* handle, uint32_t iface, xfp_frame* frames,
                             uint64_t inject_context, xfp_inject_complete_fn complete,
                             void* completion_ctx) noexcept = 0;
  virtual int inject_send(xfp_injection_handle* handle, uint32_t iface, xfp_frame* frames,
                          uint64_t inject_context, xfp_inject_complete_fn complete,
                          void* completion_ctx) noexcept = 0;

  // The classify item's frame as seen from `handle`; *inject_context (may be
  // NULL) gets the injector's context.
  virtual xfp_injection_state injection_state(const xfp_injection_handle* handle,
                                              const xfp_classify_item* item,
                                              uint64_t* inject_context) noexcept = 0;

  // Unloading: destroys every handle the plugin still owns, as destroy_handle
  // does. Called after the plugin's fini, before its library is closed, so
  // that no completion can run into unmapped code.
  virtual void destroy_all_of(const std::string& plugin) noexcept = 0;
};

}  // namespace xfp

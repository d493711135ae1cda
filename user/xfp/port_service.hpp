// What the callout host needs from message ports (FltCreateCommunicationPort,
// FltCloseCommunicationPort, FltSendMessage): the host's function table
// forwards the ABI's port functions here.
//
// Every method is called straight from plugin code and must be thread-safe
// and never throw. Return values follow the ABI (0, XFP_STATUS_TIMEOUT, a
// negative errno or XFP_STATUS_* code), see include/xfp/callout.h.
#pragma once

#include <cstdint>
#include <string>

#include "xfp/callout.h"

namespace xfp {

class PortService {
 public:
  virtual ~PortService() = default;

  // A port owned by the plugin named `plugin`: 0 and *port set, or a negative code.
  virtual int create_port(const std::string& plugin, const char* name, uint32_t max_connections,
                          const xfp_port_ops* ops, void* port_ctx, xfp_port** port) noexcept = 0;
  virtual void close_port(xfp_port* port) noexcept = 0;
  virtual int send(xfp_port* port, uint64_t client, const void* message, uint32_t len, void* reply,
                   uint32_t* reply_len, const int64_t* timeout_ns) noexcept = 0;

  // Unloading, after the plugin's fini: closes every port it left open.
  virtual void close_all_of(const std::string& plugin) noexcept = 0;
};

}  // namespace xfp

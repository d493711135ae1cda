// Redirect records (issue 4 item 4): the daemon's RedirectService. WFP's
// SIO_QUERY_WFP_CONNECTION_REDIRECT_RECORDS / _CONTEXT,
// SIO_SET_WFP_CONNECTION_REDIRECT_RECORDS, FwpsRedirectHandleCreate0 and
// FwpsQueryConnectionRedirectState0 at layer 2, where the "connection" is the
// flow.
//
// Records are kept per flow, keyed by the flow key of include/xfp/flow_key.h
// with the attachment (`iface`) zeroed: a proxy sees only the frames it
// receives on its own interface and cannot know xfp's attachment, so the same
// conversation on two attachments at once shares its records.
//
// A record is (redirector id, plugin name, context bytes). The redirector id
// is a 64-bit id unique in the daemon, one per redirect handle, never reused:
// a handle created later never sees another's records as its own. A flow's
// records are an ordered list, latest last, at most max_records; the store
// holds at most max_flows flows (least recently used first out) and a flow
// whose records nobody touched for idle_timeout_ns is forgotten.
//
// redirect_flow sends the item's frame out an interface of the calling
// thread's network namespace (the daemon's) through an AF_PACKET socket bound
// to it, one per interface, cached. The first call of a handle on a flow
// appends its record; later frames of that same flow redirected by the same
// handle are sent to the same interface (0, no new record), so a callout may
// redirect every frame of a flow. A flow that carries the handle's record
// because a proxy set it there (the proxy's onward flow) gets -EALREADY: the
// callout permits it (it has been inspected) instead of sending it round again. XFP_REDIRECT_OFFLOAD would install a
// kernel offload entry through the Datapath's offload API; until that API
// exists the flag is refused with -EOPNOTSUPP (nothing is sent).
//
// XFP_REDIRECT_OFFLOAD also installs a kernel offload entry for the item's
// flow (its key WITH the attachment, at the item's layer): verdict
// XFP_OFFLOAD_REDIRECT to the interface's ifindex, valid for the generation
// installed now (Datapath::offload_flow). Later frames of the flow are then
// redirected in XDP/TC and never reach the callout; a policy change that the
// flow service does not re-stamp the entry for ends it (the flow is punted
// again and the callout may redirect-and-offload again). Without an
// offloader (set_offloader) the flag is -EOPNOTSUPP and nothing is sent. An
// offload that fails after the frame was sent is counted (offload_errors),
// logged, and the call still returns 0: the frame is gone.
//
// The proxy side (query/set/list) is reached through the daemon's control
// socket (ops redirect.query, redirect.set, redirect.list: redirect_request),
// from libxfp-client (include/xfp/redirect_client.h) or `xfp redirect`.
// Everything here is thread-safe and noexcept on the classify path.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "xfp/abi.h"
#include "xfp/redirect_service.hpp"
#include "xfp/result.hpp"

namespace xfp {

struct RedirectOptions {
  size_t max_flows = 65536;              // flows with records at most (LRU beyond)
  size_t max_records = 8;                // records per flow: a chain of 8 redirectors
  uint64_t idle_timeout_ns = 300'000'000'000ull;  // 5 minutes untouched: forgotten
};

// One record as the store keeps it.
struct RedirectRecord {
  uint64_t redirector = 0;  // the handle's id
  std::string plugin;       // the handle's owner
  std::string context;      // at most XFP_REDIRECT_CONTEXT_MAX bytes
};

struct RedirectFlow {
  xfp_flow_key key{};                   // iface 0
  std::vector<RedirectRecord> records;  // latest last
  // Redirectors that sent frames of THIS flow out (redirect_flow appended
  // their record here), with the interface: their later frames of the same
  // flow go there too. A record that came through a proxy (set_records) is
  // not in here: redirecting such a flow again would loop (-EALREADY).
  std::vector<std::pair<uint64_t, std::string>> sent;
  uint64_t last_used_ns = 0;            // CLOCK_MONOTONIC
};

struct RedirectStats {
  uint64_t flows = 0;          // flows with records now
  uint64_t handles = 0;        // live redirect handles
  uint64_t redirects = 0;      // frames sent by redirect_flow
  uint64_t refused_again = 0;  // -EALREADY answers (a loop avoided)
  uint64_t send_errors = 0;    // redirect_flow whose send failed
  uint64_t evicted = 0;        // flows dropped by the max_flows bound
  uint64_t expired = 0;        // flows dropped by the idle timeout
  uint64_t sets = 0;           // records set by proxies
  uint64_t offloads = 0;       // XFP_REDIRECT_OFFLOAD entries installed
  uint64_t offload_errors = 0; // ... that failed (the frame was redirected all the same)
};

// The records blob a proxy gets and hands back (opaque to it): see
// docs/ARCHITECTURE.md "Redirect records" for the layout.
std::string encode_redirect_records(const std::vector<RedirectRecord>& records);
Result<std::vector<RedirectRecord>> decode_redirect_records(std::span<const uint8_t> blob, size_t max_records);

// The flow key (iface 0) of a frame: ENOENT-class error when it has none.
Result<xfp_flow_key> redirect_flow_key(std::span<const uint8_t> frame);

class Datapath;

class RedirectStore final : public RedirectService {
 public:
  // Installs the kernel entry of XFP_REDIRECT_OFFLOAD: 0 or a negative errno.
  using Offloader = std::function<int(const xfp_flow_key& key, uint8_t layer, uint32_t ifindex)>;

  explicit RedirectStore(const RedirectOptions& options = {});
  ~RedirectStore() override;
  RedirectStore(const RedirectStore&) = delete;
  RedirectStore& operator=(const RedirectStore&) = delete;

  // RedirectService
  int create_handle(const std::string& plugin, xfp_redirect_handle** handle) noexcept override;
  void destroy_handle(xfp_redirect_handle* handle) noexcept override;
  xfp_redirect_state redirect_state(const xfp_redirect_handle* handle,
                                    const xfp_classify_item* item) noexcept override;
  int redirect_flow(xfp_redirect_handle* handle, xfp_classify_item* item, const char* ifname, const void* context,
                    uint32_t context_len, uint32_t flags) noexcept override;
  void destroy_all_of(const std::string& plugin) noexcept override;

  // Before plugins load (not synchronised with redirect_flow).
  void set_offloader(Offloader offloader) { offloader_ = std::move(offloader); }

  // The same on raw bytes (tests and the item versions above use these).
  xfp_redirect_state state_of(const xfp_redirect_handle* handle, std::span<const uint8_t> frame) noexcept;
  // The handle's id (0 for an unknown handle).
  uint64_t id_of(const xfp_redirect_handle* handle) const noexcept;

  // The proxy side. What a query returns: the records blob or the latest
  // record's context.
  enum class What { Records, Context };
  struct Answer {
    size_t needed = 0;      // bytes the whole answer takes
    bool delivered = false; // `data` holds them (the buffer was large enough)
    std::string data;
  };
  // The seed's buffer rules: cap 0 -> needed only (success); cap < needed ->
  // not delivered ("insufficient buffer", needed set); else the bytes.
  // ENOENT when the frame's flow has no records, EINVAL for a frame without a flow.
  Result<Answer> query(std::span<const uint8_t> frame, What what, size_t cap);
  // Sets (replaces) the records of the frame's flow; an empty blob clears them.
  Status set_records(std::span<const uint8_t> frame, std::span<const uint8_t> blob);
  std::vector<RedirectFlow> list(size_t limit = 0);  // most recently used first; 0: all
  RedirectStats stats() const;
  const RedirectOptions& options() const { return options_; }

 private:
  struct KeyHash {
    size_t operator()(const xfp_flow_key& k) const noexcept;
  };
  struct KeyEq {
    bool operator()(const xfp_flow_key& a, const xfp_flow_key& b) const noexcept;
  };
  using Lru = std::list<RedirectFlow>;  // most recently used first

  // Under mu_.
  void expire_locked(uint64_t now);
  RedirectFlow* find_locked(const xfp_flow_key& key, uint64_t now);
  RedirectFlow& get_or_add_locked(const xfp_flow_key& key, uint64_t now);
  void erase_locked(const xfp_flow_key& key);
  // Sends the bytes out `ifname`: 0 or a negative errno.
  int send_out(const char* ifname, const uint8_t* data, size_t len) noexcept;

  RedirectOptions options_;
  Offloader offloader_;
  mutable std::mutex mu_;
  Lru lru_;
  std::unordered_map<xfp_flow_key, Lru::iterator, KeyHash, KeyEq> flows_;
  std::map<const xfp_redirect_handle*, std::unique_ptr<xfp_redirect_handle>> handles_;
  uint64_t next_id_ = 1;
  RedirectStats stats_;

  std::mutex sockets_mu_;
  std::map<std::string, int> sockets_;  // AF_PACKET senders by interface name
};

// The offloader of a daemon: Datapath::offload_flow with the generation
// installed at the time of the call.
RedirectStore::Offloader redirect_offloader(Datapath& datapath);

// The control ops redirect.query, redirect.set and redirect.list (the
// daemon's handle_request and the tests' in-process servers call this).
//   redirect.query {frame: HEX, what: "records"|"context", size?: N}
//     -> {result: "data"|"size"|"insufficient-buffer", needed: N, data?: HEX}
//   redirect.set {frame: HEX, records: HEX}
//   redirect.list {limit?: N} -> {flows: [{key, records: [{redirector, plugin, context}]}], stats, options}
Result<nlohmann::json> redirect_request(RedirectStore& store, const nlohmann::json& request);

}  // namespace xfp

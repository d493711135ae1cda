#include "xfp/callout_runtime.hpp"

#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include <bpf/libbpf.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "xfp/frame.hpp"
namespace xfp {

namespace {

// Receive queues of an interface (ETHTOOL_GCHANNELS; 1 when not reported).
uint32_t rx_queue_count(const std::string& ifname) {
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 1;
  ethtool_channels ch{};
  ch.cmd = ETHTOOL_GCHANNELS;
  ifreq ifr{};
  std::snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname.c_str());
  ifr.ifr_data = reinterpret_cast<char*>(&ch);
  uint32_t n = 1;
  if (::ioctl(fd, SIOCETHTOOL, &ifr) == 0) n = std::max({1u, ch.rx_count, ch.combined_count});
  ::close(fd);
  return n;
}

// The overload guard's capacity for a socket: a punted frame needs a free
// rx-ring slot and a free chunk in the fill ring, and every frame the guard
// lets through holds one of each until the worker gives it back. Less one
// frame per CPU: each CPU may pass the check at the last free slot at once.
uint32_t guard_capacity(const XskOptions& o) {
  const uint32_t room = std::min(o.ring_size, o.rx_frames);
  const int cpus = libbpf_num_possible_cpus();
  const uint32_t margin = cpus > 0 ? static_cast<uint32_t>(cpus) : 64;
  return room > margin ? room - margin : 1;
}

}  // namespace

CalloutRuntime::CalloutRuntime(Datapath& datapath, const CalloutRuntimeOptions& options)
    : dp_(datapath),
      options_(options),
      ports_(std::make_unique<MessagePortService>(options.ports)),
      redirects_(std::make_unique<RedirectStore>(options.redirects)),
      quarantined_(new std::atomic<uint8_t>[XFP_MAX_CALLOUTS]()) {
  host_.set_port_service(ports_.get());
  redirects_->set_offloader(redirect_offloader(dp_));  // XFP_REDIRECT_OFFLOAD: the kernel redirects the flow
  host_.set_redirect_service(redirects_.get());
  host_.set_on_served([this](uint16_t id, bool served) {
    // A load (or reload) ends a quarantine: the new plugin gets its chance.
    if (served && id < XFP_MAX_CALLOUTS && quarantined_[id].exchange(0, std::memory_order_relaxed))
      spdlog::info("callout id {} is served again: its quarantine ends", id);
    return dp_.set_callout_served(id, served);
  });
  host_.set_injection_service(this);
  host_.set_plugin_policy(options.plugins);
  offloads_ = std::make_unique<DatapathOffloads>(dp_);
  flows_ = std::make_unique<FlowServiceImpl>(host_, options.flows, offloads_.get());
  host_.set_flow_service(flows_.get());
  host_.set_iface_resolver([this](const std::string& ifname) -> uint32_t {
    std::lock_guard lock(mu_);
    for (auto& [key, itf] : interfaces_)
      if (itf.attachment.ifname == ifname) return key;
    return 0;
  });
  if (options_.classify_budget_ms > 0) watchdog_ = std::thread([this] { watchdog_loop(); });
}

CalloutRuntime::~CalloutRuntime() {
  // First the ports: a plugin thread waiting in port_send is released with
  // XFP_STATUS_SHUTTING_DOWN, so a fini that joins it below does not hang.
  ports_->shutdown();
  // Every flow ends (flow_delete once per context) while the plugins are
  // loaded; flows still in a classify end when it returns, before the
  // workers stop below.
  flows_->end_all();
  std::vector<uint32_t> keys;
  {
    std::lock_guard lock(mu_);
    for (auto& [key, itf] : interfaces_) keys.push_back(key);
  }
  for (uint32_t k : keys) detach(k);
  if (watchdog_.joinable()) {
    {
      std::lock_guard lock(watch_mu_);
      watch_stop_ = true;
    }
    watch_cv_.notify_all();
    watchdog_.join();
  }
  // Plugins go while the injection service (this) is whole: their handles
  // are destroyed through it.
  if (Status s = host_.unload_all(); !s) spdlog::warn("unloading plugins: {}", s.error().message);
}

Status CalloutRuntime::attach(const Attachment& a) {
  if (!a.inbound) return Ok{};  // outbound callouts use their fail action (no AF_XDP on egress)
  std::lock_guard lock(mu_);
  if (interfaces_.count(a.key)) return make_error(EEXIST, fmt::format("{}: workers run already", a.ifname));

  // The namespace's receive-injection veth, shared by its interfaces.
  Namespace& ns = namespaces_[a.compartment];
  if (!ns.link) {
    auto link = ReinjectLink::create();
    if (!link) {
      namespaces_.erase(a.compartment);
      return std::move(link).error().context(fmt::format("{}: the receive-injection link", a.ifname));
    }
    XskOptions tx_only = options_.socket;
    tx_only.rx = false;
    tx_only.rx_frames = 0;
    tx_only.frames = std::max(1024u, options_.socket.frames / 2);
    auto sock = XskSocket::open((*link)->ifname_a(), 0, tx_only);
    if (!sock) {
      namespaces_.erase(a.compartment);
      return std::move(sock).error().context(fmt::format("{}: the receive-injection socket", a.ifname));
    }
    ns.link = std::move(*link);
    ns.socket = std::move(*sock);
    ns.port = std::make_unique<TxPort>(*ns.socket, true);
  }
  if (Status s = ns.link->add_target(a.ifindex); !s) {
    if (ns.users == 0) namespaces_.erase(a.compartment);
    return std::move(s).error().context(a.ifname);
  }

  Interface itf;
  itf.attachment = a;
  const uint32_t queues = std::min(rx_queue_count(a.ifname), options_.max_queues);
  for (uint32_t q = 0; q < queues; ++q) {
    auto sock = XskSocket::open(a.ifname, q, options_.socket);
    if (!sock) {
      if (ns.users == 0) namespaces_.erase(a.compartment);
      return std::move(sock).error();
    }
    itf.sockets.push_back(std::move(*sock));
  }
  itf.send_port = std::make_unique<TxPort>(*itf.sockets[0], false);
  for (uint32_t q = 0; q < queues; ++q) {
    WorkerTarget t;
    t.ifname = a.ifname;
    t.ifindex = a.ifindex;
    t.key = a.key;
    t.queue = q;
    t.compartment = a.compartment;
    std::memcpy(t.mac, a.mac, 6);
    t.load = dp_.xsk_load(a.key, q);
    itf.workers.push_back(std::make_unique<PuntWorker>(t, *itf.sockets[q], *this, injector_,
                                                       [this] { return snapshot(); }, options_.worker,
                                                       flows_.get()));
  }
  ++ns.users;
  injector_.add_interface(a.key, a.ifindex, itf.send_port.get(), ns.port.get());
  // Last: from here on the kernel punts to the workers, each queue guarded
  // against overflowing its socket (counters zeroed for the new socket).
  const XskGuard guard{guard_capacity(options_.socket), options_.overload};
  for (uint32_t q = 0; q < queues; ++q)
    if (Status s = dp_.guard_xsk(a.key, q, guard); !s || !(s = dp_.bind_xsk(a.key, q, itf.sockets[q]->fd()))) {
      injector_.remove_interface(a.key);
      stop_interface(itf);
      if (--ns.users == 0) namespaces_.erase(a.compartment);
      return std::move(s).error().context(a.ifname);
    }
  spdlog::info("{}: {} callout worker{} (AF_XDP copy mode, receive injection through {})", a.ifname, queues,
               queues == 1 ? "" : "s", ns.link->ifname_a());
  if (watchdog_.joinable()) {
    std::lock_guard wlock(watch_mu_);
    for (uint32_t q = 0; q < queues; ++q) {
      Watched w;
      w.key = a.key;
      w.queue = q;
      w.ifname = a.ifname;
      w.xsk_fd = itf.sockets[q]->fd();
      w.stamp = &itf.workers[q]->stamp();
      watched_.push_back(std::move(w));
    }
  }
  interfaces_.emplace(a.key, std::move(itf));
  return Ok{};
}

void CalloutRuntime::stop_interface(Interface& itf) {
  unwatch(itf.attachment.key);  // first: the watchdog must not bind a socket again below
  for (size_t q = 0; q < itf.sockets.size(); ++q) (void)dp_.unbind_xsk(itf.attachment.key, static_cast<uint32_t>(q));
  itf.workers.clear();  // joins
}

void CalloutRuntime::detach(uint32_t key) {
  std::lock_guard lock(mu_);
  auto it = interfaces_.find(key);
  if (it == interfaces_.end()) return;
  Interface& itf = it->second;
  stop_interface(itf);
  // Its workers have stopped: no classify runs on its flows.
  flows_->detach(key);
  injector_.remove_interface(key);
  auto ns = namespaces_.find(itf.attachment.compartment);
  if (ns != namespaces_.end()) {
    (void)ns->second.link->remove_target(itf.attachment.ifindex);
    if (--ns->second.users == 0) namespaces_.erase(ns);
  }
  interfaces_.erase(it);
}

std::vector<WorkerStatus> CalloutRuntime::workers() const {
  std::vector<WorkerStatus> out;
  std::lock_guard lock(mu_);
  for (auto& [key, itf] : interfaces_)
    for (size_t q = 0; q < itf.workers.size(); ++q) {
      const WorkerCounters& c = itf.workers[q]->counters();
      WorkerStatus w;
      w.ifname = itf.attachment.ifname;
      w.queue = static_cast<uint32_t>(q);
      w.frames = c.frames;
      w.permitted = c.permitted;
      w.blocked = c.blocked;
      w.absorbed = c.absorbed;
      w.deliver_failed = c.deliver_failed;
      w.rescanned = c.rescanned;
      w.bad_meta = c.bad_meta;
      w.vetoed = c.vetoed;
      if (auto st = itf.sockets[q]->statistics()) {
        w.rx_dropped = st->rx_dropped;
        w.rx_ring_full = st->rx_ring_full;
        w.fill_ring_empty = st->rx_fill_ring_empty_descs;
        w.rx_invalid = st->rx_invalid_descs;
        w.tx_invalid = st->tx_invalid_descs;
        w.tx_ring_empty = st->tx_ring_empty_descs;
      }
      if (const xfp_xsk_load* g = dp_.xsk_load(key, static_cast<uint32_t>(q))) {
        const uint64_t punted = __atomic_load_n(&g->punted, __ATOMIC_RELAXED);
        const uint64_t consumed = __atomic_load_n(&g->consumed, __ATOMIC_RELAXED);
        w.in_flight = punted > consumed ? punted - consumed : 0;
        w.capacity = g->capacity;
        w.overloaded = __atomic_load_n(&g->overloaded, __ATOMIC_RELAXED);
      }
      out.push_back(w);
    }
  return out;
}

bool CalloutRuntime::classify(const Filter& filter, xfp_classify_item* items, uint32_t count) {
  const uint16_t id = PolicySnapshot::callout_id_of(filter);
  // Quarantined by the watchdog: not served (frames punted before the kernel
  // learnt it, or on other queues, take the fail action here).
  if (id < XFP_MAX_CALLOUTS && quarantined_[id].load(std::memory_order_relaxed)) return false;
  CalloutRef ref = host_.acquire(id);
  if (!ref) return false;
  const xfp_filter_info info = to_filter_info(filter);
  // The callout's context on each frame's flow. A callout conditional on
  // flow is called only for the frames whose flow carries its context; for
  // the others it is skipped, as if it had returned continue (WFP).
  const bool conditional = (ref->flags & XFP_CALLOUT_FLAG_CONDITIONAL_ON_FLOW) != 0;
  uint32_t with_context = 0;
  for (uint32_t i = 0; i < count; ++i) {
    const PuntFrameInfo* pi = punt_info_of(items[i].meta);
    items[i].flow_context = pi->flow.valid() ? flows_->table().context(pi->flow, items[i].meta->layer, ref->id) : 0;
    if (items[i].flow_context) ++with_context;
  }
  if (!conditional || with_context == count) {
    ref.classify(&info, items, count);
  } else if (with_context > 0) {
    // Only the frames with a context, as a chain of their own.
    std::vector<xfp_classify_item> sub;
    std::vector<uint32_t> at;
    sub.reserve(with_context);
    at.reserve(with_context);
    for (uint32_t i = 0; i < count; ++i)
      if (items[i].flow_context) {
        sub.push_back(items[i]);
        at.push_back(i);
      }
    if (count > 1)
      for (size_t k = 0; k < sub.size(); ++k) frame_set_next(sub[k].frame, k + 1 < sub.size() ? sub[k + 1].frame : nullptr);
    ref.classify(&info, sub.data(), static_cast<uint32_t>(sub.size()));
    for (size_t k = 0; k < sub.size(); ++k) items[at[k]] = sub[k];
  }
  for (uint32_t i = 0; i < count; ++i) {
    if (conditional && !items[i].flow_context) continue;  // skipped: action stays CONTINUE
    // An inspection callout only observes: its verdict counts as continue.
    if (filter.action == Action::CalloutInspection) items[i].action = XFP_ACTION_CONTINUE;
    if (items[i].action != XFP_ACTION_PERMIT && items[i].action != XFP_ACTION_BLOCK)
      items[i].action = XFP_ACTION_CONTINUE;
    if (items[i].flags & XFP_CLASSIFY_ABSORB) {
      const InjectionOrigin& o = punt_info_of(items[i].meta)->origin;
      if (o.handle_id) {
        std::lock_guard lock(absorbed_mu_);
        if (absorbed_origins_.size() > 4096) absorbed_origins_.clear();
        absorbed_origins_[items[i].frame] = o;
      }
    }
  }
  return true;
}

// ---- the classify watchdog ----------------------------------------------------------------

void CalloutRuntime::unwatch(uint32_t key) {
  std::lock_guard lock(watch_mu_);
  std::erase_if(watched_, [key](const Watched& w) { return w.key == key; });
}

void CalloutRuntime::watchdog_loop() {
  const auto tick = std::chrono::microseconds(std::max<uint64_t>(1000, options_.classify_budget_ms * 1000ull / 4));
  std::unique_lock lock(watch_mu_);
  while (!watch_cv_.wait_for(lock, tick, [this] { return watch_stop_; })) watch_tick(std::chrono::steady_clock::now());
}

// Under watch_mu_. Only lock-free calls into the host (acquire): a control
// thread may hold the host's lock while it waits for the very call that hangs.
void CalloutRuntime::watch_tick(std::chrono::steady_clock::time_point now) {
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  const auto budget = milliseconds(options_.classify_budget_ms);
  for (Watched& w : watched_) {
    const uint64_t word = w.stamp->word.load(std::memory_order_relaxed);
    if (word != w.last) {
      if (w.stuck) {
        // The call returned (or the worker moved on): its queue is served again.
        const auto ran = duration_cast<milliseconds>(now - w.since).count();
        if (Status s = dp_.bind_xsk(w.key, w.queue, w.xsk_fd); !s)
          spdlog::error("watchdog: {} queue {}: binding the socket again: {}", w.ifname, w.queue, s.error().message);
        else
          spdlog::warn("watchdog: {} queue {}: the classify of callout id {} returned after at least {} ms; the "
                       "queue is served again (the callout stays quarantined until its plugin is loaded again)",
                       w.ifname, w.queue, ClassifyStamp::callout_of(w.last), ran);
        auto& cw = callout_watch_[ClassifyStamp::callout_of(w.last)];
        cw.longest_ms = std::max<uint64_t>(cw.longest_ms, static_cast<uint64_t>(ran));
        w.stuck = false;
      }
      w.last = word;
      w.since = now;
      continue;
    }
    if (word == 0 || w.stuck || now - w.since < budget) continue;
    // Tripped: the same call has been running for the budget at least.
    const uint16_t id = ClassifyStamp::callout_of(word);
    const auto ran = duration_cast<milliseconds>(now - w.since).count();
    w.stuck = true;
    ++trips_;
    CalloutWatch& cw = callout_watch_[id];
    ++cw.trips;
    cw.longest_ms = std::max<uint64_t>(cw.longest_ms, static_cast<uint64_t>(ran));
    if (CalloutRef ref = host_.acquire(id)) cw.key = ref->key;
    const std::string name = cw.key.empty() ? fmt::format("id {}", id) : fmt::format("{} (id {})", cw.key, id);
    if (id > 0 && id < XFP_MAX_CALLOUTS) {
      quarantined_[id].store(1, std::memory_order_relaxed);
      if (Status s = dp_.set_callout_served(id, false); !s)
        spdlog::error("watchdog: callout {}: {}", name, s.error().message);
    }
    if (Status s = dp_.unbind_xsk(w.key, w.queue); !s)
      spdlog::error("watchdog: {} queue {}: {}", w.ifname, w.queue, s.error().message);
    spdlog::warn("watchdog: callout {} classify on {} queue {} has run for {} ms (budget {} ms): the callout is "
                 "quarantined (its filters take their fail action until its plugin is loaded again) and the queue's "
                 "socket leaves the XSKMAP until the call returns (the queue's other callouts take their fail action)",
                 name, w.ifname, w.queue, ran, options_.classify_budget_ms);
  }
}

WatchdogStatus CalloutRuntime::watchdog() const {
  WatchdogStatus st;
  st.budget_ms = options_.classify_budget_ms;
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(watch_mu_);
  st.trips = trips_;
  for (const auto& [id, cw] : callout_watch_) {
    if (cw.trips == 0) continue;
    st.callouts.push_back({id, cw.key, cw.trips, cw.longest_ms, quarantined(id)});
  }
  for (const Watched& w : watched_) {
    if (!w.stuck) continue;
    const uint16_t id = ClassifyStamp::callout_of(w.last);
    auto it = callout_watch_.find(id);
    const auto ms = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(now - w.since).count());
    st.stuck.push_back({w.ifname, w.queue, id, it != callout_watch_.end() ? it->second.key : "", ms});
    for (auto& c : st.callouts)
      if (c.id == id) c.longest_ms = std::max(c.longest_ms, ms);
  }
  return st;
}

bool CalloutRuntime::batch_capable(const Filter& filter) {
  CalloutRef ref = host_.acquire(PolicySnapshot::callout_id_of(filter));
  return ref && (ref->flags & XFP_CALLOUT_FLAG_BATCH);
}

int CalloutRuntime::create_handle(const std::string& plugin, uint32_t type, xfp_injection_handle** handle) noexcept {
  const void* owner;
  {
    std::lock_guard lock(owners_mu_);
    owner = &*owners_.insert(plugin).first;
  }
  return injector_.create_handle(owner, type, handle);
}

void CalloutRuntime::destroy_handle(xfp_injection_handle* handle) noexcept { injector_.destroy_handle(handle); }

int CalloutRuntime::inject(xfp_injection_handle* h, Injector::Path path, uint32_t iface, xfp_frame* frames,
                           uint64_t ctx, xfp_inject_complete_fn complete, void* cctx) noexcept {
  InjectionOrigin origin;
  {
    std::lock_guard lock(absorbed_mu_);
    if (auto it = absorbed_origins_.find(frames); it != absorbed_origins_.end()) {
      origin = std::move(it->second);
      absorbed_origins_.erase(it);
    }
  }
  return injector_.inject(h, path, iface, frames, ctx, complete, cctx, &origin);
}

int CalloutRuntime::inject_receive(xfp_injection_handle* h, uint32_t iface, xfp_frame* frames, uint64_t ctx,
                                   xfp_inject_complete_fn complete, void* cctx) noexcept {
  return inject(h, Injector::Path::Receive, iface, frames, ctx, complete, cctx);
}

int CalloutRuntime::inject_send(xfp_injection_handle* h, uint32_t iface, xfp_frame* frames, uint64_t ctx,
                                xfp_inject_complete_fn complete, void* cctx) noexcept {
  return inject(h, Injector::Path::Send, iface, frames, ctx, complete, cctx);
}

xfp_injection_state CalloutRuntime::injection_state(const xfp_injection_handle* handle, const xfp_classify_item* item,
                                                    uint64_t* inject_context) noexcept {
  if (!item || !item->meta) return XFP_NOT_INJECTED;
  const InjectionOrigin& o = punt_info_of(item->meta)->origin;
  if (inject_context) *inject_context = o.context;
  return Injector::state_for(handle, o);
}

void CalloutRuntime::destroy_all_of(const std::string& plugin) noexcept {
  const void* owner = nullptr;
  {
    std::lock_guard lock(owners_mu_);
    auto it = owners_.find(plugin);
    if (it == owners_.end()) return;
    owner = &*it;
  }
  injector_.destroy_handles_of(owner);
}

}  // namespace xfp

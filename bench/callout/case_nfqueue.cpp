// Case "nfqueue": the kernel's own way to ask user space about a packet.
//
// Receiving namespace: the veth carries an XDP_PASS program (the generator's
// XDP_TX frames only reach a veth with XDP set up), and
//   iptables-nft -t raw -A PREROUTING -i VETH -p udp -j NFQUEUE --queue-num N
// (the xt NFQUEUE target through nft_compat: this kernel has no nft queue
// statement, MACHINE_NOTES gotcha 9). No --queue-bypass and no fail-open: a
// packet the queue cannot hold is dropped and counted, which is what we
// measure. The consumer is one thread using libnetfilter_queue: copy mode
// (the whole packet, as a callout gets the whole frame), every packet
// accepted, verdicts in batches (nfq_set_verdict_batch: all ids up to the
// last one) of --batch packets, or fewer when the socket has nothing more to
// read (so a single packet is not held back in the latency mode).
//
// Counters: consumed = packets verdicted; dropped = the queue's
// queue_dropped (queue full) + user_dropped (netlink socket buffer full) from
// /proc/net/netfilter/nfnetlink_queue of the receiving namespace.
//
// Cleanup: stop() deletes the rule first (no new packets), then destroys the
// queue (unbinds it; the kernel drops what is still queued) and closes the
// handle. Deleting the namespace at the end would take the rule with it too.
// glibc's <netinet/in.h> before any <linux/...> header that pulls in
// <linux/in.h>: the kernel's libc-compat then stands back.
#include <netinet/in.h>
#include <linux/netfilter.h>
#include <linux/netlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libnetfilter_queue/libnetfilter_queue.h>

#include <sstream>

#include <fmt/format.h>

#include "bench_common.hpp"
#include "harness.hpp"
#include "xfpbc_xsk.skel.h"

namespace xfpbc {
namespace {

// The raw-table rule, removed on destruction.
class NfqueueRule {
 public:
  ~NfqueueRule() { remove(); }
  xfp::Status add(const std::string& ns, const std::string& dev, uint32_t qnum) {
    ns_ = ns;
    spec_ = {"-t", "raw", "PREROUTING", "-i", dev, "-p", "udp", "-j", "NFQUEUE", "--queue-num", std::to_string(qnum)};
    std::string out;
    if (run(ns_, "-A", &out) != 0) {
      ns_.clear();
      return xfp::make_error(EIO, "iptables-nft -t raw -A PREROUTING ... -j NFQUEUE failed (is the Debian package "
                                  "iptables installed?): " + out);
    }
    return xfp::Ok{};
  }
  void remove() {
    if (ns_.empty()) return;
    std::string out;
    if (run(ns_, "-D", &out) != 0)
      fprintf(stderr, "xfp-bench-callout: removing the NFQUEUE rule failed (the namespace's removal takes it): %s\n",
              out.c_str());
    ns_.clear();
  }

 private:
  int run(const std::string& ns, const char* op, std::string* out) const {
    // argv: ip netns exec NS iptables-nft -t raw OP PREROUTING ...; stderr joined into `out`.
    std::string cmd = "iptables-nft";
    for (size_t i = 0; i < spec_.size(); ++i) {
      cmd += " ";
      cmd += (i == 2) ? std::string(op) + " " + spec_[i] : spec_[i];
    }
    return xfpbench::run_command({"ip", "netns", "exec", ns, "sh", "-c", cmd + " 2>&1"}, false, out);
  }
  std::string ns_;
  std::vector<std::string> spec_;
};

struct QueueCounters {
  uint64_t queue_dropped = 0, user_dropped = 0;
  bool found = false;
};

// /proc/net/netfilter/nfnetlink_queue of the calling thread's namespace:
// queue_num portid queue_total copy_mode copy_range queue_dropped user_dropped id_seq 1
QueueCounters read_queue_counters(uint32_t qnum) {
  QueueCounters c;
  auto text = xfpbench::read_file("/proc/thread-self/net/netfilter/nfnetlink_queue");
  if (!text) return c;
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream l(line);
    uint64_t q, portid, total, mode, range, qd, ud;
    if (!(l >> q >> portid >> total >> mode >> range >> qd >> ud)) continue;
    if (q != qnum) continue;
    c.queue_dropped = qd;
    c.user_dropped = ud;
    c.found = true;
  }
  return c;
}

class NfqueueCase final : public Case {
 public:
  ~NfqueueCase() override { stop(); }
  std::string name() const override { return "nfqueue"; }

  xfp::Status start(const CaseEnv& env) override {
    env_ = env;
    skel_.reset(xfpbc_xsk__open_and_load());
    if (!skel_) return xfp::errno_error("loading the XDP_PASS program");
    XFP_TRY(xdp_.attach(env.rx_ifindex, bpf_program__fd(skel_->progs.xfpbc_pass)));

    // The queue is bound before the rule exists, so no packet meets a queue
    // without a listener (which the kernel would drop).
    h_ = nfq_open();  // a netlink socket in the calling thread's (receiving) namespace
    if (!h_) return xfp::errno_error("nfq_open");
    qh_ = nfq_create_queue(h_, static_cast<uint16_t>(env.queue_num), &NfqueueCase::on_packet, this);
    if (!qh_) return xfp::errno_error(fmt::format("binding NFQUEUE {}", env.queue_num));
    if (nfq_set_mode(qh_, NFQNL_COPY_PACKET, 0xffff) < 0) return xfp::errno_error("nfq_set_mode copy-packet");
    if (nfq_set_queue_maxlen(qh_, env.queue_maxlen) < 0) return xfp::errno_error("nfq_set_queue_maxlen");
    const int fd = nfq_fd(h_);
    // A large socket buffer so that the queue length, not the socket, is what
    // overflows first; ENOBUFS is not reported to us (the kernel counts it as
    // user_dropped, which we read).
    int rcvbuf = 32 << 20, one = 1;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf);
    setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof one);
    // A blocking recv wakes up every 100 ms to see the stop flag.
    timeval tv{0, 100000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    base_ = read_queue_counters(env.queue_num);

    consumed_.store(0);
    worker_.start(env.rx_ns_fd, env.consumer_cpu, [this, fd](const std::atomic<bool>& stop) { return loop(fd, stop); });
    XFP_TRY(rule_.add(env.rx_ns, env.rx_dev, env.queue_num));
    detail_ = fmt::format("iptables-nft raw PREROUTING -i {} -p udp -j NFQUEUE --queue-num {}; libnetfilter_queue "
                          "copy-packet, maxlen {}, batch verdict {} ({})",
                          env.rx_dev, env.queue_num, env.queue_maxlen, env.batch,
                          env.spin ? "spinning recv" : "blocking recv");
    return xfp::Ok{};
  }

  CaseCounters counters() const override {
    CaseCounters c;
    c.consumed = consumed_.load(std::memory_order_relaxed);
    auto q = read_queue_counters(env_.queue_num);
    c.drop_detail["queue_dropped"] = q.queue_dropped - base_.queue_dropped;
    c.drop_detail["user_dropped"] = q.user_dropped - base_.user_dropped;
    c.dropped = c.drop_detail["queue_dropped"] + c.drop_detail["user_dropped"];
    c.consumer_cpu_ns = worker_.cpu_ns();
    return c;
  }
  std::string detail() const override { return detail_; }
  std::string failure() const override { return worker_.failure(); }

  void stop() override {
    rule_.remove();
    worker_.stop();
    if (qh_) nfq_destroy_queue(qh_);
    qh_ = nullptr;
    if (h_) nfq_close(h_);
    h_ = nullptr;
    xdp_.reset();
    skel_.reset();
  }

 private:
  static int on_packet(nfq_q_handle*, nfgenmsg*, nfq_data* nfa, void* data) {
    auto* self = static_cast<NfqueueCase*>(data);
    if (auto* ph = nfq_get_msg_packet_hdr(nfa)) {
      self->last_id_ = ntohl(ph->packet_id);
      ++self->pending_;
    }
    return 0;
  }

  xfp::Status flush() {
    if (!pending_) return xfp::Ok{};
    // Accepts every queued packet with an id up to last_id_ in one message.
    if (nfq_set_verdict_batch(qh_, last_id_, NF_ACCEPT) < 0) return xfp::errno_error("nfq_set_verdict_batch");
    consumed_.fetch_add(pending_, std::memory_order_relaxed);
    pending_ = 0;
    return xfp::Ok{};
  }

  xfp::Status loop(int fd, const std::atomic<bool>& stop) {
    alignas(8) static thread_local char buf[65536];
    while (!stop.load(std::memory_order_relaxed)) {
      // Block only when no verdict is owed: a held-back verdict would hold
      // the packets (and in the latency mode the one probe) in the queue.
      const int flags = (pending_ || env_.spin) ? MSG_DONTWAIT : 0;
      ssize_t n = recv(fd, buf, sizeof buf, flags);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
          XFP_TRY(flush());
          continue;
        }
        if (errno == ENOBUFS) continue;  // counted by the kernel as user_dropped
        return xfp::errno_error("NFQUEUE recv");
      }
      nfq_handle_packet(h_, buf, static_cast<int>(n));
      if (pending_ >= env_.batch) XFP_TRY(flush());
    }
    return flush();
  }

  CaseEnv env_;
  struct SkelDel {
    void operator()(xfpbc_xsk* s) const { xfpbc_xsk__destroy(s); }
  };
  std::unique_ptr<xfpbc_xsk, SkelDel> skel_;
  XdpAttachment xdp_;
  nfq_handle* h_ = nullptr;
  nfq_q_handle* qh_ = nullptr;
  NfqueueRule rule_;
  Worker worker_;
  QueueCounters base_;
  std::atomic<uint64_t> consumed_{0};
  uint32_t last_id_ = 0, pending_ = 0;  // consumer thread only
  std::string detail_;
};

}  // namespace

std::unique_ptr<Case> make_nfqueue_case() { return std::make_unique<NfqueueCase>(); }

}  // namespace xfpbc

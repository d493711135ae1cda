// xfp-bench-callout's harness: what a measured case is (the Case interface
// that nfqueue, rxdrop, stack and the xfp callout implement), the consumer
// thread owner, the traffic generator, the UDP echo and the latency prober.
//
// Threads and namespaces: the main thread lives in the receiving namespace
// (bench/veth's Topology moves it there), so a case's start()/stop() run
// there: XDP attachments, AF_XDP sockets, NFQUEUE netlink sockets and
// iptables rules all act on the receiving veth. Consumer threads enter the
// receiving namespace explicitly (Worker); the generator and the latency
// prober run in the sending namespace.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "xfp/result.hpp"

namespace xfpbc {

enum class Mode {
  Throughput,  // the generator floods the receiving veth; the case consumes and counts
  Latency,     // one UDP datagram at a time from the sending namespace; it must come back
};

// Addresses of the bench's private network (198.18.0.0/15, RFC 2544 test range).
inline constexpr uint32_t kTxIp = 0xc6120001;  // 198.18.0.1 on the sending veth
inline constexpr uint32_t kRxIp = 0xc6130001;  // 198.19.0.1 on the receiving veth
inline constexpr uint16_t kEchoPort = 7;        // the harness's UDP echo in the receiving namespace
inline constexpr uint16_t kSinkPort = 9;        // throughput frames' port: no socket (UdpNoPorts)

// What the harness gives a case.
struct CaseEnv {
  Mode mode = Mode::Throughput;
  int rx_ns_fd = -1;          // the receiving namespace (for consumer threads)
  std::string rx_ns;          // its name (for `ip netns exec`)
  std::string rx_dev;         // the receiving veth, inside rx_ns
  uint32_t rx_ifindex = 0;
  int consumer_cpu = -1;      // pin consumer threads to this CPU (-1: no pinning)
  bool poll = false;          // AF_XDP: block in poll() instead of spinning
  bool spin = false;          // NFQUEUE: spin on a non-blocking recv instead of blocking
  uint32_t batch = 64;        // frames per consumer batch (verdict batch, ring batch)
  uint32_t ring_size = 2048;  // AF_XDP ring sizes
  uint32_t queue_num = 7;     // NFQUEUE queue number
  uint32_t queue_maxlen = 8192;
  std::string punt_carrier = "auto";  // xfp-callout: DatapathOptions::carrier (auto, metadata, in-band)
};

// Cumulative counters of a case since start(). The harness takes deltas.
struct CaseCounters {
  uint64_t consumed = 0;       // frames the consumer handled (verdicted / received / permitted)
  uint64_t dropped = 0;        // frames lost on the way to the consumer (queue or ring full)
  std::map<std::string, uint64_t> drop_detail;  // the same, by cause (kernel's own names)
  uint64_t consumer_cpu_ns = 0;  // CPU time (user+sys) of the consumer thread(s)
  // Time a spinning consumer spent on batches that held frames (wall clock
  // around each batch; 0: not measured): its cost where an empty ring, not
  // work, keeps it busy, i.e. where the generator sets the rate.
  uint64_t consumer_busy_ns = 0;
  bool has_consumer = true;    // false: no user-space consumer (the stack baseline)
};

// One system under test on the receiving veth.
class Case {
 public:
  virtual ~Case() = default;
  virtual std::string name() const = 0;
  // Sets up on the receiving veth and starts the consumer. Called on the main
  // thread (inside the receiving namespace). In Mode::Latency a frame must get
  // back to the sender: a case either returns it itself (echoes_itself()) or
  // lets it into the receiving namespace's stack, where the harness's UDP echo
  // on port 7 answers.
  virtual xfp::Status start(const CaseEnv& env) = 0;
  virtual bool echoes_itself() const { return false; }
  virtual CaseCounters counters() const = 0;
  virtual std::string detail() const = 0;  // one line: what exactly ran
  // xfp-callout: the punt header's carrier its XDP program was loaded with
  // ("metadata", "in-band"); empty for the other cases.
  virtual std::string punt_carrier() const { return {}; }
  virtual std::string failure() const { return {}; }  // set when the consumer died after start()
  // Stops the consumer and undoes everything start() did. Idempotent; the
  // destructor of every case calls it too.
  virtual void stop() = 0;
};

std::unique_ptr<Case> make_nfqueue_case();
std::unique_ptr<Case> make_rxdrop_case();
std::unique_ptr<Case> make_stack_case();
// The xfp callout (permit-all callout: punt, classify, receive-inject).
// case_xfp.cpp; its plugin is permit_all.c (built beside the bench).
std::unique_ptr<Case> make_xfp_callout_case();

// ---- consumer threads ---------------------------------------------------------
// Owns one thread that enters a network namespace, optionally pins itself to
// a CPU and runs body(stop_flag). Its CPU time is readable while it runs and
// kept after it ends.
class Worker {
 public:
  using Body = std::function<xfp::Status(const std::atomic<bool>& stop)>;
  ~Worker() { stop(); }
  void start(int ns_fd, int cpu, Body body);
  void stop();  // sets the flag and joins; idempotent
  uint64_t cpu_ns() const;
  std::string failure() const;  // the body's error, if it returned one
  bool running() const { return th_.joinable() && !done_.load(); }

 private:
  std::thread th_;
  std::atomic<bool> stop_{false}, done_{false};
  std::atomic<uint64_t> final_cpu_ns_{0};
  mutable std::atomic<uint64_t> last_cpu_ns_{0};
  std::string failure_;  // written by the thread before done_
};

// ---- RAII ---------------------------------------------------------------------
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = o.release();
    }
    return *this;
  }
  int get() const { return fd_; }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }
  void reset();

 private:
  int fd_ = -1;
};

// A native-mode XDP attachment of a program fd to an ifindex of the calling
// thread's namespace, detached on destruction (only if it is still ours).
class XdpAttachment {
 public:
  XdpAttachment() = default;
  ~XdpAttachment() { reset(); }
  XdpAttachment(const XdpAttachment&) = delete;
  XdpAttachment& operator=(const XdpAttachment&) = delete;
  xfp::Status attach(uint32_t ifindex, int prog_fd);
  void reset();

 private:
  uint32_t ifindex_ = 0;
  uint32_t prog_id_ = 0;
};

// ---- helpers ------------------------------------------------------------------
// Reads /proc/thread-self/net/... (the calling thread's namespace).
std::map<std::string, uint64_t> read_snmp(const std::string& section);  // "Udp" -> {"NoPorts": ..}
void pin_to_cpu(int cpu);
// Sleeps up to `secs`, returning early when the bench is being stopped.
void sleep_for(double secs);

}  // namespace xfpbc

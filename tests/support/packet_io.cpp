#include "support/packet_io.hpp"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace xfp::test {

// ---------------------------------------------------------------------------
// PacketSocket

Result<PacketSocket> PacketSocket::open(const NetNs& ns, const std::string& ifname) {
  return open(ns, ifname, Options{});
}

Result<PacketSocket> PacketSocket::open(const NetNs& ns, const std::string& ifname, const Options& options) {
  PacketSocket sock;
  sock.ifname_ = ifname;
  {
    // The socket belongs to the namespace it is created in, for good.
    auto inside = ScopedNetnsEnter::enter(ns);
    if (!inside) return std::move(inside).error();
    sock.fd_ = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
    if (sock.fd_ < 0) return errno_error("opening an AF_PACKET socket in " + ns.name());
    sock.ifindex_ = static_cast<int>(::if_nametoindex(ifname.c_str()));
    if (sock.ifindex_ == 0) return make_error(ENODEV, "no interface '" + ifname + "' in namespace " + ns.name());
  }

  const int one = 1;
  if (::setsockopt(sock.fd_, SOL_PACKET, PACKET_AUXDATA, &one, sizeof one) != 0)
    return errno_error("PACKET_AUXDATA");
  if (options.ignore_outgoing &&
      ::setsockopt(sock.fd_, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one) != 0)
    return errno_error("PACKET_IGNORE_OUTGOING");
  if (options.receive_buffer_bytes > 0) {
    // SO_RCVBUFFORCE passes rmem_max (we are privileged); fall back quietly.
    if (::setsockopt(sock.fd_, SOL_SOCKET, SO_RCVBUFFORCE, &options.receive_buffer_bytes,
                     sizeof options.receive_buffer_bytes) != 0)
      (void)::setsockopt(sock.fd_, SOL_SOCKET, SO_RCVBUF, &options.receive_buffer_bytes,
                         sizeof options.receive_buffer_bytes);
  }

  sockaddr_ll addr{};
  addr.sll_family = AF_PACKET;
  addr.sll_protocol = htons(ETH_P_ALL);
  addr.sll_ifindex = sock.ifindex_;
  if (::bind(sock.fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    return errno_error("binding an AF_PACKET socket to " + ifname + " in " + ns.name());
  // Between socket() and bind() the socket saw every interface of the
  // namespace; those frames are not the caller's.
  sock.drain();
  return sock;
}

PacketSocket::PacketSocket(PacketSocket&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      ifindex_(std::exchange(other.ifindex_, 0)),
      ifname_(std::move(other.ifname_)) {}

PacketSocket& PacketSocket::operator=(PacketSocket&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    ifindex_ = std::exchange(other.ifindex_, 0);
    ifname_ = std::move(other.ifname_);
  }
  return *this;
}

PacketSocket::~PacketSocket() {
  if (fd_ >= 0) ::close(fd_);
}

Status PacketSocket::send_frame(std::span<const uint8_t> frame) {
  if (fd_ < 0) return make_error(EBADF, "send on a closed packet socket");
  while (true) {
    const ssize_t n = ::send(fd_, frame.data(), frame.size(), 0);
    if (n == static_cast<ssize_t>(frame.size())) return Ok{};
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_error("sending a " + std::to_string(frame.size()) + "-byte frame on " + ifname_);
    return make_error(EIO, "short send on " + ifname_ + ": " + std::to_string(n) + " of " +
                               std::to_string(frame.size()) + " bytes");
  }
}

Status PacketSocket::send_frames(const std::vector<Frame>& frames) {
  for (const auto& f : frames) XFP_TRY(send_frame(f));
  return Ok{};
}

void PacketSocket::drain() {
  if (fd_ < 0) return;
  uint8_t buf[2048];
  while (::recv(fd_, buf, sizeof buf, MSG_DONTWAIT | MSG_TRUNC) >= 0) {
  }
}

Result<std::vector<Frame>> PacketSocket::receive(std::chrono::milliseconds window, const FramePredicate& keep,
                                                 size_t stop_after) {
  std::vector<Frame> kept;
  if (fd_ < 0) return make_error(EBADF, "receive on a closed packet socket");
  if (stop_after == 0) return kept;
  const auto deadline = std::chrono::steady_clock::now() + window;
  // Room for the largest veth frame plus a VLAN tag we may put back.
  std::vector<uint8_t> buf(65536 + 4);
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(tpacket_auxdata))];

  while (true) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    // One last non-blocking pass even at the deadline: frames already queued count.
    pollfd p{fd_, POLLIN, 0};
    const int ready = ::poll(&p, 1, left.count() > 0 ? static_cast<int>(left.count()) : 0);
    if (ready < 0) {
      if (errno == EINTR) continue;
      return errno_error("poll on " + ifname_);
    }
    if (ready == 0) return kept;

    // Read everything queued before polling again.
    while (true) {
      iovec iov{buf.data() + 4, buf.size() - 4};
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      const ssize_t n = ::recvmsg(fd_, &msg, MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        if (errno == EINTR) continue;
        return errno_error("receiving on " + ifname_);
      }
      uint8_t* start = buf.data() + 4;
      size_t len = static_cast<size_t>(n);
      for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_PACKET || c->cmsg_type != PACKET_AUXDATA) continue;
        tpacket_auxdata aux;
        std::memcpy(&aux, CMSG_DATA(c), sizeof aux);
        if (!(aux.tp_status & TP_STATUS_VLAN_VALID) || len < 12) continue;
        const uint16_t tpid = (aux.tp_status & TP_STATUS_VLAN_TPID_VALID) ? aux.tp_vlan_tpid : 0x8100;
        // Shift the two MACs left by 4 bytes and write the tag after them.
        std::memmove(start - 4, start, 12);
        start -= 4;
        start[12] = static_cast<uint8_t>(tpid >> 8);
        start[13] = static_cast<uint8_t>(tpid);
        start[14] = static_cast<uint8_t>(aux.tp_vlan_tci >> 8);
        start[15] = static_cast<uint8_t>(aux.tp_vlan_tci);
        len += 4;
      }
      const std::span<const uint8_t> frame(start, len);
      if (keep && !keep(frame)) continue;
      kept.emplace_back(frame.begin(), frame.end());
      if (kept.size() >= stop_after) return kept;
    }
    if (left.count() <= 0) return kept;
  }
}

// ---------------------------------------------------------------------------
// BPF_PROG_TEST_RUN

TestRunResult test_run(int prog_fd, const std::vector<uint8_t>& frame, uint32_t repeat, bool xdp) {
  TestRunOptions options;
  options.repeat = repeat;
  options.xdp = xdp;
  return test_run(prog_fd, frame, options);
}

TestRunResult test_run(int prog_fd, const std::vector<uint8_t>& frame, const TestRunOptions& options) {
  TestRunResult result;
  // An XDP program may grow the frame (adjust_tail) or the kernel may hand
  // back headroom changes; leave room so data_out is never cut short.
  result.data_out.resize(frame.size() + 4096);

  xdp_md xdp_ctx{};
  __sk_buff skb_ctx{};
  LIBBPF_OPTS(bpf_test_run_opts, opts);
  opts.data_in = frame.data();
  opts.data_size_in = static_cast<__u32>(frame.size());
  opts.data_out = result.data_out.data();
  opts.data_size_out = static_cast<__u32>(result.data_out.size());
  opts.repeat = options.repeat;
  opts.flags = options.flags;
  if (options.ifindex != 0) {
    if (options.xdp) {
      // The context describes the frame itself: data_end left at 0 is not
      // refused by every kernel, and the program then classifies something
      // other than data_in. No metadata, queue 0 of the device.
      xdp_ctx.data = 0;
      xdp_ctx.data_meta = 0;
      xdp_ctx.data_end = static_cast<__u32>(frame.size());
      xdp_ctx.ingress_ifindex = options.ifindex;
      xdp_ctx.rx_queue_index = 0;
      opts.ctx_in = &xdp_ctx;
      opts.ctx_size_in = sizeof xdp_ctx;
    } else {
      skb_ctx.ifindex = options.ifindex;
      opts.ctx_in = &skb_ctx;
      opts.ctx_size_in = sizeof skb_ctx;
    }
  }

  const int rc = bpf_prog_test_run_opts(prog_fd, &opts);
  if (rc != 0) {
    // libbpf 1.x returns -errno (and sets errno).
    result.err = rc < 0 ? -rc : (errno ? errno : EIO);
    result.data_out.clear();
    return result;
  }
  result.retval = opts.retval;
  result.duration_ns = opts.duration;
  result.data_out.resize(std::min<size_t>(opts.data_size_out, result.data_out.size()));
  return result;
}

}  // namespace xfp::test

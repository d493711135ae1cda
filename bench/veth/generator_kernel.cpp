// The kernel generator (generator.hpp): BPF_PROG_TEST_RUN with
// BPF_F_TEST_XDP_LIVE_FRAMES on the XDP_TX program, whose frames leave
// through ctx.ingress_ifindex (the sending veth) into its peer.
#include <linux/bpf.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>

#include "generator.hpp"
#include "topology.hpp"

namespace xfpbench {

namespace {

int live_frames_run(int prog_fd, uint32_t ifindex, std::vector<uint8_t>& data, int repeat, int batch) {
  xdp_md ctx{};
  ctx.data_end = static_cast<__u32>(data.size());
  ctx.ingress_ifindex = ifindex;
  LIBBPF_OPTS(bpf_test_run_opts, run, .data_in = data.data(), .data_size_in = static_cast<__u32>(data.size()),
              .ctx_in = &ctx, .ctx_size_in = sizeof ctx, .repeat = repeat, .flags = BPF_F_TEST_XDP_LIVE_FRAMES,
              .batch_size = static_cast<__u32>(batch));
  return bpf_prog_test_run_opts(prog_fd, &run);
}

}  // namespace

int probe_kernel_generator(int prog_fd, uint32_t ifindex, const std::vector<uint8_t>& frame) {
  std::vector<uint8_t> data = frame;
  int err = live_frames_run(prog_fd, ifindex, data, 1, 1);
  return err < 0 ? -err : 0;
}

void run_kernel_generator(const GeneratorOptions& o, GeneratorState& st) {
  std::vector<uint8_t> data = o.frame;
  while (!st.stop.load(std::memory_order_relaxed) && !g_stop.load(std::memory_order_relaxed)) {
    int err = live_frames_run(o.prog_fd, o.ifindex, data, o.chunk, o.batch);
    if (err == -EINTR) continue;
    if (err) {
      st.error.store(-err);
      return;
    }
    st.sent.fetch_add(static_cast<uint64_t>(o.chunk), std::memory_order_relaxed);
  }
}

}  // namespace xfpbench

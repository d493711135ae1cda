// Probes of the kernel features the fast path chooses between.
#include "xfp/kernel_features.hpp"

#include <linux/bpf.h>
#include <unistd.h>

#include <bpf/bpf.h>

namespace xfp {

bool xdp_metadata_helper_available() {
  // A four-instruction XDP program that calls the helper, loaded for real.
  // libbpf_probe_bpf_helper() is no use here: it reads the verifier's log
  // for "unknown func" and counts any other refusal (such as "program of
  // this type cannot use helper") as support.
  const bpf_insn prog[] = {
      {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_2, 0, 0, 0},  // r2 = 0: no room asked, the call is what is checked
      {BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_xdp_adjust_meta},
      {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, XDP_PASS},
      {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
  };
  int fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "xfp_probe_meta", "GPL", prog, sizeof prog / sizeof prog[0], nullptr);
  if (fd < 0) return false;
  close(fd);
  return true;
}

}  // namespace xfp

// What the running kernel gives xfp, probed without attaching anything.
#pragma once

namespace xfp {

// Whether XDP programs may call bpf_xdp_adjust_meta: loads a tiny XDP
// program calling it (libbpf_probe_bpf_helper says yes on kernels that
// refuse it with a message it does not know). Some kernels refuse the helper
// to XDP programs at load; the punt header then travels in band.
bool xdp_metadata_helper_available();

}  // namespace xfp

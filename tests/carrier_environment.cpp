// Runs a test binary with the punt-header carrier that the datapath's auto
// choice does not take, so that both carriers are tested on every kernel
// that has both. Compiled into each privileged suite; it acts only when
// XFP_TEST_CARRIER=second (the suites' second ctest registration, named
// "second_carrier/..."): it then sets XFP_PUNT_CARRIER for the process and
// the daemons it starts. Where auto already takes in band because the
// kernel refuses bpf_xdp_adjust_meta to XDP programs, the metadata carrier
// cannot run: every test of the binary is skipped, saying so.
#include <cstdlib>
#include <cstring>

#include <gtest/gtest.h>

#include "xfp/kernel_features.hpp"

namespace {

class SecondCarrierEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    const char* v = std::getenv("XFP_TEST_CARRIER");
    if (!v || std::strcmp(v, "second") != 0) return;
    if (!xfp::xdp_metadata_helper_available())
      GTEST_SKIP() << "optional kernel feature missing: bpf_xdp_adjust_meta for XDP programs, so the metadata "
                      "carrier cannot run here; the suite's first registration ran with the in-band carrier";
    ::setenv("XFP_PUNT_CARRIER", "in-band", 1);  // auto takes the metadata area on this kernel
  }
};

const ::testing::Environment* const kSecondCarrier =
    ::testing::AddGlobalTestEnvironment(new SecondCarrierEnvironment);

}  // namespace

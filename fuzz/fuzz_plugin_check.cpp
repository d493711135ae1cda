// The plugin loader's checks (user/callout_host.cpp): check_plugin_info() on
// the xfp_plugin descriptor a library exports, and check_callout() on what a
// plugin's init passes to register_callout(). CalloutHost::load() and
// register_callout() run exactly these checks before anything of the plugin
// is trusted (then only the host's state: a name or key already taken).
//
// The descriptor's integers (abi_version, size, flags) come from the input
// as they are; its pointers cannot be arbitrary bytes (a plugin that points
// at garbage crashes the daemon before any check could help), so each one is
// null or points at something valid, chosen by the input: strings are copied
// from the input into buffers of exactly their size plus the NUL, so ASan
// sees any read past the terminator; hooks are null or a function here.
//
// Checks: the verdict equals an independent reference (ABI version 1,
// size >= sizeof(xfp_plugin_info), a name of 1-63 bytes of [A-Za-z0-9_.-],
// an init hook; a key of the same form, no unknown flag bits, classify and
// notify hooks, flow_delete with CONDITIONAL_ON_FLOW); the error code is
// ENOEXEC for the ABI checks and EINVAL for the others; the message is
// non-empty printable ASCII (it goes to logs and to the CLI as it is).
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "fuzz_common.hpp"
#include "xfp/callout_host.hpp"

namespace {

using Input = xfp::fuzz::ByteReader;

int init_hook(const xfp_host_api*, xfp_host*, const char*, void**) { return 0; }
void fini_hook(void*) {}
void classify_hook(void*, const xfp_filter_info*, xfp_classify_item*, uint32_t) {}
int notify_hook(void*, xfp_notify_type, const xfp_filter_info*) { return 0; }
void flow_delete_hook(void*, uint8_t, uint64_t, uint64_t) {}

bool valid_name(const char* s) {
  size_t len = 0;
  for (; len < 64 && s[len] != '\0'; ++len) {
    const unsigned char c = static_cast<unsigned char>(s[len]);
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                    c == '.' || c == '-';
    if (!ok) return false;
  }
  return len >= 1 && len <= 63;
}

void check_message(const xfp::Error& e) {
  XFP_FUZZ_CHECK(!e.message.empty());
  for (unsigned char c : e.message) XFP_FUZZ_CHECK(c >= 0x20 && c < 0x7f);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in{data, size};
  const uint8_t shape = in.byte();

  // The descriptor. Mostly the right ABI and size, so the later checks are reached.
  xfp_plugin_info info{};
  info.abi_version = (shape & 1) ? static_cast<uint32_t>(in.le(4)) : XFP_CALLOUT_ABI_VERSION;
  info.size = (shape & 2) ? static_cast<uint32_t>(in.le(4)) : static_cast<uint32_t>(sizeof(xfp_plugin_info));
  auto name = in.string(80);
  auto description = in.string(80);
  if (!(shape & 4)) info.name = name.get();
  if (shape & 8) info.description = description.get();
  if (!(shape & 16)) info.init = &init_hook;
  if (shape & 32) info.fini = &fini_hook;

  const xfp::Status st = xfp::check_plugin_info(info);
  int want = 0;
  if (info.abi_version != XFP_CALLOUT_ABI_VERSION || info.size < sizeof(xfp_plugin_info)) want = ENOEXEC;
  else if (!info.name || !valid_name(info.name) || !info.init) want = EINVAL;
  XFP_FUZZ_CHECK(st.ok() == (want == 0));
  if (!st.ok()) {
    XFP_FUZZ_CHECK(st.error().code == want);
    check_message(st.error());
  }

  // The callouts init would register.
  const int callouts = in.byte() % 5;
  for (int i = 0; i < callouts; ++i) {
    const uint8_t hooks = in.byte();
    xfp_callout c{};
    auto key = in.string(80);
    auto desc = in.string(80);
    if (!(hooks & 1)) c.key = key.get();
    if (hooks & 2) c.description = desc.get();
    c.flags = (hooks & 4) ? static_cast<uint32_t>(in.le(4)) : (in.byte() & XFP_CALLOUT_KNOWN_FLAGS);
    c.pad = static_cast<uint32_t>(in.le(4));
    if (!(hooks & 8)) c.classify = &classify_hook;
    if (!(hooks & 16)) c.notify = &notify_hook;
    if (hooks & 32) c.flow_delete = &flow_delete_hook;
    const bool null_callout = (hooks & 0xc0) == 0xc0;

    const xfp::Status cs = xfp::check_callout(null_callout ? nullptr : &c);
    const bool ok = !null_callout && c.key && valid_name(c.key) && (c.flags & ~uint32_t{XFP_CALLOUT_KNOWN_FLAGS}) == 0 &&
                    c.classify && c.notify && (!(c.flags & XFP_CALLOUT_FLAG_CONDITIONAL_ON_FLOW) || c.flow_delete);
    XFP_FUZZ_CHECK(cs.ok() == ok);
    if (!cs.ok()) {
      XFP_FUZZ_CHECK(cs.error().code == EINVAL);
      check_message(cs.error());
    }
  }
  return 0;
}

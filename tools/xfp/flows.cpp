// `xfp flows`: the daemon's flow table. The daemon side (op "flows") lists
// the flows with their keys in words, ages, contexts per callout and
// offloaded verdicts with the kernel's counters; the client side prints
// them as a table or passes the JSON through.
#include <arpa/inet.h>

#include <iostream>
#include <map>

#include <fmt/format.h>

#include "cli.hpp"
#include "xfp/control.hpp"

namespace xfp::cli {

namespace {

using nlohmann::json;

std::string mac_text(const uint8_t* m) {
  return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4], m[5]);
}

std::string addr_text(const xfp_flow_key& k, const uint8_t* a) {
  char buf[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(k.ip_version == 6 ? AF_INET6 : AF_INET, a, buf, sizeof buf);
  return k.ip_version == 6 ? fmt::format("[{}]", buf) : std::string(buf);
}

std::string protocol_name(uint8_t p) {
  switch (p) {
    case 1: return "icmp";
    case 6: return "tcp";
    case 17: return "udp";
    case 58: return "icmpv6";
    case 132: return "sctp";
    default: return fmt::format("proto {}", p);
  }
}

std::string ethertype_name(uint16_t t) {
  switch (t) {
    case 0: return "llc";
    case 0x0800: return "ipv4";
    case 0x86dd: return "ipv6";
    case 0x0806: return "arp";
    case 0x88cc: return "lldp";
    default: return fmt::format("ethertype 0x{:04x}", t);
  }
}

// "tcp 198.18.0.1:40000 <-> 198.18.0.2:80 vlan 5 (02:..:01 <-> 02:..:02)".
std::string key_words(const xfp_flow_key& k) {
  std::string out;
  const std::string macs = fmt::format("{} <-> {}", mac_text(k.mac_a), mac_text(k.mac_b));
  if (k.ip_version == 4 || k.ip_version == 6) {
    const bool ports = k.port_a || k.port_b;
    auto endpoint = [&](const uint8_t* a, uint16_t port) {
      return ports ? fmt::format("{}:{}", addr_text(k, a), port) : addr_text(k, a);
    };
    out = fmt::format("{} {} <-> {}", protocol_name(k.protocol), endpoint(k.addr_a, k.port_a),
                      endpoint(k.addr_b, k.port_b));
    if (k.vlan) out += fmt::format(" vlan {}", k.vlan);
    out += " (" + macs + ")";
  } else {
    out = ethertype_name(k.ethertype) + " " + macs;
    if (k.vlan) out += fmt::format(" vlan {}", k.vlan);
  }
  return out;
}

const char* verdict_name(uint8_t v) {
  switch (v) {
    case XFP_FLOW_VERDICT_PERMIT: return "permit";
    case XFP_FLOW_VERDICT_BLOCK: return "block";
    case XFP_FLOW_VERDICT_REDIRECT: return "redirect";
    default: return "?";
  }
}

double ms_between(uint64_t earlier, uint64_t later) {
  return later > earlier ? static_cast<double>(later - earlier) / 1e6 : 0.0;
}

}  // namespace

Result<json> op_flows(Engine& e, const json& req) {
  CalloutRuntime* rt = e.callouts();
  if (!rt) return make_error(EOPNOTSUPP, "the daemon runs without callouts (--no-callouts): no flows are tracked");
  size_t limit = 0;
  if (auto it = req.find("limit"); it != req.end()) {
    if (!it->is_number_unsigned()) return make_error(EINVAL, "bad request: 'limit' must be a non-negative integer");
    limit = it->get<size_t>();
  }
  FlowServiceImpl& flows = rt->flows();
  std::map<uint32_t, std::string> ifnames;
  for (const Attachment& a : e.status().attachments) ifnames[a.key] = a.ifname;
  std::map<uint16_t, std::string> callouts;
  for (const PluginRecord& p : e.plugins())
    for (const CalloutRecord& c : p.callouts) callouts[c.id] = c.key;
  std::map<uint64_t, std::vector<OffloadRecord>> offloads;
  for (OffloadRecord& r : flows.offloads()) offloads[r.handle].push_back(std::move(r));

  const uint64_t now = FlowServiceImpl::now_ns();
  json list = json::array();
  for (const FlowSnapshot& f : flows.table().list(limit)) {
    json contexts = json::array();
    for (const FlowContextInfo& c : f.contexts) {
      auto name = callouts.find(c.callout);
      contexts.push_back({{"callout", name != callouts.end() ? name->second : std::to_string(c.callout)},
                          {"callout_id", c.callout},
                          {"layer", layer_name(static_cast<Layer>(c.layer))},
                          {"context", c.context}});
    }
    json offload = json::array();
    for (const OffloadRecord& r : offloads[f.handle]) {
      auto name = callouts.find(r.callout);
      offload.push_back({{"layer", layer_name(static_cast<Layer>(r.key.layer))},
                         {"verdict", verdict_name(r.verdict)},
                         {"callout", name != callouts.end() ? name->second : std::to_string(r.callout)},
                         {"generations", {r.gen_first, r.gen_last}},
                         {"packets", r.packets},
                         {"bytes", r.bytes},
                         {"kernel_idle_ms", r.last_seen_ns ? ms_between(r.last_seen_ns, now) : -1.0}});
    }
    auto ifname = ifnames.find(f.key.iface);
    list.push_back({{"handle", fmt::format("{:016x}", f.handle)},
                    {"key", key_words(f.key)},
                    {"device", ifname != ifnames.end() ? ifname->second : std::to_string(f.key.iface)},
                    {"vlan", f.key.vlan},
                    {"ethertype", f.key.ethertype},
                    {"protocol", f.key.protocol},
                    {"age_ms", ms_between(f.first_seen_ns, now)},
                    {"idle_ms", ms_between(f.last_seen_ns, now)},
                    {"contexts", std::move(contexts)},
                    {"offload", std::move(offload)}});
  }
  const FlowServiceStats st = flows.stats();
  json ended = json::object();
  for (int r = 0; r < static_cast<int>(FlowEndReason::Count); ++r)
    ended[flow_end_reason_name(static_cast<FlowEndReason>(r))] = st.table.ended[r];
  const FlowTableOptions& o = flows.table().options();
  return json{{"flows", std::move(list)},
              {"count", st.table.flows},
              {"max_flows", o.max_flows},
              {"idle_timeout_s", static_cast<double>(o.idle_timeout_ns) / 1e9},
              {"stats",
               {{"created", st.table.created},
                {"contexts", st.table.contexts},
                {"flow_deletes", st.table.flow_deletes},
                {"untracked", st.table.untracked},
                {"ended", std::move(ended)},
                {"memory_bytes", st.table.memory_bytes},
                {"offloaded", st.offloaded},
                {"offloads_installed", st.offloads_installed},
                {"offloads_mismatch", st.offloads_mismatch},
                {"offloads_dropped", st.offloads_dropped}}}};
}

std::string render_flows(const json& r) {
  std::vector<std::vector<std::string>> rows{{"HANDLE", "DEVICE", "FLOW", "AGE", "IDLE", "CONTEXTS", "OFFLOAD"}};
  auto seconds = [](const json& j, const char* k) { return fmt::format("{:.1f}s", j.value(k, 0.0) / 1000.0); };
  for (const json& f : r.value("flows", json::array())) {
    std::string contexts;
    for (const json& c : f.value("contexts", json::array()))
      contexts += fmt::format("{}{}={}", contexts.empty() ? "" : " ", c.value("callout", std::string()),
                              c.value("context", uint64_t{0}));
    std::string offload;
    for (const json& o : f.value("offload", json::array()))
      offload += fmt::format("{}{} {} ({} pkts, {} B)", offload.empty() ? "" : "; ", o.value("layer", std::string()),
                             o.value("verdict", std::string()), o.value("packets", uint64_t{0}),
                             o.value("bytes", uint64_t{0}));
    rows.push_back({f.value("handle", std::string()), f.value("device", std::string()), f.value("key", std::string()),
                    seconds(f, "age_ms"), seconds(f, "idle_ms"), contexts.empty() ? "-" : contexts,
                    offload.empty() ? "-" : offload});
  }
  std::string out = render_table(rows);
  const json st = r.value("stats", json::object());
  out += fmt::format("{} flow(s) tracked (at most {}), {} shown; idle timeout {}s; {} context(s); {} offloaded\n",
                     r.value("count", uint64_t{0}), r.value("max_flows", uint64_t{0}),
                     r.value("flows", json::array()).size(), r.value("idle_timeout_s", 0.0),
                     st.value("contexts", uint64_t{0}), st.value("offloaded", uint64_t{0}));
  return out;
}

int cmd_flows(const Global& g, size_t limit) {
  json req{{"op", "flows"}};
  if (limit) req["limit"] = limit;
  auto r = request(g, req);
  if (!r) return fail(r.error());
  if (g.json) std::cout << control::dump(*r) << std::endl;
  else std::cout << render_flows(*r);
  return kExitOk;
}

}  // namespace xfp::cli

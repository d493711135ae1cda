// The client side of each `xfp` command: parse locally (the filter language,
// interface names in this namespace), send one request, print the reply.
#include <net/if.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include <fmt/format.h>

#include "cli.hpp"
#include "xfp/control.hpp"
#include "xfp/filter_json.hpp"
#include "xfp/filter_syntax.hpp"

namespace xfp::cli {

namespace {

using nlohmann::json;

Result<uint32_t> resolve_interface(std::string_view name) {
  unsigned idx = ::if_nametoindex(std::string(name).c_str());
  if (idx == 0) return make_error(ENODEV, fmt::format("unknown interface '{}'", name));
  return static_cast<uint32_t>(idx);
}

// --json prints the reply without its "ok" member.
void print_json(json reply) {
  reply.erase("ok");
  std::cout << reply.dump(2) << "\n";
}

json transaction_request(const std::vector<Command>& commands) {
  json list = json::array();
  for (const Command& c : commands) list.push_back(command_to_json(c));
  return {{"op", "transaction"}, {"commands", std::move(list)}};
}

// Sends a one-request command; prints the reply as JSON with --json, else
// with `text` (which may print nothing).
template <typename Text>
int simple(const Global& g, const json& req, Text text) {
  auto reply = request(g, req);
  if (!reply) return fail(reply.error());
  if (g.json) print_json(std::move(*reply));
  else std::cout << text(*reply);
  return kExitOk;
}

std::string no_text(const json&) { return ""; }

Result<std::string> read_input(const std::string& file) {
  std::string text;
  if (file == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    if (std::cin.bad()) return errno_error("reading standard input");
    return text;
  }
  std::error_code ec;
  if (std::filesystem::is_directory(file, ec)) return make_error(EISDIR, "cannot read " + file + ": it is a directory");
  std::ifstream in(file, std::ios::binary);
  if (!in) return errno_error("cannot read " + file);
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return errno_error("reading " + file);
  return ss.str();
}

// ---- --watch ------------------------------------------------------------------

volatile sig_atomic_t g_interrupted = 0;

void on_interrupt(int) { g_interrupted = 1; }

void catch_interrupts() {
  struct sigaction sa {};
  sa.sa_handler = on_interrupt;  // no SA_RESTART: the sleep returns early
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
}

void sleep_seconds(double s) {
  timespec ts{static_cast<time_t>(s), static_cast<long>((s - std::floor(s)) * 1e9)};
  ::nanosleep(&ts, nullptr);  // EINTR on Ctrl-C: the loop then stops
}

// Per-second differences of every number in `now` against `before`, keyed
// the same way (objects recurse; arrays are left out).
json rates_of(const json& now, const json& before, double seconds) {
  json out = json::object();
  for (auto it = now.begin(); it != now.end(); ++it) {
    auto prev = before.find(it.key());
    if (prev == before.end()) continue;
    if (it->is_object() && prev->is_object()) {
      out[it.key()] = rates_of(*it, *prev, seconds);
    } else if (it->is_number_unsigned() && prev->is_number_unsigned()) {
      const auto a = it->get<uint64_t>(), b = prev->get<uint64_t>();
      out[it.key()] = a >= b ? static_cast<double>(a - b) / seconds : 0.0;  // counters reset: 0
    }
  }
  return out;
}

// Filters keyed by id, for rates_of.
json counters_by_id(const json& reply) {
  json out = json::object();
  for (const json& f : reply.value("filters", json::array()))
    out[std::to_string(f.value("id", uint64_t{0}))] = {{"frames", f.value("frames", uint64_t{0})},
                                                      {"bytes", f.value("bytes", uint64_t{0})}};
  return out;
}

// Fetches `req` every `interval` seconds until Ctrl-C and redraws it. On a
// terminal the screen is cleared each time; otherwise samples follow each
// other (one JSON document per line with --json).
template <typename Render, typename Keyed>
int watch(const Global& g, const json& req, double interval, Render render, Keyed keyed) {
  catch_interrupts();
  const bool tty = ::isatty(STDOUT_FILENO) != 0;
  json previous;
  auto previous_time = std::chrono::steady_clock::now();
  while (!g_interrupted) {
    auto reply = request(g, req);
    if (!reply) return fail(reply.error());
    auto now = std::chrono::steady_clock::now();
    json rates;
    if (!previous.is_null()) {
      double dt = std::chrono::duration<double>(now - previous_time).count();
      rates = rates_of(keyed(*reply), keyed(previous), dt > 0 ? dt : 1);
    }
    if (g.json) {
      json sample = *reply;
      sample.erase("ok");
      if (!rates.is_null()) sample["rates"] = rates;
      std::cout << sample.dump() << std::endl;
    } else {
      std::string screen = fmt::format("every {}s, Ctrl-C to stop\n\n", interval) +
                           render(*reply, rates.is_null() ? nullptr : &rates);
      std::cout << (tty ? "\033[H\033[2J" : "") << screen << (tty ? "" : "\n") << std::flush;
    }
    previous = std::move(*reply);
    previous_time = now;
    sleep_seconds(interval);
  }
  return kExitOk;
}

json status_keyed(const json& reply) { return reply.value("counters", json::object()); }

}  // namespace

Result<json> request(const Global& g, const json& req) {
  auto client = control::Client::connect(g.socket);
  if (!client) return std::move(client).error();
  return client->call(req);
}

int cmd_attach(const Global& g, const std::string& dev, const std::string& mode, const std::string& layers) {
  json req = {{"op", "attach"},
              {"device", dev},
              {"mode", mode},
              {"inbound", layers != "outbound"},
              {"outbound", layers != "inbound"}};
  return simple(g, req, [](const json& reply) -> std::string {
    const json a = reply.value("attachment", json::object());
    std::string in = a.value("inbound", false)
                         ? fmt::format("inbound XDP {} mode, loader {}", a.value("xdp_mode", ""), a.value("loader", ""))
                         : "inbound off";
    std::string out = a.value("outbound", false) ? "outbound TC egress" : "outbound off";
    return fmt::format("attached {} (ifindex {}): {}; {}\n", a.value("device", ""), a.value("ifindex", 0), in, out);
  });
}

int cmd_detach(const Global& g, const std::string& dev) {
  return simple(g, {{"op", "detach"}, {"device", dev}}, no_text);
}

int cmd_filter_add(const Global& g, const std::vector<std::string>& words) {
  auto f = parse_filter(words, resolve_interface);
  if (!f) return fail(f.error(), kExitUsage);
  Command c;
  c.kind = Command::Kind::AddFilter;
  c.filter = std::move(*f);
  return simple(g, transaction_request({c}), [](const json& reply) -> std::string {
    std::string out;
    for (const json& id : reply.value("added", json::array())) out += "added filter " + id.dump() + "\n";
    return out;
  });
}

int cmd_policy(const Global& g, const std::vector<std::string>& words) {
  auto c = parse_command(words, resolve_interface);
  if (!c) return fail(c.error(), kExitUsage);
  return simple(g, transaction_request({*c}), no_text);
}

// The parser tells ids from names (parse_filter_delete); only a filter named
// "id" or "name", which it would read as the keyword, is spelled out.
int cmd_filter_delete(const Global& g, const std::string& ref) {
  if (ref == "id" || ref == "name") return cmd_policy(g, {"filter", "delete", "name", ref});
  return cmd_policy(g, {"filter", "delete", ref});
}

int cmd_filter_list(const Global& g, const std::string& layer) {
  json req = {{"op", "filter.list"}};
  if (!layer.empty()) req["layer"] = layer;
  return simple(g, req, [](const json& reply) { return render_filter_list(reply.value("filters", json::array())); });
}

int cmd_filter_show(const Global& g, const std::string& ref) {
  return simple(g, {{"op", "filter.show"}, {"ref", ref}}, render_filter);
}

int cmd_sublayer_list(const Global& g) { return simple(g, {{"op", "sublayer.list"}}, render_sublayers); }

int cmd_apply(const Global& g, const std::string& file) {
  auto text = read_input(file);
  if (!text) return fail(text.error());
  auto commands = parse_batch(*text, file == "-" ? "<stdin>" : file, resolve_interface);
  if (!commands) return fail(commands.error(), kExitUsage);
  if (commands->empty())
    return fail((file == "-" ? std::string("<stdin>") : file) + " holds no commands: nothing applied", kExitUsage);
  const size_t n = commands->size();
  return simple(g, transaction_request(*commands), [&](const json& reply) {
    return fmt::format("applied {} command(s) from {}: generation {}\n", n, file == "-" ? "<stdin>" : file,
                       reply.value("generation", uint64_t{0}));
  });
}

int cmd_status(const Global& g, std::optional<double> watch_seconds) {
  const json req = {{"op", "status"}};
  if (watch_seconds) return watch(g, req, *watch_seconds, render_status, status_keyed);
  return simple(g, req, [](const json& reply) { return render_status(reply, nullptr); });
}

int cmd_counters(const Global& g, std::optional<double> watch_seconds) {
  const json req = {{"op", "counters"}};
  if (watch_seconds) return watch(g, req, *watch_seconds, render_counters, counters_by_id);
  return simple(g, req, [](const json& reply) { return render_counters(reply, nullptr); });
}

int cmd_callout_load(const Global& g, const std::string& path, const std::string& config) {
  // The daemon opens the file: an absolute path, so that it names the same file.
  std::error_code ec;
  std::string abs = std::filesystem::absolute(path, ec).lexically_normal().string();
  if (ec) abs = path;
  return simple(g, {{"op", "callout.load"}, {"path", abs}, {"config", config}}, [](const json& r) {
    const json p = r.value("plugin", json::object());
    std::string out = fmt::format("loaded {}:", p.value("name", std::string()));
    for (const json& c : p.value("callouts", json::array()))
      out += " " + c.value("key", std::string());
    return out + "\n";
  });
}

int cmd_callout_unload(const Global& g, const std::string& name) {
  return simple(g, {{"op", "callout.unload"}, {"name", name}}, no_text);
}

int cmd_callout_list(const Global& g) {
  return simple(g, {{"op", "callout.list"}},
                [](const json& r) { return render_plugins(r.value("plugins", json::array())); });
}

}  // namespace xfp::cli

// xfp-bench-port: messages per second and latency of xfp's message ports
// (MessagePortServer, the daemon's side, in this process; a client thread on
// libxfp-client) against a plain AF_UNIX SOCK_SEQPACKET socket pair between
// two threads, measured in the same run. See bench/README.md.
//
// Cases, each with and without replies:
//  - xfp, reply:    a sender thread calls send() with a reply buffer (the
//                   FltSendMessage pattern); the client gets and replies.
//                   Latency: the send() call, i.e. the round trip.
//  - plain, reply:  ping-pong: write, then read the answer; the peer reads
//                   and writes back. Latency: write to answer read.
//  - xfp, no reply: send() without a reply buffer; the client gets.
//  - plain, no reply: ping-pong as well, since a port delivers a message
//                   only to a waiting get: the peer writes a 24-byte "get"
//                   and reads the message; the sender reads the get and
//                   writes. (A one-way stream would measure batching in the
//                   socket buffer, which FltSendMessage's semantics exclude.)
//                   Latency (no reply): one way, sender's clock stamp in the
//                   message to the receiver's read (both CLOCK_MONOTONIC).
// CPU per message: the process's user+system time (every thread) / messages.
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "bench_common.hpp"
#include "xfp/message_port.hpp"
#include "xfp/port_client.h"

namespace {

using xfpbench::now_ns;

struct Result {
  std::string name;
  bool reply = false;
  uint64_t messages = 0;
  double seconds = 0;
  double cpu_seconds = 0;
  std::vector<double> lat_us;  // per message
  double rate() const { return messages / seconds; }
  double pct(double p) const {
    if (lat_us.empty()) return 0;
    std::vector<double> v = lat_us;
    size_t k = std::min(v.size() - 1, static_cast<size_t>(p * v.size()));
    std::nth_element(v.begin(), v.begin() + k, v.end());
    return v[k];
  }
  double cpu_us_per_msg() const { return cpu_seconds * 1e6 / messages; }
};

double cpu_now() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

void stamp(std::vector<uint8_t>& msg) {
  uint64_t t = now_ns();
  std::memcpy(msg.data(), &t, sizeof t);
}
uint64_t stamp_of(const void* p) {
  uint64_t t;
  std::memcpy(&t, p, sizeof t);
  return t;
}

Result run_xfp(const std::string& dir, uint64_t n, size_t size, bool reply) {
  xfp::port::Options o;
  o.dir = dir;
  o.name = "bench";
  auto server = xfp::port::MessagePortServer::create(o, {});
  if (!server) {
    std::cerr << "xfp-bench-port: " << server.error().message << "\n";
    std::exit(1);
  }
  xfp_port_conn* conn = nullptr;
  if (int rc = xfp_port_connect((*server)->path().c_str(), nullptr, 0, &conn); rc != 0) {
    std::cerr << "xfp-bench-port: connect: " << std::strerror(-rc) << "\n";
    std::exit(1);
  }
  const uint64_t client = xfp_port_client_id(conn);
  Result r;
  r.name = "xfp port";
  r.reply = reply;
  r.messages = n;
  r.lat_us.resize(n);
  std::vector<double> oneway(n);
  std::thread receiver([&] {
    std::vector<uint8_t> buf(size + 64);
    for (uint64_t i = 0; i < n; ++i) {
      size_t len = 0;
      uint64_t id = 0;
      uint32_t flags = 0;
      if (xfp_port_get_message(conn, buf.data(), buf.size(), &len, &id, &flags, 10000) != 0) {
        std::cerr << "xfp-bench-port: the client got no message\n";
        std::exit(1);
      }
      if (reply)
        xfp_port_reply(conn, id, buf.data(), len);
      else
        oneway[i] = (now_ns() - stamp_of(buf.data())) / 1e3;
    }
  });
  std::vector<uint8_t> msg(size, 0x5a), ans(size + 64);
  const double cpu0 = cpu_now();
  const uint64_t t0 = now_ns();
  for (uint64_t i = 0; i < n; ++i) {
    stamp(msg);
    size_t got = 0;
    const uint64_t s = now_ns();
    auto st = reply ? (*server)->send(client, msg.data(), msg.size(), ans.data(), ans.size(), &got)
                    : (*server)->send(client, msg.data(), msg.size());
    if (st != xfp::port::SendStatus::kSuccess) {
      std::cerr << "xfp-bench-port: send: " << xfp::port::to_string(st) << "\n";
      std::exit(1);
    }
    if (reply) r.lat_us[i] = (now_ns() - s) / 1e3;
  }
  receiver.join();
  r.seconds = (now_ns() - t0) / 1e9;
  r.cpu_seconds = cpu_now() - cpu0;
  if (!reply) r.lat_us = oneway;
  xfp_port_close(conn);
  return r;
}

Result run_plain(uint64_t n, size_t size, bool reply) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    std::perror("socketpair");
    std::exit(1);
  }
  Result r;
  r.name = "plain SEQPACKET";
  r.reply = reply;
  r.messages = n;
  r.lat_us.resize(n);
  std::vector<double> oneway(n);
  // The same bytes per message as xfp's frames (a 24-byte header + payload).
  const size_t wire = size + 24;
  std::thread peer([&] {
    std::vector<uint8_t> buf(wire + 64);
    for (uint64_t i = 0; i < n; ++i) {
      if (!reply && ::send(sv[1], buf.data(), 24, MSG_NOSIGNAL) != 24) std::exit(1);  // the "get"
      ssize_t k = ::recv(sv[1], buf.data(), buf.size(), 0);
      if (k <= 0) std::exit(1);
      if (reply)
        (void)!::send(sv[1], buf.data(), static_cast<size_t>(k), MSG_NOSIGNAL);
      else
        oneway[i] = (now_ns() - stamp_of(buf.data())) / 1e3;
    }
  });
  std::vector<uint8_t> msg(wire, 0x5a), ans(wire + 64);
  const double cpu0 = cpu_now();
  const uint64_t t0 = now_ns();
  for (uint64_t i = 0; i < n; ++i) {
    if (!reply && ::recv(sv[0], ans.data(), ans.size(), 0) <= 0) std::exit(1);  // wait for the "get"
    stamp(msg);
    const uint64_t s = now_ns();
    if (::send(sv[0], msg.data(), msg.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(msg.size())) std::exit(1);
    if (reply) {
      if (::recv(sv[0], ans.data(), ans.size(), 0) <= 0) std::exit(1);
      r.lat_us[i] = (now_ns() - s) / 1e3;
    }
  }
  peer.join();
  r.seconds = (now_ns() - t0) / 1e9;
  r.cpu_seconds = cpu_now() - cpu0;
  if (!reply) r.lat_us = oneway;
  ::close(sv[0]);
  ::close(sv[1]);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"xfp-bench-port: message-port throughput and latency vs a plain Unix SEQPACKET ping-pong"};
  uint64_t messages = 100000;
  size_t size = 64;
  int rounds = 3;
  std::string json_file;
  app.add_option("-n,--messages", messages, "messages per case and round")->capture_default_str();
  app.add_option("-s,--size", size, "payload bytes per message (at least 8)")->capture_default_str();
  app.add_option("-r,--rounds", rounds, "rounds; the median round's figures are reported")->capture_default_str();
  app.add_option("--json", json_file, "also write the results as JSON to FILE ('-': stdout, table to stderr)");
  CLI11_PARSE(app, argc, argv);
  size = std::max<size_t>(size, 8);
  if (size > XFP_PORT_MAX_MESSAGE) size = XFP_PORT_MAX_MESSAGE;

  std::ostream& out = json_file == "-" ? std::cerr : std::cout;
  char tmpl[] = "/tmp/xfp-bench-port.XXXXXX";
  if (!::mkdtemp(tmpl)) {
    std::perror("mkdtemp");
    return 1;
  }
  const std::string dir = tmpl;
  out << "machine: " << xfpbench::describe(xfpbench::machine_facts()) << "\n"
      << "reproduce: " << xfpbench::reproduce_command(argc, argv) << "\n"
      << fmt::format("{} messages of {} bytes per case, {} rounds (median round shown)\n\n", messages, size, rounds);

  nlohmann::json j;
  j["machine"] = xfpbench::to_json(xfpbench::machine_facts());
  j["messages"] = messages;
  j["size"] = size;
  out << fmt::format("{:<16} {:<8} {:>12} {:>10} {:>10} {:>12}\n", "case", "replies", "msgs/s", "p50 us", "p99 us",
                     "CPU us/msg");
  bool pass = true;
  for (bool reply : {true, false}) {
    std::vector<Result> xr, pr;
    for (int k = 0; k < rounds; ++k) {  // interleaved: both see the same machine
      xr.push_back(run_xfp(dir, messages, size, reply));
      pr.push_back(run_plain(messages, size, reply));
    }
    auto median = [](std::vector<Result>& v) {
      std::sort(v.begin(), v.end(), [](const Result& a, const Result& b) { return a.rate() < b.rate(); });
      return v[v.size() / 2];
    };
    Result x = median(xr), p = median(pr);
    for (const Result* r : {&x, &p}) {
      out << fmt::format("{:<16} {:<8} {:>12.0f} {:>10.1f} {:>10.1f} {:>12.2f}\n", r->name, reply ? "yes" : "no",
                         r->rate(), r->pct(0.50), r->pct(0.99), r->cpu_us_per_msg());
      j["results"].push_back({{"case", r->name},
                              {"replies", reply},
                              {"messages_per_second", r->rate()},
                              {"p50_us", r->pct(0.50)},
                              {"p99_us", r->pct(0.99)},
                              {"cpu_us_per_message", r->cpu_us_per_msg()},
                              {"latency", reply ? "round trip" : "one way"}});
    }
    const double ratio = x.rate() / p.rate();
    j[reply ? "ratio_with_replies" : "ratio_without_replies"] = ratio;
    out << fmt::format("  xfp / plain throughput ({}): {:.2f}  {}\n", reply ? "with replies" : "without replies", ratio,
                       ratio >= 0.8 ? "PASS (target >= 0.80)" : "FAIL (target >= 0.80)");
    pass = pass && ratio >= 0.8;
  }
  out << "\nlatency: round trip with replies; one way (sender's stamp to the receiver's read) without.\n";
  j["pass"] = pass;
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  if (!json_file.empty()) {
    if (json_file == "-") {
      std::cout << j.dump(2) << "\n";
    } else {
      std::ofstream f(json_file);
      f << j.dump(2) << "\n";
    }
  }
  return 0;
}

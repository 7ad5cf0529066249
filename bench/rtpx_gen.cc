// rtpx-gen: a DPDK RTP traffic generator and sink for media relays. It owns IPv4 addresses and a
// MAC on one DPDK port (memif, af_packet on a veth, ...), answers ARP, sets N sessions up on the
// relay (rtpx over gRPC, rtpengine over NG, or none for reflectors such as testpmd), sends each
// session's RTP through the relay and measures what comes out: rate, loss, reordering,
// duplicates, one-way latency (same host, same TSC) and RFC 3550 jitter.
//   rtpx-gen --vdev net_memif0,role=server,socket=/run/rtpxgen/memif.sock --ip 10.99.0.10
//            --setup rtpx --grpc 127.0.0.1:50051 --streams 100 --duration 10
// See bench/README.md.
#include <fmt/format.h>
#include <rte_ether.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <map>
#include <random>
#include <thread>

#include "bench/gen_engine.h"
#include "bench/gen_setup.h"

namespace {

using namespace rtpx::gen;
using Clock = std::chrono::steady_clock;

std::atomic<bool> g_stop{false};

void onSignal(int) {
  g_stop.store(true);
}

struct Interval {
  double t;
  uint64_t tx, rx, lost;
  int64_t lost_cum;
  double p50_us, p99_us, max_us;
};

std::string jsonEscape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\')
      o += '\\', o += c;
    else if (static_cast<unsigned char>(c) < 0x20)
      o += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
    else
      o += c;
  }
  return o;
}

// Expands "a.b.c.d[/len]" lists (comma separated; repeated options); --ip-count N makes the
// first address the start of N consecutive ones.
bool parseAddresses(const std::vector<std::string>& in, unsigned count, std::vector<uint32_t>* out,
                    std::string* err) {
  for (const auto& opt : in) {
    size_t pos = 0;
    while (pos <= opt.size()) {
      size_t comma = opt.find(',', pos);
      if (comma == std::string::npos) comma = opt.size();
      std::string a = opt.substr(pos, comma - pos);
      pos = comma + 1;
      if (a.empty()) continue;
      if (auto slash = a.find('/'); slash != std::string::npos) a = a.substr(0, slash);
      auto ip = parseIpv4(a);
      if (!ip) {
        *err = fmt::format("'{}' is not an IPv4 address", a);
        return false;
      }
      out->push_back(*ip);
    }
  }
  if (out->empty()) {
    *err = "no address (--ip)";
    return false;
  }
  for (unsigned i = 1; i < count; ++i) out->push_back(out->front() + i);
  std::sort(out->begin(), out->end());
  out->erase(std::unique(out->begin(), out->end()), out->end());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"rtpx-gen — DPDK RTP generator and sink for media relays"};
  app.set_help_flag("-h,--help");
  app.option_defaults()->always_capture_default();
  EngineConfig ec;
  SetupConfig sc;
  std::string vdev, setup = "rtpx", grpc_addr = "127.0.0.1:50051", ng_addr, dst, dst_mac_s, mac_s,
                    json_path, cpus_s = "0", srtp_key;
  std::vector<std::string> ips{"10.99.0.10"};
  unsigned ip_count = 1, streams = 1, payload_size = 160, ptime = 20, pt = 0;
  double rate = -1, duration = 10, warmup = 1, drain = 0.5, link_timeout = 30, arp_timeout = 5;
  bool bidir = false, no_cksum = false, keep = false, quiet = false;
  int main_cpu = -1;
  app.add_option("--vdev", ec.vdev,
                 "DPDK virtual device: net_memif0,role=server,socket=PATH | "
                 "net_af_packet0,iface=VETH");
  app.add_option("-l,--lcores", cpus_s,
                 "CPUs of the traffic lcores: one (TX+RX in one loop) or two (TX,RX)");
  app.add_option("--main-cpu", main_cpu,
                 "CPU of the control lcore (default: the first traffic CPU)");
  app.add_option("--file-prefix", ec.file_prefix, "EAL --file-prefix");
  app.add_option("-m,--memory", ec.memory_mb, "EAL memory in MB");
  app.add_flag("--huge", ec.hugepages, "Use hugepages (default: --no-huge)");
  app.add_option("--eal", ec.eal_extra, "Extra EAL argument (repeatable), e.g. --eal=-a --eal=PCI");
  app.add_option("--mbufs", ec.mbufs, "mbufs in the pool");
  app.add_option("--mac", mac_s, "The generator's MAC (default: the port's)");
  app.add_option("--ip", ips, "The generator's IPv4 addresses (repeatable, comma separated)");
  app.add_option("--ip-count", ip_count, "Use N consecutive addresses from the first --ip");
  app.add_option("--port-min", sc.port_min, "Lowest UDP port of the generator's endpoints");
  app.add_option("--port-max", sc.port_max, "Highest UDP port of the generator's endpoints");
  app.add_option("--setup", setup, "rtpx (gRPC) | ng (rtpengine NG) | none (reflector, --dst)")
      ->check(CLI::IsMember({"rtpx", "ng", "none"}));
  app.add_option("--grpc", grpc_addr, "rtpxd's gRPC address");
  app.add_option("--ng", ng_addr, "NG control address (host:port)");
  app.add_option("--ng-flag", sc.ng_flags, "NG flag for offer/answer (repeatable)");
  app.add_option("--setup-threads", sc.threads, "Concurrent offer/answer exchanges");
  app.add_option("--call-prefix", sc.call_prefix, "Call-ID prefix (default rtpxgen-<pid>)");
  app.add_option("--dst", dst, "--setup none: destination address:port");
  app.add_option("--dst-ports", sc.dst_ports, "--setup none: spread sessions over N ports (+2)");
  app.add_option("--dst-mac", dst_mac_s, "Next hop MAC (default: resolved by ARP)");
  app.add_option("--arp-timeout", arp_timeout, "Seconds to wait for an ARP reply");
  app.add_option("--link-timeout", link_timeout, "Seconds to wait for the link (memif peer)");
  app.add_option("--streams", streams, "Sessions (one audio stream each)");
  app.add_flag("--bidir", bidir, "Send both directions of every session (2 flows each)");
  app.add_option("--pt", pt, "RTP payload type")->check(CLI::Range(0, 127));
  app.add_option("--codec", sc.encoding, "Encoding name in the SDP rtpmap");
  app.add_option("--clock-rate", sc.clock_rate, "RTP clock rate");
  app.add_option("--payload-size", payload_size, "RTP payload bytes (>= 32)")
      ->check(CLI::Range(static_cast<unsigned>(kMinPayload), 1400u));
  app.add_option("--ptime", ptime, "Packetisation time, ms (timestamp step; default rate)");
  app.add_option("--rate", rate,
                 "Total packets/s over all flows, round robin; 0: as fast as possible "
                 "(default: flows × 1000/ptime)");
  app.add_option("--duration", duration, "Seconds of traffic");
  app.add_option("--warmup", warmup, "Seconds at the start not counted in the results");
  app.add_option("--drain", drain, "Seconds to keep receiving after the last packet is sent");
  app.add_flag("--no-cksum", no_cksum, "UDP checksum 0");
  app.add_flag("--verify-cksum", ec.verify_checksums, "Verify the UDP checksum of what comes back");
  app.add_flag("--keep", keep, "Do not delete the sessions at the end");
  app.add_flag("-q,--quiet", quiet, "No per-second lines");
  app.add_option("--json", json_path, "Write the configuration and results as JSON");
  app.add_option("--srtp-key", srtp_key,
                 "SRTP AES_CM_128_HMAC_SHA1_80 for every flow: master key||salt, base64 (40 "
                 "chars, as in a=crypto inline:)");
  CLI11_PARSE(app, argc, argv);

  auto fail = [](const std::string& msg) {
    fmt::print(stderr, "rtpx-gen: {}\n", msg);
    return 2;
  };
  std::vector<uint8_t> srtp_key_bytes;
  if (!srtp_key.empty()) {
    auto k = decodeSrtpKey(srtp_key);
    if (!k) return fail("--srtp-key: base64 of 30 bytes (16 key + 14 salt) expected");
    srtp_key_bytes = *k;
  }
  std::string err;
  if (!parseAddresses(ips, ip_count, &ec.addresses, &err)) return fail(err);
  ec.cpus.clear();
  for (size_t pos = 0; pos <= cpus_s.size();) {
    size_t comma = cpus_s.find(',', pos);
    if (comma == std::string::npos) comma = cpus_s.size();
    try {
      ec.cpus.push_back(static_cast<unsigned>(std::stoul(cpus_s.substr(pos, comma - pos))));
    } catch (const std::exception&) {
      return fail("--lcores: a CPU number or two, e.g. 0 or 0,1");
    }
    pos = comma + 1;
  }
  if (ec.cpus.empty() || ec.cpus.size() > 2) return fail("--lcores: one or two CPUs");
  ec.main_cpu = main_cpu >= 0 ? static_cast<unsigned>(main_cpu) : ec.cpus.front();
  if (!mac_s.empty()) {
    ec.mac = parseMac(mac_s);
    if (!ec.mac) return fail("--mac: not a MAC address");
  }
  std::optional<rte_ether_addr> dst_mac;
  if (!dst_mac_s.empty() && !(dst_mac = parseMac(dst_mac_s))) return fail("--dst-mac: bad MAC");
  sc.mode = setup == "rtpx" ? SetupMode::kRtpx : setup == "ng" ? SetupMode::kNg : SetupMode::kNone;
  sc.server = sc.mode == SetupMode::kNg ? ng_addr : grpc_addr;
  if (sc.mode == SetupMode::kNg && ng_addr.empty()) return fail("--setup ng needs --ng ADDR");
  if (sc.mode == SetupMode::kNone) {
    auto d = parseEndpoint(dst);
    if (!d) return fail("--setup none needs --dst a.b.c.d:port");
    sc.dst = *d;
  }
  if (sc.call_prefix == "rtpxgen") sc.call_prefix = fmt::format("rtpxgen-{}", getpid());
  sc.sessions = streams;
  sc.bidirectional = bidir;
  sc.addresses = ec.addresses;
  sc.payload_type = static_cast<uint8_t>(pt);
  sc.ptime_ms = ptime;
  sc.connect_timeout_s = link_timeout;
  if (streams == 0 || ptime == 0 || duration <= 0 || warmup < 0 || warmup >= duration)
    return fail("need --streams >= 1, --ptime >= 1 and 0 <= --warmup < --duration");
  if (sessionCapacity(sc) < streams)
    return fail(
        fmt::format("{} address(es) × ports {}-{} hold {} sessions, {} asked: add --ip "
                    "addresses or widen --port-min/--port-max",
                    sc.addresses.size(), sc.port_min, sc.port_max, sessionCapacity(sc), streams));
  const bool rate_default = rate < 0;

  auto engine = Engine::create(ec, &err);
  if (!engine) return fail(err);
  std::signal(SIGINT, onSignal);
  std::signal(SIGTERM, onSignal);
  fmt::print("rtpx-gen: port {} mac {}, {} address(es) {}{}, lcores {} ({})\n", engine->driver(),
             macString(engine->mac()), ec.addresses.size(), ipv4String(ec.addresses.front()),
             ec.addresses.size() > 1 ? " …" : "", cpus_s, ec.cpus.size() > 1 ? "TX, RX" : "TX+RX");
  if (!engine->launch(&err)) return fail(err);

  const auto link_deadline = Clock::now() + std::chrono::duration<double>(link_timeout);
  if (!engine->linkUp()) fmt::print("rtpx-gen: waiting for the link (memif peer)…\n");
  while (!engine->linkUp() && !g_stop && Clock::now() < link_deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  if (!engine->linkUp()) return fail("link down");
  std::fflush(stdout);

  // Set-up on an unpinned thread: the EAL pinned this one to the control CPU.
  SetupResult sr;
  std::thread([&] {
    unpinCurrentThread();
    sr = setUp(sc, g_stop);
  }).join();
  if (sc.mode == SetupMode::kNone)
    fmt::print("set-up: none; {} session(s) towards {}\n", sr.sessions_up.size(),
               sc.dst.toString());
  else
    fmt::print(
        "set-up: {} session(s) in {:.3f} s ({:.0f}/s), {} failed; offer/answer round trip "
        "p50 {:.3f} ms p99 {:.3f} ms max {:.3f} ms\n",
        sr.sessions_up.size(), sr.seconds,
        sr.seconds > 0 ? sr.sessions_up.size() / sr.seconds : 0.0, sr.failed, sr.op_p50_ms,
        sr.op_p99_ms, sr.op_max_ms);
  std::fflush(stdout);
  if (sr.failed != 0) fmt::print(stderr, "set-up: first error: {}\n", sr.first_error);
  auto teardown = [&] {
    if (keep || sr.sessions_up.empty()) return TeardownResult{};
    TeardownResult tr;
    std::thread([&] {
      unpinCurrentThread();
      tr = tearDown(sc, sr.sessions_up);
    }).join();
    if (sc.mode != SetupMode::kNone)
      fmt::print("teardown: {} deleted in {:.3f} s, {} failed{}{}\n", tr.deleted, tr.seconds,
                 tr.failed, tr.failed ? ": " : "", tr.first_error);
    return tr;
  };
  if (sr.flows.empty() || g_stop) {
    teardown();
    return fail("no session to send on");
  }

  // Next hops: ARP for each relay address, from every generator address (so the relay learns
  // them before it has anything to send there).
  std::map<uint32_t, rte_ether_addr> macs;
  for (const auto& f : sr.flows) {
    if (macs.count(f.dst.ip)) continue;
    if (dst_mac) {
      macs[f.dst.ip] = *dst_mac;
      continue;
    }
    auto m = engine->resolve(f.dst.ip, ec.addresses, arp_timeout, g_stop);
    if (!m) {
      teardown();
      return fail(fmt::format("no ARP reply from {} (give --dst-mac for reflectors)",
                              ipv4String(f.dst.ip)));
    }
    fmt::print("rtpx-gen: {} is at {}\n", ipv4String(f.dst.ip), macString(*m));
    macs[f.dst.ip] = *m;
  }
  if (dst_mac)
    for (uint32_t a : ec.addresses)
      for (const auto& [ip, mac] : macs) engine->announce(a, ip);
  std::vector<rte_ether_addr> dst_macs;
  dst_macs.reserve(sr.flows.size());
  for (const auto& f : sr.flows) dst_macs.push_back(macs[f.dst.ip]);

  FrameParams fp;
  fp.src_mac = engine->mac();
  fp.payload_type = static_cast<uint8_t>(pt);
  fp.payload_size = static_cast<uint16_t>(payload_size);
  fp.samples_per_packet = sc.clock_rate * ptime / 1000;
  std::random_device rd;
  fp.run = rd();
  fp.ssrc_base = rd();
  fp.udp_checksum = !no_cksum;
  if (!engine->setFlows(sr.flows, dst_macs, fp, sc.mode != SetupMode::kNone, srtp_key_bytes,
                        &err)) {
    teardown();
    return fail(err);
  }
  const size_t n_flows = sr.flows.size();
  if (rate_default) rate = static_cast<double>(n_flows) * 1000.0 / ptime;
  const unsigned frame_bytes = kHeadersLen + payload_size + (srtp_key.empty() ? 0 : kSrtpTagLen);
  fmt::print("traffic: {} flow(s){}, {} B payload ({} B frames), rate {}, {} s ({} s warm-up)\n",
             n_flows, srtp_key.empty() ? "" : " SRTP", payload_size, frame_bytes,
             rate > 0 ? fmt::format("{:.0f} pps", rate) : "max", duration, warmup);
  std::fflush(stdout);

  // Run.
  std::vector<Interval> intervals;
  const auto t_start = Clock::now();
  engine->startTraffic(rate, warmup);
  engine->takeIntervalHistogram();
  TxSnapshot ptx{};
  uint64_t prx = 0;
  int64_t plost = 0;
  for (int sec = 1; !g_stop; ++sec) {
    const auto due = t_start + std::chrono::duration_cast<Clock::duration>(
                                   std::chrono::duration<double>(std::min<double>(sec, duration)));
    // Few wake-ups: this thread may share a CPU with a traffic lcore.
    for (auto now = Clock::now(); now < due && !g_stop; now = Clock::now())
      std::this_thread::sleep_for(
          std::min<Clock::duration>(due - now, std::chrono::milliseconds(100)));
    const double t = std::chrono::duration<double>(Clock::now() - t_start).count();
    const auto tx = engine->tx();
    const auto rx = engine->rx();
    const auto h = engine->takeIntervalHistogram();
    const uint64_t rxu = rx.received - rx.duplicates;
    const int64_t lost_cum = static_cast<int64_t>(tx.sent) - static_cast<int64_t>(rxu);
    const double span = t - (intervals.empty() ? 0 : intervals.back().t);
    Interval iv{t,
                tx.sent - ptx.sent,
                rxu - prx,
                static_cast<uint64_t>(std::max<int64_t>(0, lost_cum - plost)),
                lost_cum,
                h.quantileNs(0.5) / 1e3,
                h.quantileNs(0.99) / 1e3,
                static_cast<double>(h.maxNs()) / 1e3};
    intervals.push_back(iv);
    if (!quiet) {
      fmt::print(
          "{:6.1f}s  tx {:>9.0f} pps  rx {:>9.0f} pps  lost {:>7} (cum {}, {:.4f}%)  "
          "lat p50 {:.1f} p99 {:.1f} max {:.1f} µs{}\n",
          t, iv.tx / span, iv.rx / span, iv.lost, lost_cum,
          tx.sent ? 100.0 * static_cast<double>(std::max<int64_t>(0, lost_cum)) / tx.sent : 0.0,
          iv.p50_us, iv.p99_us, iv.max_us, t < warmup ? "  (warm-up)" : "");
      std::fflush(stdout);
    }
    ptx = tx;
    prx = rxu;
    plost = lost_cum;
    if (sec >= duration) break;
  }
  engine->stopTraffic();
  const double run_s = std::chrono::duration<double>(Clock::now() - t_start).count();
  const auto tx_end = engine->tx();
  std::this_thread::sleep_for(std::chrono::duration<double>(drain));
  engine->stop();
  const auto port = engine->port();
  const bool interrupted = g_stop.load();
  g_stop = false;  // a signal during the run still deletes the sessions
  const TeardownResult tr = teardown();

  // Results.
  const auto tx = engine->tx();
  const auto rx = engine->rx();
  const auto& hist = engine->totalHistogram();
  const double window = std::max(1e-9, run_s - warmup);
  const uint64_t sent = tx.sent_measured, received = rx.measured;
  const int64_t lost = static_cast<int64_t>(sent) - static_cast<int64_t>(received);
  const double loss_pct = sent ? 100.0 * static_cast<double>(lost) / sent : 0;
  double jit_sum = 0, jit_max = 0;
  size_t jit_n = 0, silent = 0;
  for (size_t i = 0; i < engine->flowCount(); ++i) {
    const FlowRx& f = engine->flowRx()[i];
    if (f.received == 0) ++silent;
    if (f.received < 2) continue;
    const double ms = static_cast<double>(f.jitter16 >> 4) / engine->tscHz() * 1e3;
    jit_sum += ms;
    jit_max = std::max(jit_max, ms);
    ++jit_n;
  }
  const double jit_mean = jit_n ? jit_sum / jit_n : 0;
  const double achieved = tx_end.sent / run_s;
  const double us = 1e-3;
  fmt::print("\n{}", interrupted ? "(interrupted)\n" : "");
  fmt::print("{:<28}{:>14} {:>14}\n", "", "sent", "received");
  fmt::print("{:<28}{:>14} {:>14}\n", "packets (after warm-up)", sent, received);
  fmt::print("{:<28}{:>14.0f} {:>14.0f}\n", "packets/s", sent / window, received / window);
  fmt::print("{:<28}{:>14} ({:.4f} %)\n", "lost", lost, loss_pct);
  fmt::print("{:<28}{:>14}   late (>64 behind) {}\n", "reordered", rx.measured_reordered,
             rx.measured_late);
  fmt::print("{:<28}{:>14}\n", "duplicates", rx.measured_duplicates);
  fmt::print("{:<28}p50 {:.2f}  p99 {:.2f}  p99.9 {:.2f}  max {:.2f}  (min {:.2f}, mean {:.2f})\n",
             "latency µs", hist.quantileNs(0.5) * us, hist.quantileNs(0.99) * us,
             hist.quantileNs(0.999) * us, static_cast<double>(hist.maxNs()) * us,
             static_cast<double>(hist.minNs()) * us, hist.meanNs() * us);
  fmt::print("{:<28}mean {:.4f}  max {:.4f}  ({} flows; {} of {} received nothing)\n",
             "jitter ms (RFC 3550)", jit_mean, jit_max, jit_n, silent, engine->flowCount());
  fmt::print(
      "{:<28}requested {}, achieved {:.0f} pps ({}) over {:.2f} s; port busy {} "
      "bursts, no mbuf {}\n",
      "TX", rate > 0 ? fmt::format("{:.0f} pps", rate) : "max", achieved,
      rate > 0 ? fmt::format("{:.1f} %", 100 * achieved / rate) : "the TX ceiling", run_s,
      tx.ring_full, tx.nombuf);
  if (!srtp_key.empty())
    fmt::print("{:<28}protect failed {}, unprotect failed {}\n", "SRTP", tx.srtp_failed,
               rx.srtp_failed);
  fmt::print("{:<28}ipackets {} opackets {} imissed {} ierrors {} oerrors {} rx_nombuf {}\n",
             "port", port.ipackets, port.opackets, port.imissed, port.ierrors, port.oerrors,
             port.rx_nombuf);
  fmt::print("{:<28}misdirected {} foreign {} other {} bad-cksum {} arp-replies {}\n", "rx other",
             rx.misdirected, rx.foreign, rx.other, rx.bad_checksum, rx.arp_replies);

  if (!json_path.empty()) {
    std::string cmd;
    for (int i = 0; i < argc; ++i) cmd += (i ? " " : "") + std::string(argv[i]);
    std::string addrs;
    for (uint32_t a : ec.addresses) addrs += (addrs.empty() ? "\"" : ",\"") + ipv4String(a) + "\"";
    std::string ivs;
    for (const auto& iv : intervals)
      ivs += fmt::format(
          "{}{{\"t\":{:.3f},\"tx\":{},\"rx\":{},\"lost\":{},\"lost_cum\":{},\"p50_us\":{:.3f},"
          "\"p99_us\":{:.3f},\"max_us\":{:.3f}}}",
          ivs.empty() ? "" : ",", iv.t, iv.tx, iv.rx, iv.lost, iv.lost_cum, iv.p50_us, iv.p99_us,
          iv.max_us);
    std::string j = fmt::format(
        "{{\"command\":\"{}\",\"config\":{{\"vdev\":\"{}\",\"driver\":\"{}\",\"lcores\":\"{}\","
        "\"addresses\":[{}],\"setup\":\"{}\",\"server\":\"{}\",\"streams\":{},\"bidir\":{},"
        "\"flows\":{},\"payload_type\":{},\"payload_size\":{},\"frame_bytes\":{},\"ptime_ms\":{},"
        "\"rate_pps\":{:.0f},\"duration_s\":{},\"warmup_s\":{},\"udp_checksum\":{},"
        "\"srtp\":{}}},",
        jsonEscape(cmd), jsonEscape(ec.vdev), engine->driver(), cpus_s, addrs, setup,
        jsonEscape(sc.server), streams, bidir, n_flows, pt, payload_size, frame_bytes, ptime, rate,
        duration, warmup, !no_cksum, !srtp_key.empty());
    j += fmt::format(
        "\"setup\":{{\"sessions\":{},\"failed\":{},\"seconds\":{:.3f},\"per_second\":{:.1f},"
        "\"rtt_p50_ms\":{:.3f},\"rtt_p99_ms\":{:.3f},\"rtt_max_ms\":{:.3f},\"first_error\":\"{}\","
        "\"teardown_seconds\":{:.3f},\"teardown_failed\":{}}},",
        sr.sessions_up.size(), sr.failed, sr.seconds,
        sr.seconds > 0 && sc.mode != SetupMode::kNone ? sr.sessions_up.size() / sr.seconds : 0.0,
        sr.op_p50_ms, sr.op_p99_ms, sr.op_max_ms, jsonEscape(sr.first_error), tr.seconds,
        tr.failed);
    j += fmt::format(
        "\"results\":{{\"interrupted\":{},\"run_seconds\":{:.3f},\"measured_seconds\":{:.3f},"
        "\"sent\":{},\"received\":{},\"sent_pps\":{:.1f},\"received_pps\":{:.1f},\"lost\":{},"
        "\"loss_pct\":{:.6f},\"reordered\":{},\"late\":{},\"duplicates\":{},"
        "\"latency_us\":{{\"p50\":{:.3f},\"p99\":{:.3f},\"p99_9\":{:.3f},\"max\":{:.3f},"
        "\"min\":{:.3f},\"mean\":{:.3f}}},\"jitter_ms\":{{\"mean\":{:.6f},\"max\":{:.6f},"
        "\"flows\":{}}},\"silent_flows\":{},",
        interrupted, run_s, window, sent, received, sent / window, received / window, lost,
        loss_pct, rx.measured_reordered, rx.measured_late, rx.measured_duplicates,
        hist.quantileNs(0.5) * us, hist.quantileNs(0.99) * us, hist.quantileNs(0.999) * us,
        static_cast<double>(hist.maxNs()) * us, static_cast<double>(hist.minNs()) * us,
        hist.meanNs() * us, jit_mean, jit_max, jit_n, silent);
    j += fmt::format(
        "\"tx\":{{\"requested_pps\":{:.0f},\"achieved_pps\":{:.1f},\"sent_total\":{},"
        "\"port_busy_bursts\":{},\"no_mbuf\":{},\"srtp_failed\":{}}},"
        "\"rx\":{{\"received_total\":{},\"duplicates_total\":{},\"misdirected\":{},"
        "\"foreign\":{},\"other\":{},\"bad_checksum\":{},\"srtp_failed\":{},"
        "\"arp_replies\":{}}},"
        "\"port\":{{\"ipackets\":{},\"opackets\":{},\"imissed\":{},\"ierrors\":{},\"oerrors\":{},"
        "\"rx_nombuf\":{}}}}},\"intervals\":[{}]}}\n",
        rate, achieved, tx_end.sent, tx.ring_full, tx.nombuf, tx.srtp_failed, rx.received,
        rx.duplicates, rx.misdirected, rx.foreign, rx.other, rx.bad_checksum, rx.srtp_failed,
        rx.arp_replies, port.ipackets, port.opackets, port.imissed, port.ierrors, port.oerrors,
        port.rx_nombuf, ivs);
    if (FILE* f = std::fopen(json_path.c_str(), "w")) {
      std::fputs(j.c_str(), f);
      std::fclose(f);
    } else {
      fmt::print(stderr, "rtpx-gen: cannot write {}\n", json_path);
    }
  }
  return 0;
}

#include "bench/gen_engine.h"

#include <fmt/format.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_prefetch.h>

#include <algorithm>
#include <chrono>
#include <thread>

namespace rtpx::gen {

std::vector<std::string> ealArguments(const EngineConfig& cfg) {
  std::vector<std::string> a{"rtpx-gen"};
  // lcore 0 = control (main), 1.. = traffic, each pinned to its CPU.
  std::string map = fmt::format("0@{}", cfg.main_cpu);
  for (size_t i = 0; i < cfg.cpus.size(); ++i) map += fmt::format(",{}@{}", i + 1, cfg.cpus[i]);
  a.insert(a.end(), {"--lcores", map, "--main-lcore", "0", "--file-prefix", cfg.file_prefix,
                     "--log-level", "lib.eal:" + cfg.eal_log_level});
  if (!cfg.hugepages) a.insert(a.end(), {"--no-huge", "--no-shconf"});
  if (cfg.memory_mb != 0) a.insert(a.end(), {"-m", std::to_string(cfg.memory_mb)});
  if (!cfg.vdev.empty()) a.insert(a.end(), {"--no-pci", "--vdev", cfg.vdev});
  a.insert(a.end(), cfg.eal_extra.begin(), cfg.eal_extra.end());
  return a;
}

std::unique_ptr<Engine> Engine::create(const EngineConfig& cfg, std::string* error) {
  std::unique_ptr<Engine> e(new Engine());
  e->cfg_ = cfg;
  auto args = ealArguments(cfg);
  std::vector<char*> argv;
  for (auto& s : args) argv.push_back(s.data());
  argv.push_back(nullptr);
  if (rte_eal_init(static_cast<int>(args.size()), argv.data()) < 0) {
    std::string joined;
    for (const auto& s : args) joined += " " + s;
    *error = fmt::format("EAL initialisation failed ({}) with arguments:{}",
                         rte_strerror(rte_errno), joined);
    return nullptr;
  }
  e->eal_ready_ = true;
  e->tsc_hz_ = static_cast<double>(rte_get_tsc_hz());
  e->ns_per_tsc_ = 1e9 / e->tsc_hz_;
  for (uint32_t a : cfg.addresses) e->ours_be_.push_back(rte_cpu_to_be_32(a));

  if (rte_eth_dev_count_avail() == 0) {
    *error = "no DPDK port (give --vdev, or -a PCI through --eal)";
    return nullptr;
  }
  uint16_t pid = 0, p = 0;
  RTE_ETH_FOREACH_DEV(p) {
    pid = p;
    break;
  }
  e->port_id_ = pid;
  const int socket = std::max(0, rte_eth_dev_socket_id(pid));
  e->pool_ =
      rte_pktmbuf_pool_create("gen_mbufs", cfg.mbufs, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, socket);
  if (e->pool_ == nullptr) {
    *error = fmt::format("cannot create a pool of {} mbufs: {} (raise --memory or lower --mbufs)",
                         cfg.mbufs, rte_strerror(rte_errno));
    return nullptr;
  }
  e->control_ = rte_ring_create("gen_control", 1024, socket, RING_F_SC_DEQ);
  if (e->control_ == nullptr) {
    *error = "cannot create the control ring";
    return nullptr;
  }
  rte_eth_dev_info info{};
  if (int rc = rte_eth_dev_info_get(pid, &info); rc != 0) {
    *error = fmt::format("rte_eth_dev_info_get: {}", rte_strerror(-rc));
    return nullptr;
  }
  e->driver_ = info.driver_name;
  rte_eth_conf conf{};
  if (int rc = rte_eth_dev_configure(pid, 1, 1, &conf); rc != 0) {
    *error = fmt::format("configure port {}: {}", pid, rte_strerror(-rc));
    return nullptr;
  }
  uint16_t nrx = cfg.rx_descriptors, ntx = cfg.tx_descriptors;
  rte_eth_dev_adjust_nb_rx_tx_desc(pid, &nrx, &ntx);
  rte_eth_rxconf rxc = info.default_rxconf;
  rte_eth_txconf txc = info.default_txconf;
  if (int rc = rte_eth_rx_queue_setup(pid, 0, nrx, socket, &rxc, e->pool_); rc != 0) {
    *error = fmt::format("rx queue: {}", rte_strerror(-rc));
    return nullptr;
  }
  if (int rc = rte_eth_tx_queue_setup(pid, 0, ntx, socket, &txc); rc != 0) {
    *error = fmt::format("tx queue: {}", rte_strerror(-rc));
    return nullptr;
  }
  if (cfg.mac) {
    rte_ether_addr m = *cfg.mac;
    if (int rc = rte_eth_dev_default_mac_addr_set(pid, &m); rc != 0) {
      *error = fmt::format("cannot set the MAC address: {}", rte_strerror(-rc));
      return nullptr;
    }
  }
  if (int rc = rte_eth_dev_start(pid); rc != 0) {
    *error = fmt::format("start port {}: {}", pid, rte_strerror(-rc));
    return nullptr;
  }
  e->port_started_ = true;
  // Reflectors (testpmd io) hand packets back with the destination MAC we wrote.
  rte_eth_promiscuous_enable(pid);
  rte_eth_macaddr_get(pid, &e->mac_);
  return e;
}

Engine::~Engine() {
  stop();
  if (port_started_) {
    rte_eth_dev_stop(port_id_);
    rte_eth_dev_close(port_id_);
  }
  if (control_ != nullptr) {
    void* m;
    while (rte_ring_dequeue(control_, &m) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
    rte_ring_free(control_);
  }
  if (pool_ != nullptr) rte_mempool_free(pool_);
  if (eal_ready_) rte_eal_cleanup();
}

bool Engine::linkUp() const {
  rte_eth_link link{};
  return rte_eth_link_get_nowait(port_id_, &link) == 0 && link.link_status == RTE_ETH_LINK_UP;
}

bool Engine::launch(std::string* error) {
  const bool split = cfg_.cpus.size() > 1;
  lcore_args_.clear();
  lcore_args_.push_back({this, true, !split});
  if (split) lcore_args_.push_back({this, false, true});
  unsigned lcore = 0;
  for (auto& arg : lcore_args_) {
    lcore = rte_get_next_lcore(lcore, 1, 0);
    if (lcore >= RTE_MAX_LCORE) {
      *error = "not enough lcores";
      return false;
    }
    if (rte_eal_remote_launch(lcoreMain, &arg, lcore) != 0) {
      *error = fmt::format("cannot launch lcore {}", lcore);
      return false;
    }
    lcores_.push_back(lcore);
  }
  launched_ = true;
  return true;
}

void Engine::stop() {
  if (!launched_) return;
  phase_.store(kExit, std::memory_order_release);
  for (unsigned l : lcores_) rte_eal_wait_lcore(l);
  launched_ = false;
  for (uint16_t i = 0; i < txs_.n_pending; ++i)
    rte_pktmbuf_free(txs_.pending[txs_.pending_off + i]);
  txs_.n_pending = 0;
}

int Engine::lcoreMain(void* p) {
  auto* arg = static_cast<LcoreArg*>(p);
  arg->engine->loop(arg->tx, arg->rx);
  return 0;
}

void Engine::loop(bool tx, bool rx) {
  uint64_t loops = 0;
  for (;;) {
    const int phase = phase_.load(std::memory_order_acquire);
    if (phase == kExit) break;
    bool busy = false;
    if (tx) {
      if (phase == kRun) {
        txBurst(rte_rdtsc());
        busy = true;
      } else if (txs_.n_pending != 0) {
        for (uint16_t i = 0; i < txs_.n_pending; ++i)
          rte_pktmbuf_free(txs_.pending[txs_.pending_off + i]);
        txs_.n_pending = 0;
      }
      if ((++loops & 15) == 0 || phase != kRun) drainControl();
    }
    if (rx) {
      // Drain up to 4 full bursts per TX burst: what comes back must not pile up in the peer.
      unsigned got = 0, rounds = 0;
      do {
        got = rxBurst();
        busy = busy || got != 0;
      } while (got == kBurst && ++rounds < 4);
      busy = busy || phase == kDrain;
    }
    // Idle (set-up, ARP): poll every 100 µs instead of spinning, so the set-up threads and the
    // relay under test get the CPU.
    if (phase == kIdle && !busy) rte_delay_us_sleep(100);
  }
}

void Engine::txBurst(uint64_t now) {
  TxState& s = txs_;
  if (s.n_pending != 0) {
    const uint16_t k = rte_eth_tx_burst(port_id_, 0, s.pending + s.pending_off, s.n_pending);
    s.sent.add(k);
    if (s.pending_measured) s.sent_measured.add(k);
    s.pending_off = static_cast<uint16_t>(s.pending_off + k);
    s.n_pending = static_cast<uint16_t>(s.n_pending - k);
    if (s.n_pending != 0) return;
  }
  unsigned n = kBurst;
  if (pkts_per_tsc_ > 0) {
    const uint64_t due = static_cast<uint64_t>(static_cast<double>(now - t0_) * pkts_per_tsc_) + 1;
    if (due <= s.built) return;
    n = static_cast<unsigned>(std::min<uint64_t>(kBurst, due - s.built));
  }
  rte_mbuf* m[kBurst];
  if (rte_pktmbuf_alloc_bulk(pool_, m, n) != 0) {
    s.nombuf.add(1);
    return;
  }
  const bool measured = now >= t_measure_;
  const uint32_t flags = measured ? kFlagMeasured : 0;
  const uint64_t tsc = rte_rdtsc();
  uint32_t f = s.next_flow;
  for (unsigned i = 0; i < n; ++i) {
    const uint32_t flow = f;
    if (++f == n_flows_) f = 0;
    // The flow after next: its template line is in cache when its turn comes.
    rte_prefetch0(&templates_[f + 1 < n_flows_ ? f + 1 : 0]);
    uint8_t* d = rte_pktmbuf_mtod(m[i], uint8_t*);
    writeFrame(d, templates_[flow], flow, frame_, tsc, flags);
    if (srtp_) {
      int len = kRtpLen + frame_.payload_size;
      if (!srtp_->protect(flow, d + kRtpOffset, &len)) s.srtp_failed.add(1);
      if (full_checksum_) {
        auto* ip = reinterpret_cast<rte_ipv4_hdr*>(d + kEthLen);
        auto* udp = reinterpret_cast<rte_udp_hdr*>(d + kEthLen + kIpLen);
        udp->dgram_cksum = rte_ipv4_udptcp_cksum(ip, udp);
      }
    }
    m[i]->data_len = frame_len_;
    m[i]->pkt_len = frame_len_;
  }
  s.next_flow = f;
  s.built += n;
  const uint16_t k = rte_eth_tx_burst(port_id_, 0, m, static_cast<uint16_t>(n));
  s.sent.add(k);
  if (measured) s.sent_measured.add(k);
  if (k < n) {
    s.ring_full.add(1);
    s.pending_off = 0;
    s.n_pending = static_cast<uint16_t>(n - k);
    s.pending_measured = measured;
    std::copy(m + k, m + n, s.pending);
  }
}

unsigned Engine::rxBurst() {
  RxState& r = rxs_;
  const uint64_t e = epoch_.load(std::memory_order_acquire);
  if (e != r.epoch) {
    r.epoch = e;
    r.epoch_ack.store(e, std::memory_order_release);
  }
  rte_mbuf* m[kBurst];
  const uint16_t n = rte_eth_rx_burst(port_id_, 0, m, kBurst);
  if (n == 0) return 0;
  const uint64_t now = rte_rdtsc();
  LatencyHistogram& interval = r.interval[e & 1];
  rte_mbuf* to_free[kBurst];
  unsigned n_free = 0;
  uint64_t received = 0, dups = 0, measured = 0, mdups = 0, reordered = 0, late = 0, misdir = 0,
           badck = 0, srtp_fail = 0, foreign = 0, other = 0;
  for (uint16_t i = 0; i < n; ++i) {
    rte_mbuf* mb = m[i];
    if (i + 1 < n) rte_prefetch0(rte_pktmbuf_mtod(m[i + 1], void*));
    auto* eth = rte_pktmbuf_mtod(mb, rte_ether_hdr*);
    if (mb->data_len < kEthLen) {
      ++other;
      to_free[n_free++] = mb;
      continue;
    }
    if (eth->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP)) {
      if (!handleArp(mb)) to_free[n_free++] = mb;
      continue;
    }
    to_free[n_free++] = mb;
    auto* ip = reinterpret_cast<rte_ipv4_hdr*>(eth + 1);
    if (eth->ether_type != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4) ||
        mb->data_len < kEthLen + kIpLen + kUdpLen + kRtpLen || (ip->version_ihl >> 4) != 4 ||
        ip->next_proto_id != IPPROTO_UDP) {
      ++other;
      continue;
    }
    const unsigned ihl = (ip->version_ihl & 0x0f) * 4u;
    auto* udp = reinterpret_cast<rte_udp_hdr*>(reinterpret_cast<uint8_t*>(ip) + ihl);
    uint8_t* rtp = reinterpret_cast<uint8_t*>(udp + 1);
    const uint8_t* end = rte_pktmbuf_mtod(mb, uint8_t*) + mb->data_len;
    if (rtp + kRtpLen > end) {
      ++foreign;
      continue;
    }
    if (cfg_.verify_checksums && udp->dgram_cksum != 0 &&
        rte_ipv4_udptcp_cksum_verify(ip, udp) != 0) {
      ++badck;
      continue;
    }
    if (srtp_) {
      // The flow from the SSRC (the payload header is encrypted), then RFC 3711 §3.3.
      uint32_t ssrc;
      std::memcpy(&ssrc, rtp + 8, 4);
      const uint32_t flow = rte_be_to_cpu_32(ssrc) - frame_.ssrc_base;
      int len = static_cast<int>(rte_be_to_cpu_16(udp->dgram_len)) - kUdpLen;
      if (flow >= n_flows_ || len < kRtpLen + kSrtpTagLen || rtp + len > end) {
        ++foreign;
        continue;
      }
      const SrtpResult res = srtp_->unprotect(flow, rtp, &len);
      if (res == SrtpResult::kReplay) {
        ++received;
        ++dups;
        continue;
      }
      if (res == SrtpResult::kTooOld) {
        ++received;
        ++late;
        continue;
      }
      if (res != SrtpResult::kOk) {
        ++srtp_fail;
        continue;
      }
      end = rtp + len;
    }
    const uint8_t* payload = rtp + kRtpLen + 4u * (rtp[0] & 0x0f);
    if ((rtp[0] & 0x10) != 0 && payload + 4 <= end)  // RFC 3550 §5.3.1 header extension
      payload += 4 + 4u * ((payload[2] << 8) | payload[3]);
    PayloadHeader ph;
    if (payload + sizeof ph > end) {
      ++foreign;
      continue;
    }
    std::memcpy(&ph, payload, sizeof ph);
    if (ph.magic != kPayloadMagic || ph.run != frame_.run || ph.flow >= n_flows_) {
      ++foreign;
      continue;
    }
    FlowRx& f = flow_rx_[ph.flow];
    if (check_sink_ && (ip->dst_addr != f.expect_ip || udp->dst_port != f.expect_port)) ++misdir;
    const int64_t transit = static_cast<int64_t>(now - ph.tsc);
    const SeqVerdict v = recordSeq(f, ph.seq, transit);
    const bool is_measured = (ph.flags & kFlagMeasured) != 0;
    ++received;
    if (v == SeqVerdict::kDuplicate) {
      ++dups;
      if (is_measured) ++mdups;
      continue;
    }
    const uint64_t ns =
        transit > 0 ? static_cast<uint64_t>(static_cast<double>(transit) * ns_per_tsc_) : 0;
    interval.add(ns);
    if (is_measured) {
      ++measured;
      r.total.add(ns);
      if (v == SeqVerdict::kReordered) ++reordered;
      if (v == SeqVerdict::kLate) ++late;
    }
  }
  if (n_free != 0) rte_pktmbuf_free_bulk(to_free, n_free);
  r.received.add(received);
  r.duplicates.add(dups);
  r.measured.add(measured);
  r.measured_duplicates.add(mdups);
  r.measured_reordered.add(reordered);
  r.measured_late.add(late);
  r.misdirected.add(misdir);
  r.bad_checksum.add(badck);
  r.srtp_failed.add(srtp_fail);
  r.foreign.add(foreign);
  r.other.add(other);
  return n;
}

bool Engine::ours(uint32_t ip_be) const {
  return std::find(ours_be_.begin(), ours_be_.end(), ip_be) != ours_be_.end();
}

void Engine::learn(uint32_t ip_be, const rte_ether_addr& mac) {
  const unsigned n = n_resolve_.load(std::memory_order_acquire);
  for (unsigned i = 0; i < n; ++i) {
    if (resolve_[i].ip.load(std::memory_order_relaxed) != ip_be) continue;
    uint64_t v = uint64_t{1} << 63;
    for (int b = 0; b < 6; ++b) v |= uint64_t{mac.addr_bytes[b]} << (8 * b);
    resolve_[i].mac.store(v, std::memory_order_release);
  }
}

bool Engine::handleArp(rte_mbuf* m) {
  if (m->data_len < kEthLen + sizeof(rte_arp_hdr)) return false;
  auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
  auto* arp = reinterpret_cast<rte_arp_hdr*>(eth + 1);
  if (arp->arp_hardware != rte_cpu_to_be_16(RTE_ARP_HRD_ETHER) ||
      arp->arp_protocol != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4) ||
      arp->arp_hlen != RTE_ETHER_ADDR_LEN || arp->arp_plen != 4)
    return false;
  const uint32_t sip = arp->arp_data.arp_sip, tip = arp->arp_data.arp_tip;
  learn(sip, arp->arp_data.arp_sha);
  if (arp->arp_opcode != rte_cpu_to_be_16(RTE_ARP_OP_REQUEST) || !ours(tip)) return false;
  // RFC 826: the request becomes the reply in place.
  eth->dst_addr = arp->arp_data.arp_sha;
  eth->src_addr = mac_;
  arp->arp_opcode = rte_cpu_to_be_16(RTE_ARP_OP_REPLY);
  arp->arp_data.arp_tha = arp->arp_data.arp_sha;
  arp->arp_data.arp_tip = sip;
  arp->arp_data.arp_sha = mac_;
  arp->arp_data.arp_sip = tip;
  if (rte_ring_mp_enqueue(control_, m) != 0) return false;
  rxs_.arp_replies.add(1);
  return true;
}

void Engine::drainControl() {
  void* objs[kBurst];
  const unsigned n = rte_ring_sc_dequeue_burst(control_, objs, kBurst, nullptr);
  if (n == 0) return;
  auto** m = reinterpret_cast<rte_mbuf**>(objs);
  const uint16_t k = rte_eth_tx_burst(port_id_, 0, m, static_cast<uint16_t>(n));
  if (k < n) rte_pktmbuf_free_bulk(m + k, n - k);
}

void Engine::sendControl(rte_mbuf* m) {
  if (rte_ring_mp_enqueue(control_, m) != 0) rte_pktmbuf_free(m);
}

void Engine::announce(uint32_t from, uint32_t target) {
  rte_mbuf* m = rte_pktmbuf_alloc(pool_);
  if (m == nullptr) return;
  writeArpRequest(rte_pktmbuf_mtod(m, uint8_t*), mac_, from, target);
  m->data_len = m->pkt_len = kArpFrameLen;
  sendControl(m);
}

std::optional<rte_ether_addr> Engine::resolve(uint32_t target, const std::vector<uint32_t>& from,
                                              double timeout_s, const std::atomic<bool>& stop) {
  const uint32_t tbe = rte_cpu_to_be_32(target);
  unsigned slot = n_resolve_.load();
  for (unsigned i = 0; i < slot; ++i)
    if (resolve_[i].ip.load() == tbe) slot = i;
  if (slot == n_resolve_.load()) {
    if (slot >= resolve_.size()) return std::nullopt;
    resolve_[slot].ip.store(tbe);
    n_resolve_.store(slot + 1, std::memory_order_release);
  }
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
  auto next_send = Clock::now();
  while (Clock::now() < deadline && !stop.load()) {
    const uint64_t v = resolve_[slot].mac.load(std::memory_order_acquire);
    if (v != 0) {
      rte_ether_addr mac;
      for (int b = 0; b < 6; ++b) mac.addr_bytes[b] = static_cast<uint8_t>(v >> (8 * b));
      return mac;
    }
    if (Clock::now() >= next_send) {
      for (uint32_t f : from) announce(f, target);
      next_send = Clock::now() + std::chrono::milliseconds(250);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return std::nullopt;
}

bool Engine::setFlows(const std::vector<Flow>& flows, const std::vector<rte_ether_addr>& dst_macs,
                      const FrameParams& frame, bool check_sink,
                      const std::vector<uint8_t>& srtp_key, std::string* error) {
  n_flows_ = static_cast<uint32_t>(flows.size());
  frame_ = frame;
  if (!srtp_key.empty()) {
    std::vector<uint32_t> ssrcs(n_flows_);
    for (uint32_t i = 0; i < n_flows_; ++i) ssrcs[i] = flowSsrc(frame_, i);
    srtp_ = SrtpFlows::create(srtp_key, ssrcs, error);
    if (!srtp_) return false;
    full_checksum_ = frame_.udp_checksum;
    frame_.udp_checksum = false;  // the incremental sum does not survive encryption
    frame_.trailer = kSrtpTagLen;
  }
  filler_.assign(frame.payload_size, 0xd5);  // G.711 A-law silence
  frame_.filler = filler_.data();
  frame_len_ = static_cast<uint16_t>(kHeadersLen + frame_.payload_size + frame_.trailer);
  check_sink_ = check_sink;
  templates_.reset(new FlowTemplate[n_flows_]);
  flow_rx_.reset(new FlowRx[n_flows_]);
  for (uint32_t i = 0; i < n_flows_; ++i) {
    FrameParams p = frame_;
    p.dst_mac = dst_macs[i];
    buildTemplate(templates_[i], flows[i], i, p);
    flow_rx_[i].expect_ip = rte_cpu_to_be_32(flows[i].sink.ip);
    flow_rx_[i].expect_port = rte_cpu_to_be_16(flows[i].sink.port);
  }
  if (n_flows_ == 0 || !frame_.udp_checksum) return true;
  // Self-test: the incremental checksum must equal DPDK's full one.
  std::vector<uint8_t> buf(frame_len_ + 64);
  FlowTemplate t = templates_[0];
  for (uint64_t tsc : {uint64_t{0}, uint64_t{0x0123456789abcdef}, ~uint64_t{0}}) {
    writeFrame(buf.data(), t, 0, frame_, tsc, kFlagMeasured);
    auto* ip = reinterpret_cast<rte_ipv4_hdr*>(buf.data() + kEthLen);
    auto* udp = reinterpret_cast<rte_udp_hdr*>(buf.data() + kEthLen + kIpLen);
    if (rte_ipv4_udptcp_cksum_verify(ip, udp) != 0 || rte_raw_cksum(ip, kIpLen) != 0xffff) {
      *error = "checksum self-test failed";
      return false;
    }
  }
  return true;
}

void Engine::startTraffic(double rate_pps, double warmup_s) {
  port_at_start_ = {};
  port_at_start_ = port();
  t0_ = rte_rdtsc();
  t_measure_ = t0_ + static_cast<uint64_t>(warmup_s * tsc_hz_);
  pkts_per_tsc_ = rate_pps > 0 ? rate_pps / tsc_hz_ : 0;
  phase_.store(kRun, std::memory_order_release);
}

void Engine::stopTraffic() {
  phase_.store(kDrain, std::memory_order_release);
}

TxSnapshot Engine::tx() const {
  return {txs_.sent.get(), txs_.sent_measured.get(), txs_.nombuf.get(), txs_.ring_full.get(),
          txs_.srtp_failed.get()};
}

RxSnapshot Engine::rx() const {
  const RxState& r = rxs_;
  RxSnapshot s;
  s.received = r.received.get();
  s.duplicates = r.duplicates.get();
  s.measured = r.measured.get();
  s.measured_duplicates = r.measured_duplicates.get();
  s.measured_reordered = r.measured_reordered.get();
  s.measured_late = r.measured_late.get();
  s.misdirected = r.misdirected.get();
  s.bad_checksum = r.bad_checksum.get();
  s.srtp_failed = r.srtp_failed.get();
  s.foreign = r.foreign.get();
  s.other = r.other.get();
  s.arp_replies = r.arp_replies.get();
  return s;
}

PortSnapshot Engine::port() const {
  rte_eth_stats st{};
  PortSnapshot p;
  if (rte_eth_stats_get(port_id_, &st) != 0) return p;
  p.ipackets = st.ipackets - port_at_start_.ipackets;
  p.opackets = st.opackets - port_at_start_.opackets;
  p.imissed = st.imissed - port_at_start_.imissed;
  p.ierrors = st.ierrors - port_at_start_.ierrors;
  p.oerrors = st.oerrors - port_at_start_.oerrors;
  p.rx_nombuf = st.rx_nombuf - port_at_start_.rx_nombuf;
  return p;
}

LatencyHistogram Engine::takeIntervalHistogram() {
  const uint64_t old = epoch_.load();
  epoch_.store(old + 1, std::memory_order_release);
  LatencyHistogram out;
  if (!launched_) return out;
  // The RX lcore acknowledges at the top of its loop: from then on it writes the other buffer.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
  while (rxs_.epoch_ack.load(std::memory_order_acquire) != old + 1) {
    if (std::chrono::steady_clock::now() > deadline) return out;
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  out = rxs_.interval[old & 1];
  rxs_.interval[old & 1].clear();
  return out;
}

const LatencyHistogram& Engine::totalHistogram() const {
  return rxs_.total;
}

}  // namespace rtpx::gen

#include "dataplane/dataplane.h"

#include <absl/strings/str_cat.h>
#include <absl/strings/str_join.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <spdlog/spdlog.h>
#include <time.h>

#include <thread>

namespace rtpx {

uint64_t monotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

std::vector<std::string> ealArguments(const EalConfig& cfg,
                                      const std::vector<InterfaceConfig>& interfaces) {
  std::vector<std::string> a{"rtpxd"};
  // Logical lcore ids are fixed (0 = main, 1..N = workers); --lcores maps them onto CPUs, so the
  // same configuration runs on a machine with fewer CPUs than lcores (dev boxes, CI).
  std::string map = absl::StrCat("0@", cfg.main_cpu);
  for (size_t i = 0; i < cfg.worker_cpus.size(); ++i)
    absl::StrAppend(&map, ",", i + 1, "@", cfg.worker_cpus[i]);
  a.insert(a.end(), {"--lcores", map, "--main-lcore", "0", "--file-prefix", cfg.file_prefix,
                     "--log-level", "lib.eal:" + cfg.log_level});
  // Without hugepages there is nothing to share with secondary processes either.
  if (cfg.no_huge) a.insert(a.end(), {"--no-huge", "--no-shconf"});
  if (cfg.memory_mb != 0) a.insert(a.end(), {"-m", std::to_string(cfg.memory_mb)});
  bool any_pci = false;
  for (const auto& ifc : interfaces) {
    if (ifc.isPci()) {
      any_pci = true;
      a.insert(a.end(), {"-a", ifc.device});
    } else {
      a.insert(a.end(), {"--vdev", ifc.device});
    }
  }
  if (!any_pci) a.push_back("--no-pci");
  a.insert(a.end(), cfg.extra_args.begin(), cfg.extra_args.end());
  return a;
}

absl::StatusOr<std::vector<std::string>> initEal(const EalConfig& cfg,
                                                 const std::vector<InterfaceConfig>& interfaces) {
  auto args = ealArguments(cfg, interfaces);
  std::vector<char*> argv;
  for (auto& s : args) argv.push_back(s.data());
  argv.push_back(nullptr);
  if (rte_eal_init(static_cast<int>(args.size()), argv.data()) < 0)
    return absl::FailedPreconditionError(
        absl::StrCat("DPDK EAL initialisation failed (", rte_strerror(rte_errno),
                     ") with arguments: ", absl::StrJoin(args, " ")));
  return args;
}

Dataplane::Dataplane(const DataplaneConfig& cfg) : cfg_(cfg), start_ns_(monotonicNs()) {}

absl::StatusOr<std::unique_ptr<Dataplane>> Dataplane::start(const DataplaneConfig& cfg) {
  if (cfg.interfaces.empty()) return absl::InvalidArgumentError("no interface configured");
  if (cfg.eal.worker_cpus.empty()) return absl::InvalidArgumentError("no worker configured");
  if (cfg.slow_path.rate_pps == 0 || cfg.slow_path.burst == 0 || cfg.slow_path.ring_size == 0)
    return absl::InvalidArgumentError(
        "slow path: rate_pps, burst and ring_size must be at least 1");
  if (rte_lcore_count() < cfg.eal.worker_cpus.size() + 1)
    return absl::FailedPreconditionError(absl::StrCat("EAL has ", rte_lcore_count(),
                                                      " lcores; need 1 main + ",
                                                      cfg.eal.worker_cpus.size(), " workers"));
  std::unique_ptr<Dataplane> dp(new Dataplane(cfg));
  if (auto st = dp->configurePorts(); !st.ok()) return st;
  if (auto st = dp->createWorkers(); !st.ok()) return st;
  auto flows =
      FlowTable::create(cfg.flow_capacity, dp->qsbr_, static_cast<int>(rte_lcore_to_socket_id(1)));
  if (!flows.ok()) return flows.status();
  dp->flows_ = std::move(*flows);
  for (auto& w : dp->workers_) w->relay.flows = dp->flows_.get();
  for (auto& w : dp->workers_) {
    if (rte_eal_remote_launch(workerMain, w.get(), w->lcore) != 0)
      return absl::InternalError(absl::StrCat("cannot launch worker on lcore ", w->lcore));
  }
  dp->launched_ = true;
  for (size_t p = 0; p < dp->ports_.size(); ++p) {
    const auto& port = dp->ports_[p];
    if (port.cfg.gateway4) dp->addResolve(port.addrs.port_id, *port.cfg.gateway4, 0);
    if (port.cfg.gateway6) dp->addResolve(port.addrs.port_id, *port.cfg.gateway6, 0);
  }
  dp->refreshPortStats();
  return dp;
}

namespace {
// " +N" for the log line of an interface with more addresses of a family than the first.
std::string moreAddresses(const std::vector<IpPrefix>& extra) {
  return extra.empty() ? std::string() : absl::StrCat(" +", extra.size());
}
}  // namespace

absl::Status Dataplane::configurePorts() {
  const uint16_t nq = static_cast<uint16_t>(cfg_.eal.worker_cpus.size());
  // One pool per NUMA socket that a worker runs on: RX descriptors are filled from the
  // worker's own node.
  unsigned max_socket = 0;
  for (unsigned l = 1; l <= nq; ++l) max_socket = std::max(max_socket, rte_lcore_to_socket_id(l));
  pools_.assign(max_socket + 1, nullptr);
  for (unsigned l = 1; l <= nq; ++l) {
    unsigned s = rte_lcore_to_socket_id(l);
    if (pools_[s] != nullptr) continue;
    std::string name = absl::StrCat("rtpx_mbuf_s", s);
    pools_[s] = rte_pktmbuf_pool_create(name.c_str(), cfg_.mbufs_per_socket, cfg_.mbuf_cache, 0,
                                        RTE_MBUF_DEFAULT_BUF_SIZE, static_cast<int>(s));
    if (pools_[s] == nullptr)
      return absl::ResourceExhaustedError(absl::StrCat(
          "cannot create mbuf pool of ", cfg_.mbufs_per_socket, " on socket ", s, ": ",
          rte_strerror(rte_errno), " (raise [eal] memory_mb or lower mbufs_per_socket)"));
  }

  for (const auto& ic : cfg_.interfaces) {
    Port port;
    port.cfg = ic;
    uint16_t pid = 0;
    const std::string devname = ic.isPci() ? ic.device : ic.deviceName();
    if (rte_eth_dev_get_port_by_name(devname.c_str(), &pid) != 0)
      return absl::NotFoundError(absl::StrCat("interface ", ic.name, ": DPDK has no port named '",
                                              devname, "' (device '", ic.device, "')"));
    if (pid >= kMaxPorts)
      return absl::FailedPreconditionError(
          absl::StrCat("interface ", ic.name, ": port id ", pid, " (at most ", kMaxPorts, ")"));
    rte_eth_dev_info info;
    if (int rc = rte_eth_dev_info_get(pid, &info); rc != 0)
      return absl::InternalError(absl::StrCat("rte_eth_dev_info_get: ", rte_strerror(-rc)));
    port.driver = info.driver_name;
    if (info.max_rx_queues < nq || info.max_tx_queues < nq)
      return absl::FailedPreconditionError(absl::StrCat(
          "interface ", ic.name, " (", info.driver_name, ") has ", info.max_rx_queues, " RX / ",
          info.max_tx_queues, " TX queues; ", nq,
          " workers need one each (for net_af_packet add qpairs=", nq, " to the device)"));

    rte_eth_conf conf{};
    conf.rxmode.mtu = ic.mtu;
    if (nq > 1 && info.flow_type_rss_offloads != 0) {
      conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
      conf.rx_adv_conf.rss_conf.rss_hf =
          (RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP) & info.flow_type_rss_offloads;
      port.rss = conf.rx_adv_conf.rss_conf.rss_hf != 0;
    }
    conf.rxmode.offloads =
        (RTE_ETH_RX_OFFLOAD_IPV4_CKSUM | RTE_ETH_RX_OFFLOAD_UDP_CKSUM) & info.rx_offload_capa;
    conf.txmode.offloads =
        (RTE_ETH_TX_OFFLOAD_IPV4_CKSUM | RTE_ETH_TX_OFFLOAD_UDP_CKSUM) & info.tx_offload_capa;
    port.addrs.tx_ipv4_cksum_offload = conf.txmode.offloads & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM;
    port.addrs.tx_udp_cksum_offload = conf.txmode.offloads & RTE_ETH_TX_OFFLOAD_UDP_CKSUM;
    if (int rc = rte_eth_dev_configure(pid, nq, nq, &conf); rc != 0)
      return absl::InternalError(absl::StrCat("configure ", ic.name, ": ", rte_strerror(-rc)));
    uint16_t nrxd = ic.rx_descriptors, ntxd = ic.tx_descriptors;
    rte_eth_dev_adjust_nb_rx_tx_desc(pid, &nrxd, &ntxd);
    for (uint16_t q = 0; q < nq; ++q) {
      const unsigned socket = rte_lcore_to_socket_id(q + 1);
      rte_eth_rxconf rxc = info.default_rxconf;
      rxc.offloads = conf.rxmode.offloads;
      if (int rc = rte_eth_rx_queue_setup(pid, q, nrxd, socket, &rxc, pools_[socket]); rc != 0)
        return absl::InternalError(
            absl::StrCat("rx queue ", q, " of ", ic.name, ": ", rte_strerror(-rc)));
      rte_eth_txconf txc = info.default_txconf;
      txc.offloads = conf.txmode.offloads;
      if (int rc = rte_eth_tx_queue_setup(pid, q, ntxd, socket, &txc); rc != 0)
        return absl::InternalError(
            absl::StrCat("tx queue ", q, " of ", ic.name, ": ", rte_strerror(-rc)));
    }
    if (int rc = rte_eth_dev_start(pid); rc != 0)
      return absl::InternalError(absl::StrCat("start ", ic.name, ": ", rte_strerror(-rc)));
    // IPv6 neighbor discovery arrives on solicited-node multicast groups.
    rte_eth_allmulticast_enable(pid);
    rte_ether_addr mac;
    rte_eth_macaddr_get(pid, &mac);
    port.addrs.port_id = pid;
    std::memcpy(port.addrs.mac.bytes.data(), mac.addr_bytes, 6);
    port.addrs.ipv4 = ic.ipv4;
    port.addrs.ipv6 = ic.ipv6;
    port.addrs.extra_ipv4 = ic.extra_ipv4;
    port.addrs.extra_ipv6 = ic.extra_ipv6;
    port.addrs.ipv6_link_local = linkLocalFromMac(port.addrs.mac);
    port.addrs.gateway4 = ic.gateway4;
    port.addrs.mtu = ic.mtu;
    port.addrs.gateway6 = ic.gateway6;
    port.rx_queues = nq;
    port.tx_queues = nq;
    spdlog::info(
        "interface {}: port {} {} ({}) mac {} ipv4 {}{} ipv6 {}{} queues {} rss {} "
        "tx-cksum-offload {}",
        ic.name, pid, ic.device, port.driver, port.addrs.mac.toString(),
        ic.ipv4 ? ic.ipv4->toString() : "-", moreAddresses(ic.extra_ipv4),
        ic.ipv6 ? ic.ipv6->toString() : "-", moreAddresses(ic.extra_ipv6), nq, port.rss,
        port.addrs.tx_udp_cksum_offload);
    ports_.push_back(std::move(port));
  }
  return absl::OkStatus();
}

absl::Status Dataplane::createWorkers() {
  const unsigned n = static_cast<unsigned>(cfg_.eal.worker_cpus.size());
  const size_t qsz = rte_rcu_qsbr_get_memsize(n);
  qsbr_ = static_cast<rte_rcu_qsbr*>(rte_zmalloc("rtpx_qsbr", qsz, RTE_CACHE_LINE_SIZE));
  if (qsbr_ == nullptr || rte_rcu_qsbr_init(qsbr_, n) != 0)
    return absl::ResourceExhaustedError("cannot allocate the RCU QSBR variable");
  for (unsigned i = 0; i < n; ++i) {
    auto w = std::make_unique<Worker>();
    w->index = i;
    w->lcore = i + 1;
    w->idle = cfg_.idle;
    w->rx_burst = std::min<uint16_t>(cfg_.rx_burst, 64);
    w->qsbr = qsbr_;
    w->stop = &stop_workers_;
    for (const auto& p : ports_) w->queues.push_back({p.addrs.port_id, uint16_t(i), &p.addrs});
    const int socket = static_cast<int>(rte_lcore_to_socket_id(w->lcore));
    const std::string inj = absl::StrCat("rtpx_inject_", i);
    const std::string hints = absl::StrCat("rtpx_hints_", i);
    const std::string slow = absl::StrCat("rtpx_slowpath_", i);
    w->inject = rte_ring_create_elem(inj.c_str(), sizeof(InjectCommand), 1024, socket,
                                     RING_F_SP_ENQ | RING_F_SC_DEQ);
    w->hints = rte_ring_create_elem(hints.c_str(), sizeof(NeighborHint), 1024, socket,
                                    RING_F_SP_ENQ | RING_F_SC_DEQ);
    // Its own ring, not the hints': 1.5 KiB elements, and a STUN flood must not cost neighbor
    // learning. SP/SC: the worker writes in place (zero-copy enqueue); pollSlowPath's callers
    // are serialised by slow_mu_.
    w->relay.slow_packets =
        rte_ring_create_elem(slow.c_str(), sizeof(SlowPacket), cfg_.slow_path.ring_size, socket,
                             RING_F_SP_ENQ | RING_F_SC_DEQ | RING_F_EXACT_SZ);
    w->relay.slow_limit = SlowPathLimit::of(cfg_.slow_path.rate_pps, cfg_.slow_path.burst);
    if (w->inject == nullptr || w->hints == nullptr || w->relay.slow_packets == nullptr)
      return absl::ResourceExhaustedError(
          absl::StrCat("cannot create rings for worker ", i, ": ", rte_strerror(rte_errno)));
    workers_.push_back(std::move(w));
  }
  for (const auto& p : ports_) ifaces_[p.addrs.port_id] = &p.addrs;
  std::vector<rte_ring*> handoffs;
  for (auto& w : workers_) {
    std::string name = absl::StrCat("rtpx_handoff_", w->index);
    w->handoff = rte_ring_create(name.c_str(), 4096,
                                 static_cast<int>(rte_lcore_to_socket_id(w->lcore)), RING_F_SC_DEQ);
    if (w->handoff == nullptr)
      return absl::ResourceExhaustedError(absl::StrCat("cannot create hand-off ring ", w->index));
    handoffs.push_back(w->handoff);
  }
  for (auto& w : workers_) {
    w->peers = handoffs;
    w->relay.neighbors = &neighbors_;
    w->relay.ifaces = ifaces_.data();
    w->relay.n_ifaces = kMaxPorts;
    w->relay.worker = static_cast<int32_t>(w->index);
  }
  last_loops_.assign(n, 0);
  return absl::OkStatus();
}

void Dataplane::stopWorkers() {
  if (!launched_) return;
  stop_workers_.store(true);
  rte_eal_mp_wait_lcore();
  launched_ = false;
  ready_.store(false);
}

Dataplane::~Dataplane() {
  stopWorkers();
  flows_.reset();
  for (const auto& p : ports_) {
    rte_eth_dev_stop(p.addrs.port_id);
    rte_eth_dev_close(p.addrs.port_id);
  }
  for (auto& w : workers_) {
    if (w->inject != nullptr) {
      InjectCommand c;
      while (rte_ring_sc_dequeue_elem(w->inject, &c, sizeof c) == 0) rte_pktmbuf_free(c.mbuf);
    }
    rte_ring_free(w->inject);
    rte_ring_free(w->hints);
    rte_ring_free(w->relay.slow_packets);
    if (w->handoff != nullptr) {
      void* m;
      while (rte_ring_sc_dequeue(w->handoff, &m) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
    }
    rte_ring_free(w->handoff);
  }
  for (auto* p : pools_) rte_mempool_free(p);
  rte_free(qsbr_);
}

void Dataplane::run(const std::atomic<bool>& stop, std::function<void(bool)> on_ready) {
  on_ready_ = std::move(on_ready);
  uint64_t last_tick = 0;
  while (!stop.load(std::memory_order_relaxed)) {
    const uint64_t now = monotonicNs();
    drainHintRings(now);
    if (now - last_tick >= 100'000'000ull) {
      last_tick = now;
      neighbors_.age(now, uint64_t(cfg_.neighbor.reachable_ms) * 1'000'000ull);
      resolveTick(now);
      refreshPortStats();
      checkReady(now);
    } else if (probe_due_ || resolves_pending_.load(std::memory_order_relaxed)) {
      // A new next hop is probed now rather than at the next tick: a call's first packets
      // wait for its ARP/ND answer and are dropped as flow_no_route until it comes.
      resolveTick(now);
    }
    // The main lcore is a control loop, not a poller: 5 ms is well inside ARP/ND timers, and
    // each wake-up costs a context switch (measured: ~17% of a core at 1 ms in a VM).
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  stopWorkers();
}

void Dataplane::drainHintRings(uint64_t now_ns) {
  for (auto& w : workers_) {
    NeighborHint hints[32];
    unsigned n;
    while ((n = rte_ring_sc_dequeue_burst_elem(w->hints, hints, sizeof(NeighborHint), 32,
                                               nullptr)) > 0) {
      for (unsigned i = 0; i < n; ++i) {
        if (hints[i].resolve != 0) {
          addResolve(hints[i].port, hints[i].ip, now_ns);
          continue;
        }
        const auto before = neighbors_.find(hints[i].port, hints[i].ip);
        if (!neighbors_.confirm(hints[i].port, hints[i].ip, hints[i].mac, now_ns)) {
          spdlog::warn("neighbor table full ({} entries); {} not learned", NeighborTable::kCapacity,
                       hints[i].ip.toString());
          continue;
        }
        if (!before || before->mac != hints[i].mac || before->state != NeighborState::kReachable)
          spdlog::info("neighbor {} is at {} (port {})", hints[i].ip.toString(),
                       hints[i].mac.toString(), hints[i].port);
      }
    }
  }
}

void Dataplane::requestResolve(uint16_t port, const IpAddr& next_hop) {
  std::lock_guard lk(pending_mu_);
  pending_resolves_.emplace_back(port, next_hop);
  resolves_pending_.store(true, std::memory_order_relaxed);
}

void Dataplane::addResolve(uint16_t port, const IpAddr& ip, uint64_t now_ns) {
  for (auto& r : resolves_) {
    if (r.port != port || r.ip != ip) continue;
    // Someone needs this neighbor now. One that went FAILED is otherwise retried only every
    // reachable_ms; media waiting for it (a peer that came up after its first probes) gets a
    // new round of probes at once, still no more often than one per retrans_ms.
    const auto e = neighbors_.find(port, ip);
    const uint64_t retrans = uint64_t(cfg_.neighbor.retrans_ms) * 1'000'000ull;
    if (e && e->state == NeighborState::kFailed && now_ns - r.last_probe_ns >= retrans) {
      neighbors_.setState(port, ip, NeighborState::kIncomplete);
      r.probes = 0;
      r.last_probe_ns = 0;
      probe_due_ = true;
    }
    return;
  }
  resolves_.push_back({port, ip});
  probe_due_ = true;
}

void Dataplane::resolveTick(uint64_t now_ns) {
  {
    std::lock_guard lk(pending_mu_);
    for (const auto& [port, ip] : pending_resolves_) addResolve(port, ip, now_ns);
    pending_resolves_.clear();
    resolves_pending_.store(false, std::memory_order_relaxed);
  }
  probe_due_ = false;
  const uint64_t retrans = uint64_t(cfg_.neighbor.retrans_ms) * 1'000'000ull;
  const uint64_t reachable = uint64_t(cfg_.neighbor.reachable_ms) * 1'000'000ull;
  for (auto& r : resolves_) {
    const auto e = neighbors_.find(r.port, r.ip);
    if (e && e->state == NeighborState::kReachable) {
      r.probes = 0;
      continue;
    }
    const bool failed = e && e->state == NeighborState::kFailed;
    if (now_ns - r.last_probe_ns < (failed ? reachable : retrans) && r.last_probe_ns != 0) continue;
    if (r.probes >= cfg_.neighbor.max_probes && !failed) {
      neighbors_.setState(r.port, r.ip, NeighborState::kFailed);
      spdlog::warn("neighbor {} does not answer after {} probes", r.ip.toString(), r.probes);
      r.probes = 0;
      r.last_probe_ns = now_ns;
      continue;
    }
    neighbors_.markIncomplete(r.port, r.ip);
    sendProbe(r);
    r.last_probe_ns = now_ns;
    ++r.probes;
  }
}

void Dataplane::sendProbe(const Resolve& r) {
  Worker& w = *workers_.front();
  rte_mempool* pool = pools_[rte_lcore_to_socket_id(w.lcore)];
  rte_mbuf* m = rte_pktmbuf_alloc(pool);
  if (m == nullptr) return;
  const Port* port = nullptr;
  for (const auto& p : ports_)
    if (p.addrs.port_id == r.port) port = &p;
  const bool built =
      port != nullptr && (r.ip.isV4() ? buildArpRequest(m, port->addrs, r.ip)
                                      : buildNeighborSolicitation(m, port->addrs, r.ip));
  if (!built) {
    rte_pktmbuf_free(m);
    return;
  }
  inject(m, r.port);
}

bool Dataplane::inject(rte_mbuf* m, uint16_t port) {
  InjectCommand cmd{m, port, {}};
  std::lock_guard lk(inject_mu_);
  if (rte_ring_sp_enqueue_elem(workers_.front()->inject, &cmd, sizeof cmd) == 0) return true;
  rte_pktmbuf_free(m);
  return false;
}

std::size_t Dataplane::pollSlowPath(std::span<SlowPacket> out) {
  std::lock_guard lk(slow_mu_);
  const size_t nw = workers_.size();
  size_t n = 0;
  for (size_t i = 0; i < nw && n < out.size(); ++i) {
    rte_ring* r = workers_[(slow_next_ + i) % nw]->relay.slow_packets;
    n += rte_ring_sc_dequeue_burst_elem(r, out.data() + n, sizeof(SlowPacket),
                                        static_cast<unsigned>(out.size() - n), nullptr);
  }
  // Start with the next worker next time: one busy worker does not starve the others.
  if (nw != 0) slow_next_ = (slow_next_ + 1) % nw;
  return n;
}

absl::Status Dataplane::sendFromFlow(FlowId id, const Endpoint& to,
                                     std::span<const uint8_t> payload) {
  absl::StatusOr<FlowSpec> spec = flows_->spec(id);
  if (!spec.ok()) return spec.status();
  const Worker& w = *workers_.front();
  rte_mbuf* m = rte_pktmbuf_alloc(pools_[rte_lcore_to_socket_id(w.lcore)]);
  if (m == nullptr) return absl::ResourceExhaustedError("slow path: no mbuf free");
  IpAddr hop;
  absl::Status st =
      buildFlowPacket(m, *spec, to, payload, ifaces_.data(), kMaxPorts, neighbors_, &hop);
  if (!st.ok()) {
    rte_pktmbuf_free(m);
    if (absl::IsUnavailable(st)) requestResolve(spec->ingress_port, hop);
    return st;
  }
  if (!inject(m, spec->ingress_port))
    return absl::ResourceExhaustedError("slow path: worker 0's inject ring is full");
  return absl::OkStatus();
}

void Dataplane::refreshPortStats() {
  std::vector<PortSnapshot> out;
  for (const auto& p : ports_) {
    PortSnapshot s;
    s.port_id = p.addrs.port_id;
    s.interface = p.cfg.name;
    s.device = p.cfg.device;
    s.driver = p.driver;
    s.mac = p.addrs.mac;
    s.rx_queues = p.rx_queues;
    s.tx_queues = p.tx_queues;
    s.rss = p.rss;
    s.tx_cksum_offload = p.addrs.tx_udp_cksum_offload;
    if (p.cfg.ipv4) s.addresses.push_back(p.cfg.ipv4->toString());
    for (const IpPrefix& x : p.cfg.extra_ipv4) s.addresses.push_back(x.toString());
    if (p.cfg.ipv6) s.addresses.push_back(p.cfg.ipv6->toString());
    for (const IpPrefix& x : p.cfg.extra_ipv6) s.addresses.push_back(x.toString());
    s.addresses.push_back(p.addrs.ipv6_link_local.toString() + "/64");
    rte_eth_link link{};
    if (rte_eth_link_get_nowait(s.port_id, &link) == 0) {
      s.link_up = link.link_status == RTE_ETH_LINK_UP;
      s.speed_mbps = link.link_speed == RTE_ETH_SPEED_NUM_UNKNOWN ? 0 : link.link_speed;
    }
    rte_eth_stats st{};
    if (rte_eth_stats_get(s.port_id, &st) == 0) {
      s.ipackets = st.ipackets;
      s.opackets = st.opackets;
      s.ibytes = st.ibytes;
      s.obytes = st.obytes;
      s.imissed = st.imissed;
      s.ierrors = st.ierrors;
      s.oerrors = st.oerrors;
      s.rx_nombuf = st.rx_nombuf;
    }
    out.push_back(std::move(s));
  }
  std::lock_guard lk(port_stats_mu_);
  port_stats_ = std::move(out);
}

void Dataplane::checkReady(uint64_t now_ns) {
  if (now_ns - last_heartbeat_check_ns_ < 500'000'000ull && ready_.load()) return;
  last_heartbeat_check_ns_ = now_ns;
  bool ok = launched_;
  for (size_t i = 0; i < workers_.size(); ++i) {
    const uint64_t l = workers_[i]->loops.load(std::memory_order_relaxed);
    if (l == last_loops_[i]) ok = false;
    last_loops_[i] = l;
  }
  {
    std::lock_guard lk(port_stats_mu_);
    for (const auto& p : port_stats_) ok = ok && p.link_up;
  }
  if (ok == ready_.load()) return;
  spdlog::info("dataplane {}", ok ? "ready" : "not ready");
  ready_.store(ok, std::memory_order_release);
  if (on_ready_) on_ready_(ok);
}

StatsSnapshot Dataplane::stats() const {
  StatsSnapshot s;
  s.now_ns = monotonicNs();
  s.uptime_ns = s.now_ns - start_ns_;
  for (const auto& w : workers_) {
    WorkerSnapshot ws;
    ws.index = w->index;
    ws.lcore = w->lcore;
    ws.socket = rte_lcore_to_socket_id(w->lcore);
    for (size_t i = 0; i < kNumWorkerEvents; ++i) ws.events[i] = w->counters.events[i].read();
    for (size_t i = 0; i < kNumDropReasons; ++i) ws.drops[i] = w->counters.drops[i].read();
    s.workers.push_back(ws);
  }
  {
    std::lock_guard lk(port_stats_mu_);
    s.ports = port_stats_;
  }
  s.neighbors = neighbors_.snapshot();
  for (const auto& p : ports_) {
    if (s.interface_names.size() <= p.addrs.port_id) s.interface_names.resize(p.addrs.port_id + 1);
    s.interface_names[p.addrs.port_id] = p.cfg.name;
  }
  return s;
}

}  // namespace rtpx

#include "dataplane/worker.h"

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_pause.h>
#include <time.h>

#include <algorithm>

#include "dataplane/relay.h"

namespace rtpx {
namespace {

// DPDK's ip_pipeline checks its request ring every 16 loops: often enough for control latency,
// rarely enough to stay off the per-packet budget.
constexpr uint64_t kCommandCadence = 16;
constexpr unsigned kMaxBurst = 64;

uint64_t nowNs() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// Per-port transmit buffers for one burst: a relayed packet may leave on another port.
struct TxBatch {
  std::array<std::array<rte_mbuf*, kMaxBurst>, kMaxPorts> pkts;
  std::array<uint16_t, kMaxPorts> n{};
};

void transmit(Worker& w, uint16_t port, uint16_t queue, rte_mbuf** pkts, uint16_t n) noexcept {
  if (n == 0) return;
  uint64_t bytes = 0;
  for (uint16_t i = 0; i < n; ++i) bytes += rte_pktmbuf_pkt_len(pkts[i]);
  const uint16_t sent = rte_eth_tx_burst(port, queue, pkts, n);
  uint64_t unsent_bytes = 0;
  for (uint16_t i = sent; i < n; ++i) {
    unsent_bytes += rte_pktmbuf_pkt_len(pkts[i]);
    rte_pktmbuf_free(pkts[i]);
  }
  w.counters.count(WorkerEvent::tx_packets, sent);
  w.counters.count(WorkerEvent::tx_bytes, bytes - unsent_bytes);
  if (sent < n) w.counters.drop(DropReason::tx_full, n - sent);
}

void flush(Worker& w, TxBatch& b) noexcept {
  for (uint16_t p = 0; p < kMaxPorts; ++p) {
    if (b.n[p] == 0) continue;
    transmit(w, p, static_cast<uint16_t>(w.index), b.pkts[p].data(), b.n[p]);
    b.n[p] = 0;
  }
}

void dispatch(Worker& w, rte_mbuf* m, IngressResult& r, uint16_t in_port, TxBatch& b) noexcept {
  if (r.has_hint && rte_ring_sp_enqueue_elem(w.hints, &r.hint, sizeof(NeighborHint)) != 0)
    w.counters.count(WorkerEvent::neighbor_hints_lost);  // the resolver retries
  switch (r.verdict) {
    case Verdict::kTransmit: {
      // Always < kMaxPorts: configurePorts refuses larger port ids, and a flow's egress port
      // is checked against the interfaces in relayUdp.
      const uint16_t port = r.tx_port == kSamePort ? in_port : r.tx_port;
      b.pkts[port][b.n[port]++] = m;
      if (b.n[port] == kMaxBurst) {
        transmit(w, port, static_cast<uint16_t>(w.index), b.pkts[port].data(), kMaxBurst);
        b.n[port] = 0;
      }
      return;
    }
    case Verdict::kHandoff:
      if (rte_ring_mp_enqueue(w.peers[r.handoff_worker], m) != 0) {
        rte_pktmbuf_free(m);
        w.counters.drop(DropReason::handoff_full);
      }
      return;
    default:
      rte_pktmbuf_free(m);
  }
}

// Two passes over a burst. The first classifies every packet (replies and drops are done there)
// and collects the media packets' flow keys; one bulk lookup finds their flows, whose hot lines
// are then prefetched; the second pass relays the media packets, prefetching a few packets ahead
// the records the flows point to (spec, reverse direction). With thousands of flows none of this
// is in cache: this way a burst's misses overlap instead of queueing behind each other.
uint16_t pollQueue(Worker& w, const WorkerQueue& q, TxBatch& b) noexcept {
  constexpr uint16_t kAhead = 3;
  rte_mbuf* rx[kMaxBurst];
  const uint16_t n = rte_eth_rx_burst(q.port, q.queue, rx, w.rx_burst);
  if (n == 0) return 0;
  w.relay.now_ns = nowNs();
  for (uint16_t i = 0; i < n && i < kAhead; ++i) rte_prefetch0(rte_pktmbuf_mtod(rx[i], void*));
  rte_mbuf* media[kMaxBurst];
  FlowKey keys[kMaxBurst];
  const void* key_ptrs[kMaxBurst];
  uint16_t nm = 0;
  uint64_t bytes = 0;
  for (uint16_t i = 0; i < n; ++i) {
    rte_mbuf* m = rx[i];
    if (i + kAhead < n) rte_prefetch0(rte_pktmbuf_mtod(rx[i + kAhead], void*));
    bytes += rte_pktmbuf_pkt_len(m);
    IngressResult r;
    if (!classifyIngress(m, *q.ifc, w.counters, &w.relay, &r)) {
      dispatch(w, m, r, q.port, b);
      continue;
    }
    keys[nm] = flowKeyOf(m);
    key_ptrs[nm] = &keys[nm];
    media[nm++] = m;
  }
  if (nm != 0) {
    Flow* flows[kMaxBurst];
    w.relay.flows->lookupBulk(key_ptrs, nm, flows);
    for (uint16_t j = 0; j < nm; ++j) {
      if (flows[j] == nullptr) continue;
      const auto* f = reinterpret_cast<const char*>(flows[j]);
      rte_prefetch0(f);
      rte_prefetch0(f + 64);
      rte_prefetch0(f + 128);
    }
    for (uint16_t j = 0; j < nm; ++j) {
      if (j + kAhead < nm && flows[j + kAhead] != nullptr) {
        const Flow* f = flows[j + kAhead];
        rte_prefetch0(f->spec.load(std::memory_order_relaxed));
        if (const Flow* rev = f->reverse.load(std::memory_order_relaxed)) rte_prefetch0(rev);
      }
      IngressResult r = relayFlow(media[j], flows[j], w.relay, w.counters, false);
      dispatch(w, media[j], r, q.port, b);
    }
  }
  w.counters.count(WorkerEvent::rx_packets, n);
  w.counters.count(WorkerEvent::rx_bytes, bytes);
  return n;
}

// Packets of flows this worker owns that arrived at another worker.
uint16_t drainHandoffs(Worker& w, TxBatch& b) noexcept {
  rte_mbuf* pkts[kMaxBurst];
  const unsigned n =
      rte_ring_sc_dequeue_burst(w.handoff, reinterpret_cast<void**>(pkts), kMaxBurst, nullptr);
  if (n == 0) return 0;
  w.relay.now_ns = nowNs();
  for (unsigned i = 0; i < n; ++i) {
    w.counters.count(WorkerEvent::handoffs_received);
    IngressResult r = relayUdp(pkts[i], w.relay, w.counters, true);
    dispatch(w, pkts[i], r, pkts[i]->port, b);
  }
  return static_cast<uint16_t>(n);
}

void idleSleep(Worker& w, uint32_t us) noexcept {
  // Offline while asleep so RCU grace periods do not wait for a sleeping worker.
  rte_rcu_qsbr_thread_offline(w.qsbr, w.index);
  timespec ts{0, static_cast<long>(us) * 1000};
  nanosleep(&ts, nullptr);
  rte_rcu_qsbr_thread_online(w.qsbr, w.index);
  w.counters.count(WorkerEvent::idle_sleeps);
}

}  // namespace

// Packets the main lcore or the control plane wants sent. Each port's TX queue `index`
// belongs to this worker.
void drainInjectRing(Worker& w) noexcept {
  InjectCommand cmds[16];
  const unsigned n =
      rte_ring_sc_dequeue_burst_elem(w.inject, cmds, sizeof(InjectCommand), 16, nullptr);
  for (unsigned i = 0; i < n; ++i) {
    rte_mbuf* m = cmds[i].mbuf;
    w.counters.count(WorkerEvent::injected_tx);
    transmit(w, cmds[i].port, static_cast<uint16_t>(w.index), &m, 1);
  }
}

uint32_t pollOnce(Worker& w) noexcept {
  TxBatch batch;
  uint32_t got = 0;
  for (const auto& q : w.queues) got += pollQueue(w, q, batch);
  got += drainHandoffs(w, batch);
  flush(w, batch);
  return got;
}

int workerMain(void* arg) {
  Worker& w = *static_cast<Worker*>(arg);
  rte_rcu_qsbr_thread_register(w.qsbr, w.index);
  rte_rcu_qsbr_thread_online(w.qsbr, w.index);
  uint64_t loops = 0;
  uint32_t idle_polls = 0;
  uint32_t sleep_us = 0;
  const uint64_t spin_cycles =
      w.idle.busy_poll ? UINT64_MAX : rte_get_tsc_hz() / 1000000 * uint64_t{w.idle.spin_us};
  uint64_t idle_since = 0;  // TSC of the first empty poll
  while (!w.stop->load(std::memory_order_relaxed)) {
    const uint32_t got = pollOnce(w);
    // Every flow or spec pointer this loop read is released here (DESIGN.md §4, QSBR).
    rte_rcu_qsbr_quiescent(w.qsbr, w.index);
    if ((++loops % kCommandCadence) == 0) {
      drainInjectRing(w);
      w.loops.store(loops, std::memory_order_relaxed);
    }
    if (got != 0) {
      w.counters.count(WorkerEvent::busy_polls);
      idle_polls = 0;
      sleep_us = 0;
      continue;
    }
    // Idle back-off: spin (spin_polls empty polls and spin_us without a packet), then sleep
    // with a doubling interval.
    if (idle_polls++ == 0) idle_since = rte_rdtsc();
    if (idle_polls < w.idle.spin_polls || rte_rdtsc() - idle_since < spin_cycles) {
      rte_pause();
      continue;
    }
    sleep_us = std::min<uint32_t>(sleep_us == 0 ? 1 : sleep_us * 2, w.idle.max_sleep_us);
    drainInjectRing(w);  // anything queued goes out before a sleep, not after it
    w.loops.store(loops, std::memory_order_relaxed);
    idleSleep(w, sleep_us);
  }
  rte_rcu_qsbr_thread_offline(w.qsbr, w.index);
  rte_rcu_qsbr_thread_unregister(w.qsbr, w.index);
  return 0;
}

}  // namespace rtpx

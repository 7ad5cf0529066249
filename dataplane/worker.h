// A worker lcore: polls its RX queue on every port, runs each packet through ingress, transmits
// replies on its own TX queue, and drains its command ring on a fixed cadence. It owns its
// counters and rings outright; other threads only read counters and use the rings.
#pragma once

#include <rte_mbuf.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <vector>

#include "dataplane/config.h"
#include "dataplane/counters.h"
#include "dataplane/ingress.h"

namespace rtpx {

// main lcore or control plane → worker: a packet to transmit (ARP/ND requests, slow-path
// answers from Dataplane::sendFromFlow). The worker owns the mbuf once it is on the ring.
struct InjectCommand {
  rte_mbuf* mbuf;
  uint16_t port;
  uint16_t pad[3];
};
static_assert(sizeof(InjectCommand) % 4 == 0, "rte_ring elements are multiples of 4 bytes");
static_assert(sizeof(NeighborHint) % 4 == 0, "rte_ring elements are multiples of 4 bytes");

struct WorkerQueue {
  uint16_t port;
  uint16_t queue;
  const InterfaceAddrs* ifc;
};

struct alignas(64) Worker {
  unsigned index = 0;
  unsigned lcore = 0;
  std::vector<WorkerQueue> queues;  // fixed before launch
  IdleConfig idle;
  uint16_t rx_burst = 32;
  rte_ring* inject = nullptr;    // SP/SC, InjectCommand (producers serialised by Dataplane)
  rte_ring* hints = nullptr;     // SP/SC, NeighborHint, to the main lcore
  rte_ring* handoff = nullptr;   // MP/SC, rte_mbuf*: packets of flows this worker owns
  std::vector<rte_ring*> peers;  // every worker's handoff ring, by worker index
  // Flows, neighbors, interfaces, the slow-path ring (SP/SC, SlowPacket, to the control
  // plane) and its rate limit; now_ns set per burst.
  RelayContext relay;
  rte_rcu_qsbr* qsbr = nullptr;
  const std::atomic<bool>* stop = nullptr;

  WorkerCounters counters;
  alignas(64) std::atomic<uint64_t> loops{0};  // heartbeat, read by the main lcore
};

inline constexpr uint16_t kMaxPorts = 8;

// Entry point for rte_eal_remote_launch; `arg` is a Worker*.
int workerMain(void* arg);

// One pass of the worker loop: one RX burst from every queue, the hand-off ring, then the TX
// bursts. Returns the packets it handled. workerMain calls it; tests and the instruction-count
// driver call it directly on ring ports.
uint32_t pollOnce(Worker& w) noexcept;

// Transmits what is on the inject ring (up to 16 packets). workerMain calls it every 16 loops
// and before it sleeps; tests call it directly.
void drainInjectRing(Worker& w) noexcept;

}  // namespace rtpx

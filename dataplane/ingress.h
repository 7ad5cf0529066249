// The receive-side classification a worker runs on every packet (DESIGN.md §3): parse
// L2/L3/L4 in place, answer ARP / ICMP echo / IPv6 ND / ICMPv6 echo for owned addresses by
// rewriting the packet into its reply, and give every other packet a named verdict.
// No allocation, no locks, no exceptions: the result is a value and a counter.
#pragma once

#include <rte_mbuf.h>

#include <array>

#include "dataplane/counters.h"
#include "dataplane/interface.h"
#include "dataplane/slow_path.h"

struct rte_ring;

namespace rtpx {

class FlowTable;
class NeighborTable;

// For the neighbor table's owner (the main lcore): an address learned from ARP / ND traffic,
// or (resolve = 1) a next hop a worker needs resolved.
struct NeighborHint {
  uint16_t port = 0;
  MacAddr mac;
  IpAddr ip;
  uint8_t resolve = 0;
  uint8_t pad[2] = {};  // rte_ring elements are multiples of 4 bytes
};

// What the relay path needs besides the packet; built by the worker once per burst.
struct RelayContext {
  const FlowTable* flows = nullptr;
  const NeighborTable* neighbors = nullptr;
  const InterfaceAddrs* const* ifaces = nullptr;  // by DPDK port id; null if not ours
  uint16_t n_ifaces = 0;
  int32_t worker = 0;
  uint64_t now_ns = 0;
  // The slow path (dataplane/slow_path.h): this worker's SP/SC ring of SlowPacket towards the
  // control plane (null: every STUN/DTLS packet is dropped as slowpath_ring_full), and the
  // per-flow rate limit.
  rte_ring* slow_packets = nullptr;
  SlowPathLimit slow_limit;

  // Next-hop MACs resolved during the burst stamped `now_ns`: a burst reads the neighbor table
  // once per next hop (usually one gateway) instead of once per packet. A neighbor update is
  // seen from the next burst on, as if it had come a few microseconds later.
  struct HopCache {
    uint64_t stamp = 0;
    IpAddr hop;  // family kNone: empty
    uint16_t port = 0;
    MacAddr mac;
  };
  mutable std::array<HopCache, 4> hops{};
};

enum class Verdict : uint8_t {
  kTransmit,  // the mbuf now holds the packet to send on `tx_port`
  kConsumed,  // handled (e.g. a neighbor reply); free it
  kDrop,      // free it; counted under `reason`
  kHandoff,   // its flow belongs to worker `handoff_worker`: pass the mbuf on, untouched
};

inline constexpr uint16_t kSamePort = 0xffff;

struct IngressResult {
  Verdict verdict = Verdict::kDrop;
  DropReason reason = DropReason::malformed;
  bool has_hint = false;
  uint16_t tx_port = kSamePort;  // kSamePort: the port the packet came from (local replies)
  int32_t handoff_worker = -1;
  NeighborHint hint;
};

// Classifies and, where it is ours to answer, rewrites `m` in place. Counts the outcome's event
// or drop in `c` (the caller counts rx/tx packets and bytes). UDP to an owned address goes to
// the flow table when `relay` is given, else is dropped as unknown_udp_port.
IngressResult handleIngress(rte_mbuf* m, const InterfaceAddrs& ifc, WorkerCounters& c,
                            const RelayContext* relay = nullptr) noexcept;

// handleIngress cut before the flow lookup, for the worker's burst path (it looks up a whole
// burst's flows at once). Returns true when `m` is UDP to an owned address that passed every
// check before the lookup: nothing is counted yet and the caller finishes it with relayFlow
// (dataplane/relay.h). Otherwise *out is the final, counted result, as handleIngress gives it.
bool classifyIngress(rte_mbuf* m, const InterfaceAddrs& ifc, WorkerCounters& c,
                     const RelayContext* relay, IngressResult* out) noexcept;

// The relay path for a UDP packet to an owned address (L3 header right after Ethernet).
// `handoff` is true when another worker already handed it over (never handed on again).
IngressResult relayUdp(rte_mbuf* m, const RelayContext& ctx, WorkerCounters& c,
                       bool handoff) noexcept;

// Fills `m` with a who-has for `target` (RFC 826) or a neighbor solicitation (RFC 4861 §7.2.2).
// Returns false if the interface has no address of that family.
bool buildArpRequest(rte_mbuf* m, const InterfaceAddrs& ifc, const IpAddr& target) noexcept;
bool buildNeighborSolicitation(rte_mbuf* m, const InterfaceAddrs& ifc,
                               const IpAddr& target) noexcept;

}  // namespace rtpx

// The receive-side classification a worker runs on every packet (DESIGN.md §3): parse
// L2/L3/L4 in place, answer ARP / ICMP echo / IPv6 ND / ICMPv6 echo for owned addresses by
// rewriting the packet into its reply, and give every other packet a named verdict.
// No allocation, no locks, no exceptions: the result is a value and a counter.
#pragma once

#include <rte_mbuf.h>

#include "dataplane/counters.h"
#include "dataplane/interface.h"

namespace rtpx {

// Learned from ARP / ND traffic; the worker hands it to the neighbor table's owner.
struct NeighborHint {
  uint16_t port = 0;
  MacAddr mac;
  IpAddr ip;
  uint8_t pad[3] = {};  // rte_ring elements are multiples of 4 bytes
};

enum class Verdict : uint8_t {
  kTransmit,  // the mbuf now holds a reply: send it on the port it came from
  kConsumed,  // handled (e.g. a neighbor reply); free it
  kDrop,      // free it; counted under `reason`
};

struct IngressResult {
  Verdict verdict = Verdict::kDrop;
  DropReason reason = DropReason::malformed;
  bool has_hint = false;
  NeighborHint hint;
};

// Classifies and, where it is ours to answer, rewrites `m` in place. Counts the outcome's event
// or drop in `c` (the caller counts rx/tx packets and bytes).
IngressResult handleIngress(rte_mbuf* m, const InterfaceAddrs& ifc, WorkerCounters& c) noexcept;

// Fills `m` with a who-has for `target` (RFC 826) or a neighbor solicitation (RFC 4861 §7.2.2).
// Returns false if the interface has no address of that family.
bool buildArpRequest(rte_mbuf* m, const InterfaceAddrs& ifc, const IpAddr& target) noexcept;
bool buildNeighborSolicitation(rte_mbuf* m, const InterfaceAddrs& ifc,
                               const IpAddr& target) noexcept;

}  // namespace rtpx

// The relay fast path cut around its flow lookup, for the worker's burst loop: it looks up the
// flows of a whole burst at once (FlowTable::lookupBulk) and prefetches their records, then
// relays each packet, so that the cache misses of one packet's flow overlap with the others'
// instead of adding up.
#pragma once

#include <rte_mbuf.h>

#include <cstdint>
#include <span>

#include "dataplane/flow_internal.h"
#include "dataplane/ingress.h"

namespace rtpx {

// The flow table key of the destination address:port of a packet classifyIngress passed on.
FlowKey flowKeyOf(const rte_mbuf* m) noexcept;

// relayUdp after the lookup: `f` is the packet's flow, or null if there is none.
IngressResult relayFlow(rte_mbuf* m, Flow* f, const RelayContext& ctx, WorkerCounters& c,
                        bool handoff) noexcept;

// Fills `m` (empty) with a whole Ethernet/IP/UDP frame carrying `payload` from `src` to `dst`
// (same family), headers as the relay writes them (TTL 64, IPv4 DF, TOS 0), checksums by the
// port's offloads where `out` has them, else in software. False if it does not fit the mbuf.
bool writeUdpPacket(rte_mbuf* m, const InterfaceAddrs& out, const MacAddr& next_mac,
                    const Endpoint& src, const Endpoint& dst,
                    std::span<const uint8_t> payload) noexcept;

}  // namespace rtpx

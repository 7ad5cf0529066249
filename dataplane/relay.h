// The relay fast path cut around its flow lookup, for the worker's burst loop: it looks up the
// flows of a whole burst at once (FlowTable::lookupBulk) and prefetches their records, then
// relays each packet, so that the cache misses of one packet's flow overlap with the others'
// instead of adding up.
#pragma once

#include <rte_mbuf.h>

#include "dataplane/flow_internal.h"
#include "dataplane/ingress.h"

namespace rtpx {

// The flow table key of the destination address:port of a packet classifyIngress passed on.
FlowKey flowKeyOf(const rte_mbuf* m) noexcept;

// relayUdp after the lookup: `f` is the packet's flow, or null if there is none.
IngressResult relayFlow(rte_mbuf* m, Flow* f, const RelayContext& ctx, WorkerCounters& c,
                        bool handoff) noexcept;

}  // namespace rtpx

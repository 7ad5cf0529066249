// A flow is one media direction the dataplane executes (DESIGN.md §4): packets arriving at a
// local endpoint (rtpx's address:port) are checked against their source, rewritten and sent to
// a destination from rtpx's endpoint on the other leg. The control plane compiles sessions into
// flows; the dataplane only executes them.
//
// Ownership: a flow's spec is written only by the control plane (FlowTable::update) and its
// latch/counters only by the worker that receives its packets; each part is a seqlock or
// single-writer atomics, so the packet path takes no lock. A direction reads its reverse's
// latched source (symmetric RTP: we send to where the peer really sends from).
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <vector>

#include "dataplane/net_types.h"

struct rte_hash;
struct rte_rcu_qsbr;

namespace rtpx {

struct Endpoint {
  IpAddr addr;        // family kNone = not known yet
  uint16_t port = 0;  // host byte order; 0 = not known yet

  bool known() const noexcept { return addr.family != IpAddr::Family::kNone && port != 0; }
  std::string toString() const;
  auto operator<=>(const Endpoint&) const = default;
};

// What the control plane decides for one direction.
struct FlowSpec {
  uint16_t ingress_port = 0;  // DPDK port the packets arrive on
  Endpoint local;             // rtpx address:port they arrive at (the lookup key)
  uint16_t egress_port = 0;   // DPDK port to send on
  Endpoint egress_local;      // rtpx address:port on the other leg: source of what we send
  Endpoint destination;       // where to send until the reverse direction latches
  // Source the SDP announced for this direction's sender; informational (NAT rewrites it):
  // the flow latches to the first real source and is strict after that.
  Endpoint announced_source;
  bool forward = true;        // false: count and drop (hold, recvonly/inactive media)
  bool strict_source = true;  // after latching, drop packets from other sources
  bool rtcp = false;          // an RTCP-only port (no RTP statistics)
  // An RTP profile: the first byte tells media from STUN/DTLS (RFC 7983), which go to the slow
  // path. false: plain UDP (UDPTL for T.38, ...), relayed whatever its first byte.
  bool demux = true;
  uint32_t clock_rate = 8000;  // RTP clock of the main payload, for jitter (RFC 3550 A.8)
};

// What the worker learned and counted; a consistent copy for Query.
struct FlowStats {
  uint64_t packets = 0;
  uint64_t bytes = 0;
  uint64_t forwarded = 0;
  uint64_t dropped_source = 0;  // strict source: not the latched source
  uint64_t dropped_no_destination = 0;
  uint64_t dropped_no_route = 0;  // next hop not resolved yet
  uint64_t dropped_not_forwarding = 0;
  uint64_t first_packet_ns = 0;  // monotonic clock, accepted packets only; 0 = none yet
  uint64_t last_packet_ns = 0;
  bool latched = false;
  Endpoint latched_source;
  // RTP (RFC 3550): from the sender's sequence numbers and timestamps.
  uint32_t ssrc = 0;
  uint64_t rtp_packets = 0;
  uint64_t rtp_expected = 0;    // extended highest seq - base seq + 1
  int64_t rtp_lost = 0;         // expected - received (negative with duplicates)
  uint32_t rtp_seq_errors = 0;  // jumps beyond MAX_DROPOUT / MAX_MISORDER (RFC 3550 A.1)
  double jitter_ms = 0;
  uint64_t rtcp_packets = 0;
  // STUN/DTLS handed to the control plane (dataplane/slow_path.h); not in `packets`, which
  // counts media (RTP/RTCP by the first byte, RFC 7983) only.
  uint64_t slowpath_packets = 0;
};

using FlowId = uint32_t;

class Flow;         // dataplane-private
struct SpecRecord;  // dataplane-private

// The lock-free table of flows, keyed by (local address, local port). Readers are the workers
// (rte_hash with lock-free concurrent readers); writers are control-plane threads, serialised
// by the caller. Removal and update unlink at once and retire what they replaced; a retired
// record is freed once every worker has reported an RCU quiescent state since (QSBR), checked
// without waiting by every writer call and by reclaim(). No writer waits for a worker, except
// add() when only retired entries stand between it and a full table.
class FlowTable {
 public:
  static absl::StatusOr<std::unique_ptr<FlowTable>> create(uint32_t capacity, rte_rcu_qsbr* qsbr,
                                                           int socket);
  ~FlowTable();

  // Publishes a flow. ALREADY_EXISTS if its local endpoint is taken, RESOURCE_EXHAUSTED if full.
  absl::StatusOr<FlowId> add(const FlowSpec& spec);
  // Pairs two directions so each sends to the other's latched source.
  absl::Status pair(FlowId a, FlowId b);
  // Replaces the spec (re-offer). The local endpoint cannot change. If `relatch`, the flow
  // forgets its latched source and latches again to the next packet.
  absl::Status update(FlowId id, const FlowSpec& spec, bool relatch);
  // Unlinks `ids` (both directions of a stream together) and retires them: their ids, key
  // slots and memory are reused once no worker can still hold them.
  absl::Status remove(const std::vector<FlowId>& ids);
  // Frees what no worker can see any more; never waits. Writers call it too; call it now and
  // then (the session manager's tick does) so that memory comes back when no writer runs.
  void reclaim();
  absl::StatusOr<FlowStats> stats(FlowId id) const;
  // The flow's current spec; like stats(), on the control side (serialised with the writers).
  absl::StatusOr<FlowSpec> spec(FlowId id) const;
  // Packets received so far (stats().packets, without the rest); 0 for an unknown id.
  uint64_t packets(FlowId id) const;
  // The worker's clock (CLOCK_MONOTONIC ns) at the latest packet it accepted (from the
  // latched source); 0 for none yet or an unknown id.
  uint64_t lastPacket(FlowId id) const;
  // Flows in the table (retired ones not counted).
  size_t size() const { return live_; }
  // Removed flows and replaced specs waiting for a grace period; for tests and statistics.
  size_t retired() const { return retired_.size(); }
  uint32_t capacity() const { return capacity_; }

  // Packet path: the flow for a destination address/port (network byte order port), or null.
  Flow* lookup(const IpAddr& local, uint16_t port_be) const noexcept;
  // Packet path, a burst at a time: `keys` are FlowKeys (flow_internal.h), n <= 64; flows[i] is
  // the flow of keys[i] or null. rte_hash_lookup_bulk_data fetches every key's bucket, then
  // every candidate key, before it compares any, so a burst's cache misses overlap.
  void lookupBulk(const void* const* keys, uint32_t n, Flow** flows) const noexcept;

 private:
  // A removed flow (with its hash key slot), or a spec an update replaced (flow == null).
  struct Retired {
    uint64_t token;  // rte_rcu_qsbr_start() after the unlink
    Flow* flow;
    int32_t key_position;
    const SpecRecord* spec;
  };
  FlowTable() = default;
  void free(const Retired& r);
  // Waits for the oldest grace period and frees everything retired before it.
  void reclaimOldest();

  rte_hash* hash_ = nullptr;
  rte_rcu_qsbr* qsbr_ = nullptr;
  uint32_t capacity_ = 0;
  size_t live_ = 0;
  std::vector<Flow*> by_id_;  // control side only
  std::vector<FlowId> free_ids_;
  std::deque<Retired> retired_;  // oldest first: tokens only grow
};

}  // namespace rtpx

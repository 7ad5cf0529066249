// Per-worker counters. One X-macro list per kind so the enum, the name and the description
// cannot drift (VPP's error counters). Every packet a worker receives ends in exactly one of:
// a reply it sends, an event it consumed, or a named drop — so
//   rx_packets + handoffs_received == arp_replies + icmp_echo_replies + nd_advertisements
//       + icmp6_echo_replies + neighbor_updates + relayed + handoffs_sent + slowpath_packets
//       + drops (every reason but tx_full and handoff_full)
// holds at every quiescent point, and tests check it. tx_full and handoff_full happen after
// the verdict: a packet already counted above (as a reply, relayed or handed off) that the
// port or the owner's ring would not take, so it is dropped and counted a second time there.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>

namespace rtpx {

#define RTPX_WORKER_EVENTS(X)                                                                 \
  X(rx_packets, "Packets received from the port")                                             \
  X(rx_bytes, "Bytes received from the port")                                                 \
  X(tx_packets, "Packets handed to the port for transmission")                                \
  X(tx_bytes, "Bytes handed to the port for transmission")                                    \
  X(arp_replies, "ARP requests for an owned address answered")                                \
  X(icmp_echo_replies, "ICMP echo requests answered")                                         \
  X(nd_advertisements, "IPv6 neighbor solicitations answered")                                \
  X(icmp6_echo_replies, "ICMPv6 echo requests answered")                                      \
  X(neighbor_updates, "ARP replies and ND advertisements handed to the neighbor table")       \
  X(relayed, "Media packets rewritten and sent on by a flow")                                 \
  X(handoffs_sent, "Media packets handed to the worker that owns their flow")                 \
  X(handoffs_received, "Media packets received from another worker for a flow owned here")    \
  X(slowpath_packets, "STUN/DTLS packets copied to the slow-path ring for the control plane") \
  X(resolve_requests, "Next hops this worker asked the main lcore to resolve")                \
  X(neighbor_hints_lost, "Neighbor updates lost because the hint ring was full")              \
  X(injected_tx, "Packets the main lcore asked this worker to transmit")                      \
  X(busy_polls, "Receive polls that returned packets")                                        \
  X(idle_sleeps, "Times the worker slept because it was idle")

#define RTPX_DROP_REASONS(X)                                                                   \
  X(malformed, "Truncated or inconsistent L2/L3/L4 header")                                    \
  X(l2_not_for_us, "Ethernet destination is neither this port nor broadcast/multicast")        \
  X(unknown_ethertype, "Ethertype other than IPv4, IPv6 and ARP")                              \
  X(arp_not_for_us, "ARP request for an address this node does not own")                       \
  X(ip_not_for_us, "IP destination is not an address this node owns")                          \
  X(ip_bad_checksum, "IPv4 header checksum wrong")                                             \
  X(ip_fragment, "IP fragment (media is never fragmented; not reassembled)")                   \
  X(ip_options, "IPv4 options or IPv6 extension headers")                                      \
  X(unsupported_l4, "IP protocol or ICMP type this node does not handle")                      \
  X(l4_bad_checksum, "ICMP/ICMPv6/UDP checksum wrong")                                         \
  X(unknown_udp_port, "UDP to a port with no session")                                         \
  X(flow_source_mismatch, "Strict source: not the source the flow latched to (RTP bleed)")     \
  X(flow_no_destination, "Flow has no destination yet (offer not answered)")                   \
  X(flow_no_route, "Next hop of the destination not resolved yet")                             \
  X(flow_not_forwarding, "Media direction on hold or inactive")                                \
  X(flow_too_big, "Rewritten packet larger than the egress MTU (IPv4 to IPv6 adds 20 bytes)")  \
  X(flow_unknown_payload, "Empty, or first byte not RTP/RTCP, STUN or DTLS (RFC 7983)")        \
  X(slowpath_rate_limited, "STUN/DTLS over its flow's slow-path rate (per-flow token bucket)") \
  X(slowpath_ring_full, "Slow-path ring to the control plane was full")                        \
  X(slowpath_too_big, "STUN/DTLS payload larger than a slow-path packet holds (1472 bytes)")   \
  X(handoff_full, "Hand-off ring to the owning worker was full")                               \
  X(nd_invalid, "Neighbor discovery message failing RFC 4861 validation")                      \
  X(tx_full, "Transmit queue full")

enum class WorkerEvent : uint8_t {
#define RTPX_X(name, desc) name,
  RTPX_WORKER_EVENTS(RTPX_X)
#undef RTPX_X
      kCount
};

enum class DropReason : uint8_t {
#define RTPX_X(name, desc) name,
  RTPX_DROP_REASONS(RTPX_X)
#undef RTPX_X
      kCount
};

// Drops of a packet that already has its outcome counted (see the identity above).
constexpr bool isDeliveryDrop(DropReason r) noexcept {
  return r == DropReason::tx_full || r == DropReason::handoff_full;
}

inline constexpr size_t kNumWorkerEvents = static_cast<size_t>(WorkerEvent::kCount);
inline constexpr size_t kNumDropReasons = static_cast<size_t>(DropReason::kCount);

struct CounterInfo {
  std::string_view name;
  std::string_view description;
};

inline constexpr std::array<CounterInfo, kNumWorkerEvents> kWorkerEventInfo = {{
#define RTPX_X(name, desc) {#name, desc},
    RTPX_WORKER_EVENTS(RTPX_X)
#undef RTPX_X
}};

inline constexpr std::array<CounterInfo, kNumDropReasons> kDropReasonInfo = {{
#define RTPX_X(name, desc) {#name, desc},
    RTPX_DROP_REASONS(RTPX_X)
#undef RTPX_X
}};

// A counter with one writer (its worker) and any number of readers (the stats path).
// Relaxed load+store compiles to a plain add: no lock prefix on the fast path, yet readers on
// other threads see whole values (no data race in the C++ memory model).
class Counter {
 public:
  void add(uint64_t n) noexcept {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  uint64_t read() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

struct alignas(64) WorkerCounters {
  std::array<Counter, kNumWorkerEvents> events;
  std::array<Counter, kNumDropReasons> drops;

  void count(WorkerEvent e, uint64_t n = 1) noexcept { events[static_cast<size_t>(e)].add(n); }
  void drop(DropReason r, uint64_t n = 1) noexcept { drops[static_cast<size_t>(r)].add(n); }
  uint64_t get(WorkerEvent e) const noexcept { return events[static_cast<size_t>(e)].read(); }
  uint64_t get(DropReason r) const noexcept { return drops[static_cast<size_t>(r)].read(); }
};

}  // namespace rtpx

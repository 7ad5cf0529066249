// The slow path: packets on a media port that are not media. One UDP port carries RTP, RTCP,
// STUN and DTLS, told apart by the first byte of the payload (RFC 7983). A worker relays
// RTP/RTCP itself; it copies STUN and DTLS, at most `burst` at once and `rate_pps` per second
// per flow, into a fixed-size SlowPacket on its slow-path ring, where the control plane picks
// them up (Dataplane::pollSlowPath). They never latch a flow, never count as media activity and
// are never relayed. The control plane answers through Dataplane::sendFromFlow, which builds a
// datagram from the flow's local endpoint and hands it to a worker's inject ring.
#pragma once

#include <absl/status/status.h>
#include <rte_mbuf.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>

#include "dataplane/flow.h"
#include "dataplane/interface.h"

namespace rtpx {

class NeighborTable;

// RFC 7983 (which updates RFC 5764 §5.1.2): the first byte of a UDP payload on a media port.
// ZRTP (16-19) and TURN channels (64-79) are not used on rtpx's ports: kUnknown, like the rest.
enum class PayloadKind : uint8_t { kUnknown = 0, kStun, kDtls, kRtp };

constexpr PayloadKind payloadKind(uint8_t first) noexcept {
  if (first >= 128 && first <= 191) return PayloadKind::kRtp;  // RTP and RTCP
  if (first <= 3) return PayloadKind::kStun;
  if (first >= 20 && first <= 63) return PayloadKind::kDtls;
  return PayloadKind::kUnknown;
}

// The largest payload a SlowPacket holds: that of a full 1500-byte IPv4 packet. STUN and DTLS
// keep their datagrams under the path MTU (RFC 8489, RFC 6347), so a larger one is dropped
// (slowpath_too_big).
inline constexpr std::size_t kSlowPacketMaxBytes = 1472;

// One STUN or DTLS datagram, copied out of its mbuf by the worker that received it: the
// element of a worker's slow-path ring and what Dataplane::pollSlowPath returns. A plain value
// (no pointers into packet memory), so whoever holds it owns it.
struct SlowPacket {
  FlowId flow = 0;
  PayloadKind kind = PayloadKind::kUnknown;  // kStun or kDtls
  uint8_t pad0 = 0;
  uint16_t port = 0;   // the flow's DPDK port (FlowSpec::ingress_port), where answers leave
  uint64_t rx_ns = 0;  // the worker's clock (CLOCK_MONOTONIC) when it arrived
  Endpoint source;     // where it came from (not necessarily the flow's latched source)
  Endpoint local;      // rtpx's address:port it was sent to (the flow's local endpoint)
  uint16_t len = 0;    // bytes used in `bytes`
  uint8_t pad1[6] = {};
  std::array<uint8_t, kSlowPacketMaxBytes> bytes;  // the UDP payload

  std::span<const uint8_t> payload() const noexcept { return {bytes.data(), len}; }
};
static_assert(std::is_trivially_copyable_v<SlowPacket>, "copied through an rte_ring");
static_assert(sizeof(SlowPacket) == 64 + kSlowPacketMaxBytes, "a 64-byte header, then the bytes");
static_assert(sizeof(SlowPacket) % 8 == 0, "rte_ring elements: multiples of 4 bytes; 8 aligns it");

// GCRA, the virtual-scheduling form of a token bucket (ITU-T I.371): one packet per
// `interval_ns` sustained, `burst` at once. `tat` is the flow's theoretical arrival time, the
// only state; 0 for a fresh flow.
struct SlowPathLimit {
  uint64_t interval_ns = 20'000'000;    // 50 packets/s
  uint64_t tolerance_ns = 380'000'000;  // (burst - 1) × interval: 20 at once

  static SlowPathLimit of(uint32_t rate_pps, uint32_t burst) noexcept {
    const uint64_t interval = 1'000'000'000ull / (rate_pps == 0 ? 1 : rate_pps);
    return {interval, (burst == 0 ? 0 : burst - 1) * interval};
  }
  bool admit(uint64_t& tat, uint64_t now_ns) const noexcept {
    const uint64_t t = tat > now_ns ? tat : now_ns;
    if (t - now_ns > tolerance_ns) return false;
    tat = t + interval_ns;
    return true;
  }
};

// Builds in `m` (empty, from any pool) the UDP datagram `payload` from `spec.local` to `to`,
// on the flow's ingress port, addressed to the next hop's MAC: what Dataplane::sendFromFlow
// sends. Checksums are left to the port where it offers them, as the relay does. Errors:
// INVALID_ARGUMENT (`to` unknown, of another family, or the payload too large for the port),
// FAILED_PRECONDITION (no route: off-link without a gateway), UNAVAILABLE (the next hop's MAC
// is not known yet; *unresolved_hop is set to it so the caller can ask for it).
absl::Status buildFlowPacket(rte_mbuf* m, const FlowSpec& spec, const Endpoint& to,
                             std::span<const uint8_t> payload, const InterfaceAddrs* const* ifaces,
                             uint16_t n_ifaces, const NeighborTable& neighbors,
                             IpAddr* unresolved_hop);

}  // namespace rtpx

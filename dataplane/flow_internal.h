// The flow record as the workers see it. Private to dataplane/: the control plane only sees
// FlowSpec / FlowStats (flow.h).
#pragma once

#include <atomic>
#include <cstring>

#include "dataplane/counters.h"
#include "dataplane/flow.h"

namespace rtpx {

// 32 bytes, zero-padded: rte_hash compares 16/32/48…-byte keys with SSE instead of memcmp.
struct FlowKey {
  uint8_t addr[16];
  uint16_t port_be;
  uint8_t family;
  uint8_t pad[13];
};
static_assert(sizeof(FlowKey) == 32);

inline FlowKey makeFlowKey(const IpAddr& a, uint16_t port_be) noexcept {
  FlowKey k{};
  std::memcpy(k.addr, a.bytes.data(), 16);
  k.port_be = port_be;
  k.family = static_cast<uint8_t>(a.family);
  return k;
}

// Immutable once published; replaced as a whole (RCU) when the control plane updates a flow.
struct SpecRecord {
  FlowSpec spec;
  uint32_t generation;  // bumps on a relatching update: older latches no longer count
};

// RFC 3550 appendix A.1 sequence state and A.8 jitter, owned by the receiving worker.
struct RtpState {
  bool started = false;
  uint16_t max_seq = 0;
  uint32_t cycles = 0;
  uint32_t base_seq = 0;
  uint32_t bad_seq = 0;
  uint32_t probation = 0;
  uint64_t received = 0;
  int32_t transit = 0;
  double jitter = 0;  // in RTP timestamp units
};

// Laid out for the packet path: line 0 holds what it reads first and what the reverse
// direction's worker reads (spec, reverse, owner, latch; written rarely), lines 1-2 what the
// owner writes per packet (nobody else writes them: no false sharing), then the counters of
// the unusual outcomes and the slow path. A media packet touches three lines of its flow.
class alignas(64) Flow {
 public:
  // Latch: written by the owner only, read by the reverse direction's worker and the stats path.
  struct Latch {
    Endpoint source;
    uint32_t generation = 0;
    bool latched = false;
  };

  std::atomic<const SpecRecord*> spec{nullptr};
  std::atomic<Flow*> reverse{nullptr};
  std::atomic<int32_t> owner{-1};  // worker index that latched it, -1 = none yet
  FlowId id = 0;

 private:
  std::atomic<uint32_t> latch_seq_{0};
  Latch latch_;

 public:
  void writeLatch(const Latch& l) noexcept {
    const uint32_t s = latch_seq_.load(std::memory_order_relaxed);
    latch_seq_.store(s + 1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
    std::memcpy(&latch_, &l, sizeof l);
    latch_seq_.store(s + 2, std::memory_order_release);
  }
  Latch readLatch() const noexcept {
    Latch l;
    for (;;) {
      const uint32_t s1 = latch_seq_.load(std::memory_order_acquire);
      if (s1 & 1) continue;
      std::memcpy(&l, &latch_, sizeof l);
      std::atomic_thread_fence(std::memory_order_acquire);
      if (latch_seq_.load(std::memory_order_relaxed) == s1) return l;
    }
  }

  // Counters: single writer (the owner), read by the stats path.
  alignas(64) Counter packets;  // (alignas binds to one declarator)
  Counter bytes, forwarded, rtp_packets;
  std::atomic<uint64_t> first_packet_ns{0}, last_packet_ns{0};
  std::atomic<uint64_t> rtp_expected{0};
  std::atomic<int64_t> rtp_lost{0};
  std::atomic<uint64_t> jitter_ns{0};
  std::atomic<uint32_t> ssrc{0};
  RtpState rtp;  // owner only
  Counter dropped_source, dropped_no_destination, dropped_no_route, dropped_not_forwarding,
      rtcp_packets, rtp_seq_errors;
  // The slow path (STUN/DTLS, dataplane/slow_path.h): rare, so on the cold line. The rate
  // limit's theoretical arrival time is owner only, like `rtp`.
  uint64_t slow_tat_ns = 0;
  Counter slowpath_packets;
};
static_assert(sizeof(Flow) == 4 * 64, "a flow is four cache lines; the packet path uses three");

}  // namespace rtpx

// The media fast path: UDP to an allocated port → flow → owner → first byte (RFC 7983: STUN
// and DTLS to the slow path) → latch / strict source → RTP statistics → destination (the
// reverse direction's latched source, else the SDP's) → next hop → full L2/L3/L4 rewrite (IPv4
// and IPv6 either way) → TX on the egress port.
#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_ring_elem.h>
#include <rte_udp.h>

#include <cmath>
#include <cstring>

#include "dataplane/checksum.h"
#include "dataplane/flow_internal.h"
#include "dataplane/ingress.h"
#include "dataplane/neighbor_table.h"
#include "dataplane/relay.h"
#include "dataplane/slow_path.h"

namespace rtpx {
namespace {

constexpr size_t kEth = sizeof(rte_ether_hdr);
constexpr size_t kV4 = sizeof(rte_ipv4_hdr);
constexpr size_t kV6 = sizeof(rte_ipv6_hdr);
constexpr size_t kUdp = sizeof(rte_udp_hdr);

IngressResult dropped(WorkerCounters& c, DropReason r) noexcept {
  c.drop(r);
  IngressResult res;
  res.verdict = Verdict::kDrop;
  res.reason = r;
  return res;
}

// RFC 3550 appendix A.1 (without the probation period: media relays count from the first
// packet) and A.8 (interarrival jitter, in timestamp units).
void updateRtp(Flow& f, const uint8_t* rtp, uint64_t now_ns, uint32_t clock_rate) noexcept {
  constexpr uint32_t kSeqMod = 1u << 16, kMaxDropout = 3000, kMaxMisorder = 100;
  const uint16_t seq = static_cast<uint16_t>(rtp[2] << 8 | rtp[3]);
  uint32_t ts, ssrc;
  std::memcpy(&ts, rtp + 4, 4);
  std::memcpy(&ssrc, rtp + 8, 4);
  ts = rte_be_to_cpu_32(ts);
  ssrc = rte_be_to_cpu_32(ssrc);
  RtpState& s = f.rtp;
  auto init = [&s](uint16_t sq) {
    s.base_seq = sq;
    s.max_seq = sq;
    s.bad_seq = kSeqMod + 1;
    s.cycles = 0;
    s.received = 0;
    s.jitter = 0;
  };
  if (!s.started || ssrc != f.ssrc.load(std::memory_order_relaxed)) {
    if (s.started) f.rtp_seq_errors.add(1);  // a new SSRC restarts the statistics
    init(seq);
    s.started = true;
    f.ssrc.store(ssrc, std::memory_order_relaxed);
    s.transit = 0;
  } else {
    const uint16_t udelta = static_cast<uint16_t>(seq - s.max_seq);
    if (udelta < kMaxDropout) {
      if (seq < s.max_seq) s.cycles += kSeqMod;
      s.max_seq = seq;
    } else if (udelta <= kSeqMod - kMaxMisorder) {
      // A large jump: restart only if the next packet confirms it (two in a row).
      f.rtp_seq_errors.add(1);
      if (seq == s.bad_seq) {
        init(seq);
      } else {
        s.bad_seq = (seq + 1u) & (kSeqMod - 1);
        return;
      }
    }  // else: duplicate or reordered, counted as received
  }
  ++s.received;
  f.rtp_packets.add(1);
  const uint64_t expected = s.cycles + s.max_seq - s.base_seq + 1;
  f.rtp_expected.store(expected, std::memory_order_relaxed);
  f.rtp_lost.store(static_cast<int64_t>(expected) - static_cast<int64_t>(s.received),
                   std::memory_order_relaxed);
  if (clock_rate == 0) return;
  // RFC 3550 A.8 works modulo 2^32: timestamps start anywhere and wrap. now_ns × rate / 10^9
  // split at the second, so that no 128-bit division runs per packet (same value, mod 2^32).
  const uint64_t sec = now_ns / 1000000000u, frac_ns = now_ns % 1000000000u;
  const uint32_t arrival =
      static_cast<uint32_t>(sec * clock_rate + frac_ns * clock_rate / 1000000000u);
  const int32_t transit = static_cast<int32_t>(arrival - ts);
  if (s.received > 1) {
    const int32_t d =
        static_cast<int32_t>(static_cast<uint32_t>(transit) - static_cast<uint32_t>(s.transit));
    s.jitter += (std::fabs(static_cast<double>(d)) - s.jitter) / 16.0;
    f.jitter_ns.store(static_cast<uint64_t>(s.jitter * 1e9 / clock_rate),
                      std::memory_order_relaxed);
  }
  s.transit = transit;
}

// The input's UDP checksum (verified on ingress, or 0: none) and the sum of the words the
// rewrite replaces (addresses and ports) let the new checksum be derived without reading the
// payload again (RFC 1624); the pseudo header's protocol and length do not change.
struct InputCksum {
  uint16_t udp;
  uint64_t replaced;
};

// The checksum of a rewritten datagram whose addresses and ports are already in place.
// A computed 0 is sent as 0xffff: 0 means "none" in IPv4 and is not allowed in IPv6 (RFC 768,
// RFC 8200 §8.1).
uint16_t udpCksum(const void* addrs, size_t addrs_len, const rte_udp_hdr* udp, uint16_t udp_len,
                  const InputCksum& in) noexcept {
  uint16_t ck;
  if (in.udp != 0) {
    ck = cksumUpdate(in.udp, in.replaced, cksumAdd(udp, 4, cksumAdd(addrs, addrs_len)));
  } else {
    // The input had none (IPv4): sum the pseudo header (RFC 768) and the whole datagram.
    uint64_t sum = cksumAdd(addrs, addrs_len);
    sum += rte_cpu_to_be_16(IPPROTO_UDP) + rte_cpu_to_be_16(udp_len);
    ck = static_cast<uint16_t>(~cksumFold(cksumAdd(udp, udp_len, sum)));
  }
  return ck == 0 ? 0xffff : ck;
}

// Rewrites every header in front of the UDP payload for `out` → `dst` and leaves the payload
// where it is. The frame grows or shrinks at its head when the IP family changes. Inlined into
// relayFlow even though writeUdpPacket calls it too (measured: a call costs the relay ~20
// instructions per packet).
[[gnu::always_inline]] inline bool writeHeaders(rte_mbuf* m, size_t old_hdr, uint32_t payload_len,
                                                uint8_t tos, const InterfaceAddrs& out,
                                                const MacAddr& next_mac, const Endpoint& src,
                                                const Endpoint& dst,
                                                const InputCksum& in) noexcept {
  const bool v6 = dst.addr.isV6();
  const size_t new_hdr = kEth + (v6 ? kV6 : kV4) + kUdp;
  // Drop Ethernet padding: the frame ends where the UDP payload ends.
  m->data_len = static_cast<uint16_t>(old_hdr + payload_len);
  m->pkt_len = m->data_len;
  if (new_hdr > old_hdr) {
    if (rte_pktmbuf_prepend(m, static_cast<uint16_t>(new_hdr - old_hdr)) == nullptr) return false;
  } else if (new_hdr < old_hdr) {
    rte_pktmbuf_adj(m, static_cast<uint16_t>(old_hdr - new_hdr));
  }
  auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
  std::memcpy(eth->dst_addr.addr_bytes, next_mac.bytes.data(), 6);
  std::memcpy(eth->src_addr.addr_bytes, out.mac.bytes.data(), 6);
  const uint16_t udp_len = static_cast<uint16_t>(kUdp + payload_len);
  m->ol_flags = 0;
  m->l2_len = kEth;
  if (!v6) {
    eth->ether_type = RTE_BE16(RTE_ETHER_TYPE_IPV4);
    auto* ip = reinterpret_cast<rte_ipv4_hdr*>(eth + 1);
    auto* udp = reinterpret_cast<rte_udp_hdr*>(ip + 1);
    ip->version_ihl = 0x45;
    ip->type_of_service = tos;
    ip->total_length = rte_cpu_to_be_16(static_cast<uint16_t>(kV4 + udp_len));
    ip->packet_id = 0;
    ip->fragment_offset = RTE_BE16(RTE_IPV4_HDR_DF_FLAG);  // RFC 6864: ID unused when DF
    ip->time_to_live = 64;
    ip->next_proto_id = IPPROTO_UDP;
    ip->hdr_checksum = 0;
    ip->src_addr = src.addr.v4be();
    ip->dst_addr = dst.addr.v4be();
    udp->src_port = rte_cpu_to_be_16(src.port);
    udp->dst_port = rte_cpu_to_be_16(dst.port);
    udp->dgram_len = rte_cpu_to_be_16(udp_len);
    udp->dgram_cksum = 0;
    m->l3_len = kV4;
    if (out.tx_ipv4_cksum_offload)
      m->ol_flags |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM;
    else
      ip->hdr_checksum = static_cast<uint16_t>(~cksumFold(cksumAdd(ip, kV4)));
    if (out.tx_udp_cksum_offload) {
      m->ol_flags |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_UDP_CKSUM;
      udp->dgram_cksum = rte_ipv4_phdr_cksum(ip, m->ol_flags);
    } else {
      udp->dgram_cksum = udpCksum(&ip->src_addr, 8, udp, udp_len, in);
    }
  } else {
    eth->ether_type = RTE_BE16(RTE_ETHER_TYPE_IPV6);
    auto* ip = reinterpret_cast<rte_ipv6_hdr*>(eth + 1);
    auto* udp = reinterpret_cast<rte_udp_hdr*>(ip + 1);
    ip->vtc_flow = rte_cpu_to_be_32(6u << 28 | static_cast<uint32_t>(tos) << 20);
    ip->payload_len = rte_cpu_to_be_16(udp_len);
    ip->proto = IPPROTO_UDP;
    ip->hop_limits = 64;
    std::memcpy(ip->src_addr, src.addr.bytes.data(), 16);
    std::memcpy(ip->dst_addr, dst.addr.bytes.data(), 16);
    udp->src_port = rte_cpu_to_be_16(src.port);
    udp->dst_port = rte_cpu_to_be_16(dst.port);
    udp->dgram_len = rte_cpu_to_be_16(udp_len);
    udp->dgram_cksum = 0;
    m->l3_len = kV6;
    if (out.tx_udp_cksum_offload) {
      m->ol_flags |= RTE_MBUF_F_TX_IPV6 | RTE_MBUF_F_TX_UDP_CKSUM;
      udp->dgram_cksum = rte_ipv6_phdr_cksum(ip, m->ol_flags);
    } else {
      udp->dgram_cksum = udpCksum(ip->src_addr, 32, udp, udp_len, in);
    }
  }
  return true;
}

}  // namespace

bool writeUdpPacket(rte_mbuf* m, const InterfaceAddrs& out, const MacAddr& next_mac,
                    const Endpoint& src, const Endpoint& dst,
                    std::span<const uint8_t> payload) noexcept {
  const size_t hdr = kEth + (dst.addr.isV6() ? kV6 : kV4) + kUdp;
  if (rte_pktmbuf_pkt_len(m) != 0 || hdr + payload.size() > rte_pktmbuf_tailroom(m)) return false;
  auto* p = reinterpret_cast<uint8_t*>(
      rte_pktmbuf_append(m, static_cast<uint16_t>(hdr + payload.size())));
  if (p == nullptr) return false;
  if (!payload.empty()) std::memcpy(p + hdr, payload.data(), payload.size());
  // No input checksum to derive from (in.udp = 0): the whole datagram is summed.
  return writeHeaders(m, hdr, static_cast<uint32_t>(payload.size()), 0, out, next_mac, src, dst,
                      InputCksum{0, 0});
}

FlowKey flowKeyOf(const rte_mbuf* m) noexcept {
  const auto* eth = rte_pktmbuf_mtod(m, const rte_ether_hdr*);
  if (eth->ether_type == RTE_BE16(RTE_ETHER_TYPE_IPV4)) {
    const auto* ip = reinterpret_cast<const rte_ipv4_hdr*>(eth + 1);
    const auto* udp = reinterpret_cast<const rte_udp_hdr*>(ip + 1);
    return makeFlowKey(IpAddr::v4(ip->dst_addr), udp->dst_port);
  }
  const auto* ip = reinterpret_cast<const rte_ipv6_hdr*>(eth + 1);
  const auto* udp = reinterpret_cast<const rte_udp_hdr*>(ip + 1);
  return makeFlowKey(IpAddr::v6(ip->dst_addr), udp->dst_port);
}

IngressResult relayUdp(rte_mbuf* m, const RelayContext& ctx, WorkerCounters& c,
                       bool handoff) noexcept {
  // The headers flowKeyOf reads were validated within the first segment by classify (here or,
  // for a hand-off, on the worker that received it); relayFlow refuses chained mbufs.
  const FlowKey key = flowKeyOf(m);
  const void* k = &key;
  Flow* f;
  ctx.flows->lookupBulk(&k, 1, &f);
  return relayFlow(m, f, ctx, c, handoff);
}

namespace {

// IpAddr's defaulted == goes through memcmp; two 8-byte compares do it inline.
bool sameAddr(const IpAddr& a, const IpAddr& b) noexcept {
  uint64_t x[2], y[2];
  std::memcpy(x, a.bytes.data(), 16);
  std::memcpy(y, b.bytes.data(), 16);
  return a.family == b.family && ((x[0] ^ y[0]) | (x[1] ^ y[1])) == 0;
}

bool sameEndpoint(const Endpoint& a, const Endpoint& b) noexcept {
  return a.port == b.port && sameAddr(a.addr, b.addr);
}

// The MAC of `hop` on `port`, through the burst's cache (RelayContext::hops).
std::optional<MacAddr> resolveHop(const RelayContext& ctx, uint16_t port,
                                  const IpAddr& hop) noexcept {
  RelayContext::HopCache& e = ctx.hops[(hop.bytes[3] ^ hop.bytes[15]) & (ctx.hops.size() - 1)];
  if (e.stamp == ctx.now_ns && e.port == port && sameAddr(e.hop, hop)) return e.mac;
  const std::optional<MacAddr> mac = ctx.neighbors->resolve(port, hop);
  if (mac) e = RelayContext::HopCache{ctx.now_ns, hop, port, *mac};
  return mac;
}

// A STUN or DTLS datagram (or neither): copied into a SlowPacket on this worker's slow-path ring
// if the flow is within its rate, else dropped. Either way the flow neither latches nor counts
// it as media. Only the owner runs this, so the flow's GCRA state has one writer.
[[gnu::cold, gnu::noinline]] IngressResult toSlowPath(Flow& f, const uint8_t* payload, uint32_t len,
                                                      const Endpoint& source,
                                                      const RelayContext& ctx,
                                                      WorkerCounters& c) noexcept {
  const PayloadKind kind = len == 0 ? PayloadKind::kUnknown : payloadKind(payload[0]);
  if (kind != PayloadKind::kStun && kind != PayloadKind::kDtls)
    return dropped(c, DropReason::flow_unknown_payload);
  if (len > kSlowPacketMaxBytes) return dropped(c, DropReason::slowpath_too_big);
  const uint64_t tat = f.slow_tat_ns;
  if (!ctx.slow_limit.admit(f.slow_tat_ns, ctx.now_ns))
    return dropped(c, DropReason::slowpath_rate_limited);
  // Written in place in the ring (zero-copy enqueue on an SP/SC ring): one copy of the bytes.
  rte_ring_zc_data zcd;
  if (ctx.slow_packets == nullptr ||
      rte_ring_enqueue_zc_burst_elem_start(ctx.slow_packets, sizeof(SlowPacket), 1, &zcd,
                                           nullptr) == 0) {
    f.slow_tat_ns = tat;  // the limit counts packets handed over, not ones the ring refused
    return dropped(c, DropReason::slowpath_ring_full);
  }
  const FlowSpec& spec = f.spec.load(std::memory_order_acquire)->spec;
  auto* sp = static_cast<SlowPacket*>(zcd.ptr1);
  sp->flow = f.id;
  sp->kind = kind;
  sp->pad0 = 0;
  sp->port = spec.ingress_port;
  sp->rx_ns = ctx.now_ns;
  sp->source = source;
  sp->local = spec.local;
  sp->len = static_cast<uint16_t>(len);
  std::memset(sp->pad1, 0, sizeof sp->pad1);
  std::memcpy(sp->bytes.data(), payload, len);
  rte_ring_enqueue_zc_elem_finish(ctx.slow_packets, 1);
  f.slowpath_packets.add(1);
  c.count(WorkerEvent::slowpath_packets);
  IngressResult r;
  r.verdict = Verdict::kConsumed;
  return r;
}

}  // namespace

IngressResult relayFlow(rte_mbuf* m, Flow* f, const RelayContext& ctx, WorkerCounters& c,
                        bool handoff) noexcept {
  if (m->nb_segs != 1) return dropped(c, DropReason::malformed);
  if (f == nullptr) return dropped(c, DropReason::unknown_udp_port);
  auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
  IpAddr src_addr;
  rte_udp_hdr* udp;
  uint8_t tos;
  size_t hdr;
  const void* addrs;  // source then destination address, as the pseudo header has them
  size_t addrs_len;
  if (eth->ether_type == RTE_BE16(RTE_ETHER_TYPE_IPV4)) {
    auto* ip = reinterpret_cast<rte_ipv4_hdr*>(eth + 1);
    src_addr = IpAddr::v4(ip->src_addr);
    tos = ip->type_of_service;
    udp = reinterpret_cast<rte_udp_hdr*>(ip + 1);
    hdr = kEth + kV4 + kUdp;
    addrs = &ip->src_addr;
    addrs_len = 8;
  } else {
    auto* ip = reinterpret_cast<rte_ipv6_hdr*>(eth + 1);
    src_addr = IpAddr::v6(ip->src_addr);
    tos = static_cast<uint8_t>(rte_be_to_cpu_32(ip->vtc_flow) >> 20);
    udp = reinterpret_cast<rte_udp_hdr*>(ip + 1);
    hdr = kEth + kV6 + kUdp;
    addrs = ip->src_addr;
    addrs_len = 32;
  }
  // DESIGN.md §4: the worker that first receives a direction owns it; a packet that reaches
  // another worker (its source moved to another RSS queue) is handed to the owner.
  int32_t owner = f->owner.load(std::memory_order_acquire);
  if (owner < 0) {
    int32_t expected = -1;
    owner = f->owner.compare_exchange_strong(expected, ctx.worker) ? ctx.worker : expected;
  }
  if (owner != ctx.worker && !handoff) {
    c.count(WorkerEvent::handoffs_sent);
    IngressResult r;
    r.verdict = Verdict::kHandoff;
    r.handoff_worker = owner;
    return r;
  }

  // RFC 7983: one port carries RTP/RTCP (first byte 128-191), STUN and DTLS. Only media
  // goes on from here; the rest goes to the slow path before it can latch the flow or count as
  // media activity (STUN from every ICE candidate arrives before the media's source is known).
  const uint32_t payload_len = rte_be_to_cpu_16(udp->dgram_len) - kUdp;
  const auto* payload = reinterpret_cast<const uint8_t*>(udp + 1);
  const Endpoint source{src_addr, rte_be_to_cpu_16(udp->src_port)};
  const SpecRecord* rec = f->spec.load(std::memory_order_acquire);
  const FlowSpec& sp = rec->spec;
  const bool rtp_version = payload_len != 0 && (payload[0] & 0xc0) == 0x80;
  if (!rtp_version && sp.demux) [[unlikely]]
    return toSlowPath(*f, payload, payload_len, source, ctx, c);
  f->packets.add(1);
  f->bytes.add(payload_len);

  // Latching (symmetric RTP through NAT), then strict source: the RTP-bleed defence.
  const Flow::Latch latch = f->readLatch();
  if (!latch.latched || latch.generation != rec->generation) {
    f->writeLatch(Flow::Latch{source, rec->generation, true});
  } else if (sp.strict_source && !sameEndpoint(latch.source, source)) {
    f->dropped_source.add(1);
    return dropped(c, DropReason::flow_source_mismatch);
  }
  // Media activity (session timeouts) counts accepted packets only.
  if (f->first_packet_ns.load(std::memory_order_relaxed) == 0)
    f->first_packet_ns.store(ctx.now_ns, std::memory_order_relaxed);
  f->last_packet_ns.store(ctx.now_ns, std::memory_order_relaxed);

  if (sp.rtcp) {
    f->rtcp_packets.add(1);
  } else if (payload_len >= 12 && rtp_version) {
    const uint8_t pt = payload[1] & 0x7f;
    if (pt >= 64 && pt <= 95)
      f->rtcp_packets.add(1);  // RFC 5761 §4: RTCP on an rtcp-mux port
    else
      updateRtp(*f, payload, ctx.now_ns, sp.clock_rate);
  }

  if (!sp.forward) {
    f->dropped_not_forwarding.add(1);
    return dropped(c, DropReason::flow_not_forwarding);
  }
  Endpoint dst = sp.destination;
  if (const Flow* rev = f->reverse.load(std::memory_order_acquire)) {
    const Flow::Latch rl = rev->readLatch();
    if (rl.latched && rl.generation == rev->spec.load(std::memory_order_acquire)->generation)
      dst = rl.source;
  }
  if (!dst.known()) {
    f->dropped_no_destination.add(1);
    return dropped(c, DropReason::flow_no_destination);
  }
  const InterfaceAddrs* out = sp.egress_port < ctx.n_ifaces ? ctx.ifaces[sp.egress_port] : nullptr;
  const std::optional<IpAddr> hop = out ? out->nextHop(dst.addr) : std::nullopt;
  const std::optional<MacAddr> mac = hop ? resolveHop(ctx, sp.egress_port, *hop) : std::nullopt;
  if (!mac) {
    f->dropped_no_route.add(1);
    IngressResult r = dropped(c, DropReason::flow_no_route);
    if (hop) {
      r.has_hint = true;
      r.hint.port = sp.egress_port;
      r.hint.ip = *hop;
      r.hint.resolve = 1;
      c.count(WorkerEvent::resolve_requests);
    }
    return r;
  }
  // IPv4 → IPv6 bridging adds 20 bytes; media is never fragmented, so a packet that no
  // longer fits the egress port is dropped and counted rather than sent oversize.
  if ((dst.addr.isV6() ? kV6 : kV4) + kUdp + payload_len > out->mtu)
    return dropped(c, DropReason::flow_too_big);
  const InputCksum in_ck{udp->dgram_cksum, cksumAdd(udp, 4, cksumAdd(addrs, addrs_len))};
  if (!writeHeaders(m, hdr, payload_len, tos, *out, *mac, sp.egress_local, dst, in_ck))
    return dropped(c, DropReason::malformed);
  f->forwarded.add(1);
  c.count(WorkerEvent::relayed);
  IngressResult r;
  r.verdict = Verdict::kTransmit;
  r.tx_port = sp.egress_port;
  return r;
}

}  // namespace rtpx

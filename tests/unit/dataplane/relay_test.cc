// The relay fast path through handleIngress: real Ethernet/IPv4/IPv6/UDP frames carrying RTP go
// in, and the frame that comes out is checked field by field and then byte for byte against a
// frame built independently here (own RFC 1071 sums, own pseudo headers). Also: latching and
// strict source, symmetric RTP, drops with their reasons and hints, IPv4 <-> IPv6 bridging,
// RTP statistics (RFC 3550 A.1 / A.8), worker ownership and hand-off, the slow path (STUN and
// DTLS set aside for the control plane, RFC 7983; datagrams sent from a flow's endpoint), and
// the counter identity of dataplane/counters.h over every call.
#include <catch2/catch.hpp>

// rte_mbuf.h pulls in rte_spinlock.h, whose recursive lock uses ++ on a volatile (deprecated
// in C++20): DPDK's warning, not ours.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wvolatile"
#include <rte_byteorder.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#pragma GCC diagnostic pop

#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dataplane/counters.h"
#include "dataplane/flow.h"
#include "dataplane/flow_internal.h"
#include "dataplane/ingress.h"
#include "dataplane/interface.h"
#include "dataplane/neighbor_table.h"
#include "dataplane/relay.h"
#include "dataplane/slow_path.h"
#include "dataplane/worker.h"
#include "tests/unit/test_support.h"

namespace {

using Bytes = std::vector<uint8_t>;
using rtpx::DropReason;
using rtpx::Endpoint;
using rtpx::FlowId;
using rtpx::FlowSpec;
using rtpx::FlowStats;
using rtpx::IngressResult;
using rtpx::IpAddr;
using rtpx::PayloadKind;
using rtpx::SlowPacket;
using rtpx::Verdict;
using rtpx::WorkerEvent;

// ---- The test link: our interface (port 0) and its neighbors ----
const Bytes kOurMac = {0x02, 0x00, 0x00, 0x00, 0x00, 0x02};
const Bytes kOurIp4 = {192, 0, 2, 2};
const Bytes kGw4 = {192, 0, 2, 1};
const Bytes kGw4Mac = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
// Caller A, on-link; its SDP says port 4000.
const Bytes kA4 = {192, 0, 2, 10};
const Bytes kMacA = {0x02, 0x00, 0x00, 0x00, 0x00, 0x0a};
// Callee B: its SDP says 192.0.2.30:6000, it really sends from the NAT at 192.0.2.20:5555.
const Bytes kBSdp4 = {192, 0, 2, 30};
const Bytes kMacBSdp = {0x02, 0x00, 0x00, 0x00, 0x00, 0x1e};
const Bytes kBNat4 = {192, 0, 2, 20};
const Bytes kMacBNat = {0x02, 0x00, 0x00, 0x00, 0x00, 0x14};
const Bytes kOther4 = {192, 0, 2, 11};  // another host: an RTP-bleed attacker
const Bytes kMacOther = {0x02, 0x00, 0x00, 0x00, 0x00, 0x0b};
const Bytes kUnresolved4 = {192, 0, 2, 40};  // on-link, no neighbor entry
const Bytes kOffLink4 = {198, 51, 100, 7};   // via the gateway
const Bytes kNotOurs4 = {192, 0, 2, 3};

// 2001:db8::2 (ours), ::1 (gateway), ::50 (peer C), ::60 (no neighbor), 2001:db8:1::7 (off-link)
const Bytes kOurIp6 = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02};
const Bytes kGw6 = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01};
const Bytes kGw6Mac = {0x02, 0x00, 0x00, 0x00, 0x00, 0x61};
const Bytes kC6 = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x50};
const Bytes kMacC = {0x02, 0x00, 0x00, 0x00, 0x00, 0x50};
const Bytes kUnresolved6 = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x60};
const Bytes kOffLink6 = {0x20, 0x01, 0x0d, 0xb8, 0, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x07};

constexpr uint16_t kEtherIpv4 = 0x0800;
constexpr uint16_t kEtherIpv6 = 0x86dd;
constexpr uint8_t kProtoUdp = 17;
constexpr uint8_t kTos = 0xb8;        // DSCP EF
constexpr uint64_t kT0 = 1000000000;  // ctx.now_ns of the first packet: 1 s
constexpr uint64_t kMs = 1000000;

// ---- Byte helpers ----
void put16(Bytes& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v));
}
void put32(Bytes& b, uint32_t v) {
  put16(b, static_cast<uint16_t>(v >> 16));
  put16(b, static_cast<uint16_t>(v));
}
void append(Bytes& b, const Bytes& x) {
  b.insert(b.end(), x.begin(), x.end());
}
Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& p : parts) append(out, p);
  return out;
}
uint16_t get16(const Bytes& b, size_t off) {
  return static_cast<uint16_t>((b.at(off) << 8) | b.at(off + 1));
}
uint32_t get32(const Bytes& b, size_t off) {
  return (uint32_t{get16(b, off)} << 16) | get16(b, off + 2);
}
Bytes slice(const Bytes& b, size_t off, size_t len) {
  REQUIRE(off + len <= b.size());
  return Bytes(b.begin() + static_cast<long>(off), b.begin() + static_cast<long>(off + len));
}

// RFC 1071: 16-bit one's complement sum of big-endian words (odd tail padded with a zero byte),
// folded; the checksum is its complement, and a correct message sums to 0xffff (checksum 0).
uint16_t internetChecksum(const Bytes& data) {
  uint32_t acc = 0;
  for (size_t i = 0; i + 1 < data.size(); i += 2) acc += (uint32_t{data[i]} << 8) | data[i + 1];
  if (data.size() % 2 != 0) acc += uint32_t{data.back()} << 8;
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  return static_cast<uint16_t>(~acc & 0xffff);
}

// The UDP pseudo header: RFC 768 (IPv4: src, dst, zero, protocol, UDP length) or RFC 8200 §8.1
// (IPv6: src, dst, 32-bit length, three zero bytes, next header).
Bytes pseudoHeader(const Bytes& src, const Bytes& dst, size_t udp_len) {
  Bytes p = cat({src, dst});
  if (src.size() == 4) {
    p.push_back(0);
    p.push_back(kProtoUdp);
    put16(p, static_cast<uint16_t>(udp_len));
  } else {
    put32(p, static_cast<uint32_t>(udp_len));
    p.insert(p.end(), {0, 0, 0, kProtoUdp});
  }
  return p;
}

// The checksum to put in a UDP header (checksum field zero in `segment`); a computed 0 is sent
// as 0xffff (RFC 768; mandatory for IPv6, RFC 8200 §8.1).
uint16_t udpChecksum(const Bytes& src, const Bytes& dst, const Bytes& segment) {
  const uint16_t ck = internetChecksum(cat({pseudoHeader(src, dst, segment.size()), segment}));
  return ck == 0 ? 0xffff : ck;
}

// ---- RTP / RTCP ----
// RFC 3550 §5.1: V=2, no padding/extension/CSRC, marker 0, `pt`, then 160 bytes of payload.
Bytes rtp(uint16_t seq, uint32_t ts, uint32_t ssrc, size_t payload_len = 160, uint8_t pt = 0) {
  Bytes r = {0x80, pt};
  put16(r, seq);
  put32(r, ts);
  put32(r, ssrc);
  for (size_t i = 0; i < payload_len; ++i) r.push_back(static_cast<uint8_t>(seq * 7 + i * 13));
  return r;
}

// RFC 3550 §6.4.1: a sender report without report blocks (28 bytes, PT 200).
Bytes rtcpSenderReport(uint32_t ssrc) {
  Bytes r = {0x80, 200};
  put16(r, 6);  // length in 32-bit words minus one
  put32(r, ssrc);
  put32(r, 0xe8a1b2c3);  // NTP seconds
  put32(r, 0x40000000);  // NTP fraction
  put32(r, 123456);      // RTP timestamp
  put32(r, 42);          // packet count
  put32(r, 6720);        // octet count
  return r;
}

// RFC 4585 §6.3.1: a picture loss indication (PSFB, PT 206, FMT 1), 12 bytes: the smallest
// RTCP packet sent alone, as reduced-size RTCP (RFC 5506) on an rtcp-mux port.
Bytes rtcpPli(uint32_t sender_ssrc, uint32_t media_ssrc) {
  Bytes r = {0x81, 206};
  put16(r, 2);
  put32(r, sender_ssrc);
  put32(r, media_ssrc);
  return r;
}

// ---- Frames ----
struct Pkt {
  Bytes eth_dst = kOurMac;
  Bytes eth_src;
  Bytes src;  // 4 bytes: IPv4, 16 bytes: IPv6
  Bytes dst;
  uint16_t sport = 0;
  uint16_t dport = 0;
  Bytes payload;
  uint8_t tos = kTos;       // IPv4 TOS / IPv6 traffic class
  uint8_t ttl = 57;         // IPv4 TTL / IPv6 hop limit
  uint16_t ip_id = 0x1234;  // IPv4 only
  uint16_t frag = 0x0000;   // IPv4 flags + offset (DF clear on input)
  uint32_t flow_label = 0;  // IPv6 only
  size_t pad_to = 0;        // Ethernet padding (trailer bytes) up to this frame size
  uint8_t pad_byte = 0xee;
  std::optional<uint16_t> udp_cksum;  // instead of the right one
};

Bytes udpSegment(const Pkt& p) {
  Bytes u;
  put16(u, p.sport);
  put16(u, p.dport);
  put16(u, static_cast<uint16_t>(8 + p.payload.size()));
  put16(u, 0);
  append(u, p.payload);
  const uint16_t ck = p.udp_cksum.value_or(udpChecksum(p.src, p.dst, u));
  u[6] = static_cast<uint8_t>(ck >> 8);
  u[7] = static_cast<uint8_t>(ck);
  return u;
}

Bytes frame(const Pkt& p) {
  REQUIRE(p.src.size() == p.dst.size());
  const bool v6 = p.src.size() == 16;
  Bytes f = cat({p.eth_dst, p.eth_src});
  put16(f, v6 ? kEtherIpv6 : kEtherIpv4);
  const Bytes udp = udpSegment(p);
  if (!v6) {
    Bytes h = {0x45, p.tos};
    put16(h, static_cast<uint16_t>(20 + udp.size()));
    put16(h, p.ip_id);
    put16(h, p.frag);
    h.push_back(p.ttl);
    h.push_back(kProtoUdp);
    put16(h, 0);
    append(h, p.src);
    append(h, p.dst);
    const uint16_t ck = internetChecksum(h);
    h[10] = static_cast<uint8_t>(ck >> 8);
    h[11] = static_cast<uint8_t>(ck);
    append(f, h);
  } else {
    put32(f, 0x60000000u | uint32_t{p.tos} << 20 | (p.flow_label & 0xfffff));
    put16(f, static_cast<uint16_t>(udp.size()));
    f.push_back(kProtoUdp);
    f.push_back(p.ttl);
    append(f, p.src);
    append(f, p.dst);
  }
  append(f, udp);
  if (f.size() < p.pad_to) f.resize(p.pad_to, p.pad_byte);
  return f;
}

// What the relay must send: from our MAC to the next hop, from `src` to `dst`, TTL / hop limit
// 64, IPv4 with DF (and the ID the code chose: RFC 6864 leaves it free for atomic datagrams),
// IPv6 with flow label 0, the TOS / traffic class of the input, valid checksums, no padding.
Bytes expectedFrame(const Bytes& next_mac, const Bytes& src, uint16_t sport, const Bytes& dst,
                    uint16_t dport, const Bytes& payload, uint8_t tos, uint16_t ip_id) {
  Pkt p;
  p.eth_dst = next_mac;
  p.eth_src = kOurMac;
  p.src = src;
  p.dst = dst;
  p.sport = sport;
  p.dport = dport;
  p.payload = payload;
  p.tos = tos;
  p.ttl = 64;
  p.ip_id = ip_id;
  p.frag = 0x4000;
  p.flow_label = 0;
  return frame(p);
}

// Field-by-field checks of a relayed frame (for readable failures), then the byte-for-byte
// comparison with expectedFrame().
void checkRelayed(const Bytes& out, const Bytes& next_mac, const Bytes& src, uint16_t sport,
                  const Bytes& dst, uint16_t dport, const Bytes& payload, uint8_t tos) {
  const bool v6 = dst.size() == 16;
  const size_t l3 = v6 ? 40 : 20;
  const size_t udp_off = 14 + l3;
  REQUIRE(out.size() == 14 + l3 + 8 + payload.size());
  CHECK(slice(out, 0, 6) == next_mac);
  CHECK(slice(out, 6, 6) == kOurMac);
  CHECK(get16(out, 12) == (v6 ? kEtherIpv6 : kEtherIpv4));
  uint16_t ip_id = 0;
  if (!v6) {
    CHECK(out[14] == 0x45);
    CHECK(out[15] == tos);
    CHECK(get16(out, 16) == 20 + 8 + payload.size());
    ip_id = get16(out, 18);
    CHECK(get16(out, 20) == 0x4000);  // DF, not a fragment
    CHECK(out[22] == 64);
    CHECK(out[23] == kProtoUdp);
    CHECK(internetChecksum(slice(out, 14, 20)) == 0);  // header checksum valid
    CHECK(slice(out, 26, 4) == src);
    CHECK(slice(out, 30, 4) == dst);
  } else {
    const uint32_t vtc = get32(out, 14);
    CHECK(vtc >> 28 == 6);
    CHECK(((vtc >> 20) & 0xff) == tos);
    CHECK((vtc & 0xfffff) == 0);
    CHECK(get16(out, 18) == 8 + payload.size());
    CHECK(out[20] == kProtoUdp);
    CHECK(out[21] == 64);
    CHECK(slice(out, 22, 16) == src);
    CHECK(slice(out, 38, 16) == dst);
  }
  CHECK(get16(out, udp_off) == sport);
  CHECK(get16(out, udp_off + 2) == dport);
  CHECK(get16(out, udp_off + 4) == 8 + payload.size());
  CHECK(get16(out, udp_off + 6) != 0);
  // The UDP checksum verifies over the pseudo header and the whole datagram.
  const Bytes segment = slice(out, udp_off, 8 + payload.size());
  CHECK(internetChecksum(cat({pseudoHeader(src, dst, segment.size()), segment})) == 0);
  CHECK(slice(out, udp_off + 8, payload.size()) == payload);
  CHECK(out == expectedFrame(next_mac, src, sport, dst, dport, payload, tos, ip_id));
}

// ---- Addresses as the dataplane sees them ----
IpAddr ipOf(const Bytes& b) {
  REQUIRE((b.size() == 4 || b.size() == 16));
  if (b.size() == 4) {
    uint32_t be;
    std::memcpy(&be, b.data(), 4);
    return IpAddr::v4(be);
  }
  return IpAddr::v6(b.data());
}
rtpx::MacAddr macOf(const Bytes& b) {
  rtpx::MacAddr m;
  std::memcpy(m.bytes.data(), b.data(), 6);
  return m;
}
Endpoint ep(const Bytes& addr, uint16_t port) {
  return Endpoint{ipOf(addr), port};
}

// ---- mbufs ----
struct MbufFree {
  void operator()(rte_mbuf* m) const noexcept { rte_pktmbuf_free(m); }
};
using MbufPtr = std::unique_ptr<rte_mbuf, MbufFree>;

MbufPtr makeMbuf(const Bytes& f) {
  rte_mempool* pool = rtpx::test::testPool();
  REQUIRE(pool != nullptr);
  MbufPtr m(rte_pktmbuf_alloc(pool));
  REQUIRE(m != nullptr);
  char* p = rte_pktmbuf_append(m.get(), static_cast<uint16_t>(f.size()));
  REQUIRE(p != nullptr);
  std::memcpy(p, f.data(), f.size());
  return m;
}

Bytes frameOf(const rte_mbuf* m) {
  REQUIRE(m->nb_segs == 1);
  REQUIRE(m->pkt_len == m->data_len);
  const auto* p = rte_pktmbuf_mtod(m, const uint8_t*);
  return Bytes(p, p + m->data_len);
}

// Verdicts and reasons as text, for readable assertions.
std::string why(const IngressResult& r) {
  switch (r.verdict) {
    case Verdict::kTransmit:
      return "transmit";
    case Verdict::kConsumed:
      return "consumed";
    case Verdict::kHandoff:
      return "handoff:" + std::to_string(r.handoff_worker);
    case Verdict::kDrop:
      return "drop:" + std::string(rtpx::kDropReasonInfo[static_cast<size_t>(r.reason)].name);
  }
  return "?";
}

// ---- The rig: interface, neighbors, flow table, RelayContext, two workers' counters ----
struct Out {
  IngressResult r;
  Bytes frame;
};

// An SP/SC ring of SlowPacket, as Dataplane gives each worker, freed with its owner.
struct SlowRing {
  rte_ring* r = nullptr;

  explicit SlowRing(unsigned size) {
    static int seq = 0;
    const std::string name = "relay_test_slow_" + std::to_string(seq++);
    r = rte_ring_create_elem(name.c_str(), sizeof(SlowPacket), size, 0,
                             RING_F_SP_ENQ | RING_F_SC_DEQ | RING_F_EXACT_SZ);
    REQUIRE(r != nullptr);
  }
  ~SlowRing() { rte_ring_free(r); }
  SlowRing(const SlowRing&) = delete;
  SlowRing& operator=(const SlowRing&) = delete;

  // Everything on the ring, oldest first, as Dataplane::pollSlowPath copies it out.
  std::vector<SlowPacket> drain() const {
    std::vector<SlowPacket> out;
    SlowPacket p;
    while (rte_ring_sc_dequeue_elem(r, &p, sizeof p) == 0) out.push_back(p);
    return out;
  }
};

struct Rig {
  rtpx::test::Qsbr qsbr{4};
  rtpx::InterfaceAddrs ifc;
  std::unique_ptr<rtpx::NeighborTable> neighbors = std::make_unique<rtpx::NeighborTable>();
  std::unique_ptr<rtpx::FlowTable> flows = rtpx::test::makeFlowTable(257, qsbr.q);
  std::array<const rtpx::InterfaceAddrs*, 8> ifaces{};
  rtpx::RelayContext ctx;
  std::array<rtpx::WorkerCounters, 2> c;
  std::array<uint64_t, 2> rx{};         // handleIngress calls, per worker
  std::array<uint64_t, 2> handed_in{};  // relayUdp(handoff = true) calls, per worker
  std::array<uint64_t, 2> hints{};      // results with a resolve hint, per worker
  // The slow-path ring both workers' contexts use (the tests run one packet at a time).
  SlowRing slow;

  explicit Rig(unsigned slow_ring_size = 64) : slow(slow_ring_size) {
    ifc.port_id = 0;
    ifc.mac = macOf(kOurMac);
    ifc.ipv4 = rtpx::IpPrefix::parse("192.0.2.2/24");
    ifc.ipv6 = rtpx::IpPrefix::parse("2001:db8::2/64");
    ifc.ipv6_link_local = rtpx::linkLocalFromMac(ifc.mac);
    ifc.gateway4 = ipOf(kGw4);
    ifc.gateway6 = ipOf(kGw6);
    REQUIRE(ifc.ipv4.has_value());
    REQUIRE(ifc.ipv6.has_value());
    REQUIRE(ifc.ipv6_link_local == *IpAddr::parse("fe80::ff:fe00:2"));
    for (const auto& [ip, mac] :
         {std::pair{kA4, kMacA}, std::pair{kBSdp4, kMacBSdp}, std::pair{kBNat4, kMacBNat},
          std::pair{kOther4, kMacOther}, std::pair{kC6, kMacC}})
      REQUIRE(neighbors->confirm(0, ipOf(ip), macOf(mac), kT0));
    ifaces[0] = &ifc;
    ctx = rtpx::RelayContext{flows.get(), neighbors.get(), ifaces.data(), 8, 0, kT0};
    ctx.slow_packets = slow.r;
  }
  Rig(const Rig&) = delete;
  Rig& operator=(const Rig&) = delete;

  FlowId add(const FlowSpec& s) {
    auto id = flows->add(s);
    INFO(id.status().ToString());
    REQUIRE(id.ok());
    return *id;
  }
  FlowStats stats(FlowId id) {
    auto s = flows->stats(id);
    REQUIRE(s.ok());
    return *s;
  }
  const rtpx::Flow* flowAt(const Bytes& addr, uint16_t port) {
    return flows->lookup(ipOf(addr), rte_cpu_to_be_16(port));
  }

  void tally(int32_t worker, const IngressResult& r) {
    if (r.has_hint) ++hints[worker];
  }
  // handleIngress on worker `worker` (the caller counts rx; handleIngress must not).
  IngressResult ingress(rte_mbuf* m, int32_t worker = 0) {
    rtpx::RelayContext cx = ctx;
    cx.worker = worker;
    ++rx[worker];
    IngressResult r = rtpx::handleIngress(m, ifc, c[worker], &cx);
    tally(worker, r);
    return r;
  }
  Out send(const Bytes& f, int32_t worker = 0, uint64_t rx_ol_flags = 0) {
    MbufPtr m = makeMbuf(f);
    m->ol_flags |= rx_ol_flags;
    Out o;
    o.r = ingress(m.get(), worker);
    o.frame = frameOf(m.get());
    return o;
  }
  // Without a RelayContext: UDP is never relayed.
  Out sendWithoutRelay(const Bytes& f, int32_t worker = 0) {
    MbufPtr m = makeMbuf(f);
    ++rx[worker];
    Out o;
    o.r = rtpx::handleIngress(m.get(), ifc, c[worker], nullptr);
    tally(worker, o.r);
    o.frame = frameOf(m.get());
    return o;
  }
  // A packet another worker handed over (the receiving worker counts handoffs_received).
  IngressResult handedOver(rte_mbuf* m, int32_t worker) {
    rtpx::RelayContext cx = ctx;
    cx.worker = worker;
    ++handed_in[worker];
    IngressResult r = rtpx::relayUdp(m, cx, c[worker], true);
    tally(worker, r);
    return r;
  }

  // dataplane/counters.h: rx_packets + handoffs_received == replies + neighbor_updates +
  // relayed + handoffs_sent + slowpath_packets + drops (all but the delivery drops), per
  // worker; and the path itself counts neither rx nor tx nor handoffs_received.
  void checkCounterIdentity() const {
    for (size_t w = 0; w < 2; ++w) {
      INFO("worker " << w);
      const rtpx::WorkerCounters& k = c[w];
      uint64_t outcomes = k.get(WorkerEvent::arp_replies) + k.get(WorkerEvent::icmp_echo_replies) +
                          k.get(WorkerEvent::nd_advertisements) +
                          k.get(WorkerEvent::icmp6_echo_replies) +
                          k.get(WorkerEvent::neighbor_updates) + k.get(WorkerEvent::relayed) +
                          k.get(WorkerEvent::handoffs_sent) + k.get(WorkerEvent::slowpath_packets);
      for (size_t d = 0; d < rtpx::kNumDropReasons; ++d)
        if (!rtpx::isDeliveryDrop(static_cast<DropReason>(d)))
          outcomes += k.get(static_cast<DropReason>(d));
      CHECK(rx[w] + handed_in[w] == outcomes);
      CHECK(k.get(WorkerEvent::rx_packets) == 0);
      CHECK(k.get(WorkerEvent::rx_bytes) == 0);
      CHECK(k.get(WorkerEvent::tx_packets) == 0);
      CHECK(k.get(WorkerEvent::tx_bytes) == 0);
      CHECK(k.get(WorkerEvent::handoffs_received) == 0);
      CHECK(k.get(DropReason::tx_full) == 0);
      CHECK(k.get(WorkerEvent::resolve_requests) == hints[w]);
    }
  }
};

// ---- The A <-> B call used by most tests ----
constexpr uint16_t kPortA = 4000;     // A's SDP port, and where A really sends from
constexpr uint16_t kPortBSdp = 6000;  // B's SDP port
constexpr uint16_t kPortBNat = 5555;  // where B's packets really come from
constexpr uint16_t kLegA = 10000;     // rtpx's port on A's leg (A sends here)
constexpr uint16_t kLegB = 20000;     // rtpx's port on B's leg (B sends here)
constexpr uint32_t kSsrcA = 0x11223344;
constexpr uint32_t kSsrcB = 0x55667788;

// A → B: arrives at 192.0.2.2:10000, leaves from 192.0.2.2:20000 to B.
FlowSpec specAB() {
  FlowSpec s;
  s.ingress_port = 0;
  s.local = ep(kOurIp4, kLegA);
  s.egress_port = 0;
  s.egress_local = ep(kOurIp4, kLegB);
  s.destination = ep(kBSdp4, kPortBSdp);
  s.announced_source = ep(kA4, kPortA);
  return s;
}
// B → A: arrives at 192.0.2.2:20000, leaves from 192.0.2.2:10000 to A.
FlowSpec specBA() {
  FlowSpec s;
  s.local = ep(kOurIp4, kLegB);
  s.egress_local = ep(kOurIp4, kLegA);
  s.destination = ep(kA4, kPortA);
  s.announced_source = ep(kBSdp4, kPortBSdp);
  return s;
}

Pkt fromA(const Bytes& payload, uint16_t sport = kPortA, const Bytes& src = kA4) {
  Pkt p;
  p.eth_src = kMacA;
  p.src = src;
  p.dst = kOurIp4;
  p.sport = sport;
  p.dport = kLegA;
  p.payload = payload;
  return p;
}
Pkt fromBNat(const Bytes& payload) {
  Pkt p;
  p.eth_src = kMacBNat;
  p.src = kBNat4;
  p.dst = kOurIp4;
  p.sport = kPortBNat;
  p.dport = kLegB;
  p.payload = payload;
  return p;
}

// The RFC 3550 A.8 interarrival jitter, computed here in 32-bit modular timestamp arithmetic,
// in milliseconds, for packets (arrival in ns, RTP timestamp) at `rate` Hz.
double referenceJitterMs(const std::vector<std::pair<uint64_t, uint32_t>>& pkts, uint32_t rate) {
  double j = 0;
  int32_t prev = 0;
  for (size_t i = 0; i < pkts.size(); ++i) {
    const uint32_t arrival = static_cast<uint32_t>(pkts[i].first * rate / 1000000000u);
    const int32_t transit = static_cast<int32_t>(arrival - pkts[i].second);
    if (i > 0) {
      const double d = std::fabs(static_cast<double>(
          static_cast<int32_t>(static_cast<uint32_t>(transit) - static_cast<uint32_t>(prev))));
      j += (d - j) / 16.0;
    }
    prev = transit;
  }
  return j * 1000.0 / rate;
}

}  // namespace

// ============================== Relaying ==============================

TEST_CASE("Relay: A→B rewrites every header and carries the RTP packet unchanged", "[relay]") {
  Rig rig;
  const FlowId ab = rig.add(specAB());
  const Bytes media = rtp(1000, 160000, kSsrcA);
  const Bytes in = frame(fromA(media));
  REQUIRE(in.size() == 14 + 20 + 8 + 172);

  Out o = rig.send(in);
  REQUIRE(why(o.r) == "transmit");
  CHECK(o.r.tx_port == 0);
  CHECK_FALSE(o.r.has_hint);
  // To B's SDP address (B has not sent yet), from our B-leg port.
  checkRelayed(o.frame, kMacBSdp, kOurIp4, kLegB, kBSdp4, kPortBSdp, media, kTos);

  const FlowStats s = rig.stats(ab);
  CHECK(s.packets == 1);
  CHECK(s.bytes == media.size());
  CHECK(s.forwarded == 1);
  CHECK(s.dropped_source + s.dropped_no_destination + s.dropped_no_route +
            s.dropped_not_forwarding ==
        0);
  CHECK(s.first_packet_ns == kT0);
  CHECK(s.last_packet_ns == kT0);
  CHECK(s.latched);
  CHECK(s.latched_source == ep(kA4, kPortA));
  CHECK(s.ssrc == kSsrcA);
  CHECK(s.rtp_packets == 1);

  // A second packet, later, with another TOS: the TOS follows each packet.
  rig.ctx.now_ns = kT0 + 20 * kMs;
  const Bytes media2 = rtp(1001, 160160, kSsrcA);
  Pkt p2 = fromA(media2);
  p2.tos = 0x2e;
  Out o2 = rig.send(frame(p2));
  REQUIRE(why(o2.r) == "transmit");
  checkRelayed(o2.frame, kMacBSdp, kOurIp4, kLegB, kBSdp4, kPortBSdp, media2, 0x2e);
  const FlowStats s2 = rig.stats(ab);
  CHECK(s2.packets == 2);
  CHECK(s2.bytes == 2 * media.size());
  CHECK(s2.forwarded == 2);
  CHECK(s2.first_packet_ns == kT0);
  CHECK(s2.last_packet_ns == kT0 + 20 * kMs);
  CHECK(rig.c[0].get(WorkerEvent::relayed) == 2);
  rig.checkCounterIdentity();
}

TEST_CASE("Relay: Ethernet padding and trailing bytes of the input are not sent on", "[relay]") {
  Rig rig;
  rig.add(specAB());
  rig.add(specBA());

  // 12-byte RTP header + 4 bytes: a 58-byte frame, padded to the 60-byte Ethernet minimum.
  const Bytes tiny = rtp(7, 70, kSsrcA, 4);
  Pkt p = fromA(tiny);
  p.pad_to = 60;
  const Bytes in = frame(p);
  REQUIRE(in.size() == 60);
  Out o = rig.send(in);
  REQUIRE(why(o.r) == "transmit");
  CHECK(o.frame.size() == 58);
  checkRelayed(o.frame, kMacBSdp, kOurIp4, kLegB, kBSdp4, kPortBSdp, tiny, kTos);

  // Trailing bytes past the IP length of a full-size frame go too.
  const Bytes media = rtp(8, 230, kSsrcA);
  Pkt q = fromA(media);
  q.pad_to = 14 + 20 + 8 + media.size() + 6;
  Out o2 = rig.send(frame(q));
  REQUIRE(why(o2.r) == "transmit");
  checkRelayed(o2.frame, kMacBSdp, kOurIp4, kLegB, kBSdp4, kPortBSdp, media, kTos);

  // IPv6 in, with 10 trailing bytes, bridged to IPv4 A.
  FlowSpec s6;
  s6.local = ep(kOurIp6, 22000);
  s6.egress_local = ep(kOurIp4, 12000);
  s6.destination = ep(kA4, kPortA);
  rig.add(s6);
  Pkt r6;
  r6.eth_src = kMacC;
  r6.src = kC6;
  r6.dst = kOurIp6;
  r6.sport = 7000;
  r6.dport = 22000;
  r6.payload = rtp(9, 90, kSsrcB, 20);
  r6.pad_to = 14 + 40 + 8 + 32 + 10;
  Out o3 = rig.send(frame(r6));
  REQUIRE(why(o3.r) == "transmit");
  checkRelayed(o3.frame, kMacA, kOurIp4, 12000, kA4, kPortA, r6.payload, kTos);
  rig.checkCounterIdentity();
}

TEST_CASE("Relay: symmetric RTP sends each direction to the other's latched source", "[relay]") {
  Rig rig;
  const FlowId ab = rig.add(specAB());
  const FlowId ba = rig.add(specBA());
  REQUIRE(rig.flows->pair(ab, ba).ok());

  // A sends first: B has not latched, so A's media goes to B's SDP address and port.
  const Bytes a1 = rtp(1, 160, kSsrcA);
  Out o1 = rig.send(frame(fromA(a1)));
  REQUIRE(why(o1.r) == "transmit");
  checkRelayed(o1.frame, kMacBSdp, kOurIp4, kLegB, kBSdp4, kPortBSdp, a1, kTos);

  // B's first packet comes from its NAT (192.0.2.20:5555, not the SDP's 192.0.2.30:6000): the
  // B→A flow latches to it and sends to A's latched source.
  const Bytes b1 = rtp(500, 8000, kSsrcB);
  Out o2 = rig.send(frame(fromBNat(b1)));
  REQUIRE(why(o2.r) == "transmit");
  checkRelayed(o2.frame, kMacA, kOurIp4, kLegA, kA4, kPortA, b1, kTos);
  FlowStats sba = rig.stats(ba);
  CHECK(sba.latched);
  CHECK(sba.latched_source == ep(kBNat4, kPortBNat));

  // From now on A → B goes to where B really is.
  const Bytes a2 = rtp(2, 320, kSsrcA);
  Out o3 = rig.send(frame(fromA(a2)));
  REQUIRE(why(o3.r) == "transmit");
  checkRelayed(o3.frame, kMacBNat, kOurIp4, kLegB, kBNat4, kPortBNat, a2, kTos);

  // B → A uses A's latched source, not the SDP: make A's SDP say another port.
  FlowSpec ba2 = specBA();
  ba2.destination = ep(kA4, 4444);
  REQUIRE(rig.flows->update(ba, ba2, false).ok());
  const Bytes b2 = rtp(501, 8160, kSsrcB);
  Out o4 = rig.send(frame(fromBNat(b2)));
  REQUIRE(why(o4.r) == "transmit");
  checkRelayed(o4.frame, kMacA, kOurIp4, kLegA, kA4, kPortA, b2, kTos);

  // B's flow relatches (re-offer): until B sends again, A → B falls back to B's SDP address.
  REQUIRE(rig.flows->update(ba, ba2, true).ok());
  const Bytes a3 = rtp(3, 480, kSsrcA);
  Out o5 = rig.send(frame(fromA(a3)));
  REQUIRE(why(o5.r) == "transmit");
  checkRelayed(o5.frame, kMacBSdp, kOurIp4, kLegB, kBSdp4, kPortBSdp, a3, kTos);

  CHECK(rig.stats(ab).forwarded == 3);
  CHECK(rig.stats(ba).forwarded == 2);
  rig.checkCounterIdentity();
}

// ============================== Latching and strict source ==============================

TEST_CASE("Relay: after latching, strict source drops other addresses and ports",
          "[relay][latch]") {
  Rig rig;
  const FlowId ab = rig.add(specAB());
  REQUIRE(why(rig.send(frame(fromA(rtp(1, 160, kSsrcA)))).r) == "transmit");

  // Same address, another port; another address, same port; both.
  Pkt other_port = fromA(rtp(2, 320, kSsrcA), 4001);
  Pkt other_addr = fromA(rtp(3, 480, kSsrcA), kPortA, kOther4);
  other_addr.eth_src = kMacOther;
  Pkt both = fromA(rtp(4, 640, kSsrcA), 9, kOther4);
  for (const Pkt* p : {&other_port, &other_addr, &both}) {
    const Bytes in = frame(*p);
    Out o = rig.send(in);
    CHECK(why(o.r) == "drop:flow_source_mismatch");
    CHECK_FALSE(o.r.has_hint);
    CHECK(o.frame == in);  // a dropped packet is not rewritten
  }
  FlowStats s = rig.stats(ab);
  CHECK(s.dropped_source == 3);
  CHECK(s.forwarded == 1);
  CHECK(s.packets == 4);
  CHECK(s.latched_source == ep(kA4, kPortA));  // the latch did not move
  CHECK(s.rtp_packets == 1);                   // the injected packets are not A's statistics
  CHECK(rig.c[0].get(DropReason::flow_source_mismatch) == 3);

  // The latched source is still served.
  const Bytes m = rtp(5, 800, kSsrcA);
  Out ok = rig.send(frame(fromA(m)));
  REQUIRE(why(ok.r) == "transmit");
  checkRelayed(ok.frame, kMacBSdp, kOurIp4, kLegB, kBSdp4, kPortBSdp, m, kTos);
  CHECK(rig.stats(ab).forwarded == 2);
  rig.checkCounterIdentity();
}

TEST_CASE("Relay: without strict source, packets from another source are forwarded",
          "[relay][latch]") {
  Rig rig;
  FlowSpec s = specAB();
  s.strict_source = false;
  const FlowId ab = rig.add(s);
  REQUIRE(why(rig.send(frame(fromA(rtp(1, 160, kSsrcA)))).r) == "transmit");

  const Bytes m = rtp(2, 320, kSsrcA);
  Pkt p = fromA(m, 4001, kOther4);
  p.eth_src = kMacOther;
  Out o = rig.send(frame(p));
  REQUIRE(why(o.r) == "transmit");
  checkRelayed(o.frame, kMacBSdp, kOurIp4, kLegB, kBSdp4, kPortBSdp, m, kTos);
  const FlowStats st = rig.stats(ab);
  CHECK(st.dropped_source == 0);
  CHECK(st.forwarded == 2);
  CHECK(rig.c[0].get(DropReason::flow_source_mismatch) == 0);
  rig.checkCounterIdentity();
}

TEST_CASE("Relay: update with relatch lets the flow latch to a new source", "[relay][latch]") {
  Rig rig;
  const FlowId ab = rig.add(specAB());
  REQUIRE(why(rig.send(frame(fromA(rtp(1, 160, kSsrcA)))).r) == "transmit");

  Pkt moved = fromA(rtp(2, 320, kSsrcA), 4010, kOther4);
  moved.eth_src = kMacOther;
  CHECK(why(rig.send(frame(moved)).r) == "drop:flow_source_mismatch");

  // An update without relatch keeps the latch.
  REQUIRE(rig.flows->update(ab, specAB(), false).ok());
  CHECK(why(rig.send(frame(moved)).r) == "drop:flow_source_mismatch");
  CHECK(rig.stats(ab).latched_source == ep(kA4, kPortA));

  // With relatch: not latched until the next packet, which may come from anywhere.
  REQUIRE(rig.flows->update(ab, specAB(), true).ok());
  CHECK_FALSE(rig.stats(ab).latched);
  const Bytes m = rtp(3, 480, kSsrcA);
  moved.payload = m;
  Out o = rig.send(frame(moved));
  REQUIRE(why(o.r) == "transmit");
  checkRelayed(o.frame, kMacBSdp, kOurIp4, kLegB, kBSdp4, kPortBSdp, m, kTos);
  FlowStats s = rig.stats(ab);
  CHECK(s.latched);
  CHECK(s.latched_source == ep(kOther4, 4010));

  // Now the old source is the stranger.
  CHECK(why(rig.send(frame(fromA(rtp(4, 640, kSsrcA)))).r) == "drop:flow_source_mismatch");
  CHECK(rig.stats(ab).dropped_source == 3);
  CHECK(rig.stats(ab).forwarded == 2);
  rig.checkCounterIdentity();
}

// ============================== Drops ==============================

TEST_CASE("Relay: a flow without a destination drops flow_no_destination", "[relay][drop]") {
  Rig rig;
  FlowSpec s = specAB();
  s.destination = Endpoint{};
  const FlowId ab = rig.add(s);
  const Bytes in = frame(fromA(rtp(1, 160, kSsrcA)));
  Out o = rig.send(in);
  CHECK(why(o.r) == "drop:flow_no_destination");
  CHECK_FALSE(o.r.has_hint);
  CHECK(o.frame == in);
  // Half-known destinations are unknown too.
  FlowSpec no_port = specAB();
  no_port.local = ep(kOurIp4, kLegA + 2);
  no_port.destination = ep(kBSdp4, 0);
  const FlowId np = rig.add(no_port);
  Pkt p = fromA(rtp(1, 160, kSsrcA));
  p.dport = kLegA + 2;
  CHECK(why(rig.send(frame(p)).r) == "drop:flow_no_destination");

  FlowStats st = rig.stats(ab);
  CHECK(st.dropped_no_destination == 1);
  CHECK(st.packets == 1);
  CHECK(st.latched);           // it still latched,
  CHECK(st.rtp_packets == 1);  // and counted the RTP packet
  CHECK(st.forwarded == 0);
  CHECK(rig.stats(np).dropped_no_destination == 1);

  // Once the reverse direction has latched, that source is the destination (early media
  // before the answer).
  const FlowId ba = rig.add(specBA());
  REQUIRE(rig.flows->pair(ab, ba).ok());
  REQUIRE(why(rig.send(frame(fromBNat(rtp(9, 90, kSsrcB)))).r) == "transmit");
  const Bytes m = rtp(2, 320, kSsrcA);
  Out o2 = rig.send(frame(fromA(m)));
  REQUIRE(why(o2.r) == "transmit");
  checkRelayed(o2.frame, kMacBNat, kOurIp4, kLegB, kBNat4, kPortBNat, m, kTos);
  CHECK(rig.c[0].get(DropReason::flow_no_destination) == 2);
  rig.checkCounterIdentity();
}

TEST_CASE("Relay: forward=false drops flow_not_forwarding but still counts statistics",
          "[relay][drop]") {
  Rig rig;
  FlowSpec s = specAB();
  s.forward = false;
  const FlowId ab = rig.add(s);
  for (uint16_t seq = 10; seq < 13; ++seq) {
    rig.ctx.now_ns = kT0 + (seq - 10) * 20 * kMs;
    const Bytes in = frame(fromA(rtp(seq, seq * 160u, kSsrcA)));
    Out o = rig.send(in);
    CHECK(why(o.r) == "drop:flow_not_forwarding");
    CHECK(o.frame == in);
  }
  FlowStats st = rig.stats(ab);
  CHECK(st.dropped_not_forwarding == 3);
  CHECK(st.forwarded == 0);
  CHECK(st.packets == 3);
  CHECK(st.bytes == 3 * 172);
  CHECK(st.latched);
  CHECK(st.latched_source == ep(kA4, kPortA));
  CHECK(st.ssrc == kSsrcA);
  CHECK(st.rtp_packets == 3);
  CHECK(st.rtp_expected == 3);
  CHECK(st.rtp_lost == 0);
  CHECK(st.first_packet_ns == kT0);
  CHECK(st.last_packet_ns == kT0 + 40 * kMs);
  CHECK(rig.c[0].get(DropReason::flow_not_forwarding) == 3);

  // Taking it off hold forwards the next packet.
  REQUIRE(rig.flows->update(ab, specAB(), false).ok());
  const Bytes m = rtp(13, 13 * 160u, kSsrcA);
  Out o = rig.send(frame(fromA(m)));
  REQUIRE(why(o.r) == "transmit");
  checkRelayed(o.frame, kMacBSdp, kOurIp4, kLegB, kBSdp4, kPortBSdp, m, kTos);
  rig.checkCounterIdentity();
}

TEST_CASE(
    "Relay: a destination without a neighbor drops flow_no_route with a resolve hint "
    "for the next hop",
    "[relay][drop]") {
  Rig rig;
  struct Case {
    const char* name;
    Bytes egress_local;
    Bytes destination;
    Bytes next_hop;
  };
  const std::vector<Case> cases = {
      {"IPv4 on-link: the destination itself", kOurIp4, kUnresolved4, kUnresolved4},
      {"IPv4 off-link: the gateway", kOurIp4, kOffLink4, kGw4},
      {"IPv6 on-link: the destination itself", kOurIp6, kUnresolved6, kUnresolved6},
      {"IPv6 off-link: the gateway", kOurIp6, kOffLink6, kGw6},
  };
  uint16_t port = 11000;
  for (const Case& k : cases) {
    INFO(k.name);
    FlowSpec s = specAB();
    s.local = ep(kOurIp4, port);
    s.egress_local = ep(k.egress_local, 21000);
    s.destination = ep(k.destination, 6000);
    const FlowId id = rig.add(s);
    Pkt p = fromA(rtp(1, 160, kSsrcA));
    p.dport = port;
    const Bytes in = frame(p);
    Out o = rig.send(in);
    CHECK(why(o.r) == "drop:flow_no_route");
    REQUIRE(o.r.has_hint);
    CHECK(o.r.hint.resolve == 1);
    CHECK(o.r.hint.port == 0);
    CHECK(o.r.hint.ip == ipOf(k.next_hop));
    CHECK(o.frame == in);
    FlowStats st = rig.stats(id);
    CHECK(st.dropped_no_route == 1);
    CHECK(st.forwarded == 0);
    CHECK(st.packets == 1);
    ++port;
  }
  CHECK(rig.c[0].get(DropReason::flow_no_route) == 4);
  CHECK(rig.c[0].get(WorkerEvent::resolve_requests) == 4);

  // An entry still being resolved (INCOMPLETE) gives no MAC either.
  REQUIRE(rig.neighbors->markIncomplete(0, ipOf(kUnresolved4)));
  Pkt p = fromA(rtp(2, 320, kSsrcA));
  p.dport = 11000;
  Out inc = rig.send(frame(p));
  CHECK(why(inc.r) == "drop:flow_no_route");
  CHECK(inc.r.hint.ip == ipOf(kUnresolved4));

  // Once resolved, the same flows relay: on-link to the destination's MAC, off-link to the
  // gateway's MAC with the far address in the IP header.
  REQUIRE(rig.neighbors->confirm(0, ipOf(kUnresolved4), macOf(kMacOther), kT0));
  REQUIRE(rig.neighbors->confirm(0, ipOf(kGw4), macOf(kGw4Mac), kT0));
  REQUIRE(rig.neighbors->confirm(0, ipOf(kGw6), macOf(kGw6Mac), kT0));
  const Bytes m = rtp(3, 480, kSsrcA);
  p.payload = m;
  Out on = rig.send(frame(p));
  REQUIRE(why(on.r) == "transmit");
  checkRelayed(on.frame, kMacOther, kOurIp4, 21000, kUnresolved4, 6000, m, kTos);
  p.dport = 11001;
  Out off = rig.send(frame(p));
  REQUIRE(why(off.r) == "transmit");
  checkRelayed(off.frame, kGw4Mac, kOurIp4, 21000, kOffLink4, 6000, m, kTos);
  p.dport = 11003;
  Out off6 = rig.send(frame(p));
  REQUIRE(why(off6.r) == "transmit");
  checkRelayed(off6.frame, kGw6Mac, kOurIp6, 21000, kOffLink6, 6000, m, kTos);

  // An egress port that is not ours has no next hop to ask for: no route, no hint.
  FlowSpec s = specAB();
  s.local = ep(kOurIp4, 11100);
  s.egress_port = 3;  // ifaces[3] == nullptr
  rig.add(s);
  s.local = ep(kOurIp4, 11101);
  s.egress_port = 9;  // beyond n_ifaces
  rig.add(s);
  for (uint16_t dp : {uint16_t{11100}, uint16_t{11101}}) {
    Pkt q = fromA(rtp(1, 160, kSsrcA));
    q.dport = dp;
    Out o = rig.send(frame(q));
    CHECK(why(o.r) == "drop:flow_no_route");
    CHECK_FALSE(o.r.has_hint);
  }
  rig.checkCounterIdentity();
}

TEST_CASE("Relay: UDP to an owned address on a port without a flow is unknown_udp_port",
          "[relay][drop]") {
  Rig rig;
  const FlowId ab = rig.add(specAB());

  Pkt p = fromA(rtp(1, 160, kSsrcA));
  p.dport = kLegA + 1;
  CHECK(why(rig.send(frame(p)).r) == "drop:unknown_udp_port");

  // The flow's port on our other family's address is another endpoint.
  Pkt p6;
  p6.eth_src = kMacC;
  p6.src = kC6;
  p6.dst = kOurIp6;
  p6.sport = 7000;
  p6.dport = kLegA;
  p6.payload = rtp(1, 160, kSsrcB);
  CHECK(why(rig.send(frame(p6)).r) == "drop:unknown_udp_port");

  // Without a RelayContext even the flow's own port is unknown_udp_port, and the flow sees
  // nothing.
  const Bytes in = frame(fromA(rtp(1, 160, kSsrcA)));
  Out o = rig.sendWithoutRelay(in);
  CHECK(why(o.r) == "drop:unknown_udp_port");
  CHECK(o.frame == in);
  FlowStats st = rig.stats(ab);
  CHECK(st.packets == 0);
  CHECK_FALSE(st.latched);
  CHECK(rig.flowAt(kOurIp4, kLegA)->owner.load() == -1);

  // UDP to an address we do not own never reaches the flow table.
  Pkt foreign = fromA(rtp(1, 160, kSsrcA));
  foreign.dst = kNotOurs4;
  CHECK(why(rig.send(frame(foreign)).r) == "drop:ip_not_for_us");
  CHECK(rig.stats(ab).packets == 0);

  CHECK(rig.c[0].get(DropReason::unknown_udp_port) == 3);
  rig.checkCounterIdentity();
}

// ============================== IPv4 <-> IPv6 ==============================

TEST_CASE("Relay: IPv4 → IPv6 bridging produces a valid IPv6/UDP frame", "[relay][ipv6]") {
  Rig rig;
  FlowSpec s;
  s.local = ep(kOurIp4, 10002);
  s.egress_local = ep(kOurIp6, 20002);
  s.destination = ep(kC6, 7000);
  const FlowId id = rig.add(s);

  const Bytes media = rtp(4242, 0xdeadbeef, kSsrcA);
  Pkt p = fromA(media);
  p.dport = 10002;
  p.tos = 0xba;  // DSCP EF with ECN bits: the whole byte is the traffic class
  const Bytes in = frame(p);
  Out o = rig.send(in);
  REQUIRE(why(o.r) == "transmit");
  CHECK(o.r.tx_port == 0);
  CHECK(o.frame.size() == in.size() + 20);
  checkRelayed(o.frame, kMacC, kOurIp6, 20002, kC6, 7000, media, 0xba);
  CHECK(rig.stats(id).forwarded == 1);
  CHECK(rig.stats(id).bytes == media.size());

  // Again with a short, padded frame: the IPv6 frame is still exact.
  const Bytes tiny = rtp(4243, 0xdeadbeef + 160, kSsrcA, 2);
  p.payload = tiny;
  p.pad_to = 60;
  Out o2 = rig.send(frame(p));
  REQUIRE(why(o2.r) == "transmit");
  checkRelayed(o2.frame, kMacC, kOurIp6, 20002, kC6, 7000, tiny, 0xba);
  rig.checkCounterIdentity();
}

TEST_CASE("Relay: IPv4 → IPv6 bridging drops what would exceed the egress MTU", "[relay][ipv6]") {
  Rig rig;
  rig.ifc.mtu = 1500;
  FlowSpec s;
  s.local = ep(kOurIp4, 10002);
  s.egress_local = ep(kOurIp6, 20002);
  s.destination = ep(kC6, 7000);
  const FlowId id = rig.add(s);
  Pkt p = fromA({});
  p.dport = 10002;
  // 1500 - 40 (IPv6) - 8 (UDP) = 1452 bytes of payload fit; the IPv4 input had 20 to spare.
  p.payload = rtp(1, 0, kSsrcA, 1452 - 12);
  CHECK(why(rig.send(frame(p)).r) == "transmit");
  p.payload = rtp(2, 160, kSsrcA, 1453 - 12);
  CHECK(why(rig.send(frame(p)).r) == "drop:flow_too_big");
  CHECK(rig.c[0].get(DropReason::flow_too_big) == 1);
  CHECK(rig.stats(id).forwarded == 1);
  rig.checkCounterIdentity();
}

TEST_CASE("Relay: a UDP checksum that does not match is dropped before the relay rewrites it",
          "[relay][drop]") {
  Rig rig;
  rig.add(specAB());
  rig.add(specBA());
  Pkt p = fromA(rtp(1, 160, kSsrcA));
  Bytes bad = frame(p);
  bad.back() ^= 0x01;  // one payload bit flipped on the wire
  CHECK(why(rig.send(bad).r) == "drop:l4_bad_checksum");
  // The port's own verdict wins when it gives one.
  CHECK(why(rig.send(bad, 0, RTE_MBUF_F_RX_L4_CKSUM_GOOD).r) == "transmit");
  CHECK(why(rig.send(frame(p), 0, RTE_MBUF_F_RX_L4_CKSUM_BAD).r) == "drop:l4_bad_checksum");
  // IPv4: 0 means "no checksum" (RFC 768).
  p.udp_cksum = 0;
  CHECK(why(rig.send(frame(p)).r) == "transmit");
  CHECK(rig.c[0].get(DropReason::l4_bad_checksum) == 2);
  rig.checkCounterIdentity();
}

TEST_CASE("Relay: IPv6 UDP with a zero or wrong checksum is dropped", "[relay][drop][ipv6]") {
  Rig rig;
  FlowSpec s;
  s.local = ep(kOurIp6, 10004);
  s.egress_local = ep(kOurIp6, 20004);
  s.destination = ep(kC6, 7002);
  rig.add(s);
  Pkt p;
  p.eth_src = kMacC;
  p.src = kC6;
  p.dst = kOurIp6;
  p.sport = 7000;
  p.dport = 10004;
  p.payload = rtp(1, 160, kSsrcA);
  CHECK(why(rig.send(frame(p)).r) == "transmit");
  p.udp_cksum = 0;  // RFC 8200 §8.1: not allowed over IPv6
  CHECK(why(rig.send(frame(p)).r) == "drop:l4_bad_checksum");
  p.udp_cksum = 0x1234;
  CHECK(why(rig.send(frame(p)).r) == "drop:l4_bad_checksum");
  CHECK(rig.c[0].get(DropReason::l4_bad_checksum) == 2);
  rig.checkCounterIdentity();
}

TEST_CASE("Relay: IPv6 → IPv4 bridging produces a valid IPv4/UDP frame", "[relay][ipv6]") {
  Rig rig;
  FlowSpec s;
  s.local = ep(kOurIp6, 20004);
  s.egress_local = ep(kOurIp4, 10004);
  s.destination = ep(kA4, kPortA);
  const FlowId id = rig.add(s);

  const Bytes media = rtp(17, 99999, kSsrcB);
  Pkt p;
  p.eth_src = kMacC;
  p.src = kC6;
  p.dst = kOurIp6;
  p.sport = 7000;
  p.dport = 20004;
  p.payload = media;
  p.tos = 0x88;
  p.flow_label = 0xabcde;
  p.ttl = 3;
  const Bytes in = frame(p);
  Out o = rig.send(in);
  REQUIRE(why(o.r) == "transmit");
  CHECK(o.frame.size() == in.size() - 20);
  checkRelayed(o.frame, kMacA, kOurIp4, 10004, kA4, kPortA, media, 0x88);
  FlowStats st = rig.stats(id);
  CHECK(st.forwarded == 1);
  CHECK(st.latched_source == ep(kC6, 7000));
  rig.checkCounterIdentity();
}

TEST_CASE("Relay: IPv6 → IPv6 keeps the traffic class and rewrites addresses", "[relay][ipv6]") {
  Rig rig;
  FlowSpec s;
  s.local = ep(kOurIp6, 20006);
  s.egress_local = ep(kOurIp6, 20007);
  s.destination = ep(kC6, 7002);
  rig.add(s);
  const Bytes media = rtp(1, 2, kSsrcB);
  Pkt p;
  p.eth_src = kMacC;
  p.src = kC6;
  p.dst = kOurIp6;
  p.sport = 7001;
  p.dport = 20006;
  p.payload = media;
  p.tos = 0x48;
  Out o = rig.send(frame(p));
  REQUIRE(why(o.r) == "transmit");
  checkRelayed(o.frame, kMacC, kOurIp6, 20007, kC6, 7002, media, 0x48);

  // The link-local address is ours too.
  FlowSpec ll;
  ll.local = Endpoint{rig.ifc.ipv6_link_local, 20008};
  ll.egress_local = ep(kOurIp4, 10008);
  ll.destination = ep(kA4, kPortA);
  rig.add(ll);
  p.dst = Bytes(rig.ifc.ipv6_link_local.bytes.begin(), rig.ifc.ipv6_link_local.bytes.end());
  p.dport = 20008;
  Out o2 = rig.send(frame(p));
  REQUIRE(why(o2.r) == "transmit");
  checkRelayed(o2.frame, kMacA, kOurIp4, 10008, kA4, kPortA, media, 0x48);
  rig.checkCounterIdentity();
}

// ============================== Checksum offload ==============================

TEST_CASE("Relay: with TX checksum offload the mbuf asks the NIC for the checksums",
          "[relay][offload]") {
  Rig rig;
  rig.add(specAB());
  FlowSpec s6;
  s6.local = ep(kOurIp4, 10010);
  s6.egress_local = ep(kOurIp6, 20010);
  s6.destination = ep(kC6, 7000);
  rig.add(s6);

  // Without offload: complete checksums and no TX flags, even if RX flags were set.
  const Bytes media = rtp(1, 160, kSsrcA);
  {
    MbufPtr m = makeMbuf(frame(fromA(media)));
    m->ol_flags = RTE_MBUF_F_RX_IP_CKSUM_GOOD | RTE_MBUF_F_RX_L4_CKSUM_GOOD;
    REQUIRE(why(rig.ingress(m.get())) == "transmit");
    CHECK(m->ol_flags == 0);
    checkRelayed(frameOf(m.get()), kMacBSdp, kOurIp4, kLegB, kBSdp4, kPortBSdp, media, kTos);
  }

  rig.ifc.tx_ipv4_cksum_offload = true;
  rig.ifc.tx_udp_cksum_offload = true;
  // The NIC wants l2/l3 lengths, the IPv4 header checksum zero, and the UDP checksum field
  // seeded with the (uncomplemented) pseudo-header sum.
  auto pseudoSum = [](const Bytes& src, const Bytes& dst, size_t udp_len) {
    return static_cast<uint16_t>(~internetChecksum(pseudoHeader(src, dst, udp_len)));
  };
  {
    const Bytes m2 = rtp(2, 320, kSsrcA);
    MbufPtr m = makeMbuf(frame(fromA(m2)));
    REQUIRE(why(rig.ingress(m.get())) == "transmit");
    CHECK(m->ol_flags == (RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_UDP_CKSUM));
    CHECK(m->l2_len == 14);
    CHECK(m->l3_len == 20);
    Bytes out = frameOf(m.get());
    REQUIRE(out.size() == 14 + 20 + 8 + m2.size());
    CHECK(get16(out, 24) == 0);
    CHECK(get16(out, 40) == pseudoSum(kOurIp4, kBSdp4, 8 + m2.size()));
    // Everything else is the frame checkRelayed expects.
    Bytes expected =
        expectedFrame(kMacBSdp, kOurIp4, kLegB, kBSdp4, kPortBSdp, m2, kTos, get16(out, 18));
    for (size_t i : {24, 25, 40, 41}) expected[i] = out[i];
    CHECK(out == expected);
  }
  {
    const Bytes m3 = rtp(3, 480, kSsrcA);
    Pkt p = fromA(m3);
    p.dport = 10010;
    MbufPtr m = makeMbuf(frame(p));
    REQUIRE(why(rig.ingress(m.get())) == "transmit");
    CHECK(m->ol_flags == (RTE_MBUF_F_TX_IPV6 | RTE_MBUF_F_TX_UDP_CKSUM));
    CHECK(m->l2_len == 14);
    CHECK(m->l3_len == 40);
    Bytes out = frameOf(m.get());
    REQUIRE(out.size() == 14 + 40 + 8 + m3.size());
    CHECK(get16(out, 60) == pseudoSum(kOurIp6, kC6, 8 + m3.size()));
    Bytes expected = expectedFrame(kMacC, kOurIp6, 20010, kC6, 7000, m3, kTos, 0);
    for (size_t i : {60, 61}) expected[i] = out[i];
    CHECK(out == expected);
  }
  rig.checkCounterIdentity();
}

// ============================== RTP statistics ==============================

TEST_CASE("Relay: RTP loss is expected minus received (RFC 3550 A.3)", "[relay][rtp]") {
  Rig rig;
  const FlowId ab = rig.add(specAB());
  for (uint16_t seq : {100, 101, 103, 104}) {
    REQUIRE(why(rig.send(frame(fromA(rtp(seq, seq * 160u, kSsrcA)))).r) == "transmit");
  }
  FlowStats s = rig.stats(ab);
  CHECK(s.ssrc == kSsrcA);
  CHECK(s.rtp_packets == 4);
  CHECK(s.rtp_expected == 5);
  CHECK(s.rtp_lost == 1);
  CHECK(s.rtp_seq_errors == 0);
  CHECK(s.rtcp_packets == 0);

  // The missing packet arrives late: received, no longer lost.
  REQUIRE(why(rig.send(frame(fromA(rtp(102, 102 * 160u, kSsrcA)))).r) == "transmit");
  s = rig.stats(ab);
  CHECK(s.rtp_packets == 5);
  CHECK(s.rtp_expected == 5);
  CHECK(s.rtp_lost == 0);
  rig.checkCounterIdentity();
}

TEST_CASE("Relay: a duplicate RTP packet is counted as received", "[relay][rtp]") {
  Rig rig;
  const FlowId ab = rig.add(specAB());
  for (uint16_t seq : {100, 101, 101, 102}) {
    REQUIRE(why(rig.send(frame(fromA(rtp(seq, seq * 160u, kSsrcA)))).r) == "transmit");
  }
  FlowStats s = rig.stats(ab);
  CHECK(s.rtp_packets == 4);
  CHECK(s.rtp_expected == 3);
  CHECK(s.rtp_lost == -1);  // negative with duplicates (RFC 3550 A.3)
  CHECK(s.forwarded == 4);
  rig.checkCounterIdentity();
}

TEST_CASE("Relay: the RTP sequence number wraps without loss", "[relay][rtp]") {
  Rig rig;
  const FlowId ab = rig.add(specAB());
  uint32_t ts = 5000;
  for (uint16_t seq : {65534, 65535, 0, 1}) {
    REQUIRE(why(rig.send(frame(fromA(rtp(seq, ts, kSsrcA)))).r) == "transmit");
    ts += 160;
  }
  FlowStats s = rig.stats(ab);
  CHECK(s.rtp_packets == 4);
  CHECK(s.rtp_expected == 4);
  CHECK(s.rtp_lost == 0);
  CHECK(s.rtp_seq_errors == 0);

  // And a loss right across the wrap: 2, then 4 (3 lost).
  REQUIRE(why(rig.send(frame(fromA(rtp(2, ts, kSsrcA)))).r) == "transmit");
  REQUIRE(why(rig.send(frame(fromA(rtp(4, ts + 320, kSsrcA)))).r) == "transmit");
  s = rig.stats(ab);
  CHECK(s.rtp_packets == 6);
  CHECK(s.rtp_expected == 7);
  CHECK(s.rtp_lost == 1);
  rig.checkCounterIdentity();
}

TEST_CASE("Relay: jitter is 0 when packets arrive exactly as their timestamps advance",
          "[relay][rtp]") {
  Rig rig;
  const FlowId ab = rig.add(specAB());
  uint32_t ts = 123456;
  for (uint16_t seq = 1; seq <= 10; ++seq) {
    rig.ctx.now_ns = kT0 + (seq - 1) * 20 * kMs;  // 20 ms = 160 ticks at 8000 Hz
    REQUIRE(why(rig.send(frame(fromA(rtp(seq, ts, kSsrcA)))).r) == "transmit");
    ts += 160;
  }
  FlowStats s = rig.stats(ab);
  CHECK(s.rtp_packets == 10);
  CHECK(s.jitter_ms == 0.0);
  rig.checkCounterIdentity();
}

TEST_CASE("Relay: jitter follows RFC 3550 A.8 when arrivals deviate from the timestamps",
          "[relay][rtp]") {
  Rig rig;
  const FlowId ab = rig.add(specAB());
  // Arrivals at 0, 20, 50, 60, 80, 100 ms; timestamps every 160 ticks (20 ms).
  const std::vector<uint64_t> at_ms = {0, 20, 50, 60, 80, 100};
  std::vector<std::pair<uint64_t, uint32_t>> sent;
  uint32_t ts = 7777;
  for (size_t i = 0; i < at_ms.size(); ++i) {
    rig.ctx.now_ns = kT0 + at_ms[i] * kMs;
    REQUIRE(why(rig.send(frame(fromA(rtp(static_cast<uint16_t>(i), ts, kSsrcA)))).r) == "transmit");
    sent.emplace_back(rig.ctx.now_ns, ts);
    ts += 160;
    if (i == 2) {
      // After 0, 20, 50 ms: D = |240 - 160| = 80 ticks, J = 80 / 16 = 5 ticks = 0.625 ms.
      CHECK(rig.stats(ab).jitter_ms == Approx(0.625).margin(1e-5));
    }
  }
  const double expected = referenceJitterMs(sent, 8000);
  FlowStats s = rig.stats(ab);
  CHECK(s.jitter_ms > 0);
  CHECK(s.jitter_ms == Approx(expected).margin(1e-5));

  // At 48 kHz (e.g. Opus) the same arrival pattern with 960-tick timestamps gives the same
  // jitter in milliseconds.
  FlowSpec opus = specAB();
  opus.local = ep(kOurIp4, kLegA + 4);
  opus.clock_rate = 48000;
  const FlowId o = rig.add(opus);
  std::vector<std::pair<uint64_t, uint32_t>> sent48;
  ts = 1;
  for (size_t i = 0; i < at_ms.size(); ++i) {
    rig.ctx.now_ns = kT0 + 1000 * kMs + at_ms[i] * kMs;
    Pkt p = fromA(rtp(static_cast<uint16_t>(i), ts, kSsrcB, 160, 111));
    p.dport = kLegA + 4;
    REQUIRE(why(rig.send(frame(p)).r) == "transmit");
    sent48.emplace_back(rig.ctx.now_ns, ts);
    ts += 960;
  }
  CHECK(rig.stats(o).jitter_ms == Approx(referenceJitterMs(sent48, 48000)).margin(1e-5));
  CHECK(rig.stats(o).jitter_ms == Approx(expected).margin(1e-5));
  rig.checkCounterIdentity();
}

TEST_CASE("Relay: jitter stays 0 across an RTP timestamp wrap", "[relay][rtp]") {
  // RTP timestamps start at a random value (RFC 3550 §5.1) and wrap modulo 2^32; A.8 computes
  // transit differences in 32-bit arithmetic so a wrap is not a jump.
  Rig rig;
  const FlowId ab = rig.add(specAB());
  uint32_t ts = 0xffffffffu - 2 * 160 + 1;  // 2^32 - 320: wraps between packets 2 and 3
  for (uint16_t seq = 1; seq <= 6; ++seq) {
    rig.ctx.now_ns = kT0 + (seq - 1) * 20 * kMs;
    REQUIRE(why(rig.send(frame(fromA(rtp(seq, ts, kSsrcA)))).r) == "transmit");
    ts += 160;
  }
  FlowStats s = rig.stats(ab);
  CHECK(s.rtp_packets == 6);
  CHECK(s.jitter_ms == 0.0);
  rig.checkCounterIdentity();
}

TEST_CASE("Relay: RTCP on an rtcp-mux port counts as RTCP, not RTP", "[relay][rtp]") {
  Rig rig;
  const FlowId ab = rig.add(specAB());
  REQUIRE(why(rig.send(frame(fromA(rtp(1, 160, kSsrcA)))).r) == "transmit");
  REQUIRE(why(rig.send(frame(fromA(rtp(2, 320, kSsrcA)))).r) == "transmit");

  const Bytes sr = rtcpSenderReport(kSsrcA);
  REQUIRE(sr[1] == 200);
  Out o = rig.send(frame(fromA(sr)));
  REQUIRE(why(o.r) == "transmit");
  checkRelayed(o.frame, kMacBSdp, kOurIp4, kLegB, kBSdp4, kPortBSdp, sr, kTos);

  REQUIRE(why(rig.send(frame(fromA(rtp(3, 480, kSsrcA)))).r) == "transmit");
  FlowStats s = rig.stats(ab);
  CHECK(s.rtcp_packets == 1);
  CHECK(s.rtp_packets == 3);
  CHECK(s.rtp_expected == 3);
  CHECK(s.rtp_lost == 0);
  CHECK(s.rtp_seq_errors == 0);
  CHECK(s.ssrc == kSsrcA);
  CHECK(s.forwarded == 4);

  // RTCP first on a fresh flow: no RTP state at all.
  FlowSpec fresh = specAB();
  fresh.local = ep(kOurIp4, kLegA + 6);
  const FlowId f = rig.add(fresh);
  Pkt p = fromA(rtcpSenderReport(kSsrcB));
  p.dport = kLegA + 6;
  REQUIRE(why(rig.send(frame(p)).r) == "transmit");
  s = rig.stats(f);
  CHECK(s.rtcp_packets == 1);
  CHECK(s.rtp_packets == 0);
  CHECK(s.rtp_expected == 0);
  CHECK(s.ssrc == 0);
  rig.checkCounterIdentity();
}

TEST_CASE("Relay: a reduced-size RTCP packet on an rtcp-mux port counts as RTCP", "[relay][rtp]") {
  // RFC 5761 §4 demultiplexes on the second byte; a lone PLI (RFC 5506) is 12 bytes, exactly
  // the size of an RTP header, and must not be taken for RTP.
  Rig rig;
  const FlowId ab = rig.add(specAB());
  REQUIRE(why(rig.send(frame(fromA(rtp(1, 160, kSsrcA)))).r) == "transmit");
  const Bytes pli = rtcpPli(kSsrcA, kSsrcB);
  REQUIRE(pli.size() == 12);
  Out o = rig.send(frame(fromA(pli)));
  REQUIRE(why(o.r) == "transmit");
  checkRelayed(o.frame, kMacBSdp, kOurIp4, kLegB, kBSdp4, kPortBSdp, pli, kTos);
  REQUIRE(why(rig.send(frame(fromA(rtp(2, 320, kSsrcA)))).r) == "transmit");
  FlowStats s = rig.stats(ab);
  CHECK(s.rtcp_packets == 1);
  CHECK(s.rtp_packets == 2);
  CHECK(s.rtp_expected == 2);
  CHECK(s.rtp_seq_errors == 0);
  CHECK(s.ssrc == kSsrcA);
  rig.checkCounterIdentity();
}

TEST_CASE("Relay: on an RTCP-only flow every packet counts as RTCP", "[relay][rtp]") {
  Rig rig;
  FlowSpec s = specAB();
  s.rtcp = true;
  s.local = ep(kOurIp4, kLegA + 1);
  s.egress_local = ep(kOurIp4, kLegB + 1);
  s.destination = ep(kBSdp4, kPortBSdp + 1);
  const FlowId id = rig.add(s);
  const Bytes looks_like_rtp = rtp(1, 160, kSsrcA);
  const Bytes sr = rtcpSenderReport(kSsrcA);
  for (const Bytes* payload : {&looks_like_rtp, &sr}) {
    Pkt p = fromA(*payload, kPortA + 1);
    p.dport = kLegA + 1;
    Out o = rig.send(frame(p));
    REQUIRE(why(o.r) == "transmit");
    checkRelayed(o.frame, kMacBSdp, kOurIp4, kLegB + 1, kBSdp4, kPortBSdp + 1, *payload, kTos);
  }
  FlowStats st = rig.stats(id);
  CHECK(st.rtcp_packets == 2);
  CHECK(st.rtp_packets == 0);
  CHECK(st.rtp_expected == 0);
  CHECK(st.ssrc == 0);
  CHECK(st.forwarded == 2);
  rig.checkCounterIdentity();
}

// ============================== Ownership and hand-off ==============================

TEST_CASE("Relay: the first worker owns a flow; others hand its packets to the owner",
          "[relay][handoff]") {
  Rig rig;
  const FlowId ab = rig.add(specAB());
  const rtpx::Flow* f = rig.flowAt(kOurIp4, kLegA);
  REQUIRE(f != nullptr);
  CHECK(f->owner.load() == -1);

  // Worker 0 sees the first packet and claims the flow.
  const Bytes m1 = rtp(1, 160, kSsrcA);
  Out o1 = rig.send(frame(fromA(m1)), 0);
  REQUIRE(why(o1.r) == "transmit");
  CHECK(f->owner.load() == 0);

  // Worker 1 receives the next one: hand-off to worker 0, the mbuf untouched, nothing counted
  // on the flow.
  const Bytes m2 = rtp(2, 320, kSsrcA);
  const Bytes in2 = frame(fromA(m2));
  MbufPtr mb = makeMbuf(in2);
  IngressResult r = rig.ingress(mb.get(), 1);
  REQUIRE(why(r) == "handoff:0");
  CHECK(r.handoff_worker == 0);
  CHECK_FALSE(r.has_hint);
  CHECK(frameOf(mb.get()) == in2);
  CHECK(rig.c[1].get(WorkerEvent::handoffs_sent) == 1);
  CHECK(rig.c[1].get(WorkerEvent::relayed) == 0);
  CHECK(rig.stats(ab).packets == 1);

  // Worker 0 processes the handed-over mbuf.
  IngressResult r2 = rig.handedOver(mb.get(), 0);
  REQUIRE(why(r2) == "transmit");
  CHECK(r2.tx_port == 0);
  checkRelayed(frameOf(mb.get()), kMacBSdp, kOurIp4, kLegB, kBSdp4, kPortBSdp, m2, kTos);
  CHECK(rig.stats(ab).packets == 2);
  CHECK(rig.stats(ab).forwarded == 2);
  CHECK(rig.stats(ab).rtp_expected == 2);
  CHECK(rig.c[0].get(WorkerEvent::relayed) == 2);

  // A handed-over packet is never handed on again, even on a worker that is not the owner.
  const Bytes m3 = rtp(3, 480, kSsrcA);
  MbufPtr mb3 = makeMbuf(frame(fromA(m3)));
  IngressResult r3 = rig.handedOver(mb3.get(), 1);
  REQUIRE(why(r3) == "transmit");
  checkRelayed(frameOf(mb3.get()), kMacBSdp, kOurIp4, kLegB, kBSdp4, kPortBSdp, m3, kTos);
  CHECK(rig.c[1].get(WorkerEvent::handoffs_sent) == 1);
  CHECK(rig.c[1].get(WorkerEvent::relayed) == 1);
  CHECK(f->owner.load() == 0);  // processing it did not move the ownership

  // Worker 1 still hands fresh packets of that flow to worker 0.
  Out o4 = rig.send(frame(fromA(rtp(4, 640, kSsrcA))), 1);
  CHECK(why(o4.r) == "handoff:0");
  CHECK(rig.c[1].get(WorkerEvent::handoffs_sent) == 2);
  CHECK(rig.stats(ab).packets == 3);

  // A flow first seen by worker 1 belongs to worker 1.
  const FlowId ba = rig.add(specBA());
  Out b1 = rig.send(frame(fromBNat(rtp(1, 1, kSsrcB))), 1);
  REQUIRE(why(b1.r) == "transmit");
  CHECK(rig.flowAt(kOurIp4, kLegB)->owner.load() == 1);
  Out b2 = rig.send(frame(fromBNat(rtp(2, 161, kSsrcB))), 0);
  CHECK(why(b2.r) == "handoff:1");
  CHECK(rig.c[0].get(WorkerEvent::handoffs_sent) == 1);
  CHECK(rig.stats(ba).packets == 1);

  // Drops still claim ownership: the first packet decides.
  FlowSpec held = specAB();
  held.local = ep(kOurIp4, kLegA + 8);
  held.forward = false;
  rig.add(held);
  Pkt hp = fromA(rtp(1, 160, kSsrcA));
  hp.dport = kLegA + 8;
  CHECK(why(rig.send(frame(hp), 1).r) == "drop:flow_not_forwarding");
  CHECK(why(rig.send(frame(hp), 0).r) == "handoff:1");
  rig.checkCounterIdentity();
}

// ============================== Counter identity ==============================

TEST_CASE("Relay: every packet ends in exactly one relayed, hand-off or drop counter",
          "[relay][counters]") {
  Rig rig;
  const FlowId ab = rig.add(specAB());
  const FlowId ba = rig.add(specBA());
  REQUIRE(rig.flows->pair(ab, ba).ok());
  FlowSpec held = specAB();
  held.local = ep(kOurIp4, 10100);
  held.forward = false;
  rig.add(held);
  FlowSpec nodest = specAB();
  nodest.local = ep(kOurIp4, 10101);
  nodest.destination = Endpoint{};
  rig.add(nodest);
  FlowSpec noroute = specAB();
  noroute.local = ep(kOurIp4, 10102);
  noroute.destination = ep(kOffLink4, 9);
  rig.add(noroute);
  FlowSpec bridge = specAB();
  bridge.local = ep(kOurIp4, 10103);
  bridge.egress_local = ep(kOurIp6, 20103);
  bridge.destination = ep(kC6, 7000);
  rig.add(bridge);

  auto to = [](uint16_t port, uint16_t seq) {
    Pkt p = fromA(rtp(seq, seq * 160u, kSsrcA));
    p.dport = port;
    return frame(p);
  };
  Pkt stranger = fromA(rtp(9, 9, kSsrcA), 4002, kOther4);
  stranger.eth_src = kMacOther;
  Bytes bad_udp_len = to(kLegA, 1);
  bad_udp_len[14 + 20 + 4] = 0x10;  // UDP length beyond the IP payload
  bad_udp_len[14 + 20 + 5] = 0x00;

  const std::vector<Bytes> batch = {
      to(kLegA, 1),                        // relayed (latches A)
      frame(fromBNat(rtp(1, 1, kSsrcB))),  // relayed (latches B)
      to(kLegA, 2),                        // relayed to B's NAT
      frame(stranger),                     // flow_source_mismatch
      to(10100, 1),                        // flow_not_forwarding
      to(10101, 1),                        // flow_no_destination
      to(10102, 1),                        // flow_no_route (+ resolve request)
      to(10103, 1),                        // relayed, IPv4 → IPv6
      to(10999, 1),                        // unknown_udp_port
      bad_udp_len,                         // malformed
  };
  uint64_t transmitted = 0, dropped = 0, handed = 0;
  for (int round = 0; round < 2; ++round) {
    for (size_t i = 0; i < batch.size(); ++i) {
      INFO("round " << round << ", frame " << i);
      // Round 1 runs on worker 1: every flow already owned by worker 0 is handed off.
      const int32_t w = round;
      MbufPtr m = makeMbuf(batch[i]);
      IngressResult r = rig.ingress(m.get(), w);
      if (r.verdict == Verdict::kHandoff) {
        ++handed;
        r = rig.handedOver(m.get(), r.handoff_worker);
      }
      if (r.verdict == Verdict::kTransmit) ++transmitted;
      if (r.verdict == Verdict::kDrop) ++dropped;
      rig.checkCounterIdentity();
    }
  }
  CHECK(rig.rx[0] + rig.rx[1] == 2 * batch.size());
  CHECK(transmitted == 2 * 4);
  CHECK(dropped == 2 * 6);
  CHECK(handed == 8);  // in round 1, every packet that reached a flow (all owned by worker 0)
  CHECK(rig.c[1].get(WorkerEvent::handoffs_sent) == handed);
  CHECK(rig.handed_in[0] == handed);
  CHECK(rig.c[0].get(WorkerEvent::relayed) == 2 * 4);
  CHECK(rig.c[0].get(DropReason::flow_source_mismatch) == 2);
  CHECK(rig.c[0].get(DropReason::flow_not_forwarding) == 2);
  CHECK(rig.c[0].get(DropReason::flow_no_destination) == 2);
  CHECK(rig.c[0].get(DropReason::flow_no_route) == 2);
  CHECK(rig.c[0].get(WorkerEvent::resolve_requests) == 2);
  CHECK(rig.c[0].get(DropReason::unknown_udp_port) == 1);
  CHECK(rig.c[1].get(DropReason::unknown_udp_port) == 1);
  CHECK(rig.c[0].get(DropReason::malformed) == 1);
  CHECK(rig.c[1].get(DropReason::malformed) == 1);
  rig.checkCounterIdentity();
}

// ============================== The worker's burst path ==============================

// A real worker on a net_ring port (an RX ring in, a TX ring out) standing in for the rig's
// port 0: the rig's flows, neighbors and slow-path ring, the worker's own hint, hand-off and
// inject rings. pollOnce and drainInjectRing run on it as on a NIC.
struct RingPort {
  rte_ring* rx = nullptr;
  rte_ring* tx = nullptr;
  int port = -1;
  rtpx::InterfaceAddrs ifc;
  std::array<const rtpx::InterfaceAddrs*, 8> ifaces{};
  rtpx::Worker w;

  explicit RingPort(Rig& rig) {
    static int seq = 0;
    const std::string id = std::to_string(seq++);
    rx = rte_ring_create(("relay_test_rx" + id).c_str(), 64, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
    tx = rte_ring_create(("relay_test_tx" + id).c_str(), 64, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
    REQUIRE(rx != nullptr);
    REQUIRE(tx != nullptr);
    port = rte_eth_from_rings(("net_relay_test" + id).c_str(), &rx, 1, &tx, 1, 0);
    REQUIRE(port >= 0);
    REQUIRE(port < 8);
    rte_eth_conf conf{};
    REQUIRE(rte_eth_dev_configure(port, 1, 1, &conf) == 0);
    REQUIRE(rte_eth_rx_queue_setup(port, 0, 64, 0, nullptr, rtpx::test::testPool()) == 0);
    REQUIRE(rte_eth_tx_queue_setup(port, 0, 64, 0, nullptr) == 0);
    REQUIRE(rte_eth_dev_start(port) == 0);
    ifc = rig.ifc;
    ifc.port_id = static_cast<uint16_t>(port);
    ifaces[0] = &rig.ifc;
    ifaces[port] = &ifc;
    w.queues.push_back({static_cast<uint16_t>(port), 0, &ifc});
    w.handoff = rte_ring_create(("relay_test_ho" + id).c_str(), 64, 0, RING_F_SC_DEQ);
    w.hints = rte_ring_create_elem(("relay_test_hints" + id).c_str(), sizeof(rtpx::NeighborHint),
                                   64, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
    w.inject = rte_ring_create_elem(("relay_test_inject" + id).c_str(), sizeof(rtpx::InjectCommand),
                                    64, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
    REQUIRE(w.handoff != nullptr);
    REQUIRE(w.hints != nullptr);
    REQUIRE(w.inject != nullptr);
    w.peers = {w.handoff};
    w.relay = rtpx::RelayContext{rig.flows.get(), rig.neighbors.get(), ifaces.data(), 8, 0, kT0};
    w.relay.slow_packets = rig.slow.r;
  }
  ~RingPort() {
    CHECK(rte_eth_dev_stop(port) == 0);
    CHECK(rte_eth_dev_close(port) == 0);
    rte_ring_free(rx);
    rte_ring_free(tx);
    rte_ring_free(w.handoff);
    rte_ring_free(w.hints);
    rte_ring_free(w.inject);
  }
  RingPort(const RingPort&) = delete;
  RingPort& operator=(const RingPort&) = delete;

  // The frames arrive at the port as one burst.
  void receive(const std::vector<Bytes>& frames) {
    std::vector<rte_mbuf*> in;
    for (const Bytes& f : frames) in.push_back(makeMbuf(f).release());
    REQUIRE(rte_ring_enqueue_bulk(rx, reinterpret_cast<void**>(in.data()), in.size(), nullptr) ==
            in.size());
  }
  // What the worker transmitted, in order.
  std::vector<MbufPtr> sent() {
    std::vector<MbufPtr> out;
    rte_mbuf* m;
    while (rte_ring_dequeue(tx, reinterpret_cast<void**>(&m)) == 0) out.emplace_back(m);
    return out;
  }
};

// pollOnce classifies a whole burst, looks the media packets' flows up together and relays them
// in a second pass: a burst that mixes media with ARP and drops must come out as the packets
// one at a time would (same frames, media in order), with every counter exact.
TEST_CASE("Relay: a mixed burst through the worker's pollOnce, on a ring port", "[relay][worker]") {
  Rig rig;
  const FlowId ab = rig.add(specAB());
  rig.add(specBA());
  RingPort rp(rig);
  rtpx::Worker& w = rp.w;

  // ARP request for our address, from A.
  Bytes arp = cat({Bytes(6, 0xff), kMacA});
  put16(arp, 0x0806);
  arp.insert(arp.end(), {0, 1, 8, 0, 6, 4, 0, 1});
  append(arp, cat({kMacA, kA4, Bytes(6, 0), kOurIp4}));
  Pkt unknown = fromA(rtp(1, 160, kSsrcA));
  unknown.dport = 12345;
  Pkt bad = fromA(rtp(2, 320, kSsrcA));
  bad.udp_cksum = 0x1234;
  const std::vector<Bytes> burst = {
      frame(fromA(rtp(1, 160, kSsrcA))),  // latches A
      arp,
      frame(unknown),
      frame(fromA(rtp(2, 320, kSsrcA))),
      frame(bad),
      frame(fromA(rtp(3, 480, kSsrcA))),
      frame(fromA(rtp(4, 640, kSsrcA), kPortA, kOther4)),  // not the latched source
      frame(fromA(rtp(4, 640, kSsrcA))),
  };
  rp.receive(burst);

  CHECK(rtpx::pollOnce(w) == burst.size());

  const std::vector<MbufPtr> out = rp.sent();
  // Replies go out in the first pass, media in the second, each in arrival order.
  REQUIRE(out.size() == 5);
  CHECK(get16(frameOf(out[0].get()), 12) == 0x0806);
  for (size_t i = 1; i < out.size(); ++i) {
    INFO("relayed packet " << i);
    const uint16_t seq = static_cast<uint16_t>(i);
    checkRelayed(frameOf(out[i].get()), kMacBSdp, kOurIp4, kLegB, kBSdp4, kPortBSdp,
                 rtp(seq, 160u * seq, kSsrcA), kTos);
  }

  const rtpx::WorkerCounters& k = w.counters;
  CHECK(k.get(WorkerEvent::rx_packets) == burst.size());
  CHECK(k.get(WorkerEvent::tx_packets) == 5);
  CHECK(k.get(WorkerEvent::arp_replies) == 1);
  CHECK(k.get(WorkerEvent::relayed) == 4);
  CHECK(k.get(DropReason::unknown_udp_port) == 1);
  CHECK(k.get(DropReason::l4_bad_checksum) == 1);
  CHECK(k.get(DropReason::flow_source_mismatch) == 1);
  uint64_t outcomes = k.get(WorkerEvent::arp_replies) + k.get(WorkerEvent::relayed);
  for (size_t d = 0; d < rtpx::kNumDropReasons; ++d)
    if (!rtpx::isDeliveryDrop(static_cast<DropReason>(d)))
      outcomes += k.get(static_cast<DropReason>(d));
  CHECK(k.get(WorkerEvent::rx_packets) == outcomes);
  const FlowStats s = rig.stats(ab);
  CHECK(s.packets == 5);
  CHECK(s.forwarded == 4);
  CHECK(s.dropped_source == 1);
  CHECK(s.rtp_packets == 4);
}

// ============================== The slow path ==============================
// RFC 7983: STUN (first byte 0-3) and DTLS (20-63) share the media port with RTP/RTCP
// (128-191). The relay sets them aside for the control plane, rate-limited per flow; they never
// latch, never count as media activity, never leave as media. Anything else is dropped.

namespace {

// RFC 8489 §5: a Binding request (type 0x0001) with 8 bytes of attributes, the magic cookie,
// a 96-bit transaction ID; then PRIORITY (RFC 8445 §16.1, type 0x0024). The transaction ID
// and priority are RFC 5769 §2.1's.
const Bytes kStunBindingRequest = {
    0x00, 0x01, 0x00, 0x08,  // Binding request, len 8
    0x21, 0x12, 0xa4, 0x42,  // magic cookie
    0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,  // transaction ID
    0x00, 0x24, 0x00, 0x04, 0x6e, 0x00, 0x01, 0xff,                          // PRIORITY 0x6e0001ff
};

// RFC 6347 §4.1 / §4.2.2: a DTLS 1.2 record carrying the start of a ClientHello — first byte
// 22 (handshake).
Bytes dtlsClientHello() {
  Bytes body = {0xfe, 0xfd};                           // client_version DTLS 1.2
  for (uint8_t i = 0; i < 32; ++i) body.push_back(i);  // random
  body.insert(body.end(), {0x00,                       // session_id: empty
                           0x00,                       // cookie: empty
                           0x00, 0x02, 0xc0, 0x2b,     // cipher_suites: ECDHE_ECDSA_AES_128_GCM
                           0x01, 0x00});               // compression_methods: null
  Bytes hs = {0x01};                                   // msg_type client_hello
  hs.insert(hs.end(), {0x00, 0x00, static_cast<uint8_t>(body.size())});  // length
  hs.insert(hs.end(), {0x00, 0x00});                                     // message_seq
  hs.insert(hs.end(), {0x00, 0x00, 0x00});                               // fragment_offset
  hs.insert(hs.end(), {0x00, 0x00, static_cast<uint8_t>(body.size())});  // fragment_length
  append(hs, body);
  Bytes rec = {22, 0xfe, 0xfd, 0x00, 0x00};   // handshake, DTLS 1.2, epoch 0
  rec.insert(rec.end(), {0, 0, 0, 0, 0, 0});  // sequence_number
  put16(rec, static_cast<uint16_t>(hs.size()));
  append(rec, hs);
  return rec;
}

// A STUN-looking payload of exactly `len` bytes (first byte 0).
Bytes stunOfSize(size_t len) {
  Bytes b = kStunBindingRequest;
  b.resize(len, 0x5a);
  return b;
}

void checkSlowPacket(const SlowPacket& p, FlowId flow, PayloadKind kind, const Endpoint& source,
                     const Endpoint& local, const Bytes& payload, uint64_t rx_ns) {
  CHECK(p.flow == flow);
  CHECK(p.kind == kind);
  CHECK(p.source == source);
  CHECK(p.local == local);
  CHECK(p.rx_ns == rx_ns);
  CHECK(p.port == 0);
  REQUIRE(p.len == payload.size());
  CHECK(Bytes(p.payload().begin(), p.payload().end()) == payload);
}

}  // namespace

TEST_CASE("Slow path: a STUN binding request goes to the ring, not through the relay",
          "[relay][slowpath]") {
  Rig rig;
  const FlowId ab = rig.add(specAB());
  const FlowId ba = rig.add(specBA());
  REQUIRE(rig.flows->pair(ab, ba).ok());

  // Before any media: on the ring, the frame untouched and freed by the caller, the flow
  // neither latched nor active.
  const Bytes in = frame(fromA(kStunBindingRequest, 4002));
  Out o = rig.send(in);
  REQUIRE(why(o.r) == "consumed");
  CHECK_FALSE(o.r.has_hint);
  CHECK(o.frame == in);
  std::vector<SlowPacket> got = rig.slow.drain();
  REQUIRE(got.size() == 1);
  checkSlowPacket(got[0], ab, PayloadKind::kStun, ep(kA4, 4002), ep(kOurIp4, kLegA),
                  kStunBindingRequest, kT0);
  FlowStats s = rig.stats(ab);
  CHECK_FALSE(s.latched);
  CHECK(s.first_packet_ns == 0);
  CHECK(s.last_packet_ns == 0);
  CHECK(s.packets == 0);
  CHECK(s.bytes == 0);
  CHECK(s.forwarded == 0);
  CHECK(s.slowpath_packets == 1);
  CHECK(rig.flows->lastPacket(ab) == 0);
  CHECK(rig.c[0].get(WorkerEvent::slowpath_packets) == 1);
  CHECK(rig.c[0].get(WorkerEvent::relayed) == 0);

  // RTP from A's real media port latches there (not to the STUN's port 4002) and is relayed.
  rig.ctx.now_ns = kT0 + 10 * kMs;
  const Bytes m1 = rtp(1, 160, kSsrcA);
  Out r1 = rig.send(frame(fromA(m1)));
  REQUIRE(why(r1.r) == "transmit");
  checkRelayed(r1.frame, kMacBSdp, kOurIp4, kLegB, kBSdp4, kPortBSdp, m1, kTos);
  s = rig.stats(ab);
  CHECK(s.latched);
  CHECK(s.latched_source == ep(kA4, kPortA));
  CHECK(s.first_packet_ns == kT0 + 10 * kMs);
  CHECK(s.last_packet_ns == kT0 + 10 * kMs);

  // After latching, STUN from another source (an ICE check from another candidate) is still
  // set aside, not a strict-source drop, and does not move last_packet_ns.
  rig.ctx.now_ns = kT0 + 5000 * kMs;
  Pkt other = fromA(kStunBindingRequest, 4444, kOther4);
  other.eth_src = kMacOther;
  REQUIRE(why(rig.send(frame(other)).r) == "consumed");
  REQUIRE(why(rig.send(frame(fromA(kStunBindingRequest))).r) == "consumed");
  got = rig.slow.drain();
  REQUIRE(got.size() == 2);
  checkSlowPacket(got[0], ab, PayloadKind::kStun, ep(kOther4, 4444), ep(kOurIp4, kLegA),
                  kStunBindingRequest, kT0 + 5000 * kMs);
  checkSlowPacket(got[1], ab, PayloadKind::kStun, ep(kA4, kPortA), ep(kOurIp4, kLegA),
                  kStunBindingRequest, kT0 + 5000 * kMs);
  s = rig.stats(ab);
  CHECK(s.latched_source == ep(kA4, kPortA));
  CHECK(s.last_packet_ns == kT0 + 10 * kMs);
  CHECK(s.dropped_source == 0);
  CHECK(s.packets == 1);
  CHECK(s.forwarded == 1);
  CHECK(s.slowpath_packets == 3);

  // B's media goes back to where A's media comes from, not to the STUN's port.
  const Bytes b1 = rtp(7, 70, kSsrcB);
  Pkt fromB = fromBNat(b1);
  Out r2 = rig.send(frame(fromB));
  REQUIRE(why(r2.r) == "transmit");
  checkRelayed(r2.frame, kMacA, kOurIp4, kLegA, kA4, kPortA, b1, kTos);

  // Hold: STUN still reaches the control plane (ICE keeps running), media does not go on.
  FlowSpec held = specAB();
  held.forward = false;
  REQUIRE(rig.flows->update(ab, held, false).ok());
  REQUIRE(why(rig.send(frame(fromA(kStunBindingRequest))).r) == "consumed");
  CHECK(rig.slow.drain().size() == 1);
  CHECK(rig.c[0].get(DropReason::flow_not_forwarding) == 0);

  // Another worker hands the packet to the flow's owner, which sets it aside.
  MbufPtr mb = makeMbuf(frame(fromA(kStunBindingRequest)));
  IngressResult h = rig.ingress(mb.get(), 1);
  REQUIRE(why(h) == "handoff:0");
  CHECK(rig.slow.drain().empty());
  REQUIRE(why(rig.handedOver(mb.get(), 0)) == "consumed");
  CHECK(rig.slow.drain().size() == 1);
  CHECK(rig.c[0].get(WorkerEvent::slowpath_packets) == 5);
  CHECK(rig.c[1].get(WorkerEvent::slowpath_packets) == 0);
  rig.checkCounterIdentity();
}

TEST_CASE("Slow path: DTLS (first byte 22) goes to the ring, over IPv4 and IPv6",
          "[relay][slowpath]") {
  Rig rig;
  const FlowId ab = rig.add(specAB());
  FlowSpec s6;
  s6.local = ep(kOurIp6, 22000);
  s6.egress_local = ep(kOurIp4, 12000);
  s6.destination = ep(kA4, kPortA);
  const FlowId c6 = rig.add(s6);

  const Bytes hello = dtlsClientHello();
  REQUIRE(hello[0] == 22);
  REQUIRE(hello.size() == 13 + 12 + 42);
  REQUIRE(why(rig.send(frame(fromA(hello))).r) == "consumed");
  Pkt p6;
  p6.eth_src = kMacC;
  p6.src = kC6;
  p6.dst = kOurIp6;
  p6.sport = 7000;
  p6.dport = 22000;
  p6.payload = hello;
  REQUIRE(why(rig.send(frame(p6)).r) == "consumed");

  const std::vector<SlowPacket> got = rig.slow.drain();
  REQUIRE(got.size() == 2);
  checkSlowPacket(got[0], ab, PayloadKind::kDtls, ep(kA4, kPortA), ep(kOurIp4, kLegA), hello, kT0);
  checkSlowPacket(got[1], c6, PayloadKind::kDtls, ep(kC6, 7000), ep(kOurIp6, 22000), hello, kT0);
  for (FlowId id : {ab, c6}) {
    const FlowStats s = rig.stats(id);
    CHECK_FALSE(s.latched);
    CHECK(s.last_packet_ns == 0);
    CHECK(s.packets == 0);
    CHECK(s.forwarded == 0);
    CHECK(s.slowpath_packets == 1);
  }

  // Both ends of each range, and RTP still relayed in between.
  for (uint8_t first : {uint8_t{0}, uint8_t{3}, uint8_t{20}, uint8_t{63}}) {
    Bytes b = kStunBindingRequest;
    b[0] = first;
    INFO("first byte " << int{first});
    REQUIRE(why(rig.send(frame(fromA(b))).r) == "consumed");
    const std::vector<SlowPacket> one = rig.slow.drain();
    REQUIRE(one.size() == 1);
    CHECK(one[0].kind == (first <= 3 ? PayloadKind::kStun : PayloadKind::kDtls));
  }
  const Bytes m = rtp(1, 160, kSsrcA);
  Out o = rig.send(frame(fromA(m)));
  REQUIRE(why(o.r) == "transmit");
  checkRelayed(o.frame, kMacBSdp, kOurIp4, kLegB, kBSdp4, kPortBSdp, m, kTos);
  CHECK(rig.c[0].get(WorkerEvent::slowpath_packets) == 6);
  CHECK(rig.c[0].get(WorkerEvent::relayed) == 1);
  rig.checkCounterIdentity();
}

TEST_CASE("Slow path: a payload that is neither media, STUN nor DTLS is dropped",
          "[relay][slowpath][drop]") {
  Rig rig;
  const FlowId ab = rig.add(specAB());
  // ZRTP (16), TURN channel data (64), a byte past RTP's range (192), ASCII, and nothing.
  uint64_t n = 0;
  for (const Bytes& payload : {Bytes{16, 0, 0, 0}, Bytes{64, 0, 0, 4, 1, 2, 3, 4},
                               Bytes{0xc0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, Bytes{'h', 'i'},
                               Bytes{4}, Bytes{19}, Bytes{127}, Bytes{}}) {
    INFO("payload of " << payload.size() << " bytes");
    const Bytes in = frame(fromA(payload));
    Out o = rig.send(in);
    CHECK(why(o.r) == "drop:flow_unknown_payload");
    CHECK(o.frame == in);
    ++n;
  }
  CHECK(rig.slow.drain().empty());
  const FlowStats s = rig.stats(ab);
  CHECK_FALSE(s.latched);
  CHECK(s.last_packet_ns == 0);
  CHECK(s.packets == 0);
  CHECK(s.slowpath_packets == 0);
  CHECK(rig.c[0].get(DropReason::flow_unknown_payload) == n);
  rig.checkCounterIdentity();
}

TEST_CASE("Plain UDP flows (UDPTL for T.38) are relayed whatever their first byte",
          "[relay][slowpath]") {
  Rig rig;
  FlowSpec spec = specAB();
  spec.demux = false;
  const FlowId ab = rig.add(spec);
  // UDPTL starts with a 16-bit sequence number: 0x00 0x00 would look like STUN on an RTP port.
  for (const Bytes& payload : {Bytes{0, 0, 0x06, 0x00}, Bytes{0, 1, 0x06, 0x00}, Bytes{22, 3}}) {
    Out o = rig.send(frame(fromA(payload)));
    CHECK(o.r.verdict == rtpx::Verdict::kTransmit);
  }
  CHECK(rig.slow.drain().empty());
  CHECK(rig.stats(ab).forwarded == 3);
  CHECK(rig.stats(ab).rtp_packets == 0);  // not RTP: no RTP statistics
  rig.checkCounterIdentity();
}

TEST_CASE("Slow path: each flow gets 20 at once, then 50 per second; the rest is counted",
          "[relay][slowpath][drop]") {
  Rig rig(64);
  const FlowId ab = rig.add(specAB());
  const FlowId ba = rig.add(specBA());
  const Bytes in = frame(fromA(kStunBindingRequest));

  // 25 at the same instant: the burst of 20 passes, 5 are rate limited.
  for (int i = 0; i < 25; ++i) {
    INFO("packet " << i);
    CHECK(why(rig.send(in).r) == (i < 20 ? "consumed" : "drop:slowpath_rate_limited"));
  }
  CHECK(rig.slow.drain().size() == 20);
  CHECK(rig.c[0].get(DropReason::slowpath_rate_limited) == 5);

  // One more every 20 ms (50/s), not two.
  rig.ctx.now_ns = kT0 + 20 * kMs;
  CHECK(why(rig.send(in).r) == "consumed");
  CHECK(why(rig.send(in).r) == "drop:slowpath_rate_limited");
  rig.ctx.now_ns = kT0 + 39 * kMs;
  CHECK(why(rig.send(in).r) == "drop:slowpath_rate_limited");
  rig.ctx.now_ns = kT0 + 40 * kMs;
  CHECK(why(rig.send(in).r) == "consumed");

  // The other flow has its own bucket.
  for (int i = 0; i < 20; ++i)
    CHECK(why(rig.send(frame(fromBNat(kStunBindingRequest))).r) == "consumed");
  CHECK(why(rig.send(frame(fromBNat(kStunBindingRequest))).r) == "drop:slowpath_rate_limited");

  // A flow quiet for a second has its whole burst back; RTP was never limited.
  rig.ctx.now_ns = kT0 + 1040 * kMs;
  for (int i = 0; i < 20; ++i) CHECK(why(rig.send(in).r) == "consumed");
  CHECK(why(rig.send(in).r) == "drop:slowpath_rate_limited");
  for (uint16_t seq = 1; seq <= 30; ++seq)
    CHECK(why(rig.send(frame(fromA(rtp(seq, seq * 160u, kSsrcA)))).r) == "transmit");

  CHECK(rig.slow.drain().size() == 2 + 20 + 20);
  CHECK(rig.c[0].get(DropReason::slowpath_rate_limited) == 5 + 2 + 1 + 1);
  CHECK(rig.stats(ab).slowpath_packets == 20 + 2 + 20);
  CHECK(rig.stats(ba).slowpath_packets == 20);
  CHECK(rig.c[0].get(WorkerEvent::slowpath_packets) == 20 + 2 + 20 + 20);
  rig.checkCounterIdentity();
}

TEST_CASE("Slow path: a full ring drops and counts, and costs the flow no rate",
          "[relay][slowpath][drop]") {
  Rig rig(4);
  const FlowId ab = rig.add(specAB());
  const Bytes in = frame(fromA(kStunBindingRequest));
  for (int i = 0; i < 4; ++i) CHECK(why(rig.send(in).r) == "consumed");
  for (int i = 0; i < 3; ++i) CHECK(why(rig.send(in).r) == "drop:slowpath_ring_full");
  CHECK(rig.c[0].get(DropReason::slowpath_ring_full) == 3);
  // The ring kept the first four, intact.
  std::vector<SlowPacket> got = rig.slow.drain();
  REQUIRE(got.size() == 4);
  for (const SlowPacket& p : got)
    checkSlowPacket(p, ab, PayloadKind::kStun, ep(kA4, kPortA), ep(kOurIp4, kLegA),
                    kStunBindingRequest, kT0);
  // Refused packets did not use the flow's burst: 16 more of its 20 fit, 4 at a time.
  for (int round = 0; round < 4; ++round) {
    for (int i = 0; i < 4; ++i) CHECK(why(rig.send(in).r) == "consumed");
    CHECK(rig.slow.drain().size() == 4);
  }
  CHECK(why(rig.send(in).r) == "drop:slowpath_rate_limited");

  // Without a ring (a context that has none) every STUN/DTLS packet is ring_full.
  rig.ctx.slow_packets = nullptr;
  rig.ctx.now_ns = kT0 + 2000 * kMs;
  CHECK(why(rig.send(in).r) == "drop:slowpath_ring_full");
  CHECK(rig.c[0].get(DropReason::slowpath_ring_full) == 4);
  CHECK(rig.stats(ab).slowpath_packets == 20);
  rig.checkCounterIdentity();
}

TEST_CASE("Slow path: a payload past 1472 bytes is dropped as slowpath_too_big",
          "[relay][slowpath][drop]") {
  Rig rig;
  rig.add(specAB());
  const Bytes max = stunOfSize(rtpx::kSlowPacketMaxBytes);
  REQUIRE(why(rig.send(frame(fromA(max))).r) == "consumed");
  const std::vector<SlowPacket> got = rig.slow.drain();
  REQUIRE(got.size() == 1);
  CHECK(Bytes(got[0].payload().begin(), got[0].payload().end()) == max);
  CHECK(why(rig.send(frame(fromA(stunOfSize(rtpx::kSlowPacketMaxBytes + 1)))).r) ==
        "drop:slowpath_too_big");
  CHECK(rig.slow.drain().empty());
  CHECK(rig.c[0].get(DropReason::slowpath_too_big) == 1);
  rig.checkCounterIdentity();
}

TEST_CASE(
    "Slow path: a burst through the worker's pollOnce relays the media, sets STUN/DTLS "
    "aside and frees their mbufs",
    "[relay][slowpath][worker]") {
  Rig rig;
  const FlowId ab = rig.add(specAB());
  rig.add(specBA());
  RingPort rp(rig);
  const unsigned free_before = rte_mempool_avail_count(rtpx::test::testPool());

  const Bytes hello = dtlsClientHello();
  const std::vector<Bytes> burst = {
      frame(fromA(kStunBindingRequest, 4002)),  // first: must not latch 4002
      frame(fromA(rtp(1, 160, kSsrcA))),       frame(fromA(hello)),
      frame(fromA(rtp(2, 320, kSsrcA))),       frame(fromA(Bytes{'x', 'y'})),  // neither
      frame(fromA(rtp(3, 480, kSsrcA))),
  };
  rp.receive(burst);
  CHECK(rtpx::pollOnce(rp.w) == burst.size());

  {
    const std::vector<MbufPtr> out = rp.sent();
    REQUIRE(out.size() == 3);
    for (size_t i = 0; i < out.size(); ++i) {
      INFO("relayed packet " << i);
      const uint16_t seq = static_cast<uint16_t>(i + 1);
      checkRelayed(frameOf(out[i].get()), kMacBSdp, kOurIp4, kLegB, kBSdp4, kPortBSdp,
                   rtp(seq, 160u * seq, kSsrcA), kTos);
    }
  }
  // Every mbuf is back in the pool: the slow path holds copies.
  CHECK(rte_mempool_avail_count(rtpx::test::testPool()) == free_before);
  const std::vector<SlowPacket> got = rig.slow.drain();
  REQUIRE(got.size() == 2);
  CHECK(got[0].port == 0);  // the flow's port (the ring port stands in for it)
  CHECK(got[0].kind == PayloadKind::kStun);
  CHECK(got[0].source == ep(kA4, 4002));
  CHECK(Bytes(got[0].payload().begin(), got[0].payload().end()) == kStunBindingRequest);
  CHECK(got[1].kind == PayloadKind::kDtls);
  CHECK(Bytes(got[1].payload().begin(), got[1].payload().end()) == hello);

  const rtpx::WorkerCounters& k = rp.w.counters;
  CHECK(k.get(WorkerEvent::rx_packets) == burst.size());
  CHECK(k.get(WorkerEvent::relayed) == 3);
  CHECK(k.get(WorkerEvent::slowpath_packets) == 2);
  CHECK(k.get(DropReason::flow_unknown_payload) == 1);
  uint64_t outcomes = k.get(WorkerEvent::relayed) + k.get(WorkerEvent::slowpath_packets);
  for (size_t d = 0; d < rtpx::kNumDropReasons; ++d)
    if (!rtpx::isDeliveryDrop(static_cast<DropReason>(d)))
      outcomes += k.get(static_cast<DropReason>(d));
  CHECK(k.get(WorkerEvent::rx_packets) == outcomes);
  const FlowStats s = rig.stats(ab);
  CHECK(s.latched_source == ep(kA4, kPortA));
  CHECK(s.packets == 3);
  CHECK(s.slowpath_packets == 2);
}

// What Dataplane::sendFromFlow sends: buildFlowPacket on the flow's spec, then worker 0's
// inject ring. Here the packet is built the same way and put on a real worker's inject ring;
// the frame the port transmits is compared with one built independently.
TEST_CASE("Slow path: a datagram sent from a flow's endpoint is byte-exact on the wire",
          "[relay][slowpath][worker]") {
  Rig rig;
  const FlowId ab = rig.add(specAB());
  FlowSpec s6;
  s6.local = ep(kOurIp6, 22000);
  s6.egress_local = ep(kOurIp4, 12000);
  s6.destination = ep(kA4, kPortA);
  const FlowId c6 = rig.add(s6);
  RingPort rp(rig);

  // A Binding success response (RFC 8489 §5, type 0x0101), echoing the transaction ID.
  Bytes response = {0x01, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42};
  append(response, slice(kStunBindingRequest, 8, 12));
  struct Case {
    const char* name;
    FlowId flow;
    Endpoint to;
    Bytes next_mac;
    Bytes src;
    uint16_t sport;
    Bytes payload;
  };
  const std::vector<Case> cases = {
      {"IPv4, on-link", ab, ep(kA4, 4002), kMacA, kOurIp4, kLegA, response},
      {"IPv4, odd length", ab, ep(kA4, 4002), kMacA, kOurIp4, kLegA, Bytes{1, 2, 3}},
      {"IPv6, on-link", c6, ep(kC6, 7000), kMacC, kOurIp6, 22000, dtlsClientHello()},
  };
  for (const Case& k : cases) {
    INFO(k.name);
    const absl::StatusOr<FlowSpec> spec = rig.flows->spec(k.flow);
    REQUIRE(spec.ok());
    MbufPtr m(rte_pktmbuf_alloc(rtpx::test::testPool()));
    REQUIRE(m != nullptr);
    IpAddr hop;
    const absl::Status st = rtpx::buildFlowPacket(m.get(), *spec, k.to, k.payload,
                                                  rig.ifaces.data(), 8, *rig.neighbors, &hop);
    INFO(st.ToString());
    REQUIRE(st.ok());
    rtpx::InjectCommand cmd{m.release(), static_cast<uint16_t>(rp.port), {}};
    REQUIRE(rte_ring_sp_enqueue_elem(rp.w.inject, &cmd, sizeof cmd) == 0);
    rtpx::drainInjectRing(rp.w);
    const std::vector<MbufPtr> out = rp.sent();
    REQUIRE(out.size() == 1);
    checkRelayed(frameOf(out[0].get()), k.next_mac, k.src, k.sport, k.to.addr.isV6() ? kC6 : kA4,
                 k.to.port, k.payload, 0);
  }
  CHECK(rp.w.counters.get(WorkerEvent::injected_tx) == cases.size());
  CHECK(rp.w.counters.get(WorkerEvent::tx_packets) == cases.size());
  // Sending touches no flow state.
  CHECK(rig.stats(ab).packets == 0);
  CHECK_FALSE(rig.stats(ab).latched);
}

TEST_CASE("Slow path: sending from a flow refuses what it cannot send, and names the hop",
          "[relay][slowpath]") {
  Rig rig;
  const FlowId ab = rig.add(specAB());
  const FlowSpec spec = *rig.flows->spec(ab);
  auto build = [&](const FlowSpec& s, const Endpoint& to, const Bytes& payload, IpAddr* hop) {
    MbufPtr m(rte_pktmbuf_alloc(rtpx::test::testPool()));
    REQUIRE(m != nullptr);
    const absl::Status st =
        rtpx::buildFlowPacket(m.get(), s, to, payload, rig.ifaces.data(), 8, *rig.neighbors, hop);
    if (!st.ok()) CHECK(m->pkt_len == 0);  // nothing half-built is left to send
    return st;
  };
  IpAddr hop;
  // Next hop without a MAC: UNAVAILABLE, and which hop to resolve (on-link: itself; else the
  // gateway).
  absl::Status st = build(spec, ep(kUnresolved4, 9), kStunBindingRequest, &hop);
  CHECK(absl::IsUnavailable(st));
  CHECK(hop == ipOf(kUnresolved4));
  st = build(spec, ep(kOffLink4, 9), kStunBindingRequest, &hop);
  CHECK(absl::IsUnavailable(st));
  CHECK(hop == ipOf(kGw4));
  REQUIRE(rig.neighbors->confirm(0, ipOf(kGw4), macOf(kGw4Mac), kT0));
  CHECK(build(spec, ep(kOffLink4, 9), kStunBindingRequest, &hop).ok());
  // Off-link without a gateway: no route.
  rig.ifc.gateway4.reset();
  CHECK(absl::IsFailedPrecondition(build(spec, ep(kOffLink4, 9), kStunBindingRequest, &hop)));
  // Not the flow's family, or no destination.
  CHECK(absl::IsInvalidArgument(build(spec, ep(kC6, 7000), kStunBindingRequest, &hop)));
  CHECK(absl::IsInvalidArgument(build(spec, Endpoint{}, kStunBindingRequest, &hop)));
  // The port's MTU bounds the IP packet: 1500 - 20 - 8 bytes fit, one more does not.
  CHECK(build(spec, ep(kA4, 4000), stunOfSize(1472), &hop).ok());
  CHECK(absl::IsInvalidArgument(build(spec, ep(kA4, 4000), stunOfSize(1473), &hop)));
  // A flow whose port is not configured.
  FlowSpec elsewhere = spec;
  elsewhere.ingress_port = 3;
  CHECK(absl::IsFailedPrecondition(build(elsewhere, ep(kA4, 4000), kStunBindingRequest, &hop)));
  elsewhere.ingress_port = 200;
  CHECK(absl::IsFailedPrecondition(build(elsewhere, ep(kA4, 4000), kStunBindingRequest, &hop)));
  CHECK(absl::IsNotFound(rig.flows->spec(ab + 100).status()));
}

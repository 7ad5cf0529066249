// handleIngress on real frames in real mbufs. Every frame is built byte by byte by the helpers
// below, which compute checksums with their own RFC 1071 sum (not DPDK's), so the expectations
// are an independent check of the code under test. Replies are compared byte for byte against a
// frame built the same way.
#include "dataplane/ingress.h"

#include <rte_mbuf.h>
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tests/unit/test_support.h"

namespace Catch {
template <>
struct StringMaker<rtpx::DropReason> {
  static std::string convert(rtpx::DropReason r) {
    return std::string(rtpx::kDropReasonInfo[static_cast<size_t>(r)].name);
  }
};
template <>
struct StringMaker<rtpx::Verdict> {
  static std::string convert(rtpx::Verdict v) {
    switch (v) {
      case rtpx::Verdict::kTransmit:
        return "kTransmit";
      case rtpx::Verdict::kConsumed:
        return "kConsumed";
      case rtpx::Verdict::kDrop:
        return "kDrop";
      case rtpx::Verdict::kHandoff:
        return "kHandoff";
    }
    return "?";
  }
};
}  // namespace Catch

namespace {

using Bytes = std::vector<uint8_t>;
using rtpx::DropReason;
using rtpx::Verdict;
using rtpx::WorkerEvent;

// ---- Addresses of the test link ----
const Bytes kOurMac = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
const Bytes kPeerMac = {0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee};
const Bytes kOtherMac = {0x02, 0x00, 0x00, 0x00, 0x00, 0x99};
const Bytes kBroadcastMac = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
const Bytes kZeroMac = {0, 0, 0, 0, 0, 0};
const Bytes kOurIp4 = {192, 0, 2, 2};
const Bytes kPeerIp4 = {192, 0, 2, 1};
const Bytes kOtherIp4 = {192, 0, 2, 99};
// 2001:db8::2 (ours), 2001:db8::1 (peer), 2001:db8::99 (nobody here)
const Bytes kOurIp6 = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02};
const Bytes kPeerIp6 = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01};
const Bytes kOtherIp6 = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x99};
// fe80::5054:ff:fe12:3456: modified EUI-64 of 52:54:00:12:34:56 (U/L bit flipped, ff:fe inserted)
const Bytes kOurLinkLocal = {0xfe, 0x80, 0,    0,    0,    0,    0,    0,
                             0x50, 0x54, 0x00, 0xff, 0xfe, 0x12, 0x34, 0x56};
const Bytes kPeerLinkLocal = {0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xaa};
const Bytes kUnspecified6(16, 0);
const Bytes kAllNodes = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01};
// Solicited-node groups ff02::1:ffXX:XXXX and their 33:33 MACs.
const Bytes kSnOurIp6 = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff, 0x00, 0x00, 0x02};
const Bytes kSnOurLinkLocal = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff, 0x12, 0x34, 0x56};
const Bytes kSnOtherIp6 = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff, 0x00, 0x00, 0x99};
const Bytes kSnPeerIp6 = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff, 0x00, 0x00, 0x01};
const Bytes kMacSnOurIp6 = {0x33, 0x33, 0xff, 0x00, 0x00, 0x02};
const Bytes kMacSnOurLinkLocal = {0x33, 0x33, 0xff, 0x12, 0x34, 0x56};
const Bytes kMacSnOtherIp6 = {0x33, 0x33, 0xff, 0x00, 0x00, 0x99};
const Bytes kMacSnPeerIp6 = {0x33, 0x33, 0xff, 0x00, 0x00, 0x01};
const Bytes kMacAllNodes = {0x33, 0x33, 0x00, 0x00, 0x00, 0x01};

constexpr uint16_t kPortId = 3;
constexpr uint16_t kEtherIpv4 = 0x0800;
constexpr uint16_t kEtherArp = 0x0806;
constexpr uint16_t kEtherIpv6 = 0x86dd;
constexpr uint8_t kProtoIcmp = 1;
constexpr uint8_t kProtoUdp = 17;
constexpr uint8_t kProtoIcmp6 = 58;

rtpx::InterfaceAddrs ourInterface() {
  rtpx::InterfaceAddrs ifc;
  ifc.port_id = kPortId;
  std::memcpy(ifc.mac.bytes.data(), kOurMac.data(), 6);
  ifc.ipv4 = rtpx::IpPrefix::parse("192.0.2.2/24");
  ifc.ipv6 = rtpx::IpPrefix::parse("2001:db8::2/64");
  ifc.ipv6_link_local = *rtpx::IpAddr::parse("fe80::5054:ff:fe12:3456");
  return ifc;
}

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
Bytes text(const char* s) {
  return Bytes(s, s + std::strlen(s));
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

// RFC 8200 §8.1 pseudo-header followed by the ICMPv6 message.
uint16_t icmp6Checksum(const Bytes& src, const Bytes& dst, const Bytes& message) {
  Bytes p = cat({src, dst});
  put32(p, static_cast<uint32_t>(message.size()));
  p.insert(p.end(), {0, 0, 0, kProtoIcmp6});
  append(p, message);
  return internetChecksum(p);
}

// ---- Frame builders ----
Bytes ethernet(const Bytes& dst, const Bytes& src, uint16_t type, const Bytes& payload) {
  Bytes f = cat({dst, src});
  put16(f, type);
  append(f, payload);
  return f;
}

// RFC 826 for Ethernet/IPv4: 28 bytes.
Bytes arp(uint16_t op, const Bytes& sha, const Bytes& spa, const Bytes& tha, const Bytes& tpa) {
  Bytes a;
  put16(a, 1);       // hardware: Ethernet
  put16(a, 0x0800);  // protocol: IPv4
  a.push_back(6);
  a.push_back(4);
  put16(a, op);
  append(a, sha);
  append(a, spa);
  append(a, tha);
  append(a, tpa);
  return a;
}

struct Ipv4Opts {
  uint8_t tos = 0;
  uint16_t id = 0x1234;
  uint16_t frag = 0x4000;  // DF
  uint8_t ttl = 17;
  Bytes options;                         // must be a multiple of 4 bytes
  std::optional<uint16_t> total_length;  // lie about the length
  bool corrupt_checksum = false;
};

Bytes ipv4(const Bytes& src, const Bytes& dst, uint8_t proto, const Bytes& payload,
           const Ipv4Opts& o = {}) {
  const size_t hlen = 20 + o.options.size();
  Bytes h;
  h.push_back(static_cast<uint8_t>(0x40 | (hlen / 4)));
  h.push_back(o.tos);
  put16(h, o.total_length.value_or(static_cast<uint16_t>(hlen + payload.size())));
  put16(h, o.id);
  put16(h, o.frag);
  h.push_back(o.ttl);
  h.push_back(proto);
  put16(h, 0);  // checksum, filled below
  append(h, src);
  append(h, dst);
  append(h, o.options);
  uint16_t ck = internetChecksum(h);
  if (o.corrupt_checksum) ck ^= 0x0101;
  h[10] = static_cast<uint8_t>(ck >> 8);
  h[11] = static_cast<uint8_t>(ck);
  append(h, payload);
  return h;
}

// RFC 792 echo request (type 8) / reply (type 0).
Bytes icmpEcho(uint8_t type, uint16_t id, uint16_t seq, const Bytes& data,
               bool corrupt_checksum = false) {
  Bytes m = {type, 0, 0, 0};
  put16(m, id);
  put16(m, seq);
  append(m, data);
  uint16_t ck = internetChecksum(m);
  if (corrupt_checksum) ck ^= 0x8000;
  m[2] = static_cast<uint8_t>(ck >> 8);
  m[3] = static_cast<uint8_t>(ck);
  return m;
}

Bytes udp(uint16_t sport, uint16_t dport, const Bytes& payload) {
  Bytes u;
  put16(u, sport);
  put16(u, dport);
  put16(u, static_cast<uint16_t>(8 + payload.size()));
  put16(u, 0);  // no checksum (allowed for IPv4)
  append(u, payload);
  return u;
}

Bytes ipv6(const Bytes& src, const Bytes& dst, uint8_t next, uint8_t hop, const Bytes& payload) {
  Bytes h;
  put32(h, 0x60000000);  // version 6, traffic class 0, flow label 0
  put16(h, static_cast<uint16_t>(payload.size()));
  h.push_back(next);
  h.push_back(hop);
  append(h, src);
  append(h, dst);
  append(h, payload);
  return h;
}

// An ICMPv6 message: type, code, checksum (over the pseudo-header), then `body`.
Bytes icmp6(const Bytes& src, const Bytes& dst, uint8_t type, uint8_t code, const Bytes& body,
            bool corrupt_checksum = false) {
  Bytes m = {type, code, 0, 0};
  append(m, body);
  uint16_t ck = icmp6Checksum(src, dst, m);
  if (corrupt_checksum) ck ^= 0x0001;
  m[2] = static_cast<uint8_t>(ck >> 8);
  m[3] = static_cast<uint8_t>(ck);
  return m;
}

// RFC 4861 §4.6.1 link-layer address option: type 1 (source) or 2 (target), length 1 (8 bytes).
Bytes llaOption(uint8_t type, const Bytes& mac) {
  return cat({{type, 1}, mac});
}

// NS / NA body after the checksum: 4 bytes (reserved / flags), target, options.
Bytes ndBody(uint32_t flags, const Bytes& target, const Bytes& options) {
  Bytes b;
  put32(b, flags);
  append(b, target);
  append(b, options);
  return b;
}

Bytes echoBody(uint16_t id, uint16_t seq, const Bytes& data) {
  Bytes b;
  put16(b, id);
  put16(b, seq);
  append(b, data);
  return b;
}

// A complete neighbor solicitation frame.
Bytes nsFrame(const Bytes& eth_src, const Bytes& eth_dst, const Bytes& ip_src, const Bytes& ip_dst,
              uint8_t hop, const Bytes& target, const Bytes& options) {
  return ethernet(eth_dst, eth_src, kEtherIpv6,
                  ipv6(ip_src, ip_dst, kProtoIcmp6, hop,
                       icmp6(ip_src, ip_dst, 135, 0, ndBody(0, target, options))));
}

// A complete neighbor advertisement frame.
Bytes naFrame(const Bytes& eth_src, const Bytes& eth_dst, const Bytes& ip_src, const Bytes& ip_dst,
              uint32_t flags, const Bytes& target, const Bytes& options) {
  return ethernet(eth_dst, eth_src, kEtherIpv6,
                  ipv6(ip_src, ip_dst, kProtoIcmp6, 255,
                       icmp6(ip_src, ip_dst, 136, 0, ndBody(flags, target, options))));
}

Bytes padTo(Bytes frame, size_t size, uint8_t fill) {
  if (frame.size() < size) frame.resize(size, fill);
  return frame;
}

// ---- mbufs ----
struct MbufFree {
  void operator()(rte_mbuf* m) const noexcept { rte_pktmbuf_free(m); }
};
using MbufPtr = std::unique_ptr<rte_mbuf, MbufFree>;

MbufPtr allocMbuf() {
  rte_mempool* pool = rtpx::test::testPool();
  REQUIRE(pool != nullptr);
  rte_mbuf* m = rte_pktmbuf_alloc(pool);
  REQUIRE(m != nullptr);
  return MbufPtr(m);
}

MbufPtr makeMbuf(const Bytes& frame) {
  MbufPtr m = allocMbuf();
  char* p = rte_pktmbuf_append(m.get(), static_cast<uint16_t>(frame.size()));
  REQUIRE(p != nullptr);
  std::memcpy(p, frame.data(), frame.size());
  return m;
}

Bytes frameOf(const rte_mbuf* m) {
  REQUIRE(m->nb_segs == 1);
  REQUIRE(m->pkt_len == m->data_len);
  const auto* p = rte_pktmbuf_mtod(m, const uint8_t*);
  return Bytes(p, p + m->data_len);
}

struct Run {
  rtpx::IngressResult result;
  Bytes out;
};

Run ingress(const Bytes& frame, rtpx::WorkerCounters& c,
            const rtpx::InterfaceAddrs& ifc = ourInterface()) {
  MbufPtr m = makeMbuf(frame);
  Run r;
  r.result = rtpx::handleIngress(m.get(), ifc, c);
  r.out = frameOf(m.get());
  return r;
}

// Every outcome handleIngress counts: the replies, the consumed neighbor updates and the drops.
uint64_t outcomeTotal(const rtpx::WorkerCounters& c) {
  uint64_t n = c.get(WorkerEvent::arp_replies) + c.get(WorkerEvent::icmp_echo_replies) +
               c.get(WorkerEvent::nd_advertisements) + c.get(WorkerEvent::icmp6_echo_replies) +
               c.get(WorkerEvent::neighbor_updates);
  for (size_t d = 0; d < rtpx::kNumDropReasons; ++d) n += c.get(static_cast<DropReason>(d));
  return n;
}

uint64_t replyTotal(const rtpx::WorkerCounters& c) {
  return c.get(WorkerEvent::arp_replies) + c.get(WorkerEvent::icmp_echo_replies) +
         c.get(WorkerEvent::nd_advertisements) + c.get(WorkerEvent::icmp6_echo_replies);
}

uint64_t dropTotal(const rtpx::WorkerCounters& c) {
  uint64_t n = 0;
  for (size_t d = 0; d < rtpx::kNumDropReasons; ++d) n += c.get(static_cast<DropReason>(d));
  return n;
}

// One packet, dropped for `reason`: that counter is 1 and nothing else moved.
void checkDroppedFor(const Bytes& frame, DropReason reason,
                     const rtpx::InterfaceAddrs& ifc = ourInterface()) {
  rtpx::WorkerCounters c;
  Run r = ingress(frame, c, ifc);
  CHECK(r.result.verdict == Verdict::kDrop);
  CHECK(r.result.reason == reason);
  CHECK_FALSE(r.result.has_hint);
  CHECK(c.get(reason) == 1);
  CHECK(outcomeTotal(c) == 1);
  CHECK(replyTotal(c) == 0);
}

// ---- Shared request frames ----
const Bytes kPingData = text("rtpx echo payload 0123456789 odd");  // 32 bytes

Bytes arpRequestFor(const Bytes& tpa) {
  return ethernet(kBroadcastMac, kPeerMac, kEtherArp, arp(1, kPeerMac, kPeerIp4, kZeroMac, tpa));
}

Bytes pingFrame(const Bytes& dst_mac, const Bytes& dst_ip, const Bytes& data = kPingData,
                const Ipv4Opts& o = {}, bool corrupt_icmp = false) {
  return ethernet(
      dst_mac, kPeerMac, kEtherIpv4,
      ipv4(kPeerIp4, dst_ip, kProtoIcmp, icmpEcho(8, 0xbeef, 0x0007, data, corrupt_icmp), o));
}

Bytes ping6Frame(const Bytes& dst_ip, const Bytes& data = kPingData, bool corrupt = false) {
  return ethernet(kOurMac, kPeerMac, kEtherIpv6,
                  ipv6(kPeerIp6, dst_ip, kProtoIcmp6, 64,
                       icmp6(kPeerIp6, dst_ip, 128, 0, echoBody(0x4242, 0x0102, data), corrupt)));
}

Bytes udpFrame(const Bytes& dst_ip) {
  return ethernet(kOurMac, kPeerMac, kEtherIpv4,
                  ipv4(kPeerIp4, dst_ip, kProtoUdp, udp(40000, 5004, text("rtp!"))));
}

Bytes nsForOurGlobal(uint8_t hop = 255) {
  return nsFrame(kPeerMac, kMacSnOurIp6, kPeerIp6, kSnOurIp6, hop, kOurIp6, llaOption(1, kPeerMac));
}

}  // namespace

// ============================== Helpers ==============================

TEST_CASE("The test's own RFC 1071 checksum matches known values", "[ingress][helpers]") {
  // A textbook IPv4 header (checksum field zero): 192.168.0.1 -> 192.168.0.199, UDP.
  const Bytes hdr = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                     0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
  CHECK(internetChecksum(hdr) == 0xb861);
  Bytes with = hdr;
  with[10] = 0xb8;
  with[11] = 0x61;
  CHECK(internetChecksum(with) == 0);
  // RFC 1071 section 3 example bytes: sum 0xddf2, checksum 0x220d.
  CHECK(internetChecksum({0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}) == 0x220d);
  // An odd tail is padded with a zero byte on the right.
  CHECK(internetChecksum({0x01}) == static_cast<uint16_t>(~0x0100));
  CHECK(internetChecksum({}) == 0xffff);
}

// ============================== ARP ==============================

TEST_CASE("ARP request for our IPv4 address is answered with an exact ARP reply",
          "[ingress][arp]") {
  // Broadcast who-has 192.0.2.2 tell 192.0.2.1, padded to the 60-byte Ethernet minimum.
  const Bytes request = padTo(arpRequestFor(kOurIp4), 60, 0x00);
  REQUIRE(request.size() == 60);

  rtpx::WorkerCounters c;
  Run r = ingress(request, c);

  // The expected reply, written out field by field (42 bytes, no padding).
  const Bytes expected = {
      0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee,  // Ethernet dst: the requester
      0x52, 0x54, 0x00, 0x12, 0x34, 0x56,  // Ethernet src: us
      0x08, 0x06,                          // ARP
      0x00, 0x01, 0x08, 0x00, 0x06, 0x04,  // Ethernet / IPv4, hlen 6, plen 4
      0x00, 0x02,                          // opcode: reply
      0x52, 0x54, 0x00, 0x12, 0x34, 0x56,  // sha: our MAC
      192,  0,    2,    2,                 // spa: our IPv4
      0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee,  // tha: the requester's MAC
      192,  0,    2,    1,                 // tpa: the requester's IPv4
  };
  REQUIRE(expected.size() == 42);
  CHECK(r.result.verdict == Verdict::kTransmit);
  CHECK(r.out.size() == 42);
  CHECK(r.out == expected);
  CHECK(get16(r.out, 20) == 2);

  REQUIRE(r.result.has_hint);
  CHECK(r.result.hint.port == kPortId);
  CHECK(r.result.hint.mac.toString() == "02:aa:bb:cc:dd:ee");
  CHECK(r.result.hint.ip.toString() == "192.0.2.1");
  CHECK(r.result.hint.ip.isV4());

  CHECK(c.get(WorkerEvent::arp_replies) == 1);
  CHECK(outcomeTotal(c) == 1);
}

TEST_CASE("ARP request for an address we do not own is dropped as arp_not_for_us",
          "[ingress][arp]") {
  checkDroppedFor(arpRequestFor(kOtherIp4), DropReason::arp_not_for_us);
}

TEST_CASE("ARP without an IPv4 address on the interface is dropped as arp_not_for_us",
          "[ingress][arp]") {
  rtpx::InterfaceAddrs ifc = ourInterface();
  ifc.ipv4.reset();
  checkDroppedFor(arpRequestFor(kOurIp4), DropReason::arp_not_for_us, ifc);
}

TEST_CASE("ARP reply to us is consumed and yields a neighbor hint", "[ingress][arp]") {
  const Bytes reply =
      ethernet(kOurMac, kPeerMac, kEtherArp, arp(2, kPeerMac, kPeerIp4, kOurMac, kOurIp4));
  rtpx::WorkerCounters c;
  Run r = ingress(reply, c);
  CHECK(r.result.verdict == Verdict::kConsumed);
  REQUIRE(r.result.has_hint);
  CHECK(r.result.hint.port == kPortId);
  CHECK(r.result.hint.mac.toString() == "02:aa:bb:cc:dd:ee");
  CHECK(r.result.hint.ip.toString() == "192.0.2.1");
  CHECK(c.get(WorkerEvent::neighbor_updates) == 1);
  CHECK(c.get(WorkerEvent::arp_replies) == 0);
  CHECK(outcomeTotal(c) == 1);
  CHECK(r.out == reply);  // consumed packets are not rewritten
}

TEST_CASE("Malformed ARP packets are dropped as malformed", "[ingress][arp]") {
  SECTION("truncated ARP body") {
    Bytes f = arpRequestFor(kOurIp4);
    f.resize(14 + 20);
    checkDroppedFor(f, DropReason::malformed);
  }
  SECTION("hardware length other than 6") {
    Bytes f = arpRequestFor(kOurIp4);
    f[14 + 4] = 8;
    checkDroppedFor(f, DropReason::malformed);
  }
  SECTION("multicast sender hardware address") {
    const Bytes mcast = {0x01, 0x00, 0x5e, 0x00, 0x00, 0x01};
    checkDroppedFor(
        ethernet(kBroadcastMac, kPeerMac, kEtherArp, arp(1, mcast, kPeerIp4, kZeroMac, kOurIp4)),
        DropReason::malformed);
  }
  SECTION("unknown opcode") {
    checkDroppedFor(
        ethernet(kBroadcastMac, kPeerMac, kEtherArp, arp(3, kPeerMac, kPeerIp4, kZeroMac, kOurIp4)),
        DropReason::malformed);
  }
}

// ============================== Several addresses ==============================

// ourInterface() plus 192.0.2.3 on the same prefix, 198.51.100.7/24 on another, and
// 2001:db8::3.
rtpx::InterfaceAddrs severalAddresses() {
  rtpx::InterfaceAddrs ifc = ourInterface();
  ifc.extra_ipv4 = {*rtpx::IpPrefix::parse("192.0.2.3/24"),
                    *rtpx::IpPrefix::parse("198.51.100.7/24")};
  ifc.extra_ipv6 = {*rtpx::IpPrefix::parse("2001:db8::3/64")};
  ifc.gateway4 = rtpx::IpAddr::parse("192.0.2.1");
  return ifc;
}

TEST_CASE("With several addresses, ARP for each is answered from that address",
          "[ingress][arp][addresses]") {
  const rtpx::InterfaceAddrs ifc = severalAddresses();
  for (const Bytes& ours : {kOurIp4, Bytes{192, 0, 2, 3}, Bytes{198, 51, 100, 7}}) {
    rtpx::WorkerCounters c;
    Run r = ingress(arpRequestFor(ours), c, ifc);
    REQUIRE(r.result.verdict == Verdict::kTransmit);
    CHECK(r.out ==
          ethernet(kPeerMac, kOurMac, kEtherArp, arp(2, kOurMac, ours, kPeerMac, kPeerIp4)));
    CHECK(c.get(WorkerEvent::arp_replies) == 1);
  }
  checkDroppedFor(arpRequestFor(kOtherIp4), DropReason::arp_not_for_us, ifc);
  checkDroppedFor(arpRequestFor({198, 51, 100, 8}), DropReason::arp_not_for_us, ifc);
}

TEST_CASE("With several addresses, each answers ping and takes UDP; others are not ours",
          "[ingress][icmp][addresses]") {
  const rtpx::InterfaceAddrs ifc = severalAddresses();
  const Bytes second = {192, 0, 2, 3};
  rtpx::WorkerCounters c;
  Run r = ingress(pingFrame(kOurMac, second), c, ifc);
  REQUIRE(r.result.verdict == Verdict::kTransmit);
  CHECK(slice(r.out, 26, 4) == second);  // the reply comes from the address pinged
  CHECK(slice(r.out, 30, 4) == kPeerIp4);
  CHECK(c.get(WorkerEvent::icmp_echo_replies) == 1);
  CHECK(ifc.ownsV4(rtpx::IpAddr::parse("198.51.100.7")->v4be()));
  CHECK_FALSE(ifc.ownsV4(rtpx::IpAddr::parse("198.51.100.8")->v4be()));
  checkDroppedFor(pingFrame(kOurMac, kOtherIp4), DropReason::ip_not_for_us, ifc);
  // Media to the other prefix's address reaches the relay (no relay here: no flow).
  rtpx::WorkerCounters u;
  CHECK(ingress(udpFrame({198, 51, 100, 7}), u, ifc).result.reason != DropReason::ip_not_for_us);
  CHECK(u.get(DropReason::ip_not_for_us) == 0);
}

TEST_CASE("With several addresses, next hops and our requests follow the address prefixes",
          "[ingress][arp][addresses]") {
  const rtpx::InterfaceAddrs ifc = severalAddresses();
  CHECK(ifc.nextHop(*rtpx::IpAddr::parse("198.51.100.50"))->toString() == "198.51.100.50");
  CHECK(ifc.nextHop(*rtpx::IpAddr::parse("192.0.2.77"))->toString() == "192.0.2.77");
  CHECK(ifc.nextHop(*rtpx::IpAddr::parse("203.0.113.1"))->toString() == "192.0.2.1");
  // Who-has 198.51.100.50 tells 198.51.100.7: our address on that prefix.
  MbufPtr m = allocMbuf();
  REQUIRE(rte_pktmbuf_append(m.get(), 64) != nullptr);
  REQUIRE(rtpx::buildArpRequest(m.get(), ifc, *rtpx::IpAddr::parse("198.51.100.50")));
  CHECK(slice(frameOf(m.get()), 28, 4) == Bytes({198, 51, 100, 7}));
  REQUIRE(rtpx::buildArpRequest(m.get(), ifc, *rtpx::IpAddr::parse("192.0.2.1")));
  CHECK(slice(frameOf(m.get()), 28, 4) == kOurIp4);
}

TEST_CASE("With several IPv6 addresses, ND for each is answered", "[ingress][nd][addresses]") {
  const rtpx::InterfaceAddrs ifc = severalAddresses();
  const Bytes second = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x03};
  const Bytes sn_second = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff, 0x00, 0x00, 0x03};
  const Bytes mac_sn_second = {0x33, 0x33, 0xff, 0x00, 0x00, 0x03};
  rtpx::WorkerCounters c;
  Run r = ingress(
      nsFrame(kPeerMac, mac_sn_second, kPeerIp6, sn_second, 255, second, llaOption(1, kPeerMac)), c,
      ifc);
  REQUIRE(r.result.verdict == Verdict::kTransmit);
  CHECK(r.out ==
        naFrame(kOurMac, kPeerMac, second, kPeerIp6, 0x60000000, second, llaOption(2, kOurMac)));
  CHECK(c.get(WorkerEvent::nd_advertisements) == 1);
  rtpx::WorkerCounters e;
  Run pr = ingress(ping6Frame(second), e, ifc);
  CHECK(pr.result.verdict == Verdict::kTransmit);
  CHECK(e.get(WorkerEvent::icmp6_echo_replies) == 1);
}

// ============================== IPv4 / ICMP ==============================

TEST_CASE("ICMP echo request is answered with an exact echo reply", "[ingress][icmp]") {
  Ipv4Opts o;
  o.tos = 0xb8;  // EF: kept in the reply
  o.id = 0x5a5a;
  o.ttl = 3;
  const Bytes data = text("odd-length echo data: 0123456789abcdef!");  // 39 bytes
  REQUIRE(data.size() % 2 == 1);
  const Bytes request = pingFrame(kOurMac, kOurIp4, data, o);

  rtpx::WorkerCounters c;
  Run r = ingress(request, c);
  REQUIRE(r.result.verdict == Verdict::kTransmit);
  CHECK_FALSE(r.result.has_hint);
  CHECK(c.get(WorkerEvent::icmp_echo_replies) == 1);
  CHECK(outcomeTotal(c) == 1);

  const Bytes& out = r.out;
  REQUIRE(out.size() == 14 + 20 + 8 + data.size());
  CHECK(slice(out, 0, 6) == kPeerMac);  // back to the requester
  CHECK(slice(out, 6, 6) == kOurMac);
  CHECK(get16(out, 12) == kEtherIpv4);
  // IPv4 header: swapped addresses, TTL 64, everything else as in the request.
  CHECK(out[14] == 0x45);
  CHECK(out[15] == 0xb8);
  CHECK(get16(out, 16) == 20 + 8 + data.size());
  CHECK(get16(out, 18) == 0x5a5a);
  CHECK(out[22] == 64);
  CHECK(out[23] == kProtoIcmp);
  CHECK(slice(out, 26, 4) == kOurIp4);
  CHECK(slice(out, 30, 4) == kPeerIp4);
  CHECK(internetChecksum(slice(out, 14, 20)) == 0);
  // ICMP: type 0, same identifier, sequence and data, valid checksum.
  CHECK(out[34] == 0);
  CHECK(out[35] == 0);
  CHECK(get16(out, 38) == 0xbeef);
  CHECK(get16(out, 40) == 0x0007);
  CHECK(slice(out, 42, data.size()) == data);
  CHECK(internetChecksum(slice(out, 34, 8 + data.size())) == 0);

  Ipv4Opts ro = o;
  ro.ttl = 64;
  const Bytes expected =
      ethernet(kPeerMac, kOurMac, kEtherIpv4,
               ipv4(kOurIp4, kPeerIp4, kProtoIcmp, icmpEcho(0, 0xbeef, 0x0007, data), ro));
  CHECK(out == expected);
}

TEST_CASE("ICMP echo in a frame padded to 60 bytes is answered with the IP length",
          "[ingress][icmp]") {
  const Bytes data = {0xde, 0xad, 0xbe, 0xef};
  const Bytes unpadded = pingFrame(kOurMac, kOurIp4, data);
  REQUIRE(unpadded.size() == 14 + 20 + 8 + 4);
  // Non-zero padding: summing it into the ICMP checksum, or echoing it, would be visible.
  const Bytes request = padTo(unpadded, 60, 0xa5);

  rtpx::WorkerCounters c;
  Run r = ingress(request, c);
  REQUIRE(r.result.verdict == Verdict::kTransmit);
  CHECK(r.out.size() == 46);
  CHECK(get16(r.out, 16) == 32);
  CHECK(internetChecksum(slice(r.out, 14, 20)) == 0);
  CHECK(internetChecksum(slice(r.out, 34, 12)) == 0);
  Ipv4Opts ro;
  ro.ttl = 64;
  CHECK(r.out == ethernet(kPeerMac, kOurMac, kEtherIpv4,
                          ipv4(kOurIp4, kPeerIp4, kProtoIcmp, icmpEcho(0, 0xbeef, 7, data), ro)));
  CHECK(c.get(WorkerEvent::icmp_echo_replies) == 1);
}

TEST_CASE("ICMP echo sent to the Ethernet broadcast address is still answered unicast",
          "[ingress][icmp]") {
  rtpx::WorkerCounters c;
  Run r = ingress(pingFrame(kBroadcastMac, kOurIp4), c);
  REQUIRE(r.result.verdict == Verdict::kTransmit);
  CHECK(slice(r.out, 0, 6) == kPeerMac);
  CHECK(slice(r.out, 6, 6) == kOurMac);
  CHECK(c.get(WorkerEvent::icmp_echo_replies) == 1);
}

TEST_CASE("ICMP echo with a bad ICMP checksum is dropped as l4_bad_checksum", "[ingress][icmp]") {
  checkDroppedFor(pingFrame(kOurMac, kOurIp4, kPingData, {}, /*corrupt_icmp=*/true),
                  DropReason::l4_bad_checksum);
}

TEST_CASE("IPv4 with a bad header checksum is dropped as ip_bad_checksum", "[ingress][ipv4]") {
  Ipv4Opts o;
  o.corrupt_checksum = true;
  checkDroppedFor(pingFrame(kOurMac, kOurIp4, kPingData, o), DropReason::ip_bad_checksum);
}

TEST_CASE("Truncated frames are dropped as malformed", "[ingress][malformed]") {
  SECTION("shorter than an Ethernet header") {
    const Bytes f = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x02, 0xaa, 0xbb, 0xcc};
    checkDroppedFor(f, DropReason::malformed);
  }
  SECTION("empty frame") {
    checkDroppedFor(Bytes{}, DropReason::malformed);
  }
  SECTION("IPv4 ethertype but shorter than an IPv4 header") {
    Bytes f = pingFrame(kOurMac, kOurIp4);
    f.resize(14 + 19);
    checkDroppedFor(f, DropReason::malformed);
  }
  SECTION("IPv4 total length larger than the frame") {
    Ipv4Opts o;
    o.total_length = 20 + 8 + static_cast<uint16_t>(kPingData.size()) + 1;
    checkDroppedFor(pingFrame(kOurMac, kOurIp4, kPingData, o), DropReason::malformed);
  }
  SECTION("IPv4 total length shorter than the header") {
    Ipv4Opts o;
    o.total_length = 19;
    checkDroppedFor(pingFrame(kOurMac, kOurIp4, kPingData, o), DropReason::malformed);
  }
  SECTION("IPv4 header length below 5 words") {
    Bytes f = pingFrame(kOurMac, kOurIp4);
    f[14] = 0x44;
    checkDroppedFor(f, DropReason::malformed);
  }
  SECTION("IP version 6 in an IPv4 ethertype") {
    Bytes f = pingFrame(kOurMac, kOurIp4);
    f[14] = 0x65;
    checkDroppedFor(f, DropReason::malformed);
  }
  SECTION("IPv6 ethertype but shorter than an IPv6 header") {
    Bytes f = ping6Frame(kOurIp6);
    f.resize(14 + 39);
    checkDroppedFor(f, DropReason::malformed);
  }
  SECTION("IPv6 payload length larger than the frame") {
    Bytes f = ping6Frame(kOurIp6);
    f.pop_back();
    checkDroppedFor(f, DropReason::malformed);
  }
  SECTION("UDP length larger than the IP payload") {
    Bytes f = udpFrame(kOurIp4);
    // UDP length field at 14 + 20 + 4; claim one byte more than there is.
    const uint16_t ulen = static_cast<uint16_t>(get16(f, 38) + 1);
    f[38] = static_cast<uint8_t>(ulen >> 8);
    f[39] = static_cast<uint8_t>(ulen);
    checkDroppedFor(f, DropReason::malformed);
  }
}

TEST_CASE("IPv4 fragments are dropped as ip_fragment", "[ingress][ipv4]") {
  Ipv4Opts o;
  SECTION("first fragment (MF set)") {
    o.frag = 0x2000;
  }
  SECTION("later fragment (offset set)") {
    o.frag = 0x0010;
  }
  SECTION("fragment at offset 8 bytes, DF clear") {
    o.frag = 0x0001;
  }
  checkDroppedFor(pingFrame(kOurMac, kOurIp4, kPingData, o), DropReason::ip_fragment);
}

TEST_CASE("IPv4 with options is dropped as ip_options", "[ingress][ipv4]") {
  Ipv4Opts o;
  o.options = {0x01, 0x01, 0x01, 0x00};  // NOP NOP NOP EOL: IHL 6
  const Bytes f = pingFrame(kOurMac, kOurIp4, kPingData, o);
  REQUIRE(f[14] == 0x46);
  checkDroppedFor(f, DropReason::ip_options);
}

TEST_CASE("UDP to our address with no session is dropped as unknown_udp_port", "[ingress][udp]") {
  checkDroppedFor(udpFrame(kOurIp4), DropReason::unknown_udp_port);
}

TEST_CASE("IPv4 to an address we do not own is dropped as ip_not_for_us", "[ingress][ipv4]") {
  checkDroppedFor(pingFrame(kOurMac, kOtherIp4), DropReason::ip_not_for_us);
  checkDroppedFor(udpFrame(kOtherIp4), DropReason::ip_not_for_us);
}

TEST_CASE("IPv4 on an interface without IPv4 is dropped as ip_not_for_us", "[ingress][ipv4]") {
  rtpx::InterfaceAddrs ifc = ourInterface();
  ifc.ipv4.reset();
  checkDroppedFor(pingFrame(kOurMac, kOurIp4), DropReason::ip_not_for_us, ifc);
}

TEST_CASE("IPv4 protocols and ICMP types we do not handle are dropped as unsupported_l4",
          "[ingress][ipv4]") {
  SECTION("TCP") {
    Bytes tcp(20, 0);
    checkDroppedFor(ethernet(kOurMac, kPeerMac, kEtherIpv4, ipv4(kPeerIp4, kOurIp4, 6, tcp)),
                    DropReason::unsupported_l4);
  }
  SECTION("ICMP timestamp request") {
    checkDroppedFor(ethernet(kOurMac, kPeerMac, kEtherIpv4,
                             ipv4(kPeerIp4, kOurIp4, kProtoIcmp, icmpEcho(13, 1, 1, Bytes(12, 0)))),
                    DropReason::unsupported_l4);
  }
  SECTION("ICMP echo reply") {
    checkDroppedFor(ethernet(kOurMac, kPeerMac, kEtherIpv4,
                             ipv4(kPeerIp4, kOurIp4, kProtoIcmp, icmpEcho(0, 1, 1, kPingData))),
                    DropReason::unsupported_l4);
  }
}

// ============================== L2 ==============================

TEST_CASE("Unknown ethertype is dropped as unknown_ethertype", "[ingress][l2]") {
  // LLDP (0x88cc) to the nearest-bridge group address 01:80:c2:00:00:0e.
  const Bytes lldp = {
      0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e, 0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee,
      0x88, 0xcc, 0x02, 0x07, 0x04, 0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee,  // chassis id TLV
      0x00, 0x00,                                                        // end TLV
  };
  checkDroppedFor(padTo(lldp, 60, 0), DropReason::unknown_ethertype);
}

TEST_CASE("Unicast frame to another MAC is dropped as l2_not_for_us", "[ingress][l2]") {
  checkDroppedFor(pingFrame(kOtherMac, kOurIp4), DropReason::l2_not_for_us);
  checkDroppedFor(
      ethernet(kOtherMac, kPeerMac, kEtherArp, arp(1, kPeerMac, kPeerIp4, kZeroMac, kOurIp4)),
      DropReason::l2_not_for_us);
}

// ============================== IPv6 / ND ==============================

TEST_CASE("Neighbor solicitation for our global address is answered with an exact NA",
          "[ingress][nd]") {
  const Bytes request = nsForOurGlobal();
  rtpx::WorkerCounters c;
  Run r = ingress(request, c);
  REQUIRE(r.result.verdict == Verdict::kTransmit);
  CHECK(c.get(WorkerEvent::nd_advertisements) == 1);
  CHECK(outcomeTotal(c) == 1);

  const Bytes& out = r.out;
  REQUIRE(out.size() == 14 + 40 + 24 + 8);
  CHECK(slice(out, 0, 6) == kPeerMac);
  CHECK(slice(out, 6, 6) == kOurMac);
  CHECK(get16(out, 12) == kEtherIpv6);
  CHECK(get32(out, 14) >> 28 == 6);
  CHECK(get16(out, 18) == 32);    // payload length
  CHECK(out[20] == kProtoIcmp6);  // next header
  CHECK(out[21] == 255);          // hop limit
  CHECK(slice(out, 22, 16) == kOurIp6);
  CHECK(slice(out, 38, 16) == kPeerIp6);
  CHECK(out[54] == 136);
  CHECK(out[55] == 0);
  CHECK(get32(out, 58) == 0x60000000);   // R=0, S=1, O=1
  CHECK(slice(out, 62, 16) == kOurIp6);  // target
  CHECK(slice(out, 78, 8) == llaOption(2, kOurMac));
  CHECK(icmp6Checksum(kOurIp6, kPeerIp6, slice(out, 54, 32)) == 0);

  CHECK(out ==
        naFrame(kOurMac, kPeerMac, kOurIp6, kPeerIp6, 0x60000000, kOurIp6, llaOption(2, kOurMac)));

  REQUIRE(r.result.has_hint);
  CHECK(r.result.hint.port == kPortId);
  CHECK(r.result.hint.mac.toString() == "02:aa:bb:cc:dd:ee");
  CHECK(r.result.hint.ip.toString() == "2001:db8::1");
}

TEST_CASE(
    "Neighbor solicitation without a source link-layer option is answered to the "
    "Ethernet source and gives no hint",
    "[ingress][nd]") {
  const Bytes request = nsFrame(kPeerMac, kOurMac, kPeerIp6, kOurIp6, 255, kOurIp6, {});
  rtpx::WorkerCounters c;
  Run r = ingress(request, c);
  REQUIRE(r.result.verdict == Verdict::kTransmit);
  CHECK_FALSE(r.result.has_hint);
  CHECK(r.out ==
        naFrame(kOurMac, kPeerMac, kOurIp6, kPeerIp6, 0x60000000, kOurIp6, llaOption(2, kOurMac)));
  CHECK(c.get(WorkerEvent::nd_advertisements) == 1);
}

TEST_CASE("Neighbor solicitation with hop limit other than 255 is dropped as nd_invalid",
          "[ingress][nd]") {
  checkDroppedFor(nsForOurGlobal(64), DropReason::nd_invalid);
}

TEST_CASE("Invalid neighbor solicitations are dropped as nd_invalid", "[ingress][nd]") {
  SECTION("zero-length option") {
    checkDroppedFor(nsFrame(kPeerMac, kMacSnOurIp6, kPeerIp6, kSnOurIp6, 255, kOurIp6,
                            {1, 0, 0, 0, 0, 0, 0, 0}),
                    DropReason::nd_invalid);
  }
  SECTION("option running past the end") {
    checkDroppedFor(nsFrame(kPeerMac, kMacSnOurIp6, kPeerIp6, kSnOurIp6, 255, kOurIp6,
                            {1, 2, 0, 0, 0, 0, 0, 0}),
                    DropReason::nd_invalid);
  }
  SECTION("DAD probe carrying a source link-layer option") {
    checkDroppedFor(nsFrame(kPeerMac, kMacSnOurIp6, kUnspecified6, kSnOurIp6, 255, kOurIp6,
                            llaOption(1, kPeerMac)),
                    DropReason::nd_invalid);
  }
  SECTION("non-zero code") {
    const Bytes body = ndBody(0, kOurIp6, llaOption(1, kPeerMac));
    checkDroppedFor(ethernet(kMacSnOurIp6, kPeerMac, kEtherIpv6,
                             ipv6(kPeerIp6, kSnOurIp6, kProtoIcmp6, 255,
                                  icmp6(kPeerIp6, kSnOurIp6, 135, 1, body))),
                    DropReason::nd_invalid);
  }
  SECTION("multicast target") {
    checkDroppedFor(nsFrame(kPeerMac, kMacAllNodes, kPeerIp6, kAllNodes, 255, kAllNodes,
                            llaOption(1, kPeerMac)),
                    DropReason::nd_invalid);
  }
}

TEST_CASE("DAD neighbor solicitation is answered to all-nodes without the S flag and no hint",
          "[ingress][nd]") {
  // RFC 4862 §5.4.2: source ::, destination the target's solicited-node group, no SLLA option.
  const Bytes request = nsFrame(kPeerMac, kMacSnOurIp6, kUnspecified6, kSnOurIp6, 255, kOurIp6, {});
  rtpx::WorkerCounters c;
  Run r = ingress(request, c);
  REQUIRE(r.result.verdict == Verdict::kTransmit);
  CHECK_FALSE(r.result.has_hint);
  CHECK(c.get(WorkerEvent::nd_advertisements) == 1);
  CHECK(outcomeTotal(c) == 1);
  REQUIRE(r.out.size() == 86);
  CHECK(slice(r.out, 0, 6) == kMacAllNodes);
  CHECK(slice(r.out, 38, 16) == kAllNodes);
  CHECK(get32(r.out, 58) == 0x20000000);  // O only
  CHECK(icmp6Checksum(kOurIp6, kAllNodes, slice(r.out, 54, 32)) == 0);
  CHECK(r.out == naFrame(kOurMac, kMacAllNodes, kOurIp6, kAllNodes, 0x20000000, kOurIp6,
                         llaOption(2, kOurMac)));
}

TEST_CASE("Neighbor solicitation for our EUI-64 link-local address is answered", "[ingress][nd]") {
  const Bytes request = nsFrame(kPeerMac, kMacSnOurLinkLocal, kPeerLinkLocal, kSnOurLinkLocal, 255,
                                kOurLinkLocal, llaOption(1, kPeerMac));
  rtpx::WorkerCounters c;
  Run r = ingress(request, c);
  REQUIRE(r.result.verdict == Verdict::kTransmit);
  CHECK(r.out == naFrame(kOurMac, kPeerMac, kOurLinkLocal, kPeerLinkLocal, 0x60000000,
                         kOurLinkLocal, llaOption(2, kOurMac)));
  CHECK(icmp6Checksum(kOurLinkLocal, kPeerLinkLocal, slice(r.out, 54, 32)) == 0);
  REQUIRE(r.result.has_hint);
  CHECK(r.result.hint.ip.toString() == "fe80::aa");
  CHECK(r.result.hint.mac.toString() == "02:aa:bb:cc:dd:ee");
  CHECK(c.get(WorkerEvent::nd_advertisements) == 1);
}

TEST_CASE("Neighbor solicitation for a foreign target is dropped", "[ingress][nd]") {
  SECTION("sent to the foreign target's solicited-node group") {
    checkDroppedFor(nsFrame(kPeerMac, kMacSnOtherIp6, kPeerIp6, kSnOtherIp6, 255, kOtherIp6,
                            llaOption(1, kPeerMac)),
                    DropReason::ip_not_for_us);
  }
  SECTION("sent to our unicast address") {
    checkDroppedFor(
        nsFrame(kPeerMac, kOurMac, kPeerIp6, kOurIp6, 255, kOtherIp6, llaOption(1, kPeerMac)),
        DropReason::ip_not_for_us);
  }
}

TEST_CASE("ICMPv6 echo request is answered with an exact echo reply", "[ingress][icmp6]") {
  const Bytes data = text("v6 echo, odd length!!");  // 21 bytes
  REQUIRE(data.size() % 2 == 1);
  rtpx::WorkerCounters c;
  Run r = ingress(ping6Frame(kOurIp6, data), c);
  REQUIRE(r.result.verdict == Verdict::kTransmit);
  CHECK(c.get(WorkerEvent::icmp6_echo_replies) == 1);
  CHECK(outcomeTotal(c) == 1);
  const Bytes& out = r.out;
  REQUIRE(out.size() == 14 + 40 + 8 + data.size());
  CHECK(out[21] == 64);
  CHECK(slice(out, 22, 16) == kOurIp6);
  CHECK(slice(out, 38, 16) == kPeerIp6);
  CHECK(out[54] == 129);
  CHECK(get16(out, 58) == 0x4242);
  CHECK(get16(out, 60) == 0x0102);
  CHECK(slice(out, 62, data.size()) == data);
  CHECK(icmp6Checksum(kOurIp6, kPeerIp6, slice(out, 54, 8 + data.size())) == 0);
  CHECK(out == ethernet(kPeerMac, kOurMac, kEtherIpv6,
                        ipv6(kOurIp6, kPeerIp6, kProtoIcmp6, 64,
                             icmp6(kOurIp6, kPeerIp6, 129, 0, echoBody(0x4242, 0x0102, data)))));
}

TEST_CASE("ICMPv6 echo request to our link-local address is answered from it", "[ingress][icmp6]") {
  const Bytes body = echoBody(1, 2, {9, 8, 7, 6});
  const Bytes request = ethernet(kOurMac, kPeerMac, kEtherIpv6,
                                 ipv6(kPeerLinkLocal, kOurLinkLocal, kProtoIcmp6, 64,
                                      icmp6(kPeerLinkLocal, kOurLinkLocal, 128, 0, body)));
  rtpx::WorkerCounters c;
  Run r = ingress(padTo(request, 100, 0x77), c);
  REQUIRE(r.result.verdict == Verdict::kTransmit);
  CHECK(r.out == ethernet(kPeerMac, kOurMac, kEtherIpv6,
                          ipv6(kOurLinkLocal, kPeerLinkLocal, kProtoIcmp6, 64,
                               icmp6(kOurLinkLocal, kPeerLinkLocal, 129, 0, body))));
}

TEST_CASE("ICMPv6 with a bad checksum is dropped as l4_bad_checksum", "[ingress][icmp6]") {
  checkDroppedFor(ping6Frame(kOurIp6, kPingData, /*corrupt=*/true), DropReason::l4_bad_checksum);
}

TEST_CASE("ICMPv6 echo to all-nodes is not answered", "[ingress][icmp6]") {
  const Bytes body = echoBody(1, 1, {1, 2, 3, 4});
  checkDroppedFor(ethernet(kMacAllNodes, kPeerMac, kEtherIpv6,
                           ipv6(kPeerIp6, kAllNodes, kProtoIcmp6, 64,
                                icmp6(kPeerIp6, kAllNodes, 128, 0, body))),
                  DropReason::unsupported_l4);
}

TEST_CASE("IPv6 to a foreign address, UDP, fragments and extension headers get their verdicts",
          "[ingress][ipv6]") {
  SECTION("echo to a foreign unicast address") {
    checkDroppedFor(ping6Frame(kOtherIp6), DropReason::ip_not_for_us);
  }
  SECTION("UDP to our address") {
    checkDroppedFor(
        ethernet(kOurMac, kPeerMac, kEtherIpv6,
                 ipv6(kPeerIp6, kOurIp6, kProtoUdp, 64, udp(40000, 5004, text("rtp!")))),
        DropReason::unknown_udp_port);
  }
  SECTION("fragment header") {
    const Bytes frag = {kProtoUdp, 0, 0x00, 0x01, 0, 0, 0, 1};
    checkDroppedFor(ethernet(kOurMac, kPeerMac, kEtherIpv6, ipv6(kPeerIp6, kOurIp6, 44, 64, frag)),
                    DropReason::ip_fragment);
  }
  SECTION("hop-by-hop options header") {
    const Bytes hbh = {kProtoIcmp6, 0, 1, 4, 0, 0, 0, 0};  // PadN
    checkDroppedFor(ethernet(kOurMac, kPeerMac, kEtherIpv6, ipv6(kPeerIp6, kOurIp6, 0, 64, hbh)),
                    DropReason::ip_options);
  }
}

TEST_CASE("Neighbor advertisement with a target link-layer option is consumed with a hint",
          "[ingress][nd]") {
  const Bytes na =
      naFrame(kPeerMac, kOurMac, kPeerIp6, kOurIp6, 0x60000000, kPeerIp6, llaOption(2, kPeerMac));
  rtpx::WorkerCounters c;
  Run r = ingress(na, c);
  CHECK(r.result.verdict == Verdict::kConsumed);
  REQUIRE(r.result.has_hint);
  CHECK(r.result.hint.port == kPortId);
  CHECK(r.result.hint.ip.toString() == "2001:db8::1");
  CHECK(r.result.hint.mac.toString() == "02:aa:bb:cc:dd:ee");
  CHECK(c.get(WorkerEvent::neighbor_updates) == 1);
  CHECK(outcomeTotal(c) == 1);
  CHECK(r.out == na);
}

TEST_CASE("Neighbor advertisement with a multicast or zero link-layer address gives no hint",
          "[ingress][nd]") {
  for (const Bytes& bad_mac : {kBroadcastMac, kZeroMac}) {
    rtpx::WorkerCounters c;
    Run r = ingress(
        naFrame(kPeerMac, kOurMac, kPeerIp6, kOurIp6, 0x60000000, kPeerIp6, llaOption(2, bad_mac)),
        c);
    CHECK(r.result.verdict == Verdict::kDrop);
    CHECK_FALSE(r.result.has_hint);
  }
}

TEST_CASE("Neighbor advertisement without a target link-layer option is dropped as nd_invalid",
          "[ingress][nd]") {
  checkDroppedFor(naFrame(kPeerMac, kOurMac, kPeerIp6, kOurIp6, 0x60000000, kPeerIp6, {}),
                  DropReason::nd_invalid);
}

// ============================== Builders ==============================

TEST_CASE("buildArpRequest produces an exact who-has frame", "[ingress][builder]") {
  MbufPtr m = allocMbuf();
  // Garbage in the buffer first: the builder must write every byte it sends.
  char* p = rte_pktmbuf_append(m.get(), 128);
  REQUIRE(p != nullptr);
  std::memset(p, 0xee, 128);

  const rtpx::InterfaceAddrs ifc = ourInterface();
  REQUIRE(rtpx::buildArpRequest(m.get(), ifc, *rtpx::IpAddr::parse("192.0.2.1")));
  const Bytes expected = {
      0xff, 0xff, 0xff, 0xff, 0xff, 0xff,  // broadcast
      0x52, 0x54, 0x00, 0x12, 0x34, 0x56,  // our MAC
      0x08, 0x06,                          // ARP
      0x00, 0x01, 0x08, 0x00, 0x06, 0x04,  // Ethernet / IPv4
      0x00, 0x01,                          // request
      0x52, 0x54, 0x00, 0x12, 0x34, 0x56,  // sha
      192,  0,    2,    2,                 // spa
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // tha: unknown
      192,  0,    2,    1,                 // tpa
  };
  CHECK(frameOf(m.get()) == expected);

  SECTION("the peer answers it") {
    // Seen from the peer (MAC 02:aa:..., 192.0.2.1), our request is a request for its address.
    rtpx::InterfaceAddrs peer;
    peer.port_id = 0;
    std::memcpy(peer.mac.bytes.data(), kPeerMac.data(), 6);
    peer.ipv4 = rtpx::IpPrefix::parse("192.0.2.1/24");
    peer.ipv6_link_local = *rtpx::IpAddr::parse("fe80::aa");
    rtpx::WorkerCounters c;
    const rtpx::IngressResult r = rtpx::handleIngress(m.get(), peer, c);
    CHECK(r.verdict == Verdict::kTransmit);
    CHECK(r.hint.ip.toString() == "192.0.2.2");
    CHECK(r.hint.mac.toString() == "52:54:00:12:34:56");
    CHECK(c.get(WorkerEvent::arp_replies) == 1);
  }
}

TEST_CASE("buildArpRequest refuses IPv6 targets and interfaces without IPv4",
          "[ingress][builder]") {
  MbufPtr m = allocMbuf();
  rtpx::InterfaceAddrs ifc = ourInterface();
  CHECK_FALSE(rtpx::buildArpRequest(m.get(), ifc, *rtpx::IpAddr::parse("2001:db8::1")));
  ifc.ipv4.reset();
  CHECK_FALSE(rtpx::buildArpRequest(m.get(), ifc, *rtpx::IpAddr::parse("192.0.2.1")));
  CHECK(m->data_len == 0);
  CHECK_FALSE(
      rtpx::buildNeighborSolicitation(m.get(), ourInterface(), *rtpx::IpAddr::parse("192.0.2.1")));
  CHECK(m->data_len == 0);
}

TEST_CASE("buildNeighborSolicitation produces a valid NS to the solicited-node group",
          "[ingress][builder]") {
  MbufPtr m = allocMbuf();
  char* p = rte_pktmbuf_append(m.get(), 128);
  REQUIRE(p != nullptr);
  std::memset(p, 0xee, 128);
  const rtpx::InterfaceAddrs ifc = ourInterface();

  SECTION("on-link global target: sourced from the global address") {
    REQUIRE(rtpx::buildNeighborSolicitation(m.get(), ifc, *rtpx::IpAddr::parse("2001:db8::1")));
    const Bytes out = frameOf(m.get());
    REQUIRE(out.size() == 86);
    CHECK(slice(out, 0, 6) == kMacSnPeerIp6);
    CHECK(slice(out, 6, 6) == kOurMac);
    CHECK(get16(out, 12) == kEtherIpv6);
    CHECK(get32(out, 14) == 0x60000000);
    CHECK(get16(out, 18) == 32);
    CHECK(out[20] == kProtoIcmp6);
    CHECK(out[21] == 255);
    CHECK(slice(out, 22, 16) == kOurIp6);
    CHECK(slice(out, 38, 16) == kSnPeerIp6);
    CHECK(out[54] == 135);
    CHECK(out[55] == 0);
    CHECK(get32(out, 58) == 0);
    CHECK(slice(out, 62, 16) == kPeerIp6);
    CHECK(slice(out, 78, 8) == llaOption(1, kOurMac));
    CHECK(icmp6Checksum(kOurIp6, kSnPeerIp6, slice(out, 54, 32)) == 0);
    CHECK(out == nsFrame(kOurMac, kMacSnPeerIp6, kOurIp6, kSnPeerIp6, 255, kPeerIp6,
                         llaOption(1, kOurMac)));

    // The peer (2001:db8::1 on 02:aa:...) answers it, and learns our MAC.
    rtpx::InterfaceAddrs peer;
    std::memcpy(peer.mac.bytes.data(), kPeerMac.data(), 6);
    peer.ipv6 = rtpx::IpPrefix::parse("2001:db8::1/64");
    peer.ipv6_link_local = *rtpx::IpAddr::parse("fe80::aa");
    rtpx::WorkerCounters c;
    const rtpx::IngressResult r = rtpx::handleIngress(m.get(), peer, c);
    CHECK(r.verdict == Verdict::kTransmit);
    REQUIRE(r.has_hint);
    CHECK(r.hint.ip.toString() == "2001:db8::2");
    CHECK(r.hint.mac.toString() == "52:54:00:12:34:56");
    CHECK(frameOf(m.get()) == naFrame(kPeerMac, kOurMac, kPeerIp6, kOurIp6, 0x60000000, kPeerIp6,
                                      llaOption(2, kPeerMac)));
  }
  SECTION("off-prefix target: sourced from the link-local address") {
    const Bytes target = kPeerLinkLocal;  // fe80::aa
    const Bytes sn = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff, 0x00, 0x00, 0xaa};
    REQUIRE(rtpx::buildNeighborSolicitation(m.get(), ifc, *rtpx::IpAddr::parse("fe80::aa")));
    const Bytes out = frameOf(m.get());
    CHECK(out == nsFrame(kOurMac, {0x33, 0x33, 0xff, 0x00, 0x00, 0xaa}, kOurLinkLocal, sn, 255,
                         target, llaOption(1, kOurMac)));
    CHECK(icmp6Checksum(kOurLinkLocal, sn, slice(out, 54, 32)) == 0);
  }
}

// ============================== Accounting ==============================

TEST_CASE("Every ingress packet ends in exactly one reply, consumption or drop counter",
          "[ingress][counters]") {
  Ipv4Opts frag;
  frag.frag = 0x2000;
  Ipv4Opts opts;
  opts.options = {1, 1, 1, 0};
  Ipv4Opts badsum;
  badsum.corrupt_checksum = true;
  Bytes short_ip = pingFrame(kOurMac, kOurIp4);
  short_ip.resize(30);

  const std::vector<Bytes> batch = {
      arpRequestFor(kOurIp4),
      arpRequestFor(kOtherIp4),
      ethernet(kOurMac, kPeerMac, kEtherArp, arp(2, kPeerMac, kPeerIp4, kOurMac, kOurIp4)),
      pingFrame(kOurMac, kOurIp4),
      padTo(pingFrame(kOurMac, kOurIp4, {1, 2}), 60, 0xff),
      pingFrame(kOurMac, kOurIp4, kPingData, {}, true),
      pingFrame(kOurMac, kOurIp4, kPingData, badsum),
      pingFrame(kOurMac, kOurIp4, kPingData, frag),
      pingFrame(kOurMac, kOurIp4, kPingData, opts),
      pingFrame(kOurMac, kOtherIp4),
      pingFrame(kOtherMac, kOurIp4),
      udpFrame(kOurIp4),
      short_ip,
      Bytes{1, 2, 3},
      ethernet(kBroadcastMac, kPeerMac, 0x88cc, Bytes(46, 0)),
      nsForOurGlobal(),
      nsForOurGlobal(64),
      nsFrame(kPeerMac, kMacSnOurIp6, kUnspecified6, kSnOurIp6, 255, kOurIp6, {}),
      nsFrame(kPeerMac, kMacSnOtherIp6, kPeerIp6, kSnOtherIp6, 255, kOtherIp6,
              llaOption(1, kPeerMac)),
      ping6Frame(kOurIp6),
      ping6Frame(kOurIp6, kPingData, true),
      naFrame(kPeerMac, kOurMac, kPeerIp6, kOurIp6, 0x60000000, kPeerIp6, llaOption(2, kPeerMac)),
  };

  rtpx::WorkerCounters c;
  const rtpx::InterfaceAddrs ifc = ourInterface();
  uint64_t calls = 0, transmitted = 0, consumed = 0, dropped = 0;
  // Twice over, so counters are checked beyond 0 → 1.
  for (int round = 0; round < 2; ++round) {
    for (size_t i = 0; i < batch.size(); ++i) {
      INFO("round " << round << ", frame " << i);
      MbufPtr m = makeMbuf(batch[i]);
      const uint64_t before = outcomeTotal(c);
      const rtpx::IngressResult r = rtpx::handleIngress(m.get(), ifc, c);
      ++calls;
      CHECK(outcomeTotal(c) == before + 1);
      switch (r.verdict) {
        case Verdict::kTransmit:
          ++transmitted;
          break;
        case Verdict::kConsumed:
          ++consumed;
          break;
        case Verdict::kDrop:
          ++dropped;
          break;
        case Verdict::kHandoff:
          FAIL("hand-off without a relay context");
          break;
      }
    }
  }

  CHECK(calls == 2 * batch.size());
  CHECK(outcomeTotal(c) == calls);
  CHECK(replyTotal(c) == transmitted);
  CHECK(c.get(WorkerEvent::neighbor_updates) == consumed);
  CHECK(dropTotal(c) == dropped);
  // Per batch: ARP reply, 2 echo replies, NS answered, DAD answered, ICMPv6 echo.
  CHECK(transmitted == 2 * 6);
  CHECK(consumed == 2 * 2);
  CHECK(dropped == 2 * 14);
  CHECK(c.get(WorkerEvent::arp_replies) == 2);
  CHECK(c.get(WorkerEvent::icmp_echo_replies) == 4);
  CHECK(c.get(WorkerEvent::nd_advertisements) == 4);
  CHECK(c.get(WorkerEvent::icmp6_echo_replies) == 2);
  CHECK(c.get(DropReason::malformed) == 4);
  CHECK(c.get(DropReason::l4_bad_checksum) == 4);
  // The caller, not handleIngress, counts rx/tx.
  CHECK(c.get(WorkerEvent::rx_packets) == 0);
  CHECK(c.get(WorkerEvent::rx_bytes) == 0);
  CHECK(c.get(WorkerEvent::tx_packets) == 0);
  CHECK(c.get(WorkerEvent::tx_bytes) == 0);
}

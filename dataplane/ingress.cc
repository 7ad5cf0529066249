#include "dataplane/ingress.h"

#include <rte_arp.h>
#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_udp.h>

#include <algorithm>
#include <cstring>

#include "dataplane/checksum.h"

namespace rtpx {

bool InterfaceAddrs::ownsV6Unicast(const uint8_t* a) const noexcept {
  if (ipv6 && std::memcmp(a, ipv6->addr.bytes.data(), 16) == 0) return true;
  if (std::memcmp(a, ipv6_link_local.bytes.data(), 16) == 0) return true;
  for (const IpPrefix& p : extra_ipv6)
    if (std::memcmp(a, p.addr.bytes.data(), 16) == 0) return true;
  return false;
}

bool InterfaceAddrs::acceptsV6Dest(const uint8_t* a) const noexcept {
  if (ownsV6Unicast(a)) return true;
  static constexpr uint8_t kAllNodes[16] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  if (std::memcmp(a, kAllNodes, 16) == 0) return true;
  // Solicited-node group ff02::1:ffXX:XXXX of either unicast address.
  static constexpr uint8_t kSnPrefix[13] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff};
  if (std::memcmp(a, kSnPrefix, 13) != 0) return false;
  if (ipv6 && std::memcmp(a + 13, ipv6->addr.bytes.data() + 13, 3) == 0) return true;
  if (std::memcmp(a + 13, ipv6_link_local.bytes.data() + 13, 3) == 0) return true;
  for (const IpPrefix& p : extra_ipv6)
    if (std::memcmp(a + 13, p.addr.bytes.data() + 13, 3) == 0) return true;
  return false;
}

namespace {

constexpr uint8_t kIcmp6EchoRequest = 128;
constexpr uint8_t kIcmp6EchoReply = 129;
constexpr uint8_t kIcmp6NeighborSolicit = 135;
constexpr uint8_t kIcmp6NeighborAdvert = 136;
constexpr uint8_t kNdOptSourceLla = 1;
constexpr uint8_t kNdOptTargetLla = 2;
constexpr uint8_t kProtoIcmp6 = 58;

// RFC 4861 §4.3 / §4.4: type, code, checksum, 4 bytes (reserved / flags), target address.
struct NdHeader {
  uint8_t type;
  uint8_t code;
  rte_be16_t cksum;
  rte_be32_t flags;
  uint8_t target[16];
  // options follow
} __attribute__((packed));
static_assert(sizeof(NdHeader) == 24);

constexpr size_t kEthLen = sizeof(rte_ether_hdr);
constexpr size_t kV6Len = sizeof(rte_ipv6_hdr);

// RFC 768 / RFC 8200 §8.1: the Internet checksum over the pseudo-header (source and
// destination addresses, protocol, length) and the L4 message is all ones when it is right.
// `addrs` points at the source address, which the destination follows in both IP headers.
bool l4ChecksumOk(const void* addrs, size_t addrs_len, uint8_t proto, const void* l4,
                  uint16_t len) noexcept {
  uint64_t sum = cksumAdd(addrs, addrs_len);
  sum += rte_cpu_to_be_16(proto) + rte_cpu_to_be_16(len);
  return cksumFold(cksumAdd(l4, len, sum)) == 0xffff;
}

// The relay writes a fresh UDP checksum on the way out, so a datagram corrupted on its way in
// must be caught here or it would leave with a valid checksum. The port's verdict is used when
// it gives one, else the checksum is verified in software. IPv4 may say "no checksum" with 0
// (RFC 768); IPv6 may not (RFC 8200 §8.1).
bool udpChecksumOk(const rte_mbuf* m, const void* addrs, size_t addrs_len,
                   const rte_udp_hdr* udp) noexcept {
  const uint64_t ol = m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK;
  if (ol == RTE_MBUF_F_RX_L4_CKSUM_GOOD) return true;
  if (ol == RTE_MBUF_F_RX_L4_CKSUM_BAD) return false;
  if (udp->dgram_cksum == 0) return addrs_len == 8;
  return m->nb_segs == 1 &&
         l4ChecksumOk(addrs, addrs_len, IPPROTO_UDP, udp, rte_be_to_cpu_16(udp->dgram_len));
}

IngressResult drop(WorkerCounters& c, DropReason r) noexcept {
  c.drop(r);
  IngressResult res;
  res.verdict = Verdict::kDrop;
  res.reason = r;
  return res;
}

IngressResult transmit(WorkerCounters& c, WorkerEvent e) noexcept {
  c.count(e);
  IngressResult res;
  res.verdict = Verdict::kTransmit;
  return res;
}

void setLength(rte_mbuf* m, uint32_t len) noexcept {
  m->data_len = static_cast<uint16_t>(len);
  m->pkt_len = len;
}

void swapMacsToReply(rte_ether_hdr* eth, const InterfaceAddrs& ifc) noexcept {
  rte_ether_addr_copy(&eth->src_addr, &eth->dst_addr);
  std::memcpy(eth->src_addr.addr_bytes, ifc.mac.bytes.data(), 6);
}

// ---- ARP (RFC 826) ----
IngressResult handleArp(rte_mbuf* m, rte_ether_hdr* eth, uint32_t len, const InterfaceAddrs& ifc,
                        WorkerCounters& c) noexcept {
  if (len < kEthLen + sizeof(rte_arp_hdr)) return drop(c, DropReason::malformed);
  auto* arp = reinterpret_cast<rte_arp_hdr*>(eth + 1);
  if (arp->arp_hardware != RTE_BE16(RTE_ARP_HRD_ETHER) ||
      arp->arp_protocol != RTE_BE16(RTE_ETHER_TYPE_IPV4) || arp->arp_hlen != 6 ||
      arp->arp_plen != 4)
    return drop(c, DropReason::malformed);
  if (!ifc.ownsV4(arp->arp_data.arp_tip)) return drop(c, DropReason::arp_not_for_us);

  IngressResult r;
  r.has_hint = true;
  r.hint.port = ifc.port_id;
  r.hint.ip = IpAddr::v4(arp->arp_data.arp_sip);
  std::memcpy(r.hint.mac.bytes.data(), arp->arp_data.arp_sha.addr_bytes, 6);
  if (r.hint.mac.isMulticast() || r.hint.mac.isZero()) return drop(c, DropReason::malformed);

  if (arp->arp_opcode == RTE_BE16(RTE_ARP_OP_REQUEST)) {
    const uint32_t asked = arp->arp_data.arp_tip;  // one of our addresses (checked above)
    arp->arp_opcode = RTE_BE16(RTE_ARP_OP_REPLY);
    arp->arp_data.arp_tha = arp->arp_data.arp_sha;
    arp->arp_data.arp_tip = arp->arp_data.arp_sip;
    std::memcpy(arp->arp_data.arp_sha.addr_bytes, ifc.mac.bytes.data(), 6);
    arp->arp_data.arp_sip = asked;
    swapMacsToReply(eth, ifc);
    setLength(m, kEthLen + sizeof(rte_arp_hdr));
    c.count(WorkerEvent::arp_replies);
    r.verdict = Verdict::kTransmit;
    return r;
  }
  if (arp->arp_opcode == RTE_BE16(RTE_ARP_OP_REPLY)) {
    c.count(WorkerEvent::neighbor_updates);
    r.verdict = Verdict::kConsumed;
    return r;
  }
  return drop(c, DropReason::malformed);
}

// ---- IPv4 ----
IngressResult handleIpv4(rte_mbuf* m, rte_ether_hdr* eth, uint32_t len, const InterfaceAddrs& ifc,
                         WorkerCounters& c, const RelayContext* relay, bool* to_relay) noexcept {
  if (len < kEthLen + sizeof(rte_ipv4_hdr)) return drop(c, DropReason::malformed);
  auto* ip = reinterpret_cast<rte_ipv4_hdr*>(eth + 1);
  const uint32_t ihl = (ip->version_ihl & 0x0f) * 4u;
  const uint32_t total = rte_be_to_cpu_16(ip->total_length);
  // RFC 791 §3.1: version 4, IHL ≥ 5 words, total length covers the header and fits the frame
  // (frames may carry Ethernet padding past it).
  if ((ip->version_ihl >> 4) != 4 || ihl < 20 || total < ihl || kEthLen + total > len)
    return drop(c, DropReason::malformed);

  const uint64_t ol = m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK;
  if (ol == RTE_MBUF_F_RX_IP_CKSUM_BAD) return drop(c, DropReason::ip_bad_checksum);
  if (ol != RTE_MBUF_F_RX_IP_CKSUM_GOOD && cksumFold(cksumAdd(ip, ihl)) != 0xffff)
    return drop(c, DropReason::ip_bad_checksum);
  if (!ifc.ownsV4(ip->dst_addr)) return drop(c, DropReason::ip_not_for_us);
  if ((ip->fragment_offset & RTE_BE16(RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK)) != 0)
    return drop(c, DropReason::ip_fragment);
  if (ihl != 20) return drop(c, DropReason::ip_options);

  const uint32_t l4len = total - ihl;
  if (ip->next_proto_id == IPPROTO_UDP) {
    if (l4len < sizeof(rte_udp_hdr)) return drop(c, DropReason::malformed);
    auto* udp = reinterpret_cast<rte_udp_hdr*>(ip + 1);
    uint32_t ulen = rte_be_to_cpu_16(udp->dgram_len);
    if (ulen < sizeof(rte_udp_hdr) || ulen > l4len) return drop(c, DropReason::malformed);
    if (relay == nullptr) return drop(c, DropReason::unknown_udp_port);
    if (!udpChecksumOk(m, &ip->src_addr, 8, udp)) return drop(c, DropReason::l4_bad_checksum);
    *to_relay = true;
    return {};
  }
  if (ip->next_proto_id != IPPROTO_ICMP) return drop(c, DropReason::unsupported_l4);

  if (l4len < sizeof(rte_icmp_hdr)) return drop(c, DropReason::malformed);
  auto* icmp = reinterpret_cast<rte_icmp_hdr*>(ip + 1);
  if (icmp->icmp_type != RTE_IP_ICMP_ECHO_REQUEST || icmp->icmp_code != 0)
    return drop(c, DropReason::unsupported_l4);
  if (m->nb_segs != 1) return drop(c, DropReason::unsupported_l4);
  if (rte_raw_cksum(icmp, l4len) != 0xffff) return drop(c, DropReason::l4_bad_checksum);

  // RFC 792: the echo reply carries the request's identifier, sequence and data unchanged.
  icmp->icmp_type = RTE_IP_ICMP_ECHO_REPLY;
  icmp->icmp_cksum = 0;
  icmp->icmp_cksum = static_cast<uint16_t>(~rte_raw_cksum(icmp, l4len));
  const rte_be32_t src = ip->src_addr;
  ip->src_addr = ip->dst_addr;
  ip->dst_addr = src;
  ip->time_to_live = 64;
  ip->hdr_checksum = 0;
  ip->hdr_checksum = rte_ipv4_cksum(ip);
  swapMacsToReply(eth, ifc);
  setLength(m, kEthLen + total);
  return transmit(c, WorkerEvent::icmp_echo_replies);
}

// Walks RFC 4861 §4.6 options; returns the link-layer address option of `type`, if any.
// Sets *bad when an option is malformed (zero length or past the end).
const uint8_t* findLla(const uint8_t* opt, size_t len, uint8_t type, bool* bad) noexcept {
  const uint8_t* found = nullptr;
  while (len > 0) {
    if (len < 2 || opt[1] == 0 || opt[1] * 8u > len) {
      *bad = true;
      return nullptr;
    }
    if (opt[0] == type && opt[1] == 1) found = opt + 2;
    len -= opt[1] * 8u;
    opt += opt[1] * 8u;
  }
  return found;
}

void fillNeighborAdvert(rte_mbuf* m, const InterfaceAddrs& ifc, const MacAddr& dst_mac,
                        const uint8_t* dst_ip, const uint8_t* target, bool solicited) noexcept {
  auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
  std::memcpy(eth->dst_addr.addr_bytes, dst_mac.bytes.data(), 6);
  std::memcpy(eth->src_addr.addr_bytes, ifc.mac.bytes.data(), 6);
  eth->ether_type = RTE_BE16(RTE_ETHER_TYPE_IPV6);
  auto* ip = reinterpret_cast<rte_ipv6_hdr*>(eth + 1);
  auto* nd = reinterpret_cast<NdHeader*>(ip + 1);
  auto* opt = reinterpret_cast<uint8_t*>(nd + 1);
  ip->vtc_flow = RTE_BE32(6u << 28);
  ip->payload_len = RTE_BE16(sizeof(NdHeader) + 8);
  ip->proto = kProtoIcmp6;
  ip->hop_limits = 255;  // RFC 4861 §7.1.2: receivers discard ND with any other hop limit
  std::memcpy(ip->src_addr, target, 16);
  std::memcpy(ip->dst_addr, dst_ip, 16);
  nd->type = kIcmp6NeighborAdvert;
  nd->code = 0;
  // R=0 (we are not a router), S when answering a solicitation, O=1 (RFC 4861 §7.2.4).
  nd->flags = rte_cpu_to_be_32((solicited ? 0x40000000u : 0) | 0x20000000u);
  std::memcpy(nd->target, target, 16);
  opt[0] = kNdOptTargetLla;
  opt[1] = 1;
  std::memcpy(opt + 2, ifc.mac.bytes.data(), 6);
  nd->cksum = 0;
  nd->cksum = rte_ipv6_udptcp_cksum(ip, nd);
  setLength(m, kEthLen + kV6Len + sizeof(NdHeader) + 8);
}

// ---- IPv6 ----
IngressResult handleIpv6(rte_mbuf* m, rte_ether_hdr* eth, uint32_t len, const InterfaceAddrs& ifc,
                         WorkerCounters& c, const RelayContext* relay, bool* to_relay) noexcept {
  if (len < kEthLen + kV6Len) return drop(c, DropReason::malformed);
  auto* ip = reinterpret_cast<rte_ipv6_hdr*>(eth + 1);
  const uint32_t plen = rte_be_to_cpu_16(ip->payload_len);
  if ((rte_be_to_cpu_32(ip->vtc_flow) >> 28) != 6 || kEthLen + kV6Len + plen > len)
    return drop(c, DropReason::malformed);
  if (!ifc.acceptsV6Dest(ip->dst_addr)) return drop(c, DropReason::ip_not_for_us);
  const bool unicast_dst = ifc.ownsV6Unicast(ip->dst_addr);

  if (ip->proto == IPPROTO_UDP) {
    if (!unicast_dst) return drop(c, DropReason::ip_not_for_us);
    if (plen < sizeof(rte_udp_hdr)) return drop(c, DropReason::malformed);
    auto* udp = reinterpret_cast<rte_udp_hdr*>(ip + 1);
    const uint32_t ulen = rte_be_to_cpu_16(udp->dgram_len);
    if (ulen < sizeof(rte_udp_hdr) || ulen > plen) return drop(c, DropReason::malformed);
    if (relay == nullptr) return drop(c, DropReason::unknown_udp_port);
    if (!udpChecksumOk(m, ip->src_addr, 32, udp)) return drop(c, DropReason::l4_bad_checksum);
    *to_relay = true;
    return {};
  }
  if (ip->proto == IPPROTO_FRAGMENT) return drop(c, DropReason::ip_fragment);
  if (ip->proto != kProtoIcmp6) {
    // Hop-by-hop, routing and destination options headers (RFC 8200 §4) are not followed.
    const bool ext = ip->proto == IPPROTO_HOPOPTS || ip->proto == IPPROTO_ROUTING ||
                     ip->proto == IPPROTO_DSTOPTS;
    return drop(c, ext ? DropReason::ip_options : DropReason::unsupported_l4);
  }
  if (plen < 4) return drop(c, DropReason::malformed);
  if (m->nb_segs != 1) return drop(c, DropReason::unsupported_l4);
  auto* l4 = reinterpret_cast<uint8_t*>(ip + 1);
  if (!l4ChecksumOk(ip->src_addr, 32, kProtoIcmp6, l4, static_cast<uint16_t>(plen)))
    return drop(c, DropReason::l4_bad_checksum);

  const uint8_t type = l4[0];
  if (type == kIcmp6EchoRequest) {
    if (!unicast_dst || l4[1] != 0 || plen < 8) return drop(c, DropReason::unsupported_l4);
    // RFC 4443 §4.2: identifier, sequence and data echoed unchanged.
    l4[0] = kIcmp6EchoReply;
    uint8_t tmp[16];
    std::memcpy(tmp, ip->src_addr, 16);
    std::memcpy(ip->src_addr, ip->dst_addr, 16);
    std::memcpy(ip->dst_addr, tmp, 16);
    ip->hop_limits = 64;
    auto* ck = reinterpret_cast<rte_be16_t*>(l4 + 2);
    *ck = 0;
    *ck = rte_ipv6_udptcp_cksum(ip, l4);
    swapMacsToReply(eth, ifc);
    setLength(m, kEthLen + kV6Len + plen);
    return transmit(c, WorkerEvent::icmp6_echo_replies);
  }
  if (type != kIcmp6NeighborSolicit && type != kIcmp6NeighborAdvert)
    return drop(c, DropReason::unsupported_l4);

  // RFC 4861 §7.1.1 / §7.1.2 validation.
  auto* nd = reinterpret_cast<NdHeader*>(l4);
  if (ip->hop_limits != 255 || nd->code != 0 || plen < sizeof(NdHeader) || nd->target[0] == 0xff)
    return drop(c, DropReason::nd_invalid);
  bool bad_opt = false;
  const uint8_t* opts = l4 + sizeof(NdHeader);
  const size_t opts_len = plen - sizeof(NdHeader);
  static constexpr uint8_t kUnspecified[16] = {};

  if (type == kIcmp6NeighborAdvert) {
    const uint8_t* tlla = findLla(opts, opts_len, kNdOptTargetLla, &bad_opt);
    if (bad_opt) return drop(c, DropReason::nd_invalid);
    if (tlla == nullptr) return drop(c, DropReason::nd_invalid);  // we never ask without it
    IngressResult r;
    r.verdict = Verdict::kConsumed;
    r.has_hint = true;
    r.hint.port = ifc.port_id;
    r.hint.ip = IpAddr::v6(nd->target);
    std::memcpy(r.hint.mac.bytes.data(), tlla, 6);
    if (r.hint.mac.isMulticast() || r.hint.mac.isZero()) return drop(c, DropReason::nd_invalid);
    c.count(WorkerEvent::neighbor_updates);
    return r;
  }

  // Neighbor solicitation.
  const uint8_t* slla = findLla(opts, opts_len, kNdOptSourceLla, &bad_opt);
  const bool dad = std::memcmp(ip->src_addr, kUnspecified, 16) == 0;
  if (bad_opt || (dad && slla != nullptr)) return drop(c, DropReason::nd_invalid);
  if (slla != nullptr &&
      ((slla[0] & 0x01) != 0 || std::all_of(slla, slla + 6, [](uint8_t b) { return b == 0; })))
    return drop(c, DropReason::nd_invalid);  // never learn a multicast or zero MAC
  if (!ifc.ownsV6Unicast(nd->target)) return drop(c, DropReason::ip_not_for_us);

  // The advertisement may be longer than the solicitation; never write past the buffer.
  if (size_t(m->buf_len - m->data_off) < kEthLen + kV6Len + sizeof(NdHeader) + 8)
    return drop(c, DropReason::malformed);
  IngressResult r;
  r.verdict = Verdict::kTransmit;
  MacAddr dst_mac;
  uint8_t dst_ip[16];
  uint8_t target[16];
  std::memcpy(target, nd->target, 16);
  if (dad) {
    // RFC 4861 §7.2.4: answer a DAD probe to all-nodes, unsolicited.
    static constexpr uint8_t kAllNodes[16] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    std::memcpy(dst_ip, kAllNodes, 16);
    dst_mac = multicastMac(IpAddr::v6(kAllNodes));
  } else {
    std::memcpy(dst_ip, ip->src_addr, 16);
    if (slla != nullptr)
      std::memcpy(dst_mac.bytes.data(), slla, 6);
    else
      std::memcpy(dst_mac.bytes.data(), eth->src_addr.addr_bytes, 6);
    if (slla != nullptr) {
      r.has_hint = true;
      r.hint.port = ifc.port_id;
      r.hint.ip = IpAddr::v6(ip->src_addr);
      r.hint.mac = dst_mac;
    }
  }
  fillNeighborAdvert(m, ifc, dst_mac, dst_ip, target, !dad);
  c.count(WorkerEvent::nd_advertisements);
  return r;
}

// handleIngress up to the flow lookup: *to_relay when the packet is UDP to an owned address
// that passed every check before it (the result is then not counted yet).
IngressResult classify(rte_mbuf* m, const InterfaceAddrs& ifc, WorkerCounters& c,
                       const RelayContext* relay, bool* to_relay) noexcept {
  const uint32_t len = rte_pktmbuf_data_len(m);
  if (len < kEthLen) return drop(c, DropReason::malformed);
  auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
  if (!rte_is_multicast_ether_addr(&eth->dst_addr) &&
      std::memcmp(eth->dst_addr.addr_bytes, ifc.mac.bytes.data(), 6) != 0)
    return drop(c, DropReason::l2_not_for_us);
  switch (eth->ether_type) {
    case RTE_BE16(RTE_ETHER_TYPE_IPV4):
      return ifc.ipv4 ? handleIpv4(m, eth, len, ifc, c, relay, to_relay)
                      : drop(c, DropReason::ip_not_for_us);
    case RTE_BE16(RTE_ETHER_TYPE_IPV6):
      return handleIpv6(m, eth, len, ifc, c, relay, to_relay);
    case RTE_BE16(RTE_ETHER_TYPE_ARP):
      return ifc.ipv4 ? handleArp(m, eth, len, ifc, c) : drop(c, DropReason::arp_not_for_us);
    default:
      return drop(c, DropReason::unknown_ethertype);
  }
}

}  // namespace

bool classifyIngress(rte_mbuf* m, const InterfaceAddrs& ifc, WorkerCounters& c,
                     const RelayContext* relay, IngressResult* out) noexcept {
  bool to_relay = false;
  *out = classify(m, ifc, c, relay, &to_relay);
  return to_relay;
}

IngressResult handleIngress(rte_mbuf* m, const InterfaceAddrs& ifc, WorkerCounters& c,
                            const RelayContext* relay) noexcept {
  bool to_relay = false;
  IngressResult r = classify(m, ifc, c, relay, &to_relay);
  return to_relay ? relayUdp(m, *relay, c, false) : r;
}

bool buildArpRequest(rte_mbuf* m, const InterfaceAddrs& ifc, const IpAddr& target) noexcept {
  if (!ifc.ipv4 || !target.isV4()) return false;
  auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
  std::memset(eth->dst_addr.addr_bytes, 0xff, 6);
  std::memcpy(eth->src_addr.addr_bytes, ifc.mac.bytes.data(), 6);
  eth->ether_type = RTE_BE16(RTE_ETHER_TYPE_ARP);
  auto* arp = reinterpret_cast<rte_arp_hdr*>(eth + 1);
  arp->arp_hardware = RTE_BE16(RTE_ARP_HRD_ETHER);
  arp->arp_protocol = RTE_BE16(RTE_ETHER_TYPE_IPV4);
  arp->arp_hlen = 6;
  arp->arp_plen = 4;
  arp->arp_opcode = RTE_BE16(RTE_ARP_OP_REQUEST);
  std::memcpy(arp->arp_data.arp_sha.addr_bytes, ifc.mac.bytes.data(), 6);
  // From our address on the target's prefix, if any (the neighbor may check it).
  const IpPrefix* own = ifc.ownPrefixOf(target);
  arp->arp_data.arp_sip = (own != nullptr ? own->addr : ifc.ipv4->addr).v4be();
  std::memset(arp->arp_data.arp_tha.addr_bytes, 0, 6);
  arp->arp_data.arp_tip = target.v4be();
  setLength(m, kEthLen + sizeof(rte_arp_hdr));
  return true;
}

bool buildNeighborSolicitation(rte_mbuf* m, const InterfaceAddrs& ifc,
                               const IpAddr& target) noexcept {
  if (!target.isV6()) return false;
  const IpAddr group = solicitedNodeMulticast(target);
  auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
  const MacAddr gmac = multicastMac(group);
  std::memcpy(eth->dst_addr.addr_bytes, gmac.bytes.data(), 6);
  std::memcpy(eth->src_addr.addr_bytes, ifc.mac.bytes.data(), 6);
  eth->ether_type = RTE_BE16(RTE_ETHER_TYPE_IPV6);
  auto* ip = reinterpret_cast<rte_ipv6_hdr*>(eth + 1);
  auto* nd = reinterpret_cast<NdHeader*>(ip + 1);
  auto* opt = reinterpret_cast<uint8_t*>(nd + 1);
  ip->vtc_flow = RTE_BE32(6u << 28);
  ip->payload_len = RTE_BE16(sizeof(NdHeader) + 8);
  ip->proto = kProtoIcmp6;
  ip->hop_limits = 255;
  // Source: our global address on the target's prefix, else the link-local one.
  const IpPrefix* own = ifc.ownPrefixOf(target);
  const IpAddr& src = own != nullptr ? own->addr : ifc.ipv6_link_local;
  std::memcpy(ip->src_addr, src.bytes.data(), 16);
  std::memcpy(ip->dst_addr, group.bytes.data(), 16);
  nd->type = kIcmp6NeighborSolicit;
  nd->code = 0;
  nd->flags = 0;
  std::memcpy(nd->target, target.bytes.data(), 16);
  opt[0] = kNdOptSourceLla;
  opt[1] = 1;
  std::memcpy(opt + 2, ifc.mac.bytes.data(), 6);
  nd->cksum = 0;
  nd->cksum = rte_ipv6_udptcp_cksum(ip, nd);
  setLength(m, kEthLen + kV6Len + sizeof(NdHeader) + 8);
  return true;
}

}  // namespace rtpx

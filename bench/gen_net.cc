#include "bench/gen_net.h"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <charconv>

namespace rtpx::gen {

std::string Endpoint::toString() const {
  return fmt::format("{}:{}", ipv4String(ip), port);
}

std::optional<uint32_t> parseIpv4(std::string_view s) {
  std::string str(s);
  in_addr a{};
  if (inet_pton(AF_INET, str.c_str(), &a) != 1) return std::nullopt;
  return ntohl(a.s_addr);
}

std::string ipv4String(uint32_t ip) {
  return fmt::format("{}.{}.{}.{}", ip >> 24, (ip >> 16) & 0xff, (ip >> 8) & 0xff, ip & 0xff);
}

std::optional<Endpoint> parseEndpoint(std::string_view s) {
  const auto colon = s.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  auto ip = parseIpv4(s.substr(0, colon));
  unsigned port = 0;
  auto ps = s.substr(colon + 1);
  auto [p, ec] = std::from_chars(ps.data(), ps.data() + ps.size(), port);
  if (!ip || ec != std::errc{} || p != ps.data() + ps.size() || port > 65535) return std::nullopt;
  return Endpoint{*ip, static_cast<uint16_t>(port)};
}

std::optional<rte_ether_addr> parseMac(std::string_view s) {
  rte_ether_addr mac{};
  std::string str(s);
  if (rte_ether_unformat_addr(str.c_str(), &mac) != 0) return std::nullopt;
  return mac;
}

std::string macString(const rte_ether_addr& mac) {
  char buf[RTE_ETHER_ADDR_FMT_SIZE];
  rte_ether_format_addr(buf, sizeof buf, &mac);
  return buf;
}

void buildTemplate(FlowTemplate& t, const Flow& f, uint32_t flow_id, const FrameParams& p) {
  std::memset(&t, 0, sizeof t);
  auto* eth = reinterpret_cast<rte_ether_hdr*>(t.hdr);
  eth->dst_addr = p.dst_mac;
  eth->src_addr = p.src_mac;
  eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
  auto* ip = reinterpret_cast<rte_ipv4_hdr*>(t.hdr + kEthLen);
  ip->version_ihl = RTE_IPV4_VHL_DEF;
  ip->type_of_service = 0xb8;  // DSCP EF, as phones mark voice
  ip->total_length = rte_cpu_to_be_16(kIpLen + kUdpLen + kRtpLen + p.payload_size + p.trailer);
  ip->packet_id = 0;
  ip->fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG);
  ip->time_to_live = 64;
  ip->next_proto_id = IPPROTO_UDP;
  ip->src_addr = rte_cpu_to_be_32(f.src.ip);
  ip->dst_addr = rte_cpu_to_be_32(f.dst.ip);
  ip->hdr_checksum = rte_ipv4_cksum(ip);
  auto* udp = reinterpret_cast<rte_udp_hdr*>(t.hdr + kEthLen + kIpLen);
  udp->src_port = rte_cpu_to_be_16(f.src.port);
  udp->dst_port = rte_cpu_to_be_16(f.dst.port);
  udp->dgram_len = rte_cpu_to_be_16(kUdpLen + kRtpLen + p.payload_size + p.trailer);
  udp->dgram_cksum = 0;
  uint8_t* rtp = t.hdr + kRtpOffset;
  rtp[0] = 0x80;  // V=2, no padding, no extension, no CSRC
  rtp[1] = p.payload_type & 0x7f;
  const uint32_t ssrc = rte_cpu_to_be_32(flowSsrc(p, flow_id));
  std::memcpy(rtp + 8, &ssrc, 4);
  t.seq_base = static_cast<uint16_t>((flow_id * 40503u) >> 3);
  t.next_index = 0;
  // Everything outside the 42 bytes summed at TX (RTP seq, timestamp, SSRC and the
  // PayloadHeader): pseudo-header, UDP header (checksum 0), RTP bytes 0-1, filler.
  uint32_t sum = rte_ipv4_phdr_cksum(ip, 0);
  sum = __rte_raw_cksum(udp, kUdpLen, sum);
  sum = __rte_raw_cksum(rtp, 2, sum);
  if (p.payload_size > kMinPayload)
    sum = __rte_raw_cksum(p.filler + kMinPayload, p.payload_size - kMinPayload, sum);
  t.csum_base = __rte_raw_cksum_reduce(sum);
}

void writeArpRequest(uint8_t* out, const rte_ether_addr& src_mac, uint32_t src_ip,
                     uint32_t target) {
  std::memset(out, 0, kArpFrameLen);
  auto* eth = reinterpret_cast<rte_ether_hdr*>(out);
  std::memset(&eth->dst_addr, 0xff, RTE_ETHER_ADDR_LEN);
  eth->src_addr = src_mac;
  eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP);
  auto* arp = reinterpret_cast<rte_arp_hdr*>(eth + 1);
  arp->arp_hardware = rte_cpu_to_be_16(RTE_ARP_HRD_ETHER);
  arp->arp_protocol = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
  arp->arp_hlen = RTE_ETHER_ADDR_LEN;
  arp->arp_plen = 4;
  arp->arp_opcode = rte_cpu_to_be_16(RTE_ARP_OP_REQUEST);
  arp->arp_data.arp_sha = src_mac;
  arp->arp_data.arp_sip = rte_cpu_to_be_32(src_ip);
  arp->arp_data.arp_tip = rte_cpu_to_be_32(target);
}

}  // namespace rtpx::gen

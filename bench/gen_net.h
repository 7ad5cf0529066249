// rtpx-gen's packets: addresses, the per-flow frame template and the payload header that lets
// the sink measure one-way latency, loss, reordering and duplicates, and ARP.
//
// Frame: Ethernet (14) | IPv4 (20, DF, ID 0, TTL 64) | UDP (8) | RTP (12, no CSRC) | payload.
// The payload starts with a PayloadHeader (host byte order: sender and sink are one process);
// the rest is a constant filler. Everything but RTP seq/timestamp and the PayloadHeader is fixed
// per flow, so the UDP checksum is a per-flow constant sum plus the sum of the 42 bytes from
// the RTP sequence number to the end of the PayloadHeader.
#pragma once

#include <rte_arp.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_udp.h>

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace rtpx::gen {

// An IPv4 endpoint, host byte order. ip == 0: none.
struct Endpoint {
  uint32_t ip = 0;
  uint16_t port = 0;

  bool empty() const { return ip == 0; }
  std::string toString() const;
  friend bool operator==(const Endpoint&, const Endpoint&) = default;
};

std::optional<uint32_t> parseIpv4(std::string_view s);  // dotted quad → host order
std::string ipv4String(uint32_t ip);
std::optional<Endpoint> parseEndpoint(std::string_view s);  // "a.b.c.d:port"
std::optional<rte_ether_addr> parseMac(std::string_view s);
std::string macString(const rte_ether_addr& mac);

// One direction of media: sent from `src` (a generator address) to `dst` (the relay, or the
// reflector), expected back at `sink` (a generator address; empty: wherever it arrives).
struct Flow {
  Endpoint src;
  Endpoint dst;
  Endpoint sink;
  uint32_t session = 0;
};

inline constexpr uint32_t kPayloadMagic = 0x47585452;  // "RTXG" in memory
inline constexpr uint32_t kFlagMeasured = 1;           // sent after the warm-up

struct PayloadHeader {
  uint32_t magic;
  uint32_t flow;  // index into the flow table
  uint64_t seq;   // per-flow packet index, from 0
  uint64_t tsc;   // rte_rdtsc() when the packet was built
  uint32_t flags;
  uint32_t run;  // random per run: late packets of an earlier run are not counted
};
static_assert(sizeof(PayloadHeader) == 32);

inline constexpr uint16_t kEthLen = 14, kIpLen = 20, kUdpLen = 8, kRtpLen = 12;
inline constexpr uint16_t kHeadersLen = kEthLen + kIpLen + kUdpLen + kRtpLen;  // 54
inline constexpr uint16_t kRtpOffset = kEthLen + kIpLen + kUdpLen;             // 42
inline constexpr uint16_t kPayloadOffset = kHeadersLen;
inline constexpr uint16_t kMinPayload = sizeof(PayloadHeader);
// RTP seq, timestamp, SSRC and the PayloadHeader: contiguous, starting at an even UDP offset.
inline constexpr uint16_t kVarOffset = kRtpOffset + 2;
inline constexpr uint16_t kVarLen = 10 + sizeof(PayloadHeader);

// The fixed part of one flow's frames, one cache line: copied whole into each mbuf (the 10
// bytes past the headers land in the payload and are overwritten).
struct alignas(64) FlowTemplate {
  uint8_t hdr[kHeadersLen];
  uint16_t seq_base;    // RTP sequence number of packet 0
  uint32_t next_index;  // packets built so far (TX lcore only)
  uint32_t csum_base;   // UDP checksum sum of everything but the 42 bytes at kVarOffset
};
static_assert(sizeof(FlowTemplate) == 64);

// RTP timestamp of packet 0 (RFC 3550 §5.1: random initial values; a hash is enough here).
inline uint32_t flowTsBase(uint32_t flow) {
  return flow * 2654435761u;
}

struct FrameParams {
  rte_ether_addr src_mac{};
  rte_ether_addr dst_mac{};
  uint8_t payload_type = 0;
  uint16_t payload_size = 160;  // RTP payload bytes, PayloadHeader included
  uint32_t samples_per_packet = 160;
  uint32_t ssrc_base = 0;
  uint32_t run = 0;
  bool udp_checksum = true;         // computed incrementally in writeFrame
  uint16_t trailer = 0;             // bytes after the payload (SRTP tag), in the IP/UDP lengths
  const uint8_t* filler = nullptr;  // payload_size bytes; only [kMinPayload, payload_size) used
};

inline uint32_t flowSsrc(const FrameParams& p, uint32_t flow) {
  return p.ssrc_base + flow;
}

void buildTemplate(FlowTemplate& t, const Flow& f, uint32_t flow_id, const FrameParams& p);

// Writes the frame of packet `t.next_index` of flow `flow_id` into `out` (kHeadersLen +
// payload_size bytes) and advances the flow.
inline void writeFrame(uint8_t* out, FlowTemplate& t, uint32_t flow_id, const FrameParams& p,
                       uint64_t tsc, uint32_t flags) {
  std::memcpy(out, t.hdr, 64);
  std::memcpy(out + kPayloadOffset + kMinPayload, p.filler + kMinPayload,
              p.payload_size - kMinPayload);
  const uint32_t idx = t.next_index++;
  uint8_t* rtp = out + kRtpOffset;
  const uint16_t seq = rte_cpu_to_be_16(static_cast<uint16_t>(t.seq_base + idx));
  const uint32_t ts = rte_cpu_to_be_32(flowTsBase(flow_id) + idx * p.samples_per_packet);
  std::memcpy(rtp + 2, &seq, 2);
  std::memcpy(rtp + 4, &ts, 4);
  const PayloadHeader ph{kPayloadMagic, flow_id, idx, tsc, flags, p.run};
  std::memcpy(out + kPayloadOffset, &ph, sizeof ph);
  if (p.udp_checksum) {
    uint32_t sum = __rte_raw_cksum(out + kVarOffset, kVarLen, t.csum_base);
    uint16_t ck = static_cast<uint16_t>(~__rte_raw_cksum_reduce(sum));
    if (ck == 0) ck = 0xffff;
    std::memcpy(out + kEthLen + kIpLen + 6, &ck, 2);
  }
}

inline constexpr uint16_t kArpFrameLen = 60;  // 42 padded to the Ethernet minimum

// An ARP request for `target` from `src_ip`/`src_mac` (host order addresses), kArpFrameLen bytes.
void writeArpRequest(uint8_t* out, const rte_ether_addr& src_mac, uint32_t src_ip, uint32_t target);

}  // namespace rtpx::gen

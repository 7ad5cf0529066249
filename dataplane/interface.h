// What a worker needs to know about one DPDK port to answer for it: the plain, read-only
// description the control side builds once at start-up.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "dataplane/net_types.h"

namespace rtpx {

struct InterfaceAddrs {
  uint16_t port_id = 0;
  MacAddr mac;
  std::optional<IpPrefix> ipv4;
  std::optional<IpPrefix> ipv6;  // global (or ULA) address
  IpAddr ipv6_link_local;        // derived from the MAC, always owned
  std::optional<IpAddr> gateway4;
  std::optional<IpAddr> gateway6;
  bool tx_ipv4_cksum_offload = false;
  bool tx_udp_cksum_offload = false;
  uint16_t mtu = 1500;  // largest IP packet the port sends

  bool ownsV4(uint32_t be) const noexcept { return ipv4 && ipv4->addr.v4be() == be; }
  bool ownsV6Unicast(const uint8_t* a) const noexcept;
  // Our unicast addresses, their solicited-node groups, and all-nodes (RFC 4291 §2.8).
  bool acceptsV6Dest(const uint8_t* a) const noexcept;
  // The address to resolve for `dst`: itself when on a connected prefix, else the gateway.
  std::optional<IpAddr> nextHop(const IpAddr& dst) const noexcept {
    const auto& prefix = dst.isV4() ? ipv4 : ipv6;
    if (prefix && prefix->contains(dst)) return dst;
    if (dst.isV6() && dst.bytes[0] == 0xfe && (dst.bytes[1] & 0xc0) == 0x80) return dst;
    return dst.isV4() ? gateway4 : gateway6;
  }
};

}  // namespace rtpx

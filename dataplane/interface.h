// What a worker needs to know about one DPDK port to answer for it: the plain, read-only
// description the control side builds once at start-up.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "dataplane/net_types.h"

namespace rtpx {

// Addresses of one family a port may own: each has its own media port range, so more
// addresses hold more calls; ownership is checked per packet by a loop over them.
inline constexpr std::size_t kMaxAddressesPerFamily = 32;

struct InterfaceAddrs {
  uint16_t port_id = 0;
  MacAddr mac;
  std::optional<IpPrefix> ipv4;  // the first IPv4 address (source of our ARP requests)
  std::optional<IpPrefix> ipv6;  // the first global (or ULA) address
  // The port's other addresses, in configuration order (only with ipv4 / ipv6 set).
  std::vector<IpPrefix> extra_ipv4;
  std::vector<IpPrefix> extra_ipv6;
  IpAddr ipv6_link_local;  // derived from the MAC, always owned
  std::optional<IpAddr> gateway4;
  std::optional<IpAddr> gateway6;
  bool tx_ipv4_cksum_offload = false;
  bool tx_udp_cksum_offload = false;
  uint16_t mtu = 1500;  // largest IP packet the port sends

  bool ownsV4(uint32_t be) const noexcept {
    if (ipv4 && ipv4->addr.v4be() == be) return true;
    for (const IpPrefix& p : extra_ipv4)
      if (p.addr.v4be() == be) return true;
    return false;
  }
  bool ownsV6Unicast(const uint8_t* a) const noexcept;
  // Our unicast addresses, their solicited-node groups, and all-nodes (RFC 4291 §2.8).
  bool acceptsV6Dest(const uint8_t* a) const noexcept;
  // The address to resolve for `dst`: itself when on a connected prefix, else the gateway.
  std::optional<IpAddr> nextHop(const IpAddr& dst) const noexcept {
    if (onLink(dst)) return dst;
    if (dst.isV6() && dst.bytes[0] == 0xfe && (dst.bytes[1] & 0xc0) == 0x80) return dst;
    return dst.isV4() ? gateway4 : gateway6;
  }
  // On the prefix of one of our addresses.
  bool onLink(const IpAddr& dst) const noexcept { return ownPrefixOf(dst) != nullptr; }
  // Our address whose prefix holds `dst` (the first one), or null.
  const IpPrefix* ownPrefixOf(const IpAddr& dst) const noexcept {
    const auto& first = dst.isV4() ? ipv4 : ipv6;
    if (first && first->contains(dst)) return &*first;
    for (const IpPrefix& p : dst.isV4() ? extra_ipv4 : extra_ipv6)
      if (p.contains(dst)) return &p;
    return nullptr;
  }
};

}  // namespace rtpx

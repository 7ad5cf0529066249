#include "dataplane/slow_path.h"

#include <absl/strings/str_cat.h>
#include <rte_ip.h>
#include <rte_udp.h>

#include "dataplane/neighbor_table.h"
#include "dataplane/relay.h"

namespace rtpx {

absl::Status buildFlowPacket(rte_mbuf* m, const FlowSpec& spec, const Endpoint& to,
                             std::span<const uint8_t> payload, const InterfaceAddrs* const* ifaces,
                             uint16_t n_ifaces, const NeighborTable& neighbors,
                             IpAddr* unresolved_hop) {
  if (!to.known())
    return absl::InvalidArgumentError("slow path: the destination must be a known address:port");
  if (to.addr.family != spec.local.addr.family)
    return absl::InvalidArgumentError(absl::StrCat("slow path: cannot send from ",
                                                   spec.local.toString(), " to ", to.toString(),
                                                   " (address families differ)"));
  const InterfaceAddrs* out = spec.ingress_port < n_ifaces ? ifaces[spec.ingress_port] : nullptr;
  if (out == nullptr)
    return absl::FailedPreconditionError(
        absl::StrCat("slow path: the flow's port ", spec.ingress_port, " is not configured"));
  const size_t ip_len = (to.addr.isV6() ? sizeof(rte_ipv6_hdr) : sizeof(rte_ipv4_hdr)) +
                        sizeof(rte_udp_hdr) + payload.size();
  if (ip_len > out->mtu)
    return absl::InvalidArgumentError(
        absl::StrCat("slow path: a payload of ", payload.size(), " bytes makes a ", ip_len,
                     "-byte IP packet; the port's MTU is ", out->mtu));
  const std::optional<IpAddr> hop = out->nextHop(to.addr);
  if (!hop)
    return absl::FailedPreconditionError(absl::StrCat("slow path: no route to ", to.addr.toString(),
                                                      " (off-link and no gateway on the port)"));
  const std::optional<MacAddr> mac = neighbors.resolve(spec.ingress_port, *hop);
  if (!mac) {
    if (unresolved_hop != nullptr) *unresolved_hop = *hop;
    return absl::UnavailableError(
        absl::StrCat("slow path: next hop ", hop->toString(), " not resolved yet"));
  }
  if (!writeUdpPacket(m, *out, *mac, spec.local, to, payload))
    return absl::InvalidArgumentError(
        absl::StrCat("slow path: ", payload.size(), " bytes do not fit an mbuf"));
  return absl::OkStatus();
}

}  // namespace rtpx

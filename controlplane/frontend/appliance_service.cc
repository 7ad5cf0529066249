#include "controlplane/frontend/appliance_service.h"

namespace rtpx {
namespace {

void setDuration(google::protobuf::Duration* d, uint64_t ns) {
  d->set_seconds(static_cast<int64_t>(ns / 1000000000ull));
  d->set_nanos(static_cast<int32_t>(ns % 1000000000ull));
}

v1::NeighborState toProto(NeighborState s) {
  switch (s) {
    case NeighborState::kIncomplete:
      return v1::NEIGHBOR_STATE_INCOMPLETE;
    case NeighborState::kReachable:
      return v1::NEIGHBOR_STATE_REACHABLE;
    case NeighborState::kStale:
      return v1::NEIGHBOR_STATE_STALE;
    case NeighborState::kFailed:
      return v1::NEIGHBOR_STATE_FAILED;
    default:
      return v1::NEIGHBOR_STATE_UNSPECIFIED;
  }
}

}  // namespace

void toProto(const StatsSnapshot& s, v1::GetStatisticsResponse* out) {
  out->set_version(RTPX_VERSION);
  setDuration(out->mutable_uptime(), s.uptime_ns);
  for (const auto& w : s.workers) {
    auto* pw = out->add_workers();
    pw->set_worker_id(w.index);
    pw->set_lcore_id(w.lcore);
    pw->set_socket_id(w.socket);
    for (size_t i = 0; i < kNumWorkerEvents; ++i) {
      auto* c = pw->add_counters();
      c->set_name(std::string(kWorkerEventInfo[i].name));
      c->set_description(std::string(kWorkerEventInfo[i].description));
      c->set_value(w.events[i]);
    }
    for (size_t i = 0; i < kNumDropReasons; ++i) {
      auto* c = pw->add_drops();
      c->set_name(std::string(kDropReasonInfo[i].name));
      c->set_description(std::string(kDropReasonInfo[i].description));
      c->set_value(w.drops[i]);
    }
  }
  for (const auto& p : s.ports) {
    auto* pp = out->add_ports();
    pp->set_port_id(p.port_id);
    pp->set_interface(p.interface);
    pp->set_device(p.device);
    pp->set_driver(p.driver);
    pp->set_mac_address(p.mac.toString());
    pp->set_link_up(p.link_up);
    pp->set_link_speed_mbps(p.speed_mbps);
    pp->set_rx_queues(p.rx_queues);
    pp->set_tx_queues(p.tx_queues);
    pp->set_rss_enabled(p.rss);
    pp->set_tx_checksum_offload(p.tx_cksum_offload);
    pp->set_rx_packets(p.ipackets);
    pp->set_tx_packets(p.opackets);
    pp->set_rx_bytes(p.ibytes);
    pp->set_tx_bytes(p.obytes);
    pp->set_rx_missed(p.imissed);
    pp->set_rx_errors(p.ierrors);
    pp->set_tx_errors(p.oerrors);
    pp->set_rx_no_mbuf(p.rx_nombuf);
    for (const auto& a : p.addresses) pp->add_addresses(a);
  }
  if (s.sessions) {
    auto* ps = out->mutable_sessions();
    ps->set_calls(s.sessions->calls);
    ps->set_flows(s.sessions->flows);
    ps->set_flow_capacity(s.sessions->flow_capacity);
    for (const auto& p : s.sessions->ports) {
      auto* pm = ps->add_media_ports();
      pm->set_interface(p.interface);
      pm->set_pairs_in_use(static_cast<uint32_t>(p.pairs_in_use));
      pm->set_pairs_total(static_cast<uint32_t>(p.pairs_total));
    }
  }
  for (const auto& n : s.neighbors) {
    auto* pn = out->add_neighbors();
    pn->set_interface(n.port < s.interface_names.size() ? s.interface_names[n.port] : "");
    pn->set_ip_address(n.ip.toString());
    pn->set_mac_address(n.mac.toString());
    pn->set_state(toProto(n.state));
    if (n.confirmed_ns != 0 && s.now_ns >= n.confirmed_ns)
      setDuration(pn->mutable_age(), s.now_ns - n.confirmed_ns);
  }
}

grpc::Status ApplianceService::GetStatistics(grpc::ServerContext*, const v1::GetStatisticsRequest*,
                                             v1::GetStatisticsResponse* resp) {
  toProto(stats_(), resp);
  return grpc::Status::OK;
}

}  // namespace rtpx

#include "controlplane/frontend/metrics.h"

#include <fmt/format.h>

#include <map>

namespace rtpx {

std::string_view neighborStateName(NeighborState s) {
  switch (s) {
    case NeighborState::kIncomplete:
      return "incomplete";
    case NeighborState::kReachable:
      return "reachable";
    case NeighborState::kStale:
      return "stale";
    case NeighborState::kFailed:
      return "failed";
    default:
      return "none";
  }
}

namespace {

// Text format 0.0.4: label values escape backslash, double quote and newline.
std::string escapeLabel(std::string_view v) {
  std::string out;
  for (char ch : v) {
    if (ch == '\\')
      out += "\\\\";
    else if (ch == '"')
      out += "\\\"";
    else if (ch == '\n')
      out += "\\n";
    else
      out += ch;
  }
  return out;
}

void header(std::string& out, std::string_view name, std::string_view help, std::string_view type) {
  fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

}  // namespace

std::string renderMetrics(const StatsSnapshot& s, bool ready) {
  std::string out;
  auto o = std::back_inserter(out);
  header(out, "rtpx_build_info", "rtpxd version", "gauge");
  fmt::format_to(o, "rtpx_build_info{{version=\"{}\"}} 1\n", RTPX_VERSION);
  header(out, "rtpx_uptime_seconds", "Seconds since the dataplane started", "gauge");
  fmt::format_to(o, "rtpx_uptime_seconds {:.3f}\n", s.uptime_ns / 1e9);
  header(out, "rtpx_ready", "1 when every port is up and every worker is polling", "gauge");
  fmt::format_to(o, "rtpx_ready {}\n", ready ? 1 : 0);

  for (size_t e = 0; e < kNumWorkerEvents; ++e) {
    const std::string name = fmt::format("rtpx_worker_{}_total", kWorkerEventInfo[e].name);
    header(out, name, kWorkerEventInfo[e].description, "counter");
    for (const auto& w : s.workers)
      fmt::format_to(o, "{}{{worker=\"{}\",lcore=\"{}\"}} {}\n", name, w.index, w.lcore,
                     w.events[e]);
  }
  header(out, "rtpx_worker_drops_total",
         "Packets a worker dropped, by reason (see rtpxctl stats for each reason's meaning)",
         "counter");
  for (const auto& w : s.workers)
    for (size_t d = 0; d < kNumDropReasons; ++d)
      fmt::format_to(o, "rtpx_worker_drops_total{{worker=\"{}\",reason=\"{}\"}} {}\n", w.index,
                     kDropReasonInfo[d].name, w.drops[d]);

  struct PortMetric {
    const char* name;
    const char* help;
    uint64_t PortSnapshot::*field;
  };
  static constexpr PortMetric kPort[] = {
      {"rtpx_port_rx_packets_total", "Packets received by the port", &PortSnapshot::ipackets},
      {"rtpx_port_tx_packets_total", "Packets sent by the port", &PortSnapshot::opackets},
      {"rtpx_port_rx_bytes_total", "Bytes received by the port", &PortSnapshot::ibytes},
      {"rtpx_port_tx_bytes_total", "Bytes sent by the port", &PortSnapshot::obytes},
      {"rtpx_port_rx_missed_total", "Packets the port dropped because RX queues were full",
       &PortSnapshot::imissed},
      {"rtpx_port_rx_errors_total", "Erroneous packets received", &PortSnapshot::ierrors},
      {"rtpx_port_tx_errors_total", "Failed transmissions", &PortSnapshot::oerrors},
      {"rtpx_port_rx_nombuf_total", "RX mbuf allocation failures", &PortSnapshot::rx_nombuf},
  };
  for (const auto& m : kPort) {
    header(out, m.name, m.help, "counter");
    for (const auto& p : s.ports)
      fmt::format_to(o, "{}{{interface=\"{}\",port=\"{}\"}} {}\n", m.name, escapeLabel(p.interface),
                     p.port_id, p.*m.field);
  }
  header(out, "rtpx_port_link_up", "1 when the port's link is up", "gauge");
  for (const auto& p : s.ports)
    fmt::format_to(o, "rtpx_port_link_up{{interface=\"{}\",port=\"{}\",driver=\"{}\"}} {}\n",
                   escapeLabel(p.interface), p.port_id, escapeLabel(p.driver), p.link_up ? 1 : 0);

  if (s.sessions) {
    const SessionGauges& g = *s.sessions;
    header(out, "rtpx_calls", "Calls rtpx holds (offered, answered or waiting for a delete)",
           "gauge");
    fmt::format_to(o, "rtpx_calls {}\n", g.calls);
    header(out, "rtpx_flows", "Dataplane flows (one per media direction)", "gauge");
    fmt::format_to(o, "rtpx_flows {}\n", g.flows);
    header(out, "rtpx_flow_capacity", "Flows the flow table holds (sessions.flow_capacity)",
           "gauge");
    fmt::format_to(o, "rtpx_flow_capacity {}\n", g.flow_capacity);
    header(out, "rtpx_media_port_pairs_in_use", "RTP/RTCP media port pairs allocated to calls",
           "gauge");
    for (const auto& p : g.ports)
      fmt::format_to(o, "rtpx_media_port_pairs_in_use{{interface=\"{}\"}} {}\n",
                     escapeLabel(p.interface), p.pairs_in_use);
    header(out, "rtpx_media_port_pairs", "RTP/RTCP media port pairs of the configured range",
           "gauge");
    for (const auto& p : g.ports)
      fmt::format_to(o, "rtpx_media_port_pairs{{interface=\"{}\"}} {}\n", escapeLabel(p.interface),
                     p.pairs_total);
  }
  header(out, "rtpx_neighbors", "Neighbor (ARP/ND) table entries by state", "gauge");
  std::map<std::string_view, int> by_state{
      {"incomplete", 0}, {"reachable", 0}, {"stale", 0}, {"failed", 0}};
  for (const auto& n : s.neighbors) ++by_state[neighborStateName(n.state)];
  for (const auto& [state, count] : by_state)
    fmt::format_to(o, "rtpx_neighbors{{state=\"{}\"}} {}\n", state, count);
  return out;
}

}  // namespace rtpx

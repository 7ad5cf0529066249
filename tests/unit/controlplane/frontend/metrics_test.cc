#include "controlplane/frontend/metrics.h"

#include <catch2/catch.hpp>

#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace {

rtpx::StatsSnapshot sampleSnapshot() {
  rtpx::StatsSnapshot s;
  s.uptime_ns = 12'345'678'901;  // 12.345678901 s
  s.now_ns = 99'000'000'000;

  rtpx::WorkerSnapshot w0;
  w0.index = 0;
  w0.lcore = 1;
  w0.events[static_cast<size_t>(rtpx::WorkerEvent::rx_packets)] = 1000;
  w0.events[static_cast<size_t>(rtpx::WorkerEvent::arp_replies)] = 4;
  w0.drops[static_cast<size_t>(rtpx::DropReason::malformed)] = 2;
  rtpx::WorkerSnapshot w1;
  w1.index = 1;
  w1.lcore = 2;
  w1.events[static_cast<size_t>(rtpx::WorkerEvent::rx_packets)] = 55;
  w1.events[static_cast<size_t>(rtpx::WorkerEvent::idle_sleeps)] = 18446744073709551615ull;
  w1.drops[static_cast<size_t>(rtpx::DropReason::unknown_udp_port)] = 7;
  s.workers = {w0, w1};

  rtpx::PortSnapshot p;
  p.port_id = 0;
  p.interface = "media0";
  p.device = "net_af_packet0,iface=rtpx0,qpairs=1";
  p.driver = "net_af_packet";
  p.link_up = true;
  p.ipackets = 123;
  p.opackets = 45;
  p.ibytes = 6789;
  p.obytes = 1011;
  p.imissed = 3;
  p.ierrors = 1;
  p.oerrors = 0;
  p.rx_nombuf = 9;
  s.ports = {p};

  rtpx::NeighborEntry n1;
  n1.ip = *rtpx::IpAddr::parse("192.0.2.1");
  n1.state = rtpx::NeighborState::kReachable;
  rtpx::NeighborEntry n2;
  n2.ip = *rtpx::IpAddr::parse("2001:db8::1");
  n2.state = rtpx::NeighborState::kStale;
  s.neighbors = {n1, n2};
  s.interface_names = {"media0"};
  return s;
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

bool hasLine(const std::vector<std::string>& ls, const std::string& want) {
  for (const auto& l : ls)
    if (l == want) return true;
  return false;
}

std::string metricName(const std::string& sample) {
  return sample.substr(0, sample.find_first_of("{ "));
}

}  // namespace

TEST_CASE("renderMetrics writes the expected samples", "[metrics]") {
  const std::string text = rtpx::renderMetrics(sampleSnapshot(), true);
  INFO(text);
  REQUIRE_FALSE(text.empty());
  CHECK(text.back() == '\n');
  const auto ls = lines(text);

  for (const std::string& want : {
           std::string("rtpx_build_info{version=\"") + RTPX_VERSION + "\"} 1",
           std::string("rtpx_uptime_seconds 12.346"),
           std::string("rtpx_ready 1"),
           std::string("rtpx_worker_rx_packets_total{worker=\"0\",lcore=\"1\"} 1000"),
           std::string("rtpx_worker_rx_packets_total{worker=\"1\",lcore=\"2\"} 55"),
           std::string("rtpx_worker_arp_replies_total{worker=\"0\",lcore=\"1\"} 4"),
           std::string("rtpx_worker_arp_replies_total{worker=\"1\",lcore=\"2\"} 0"),
           std::string(
               "rtpx_worker_idle_sleeps_total{worker=\"1\",lcore=\"2\"} 18446744073709551615"),
           std::string("rtpx_worker_drops_total{worker=\"1\",reason=\"unknown_udp_port\"} 7"),
           std::string("rtpx_worker_drops_total{worker=\"0\",reason=\"unknown_udp_port\"} 0"),
           std::string("rtpx_worker_drops_total{worker=\"0\",reason=\"malformed\"} 2"),
           std::string("rtpx_worker_drops_total{worker=\"1\",reason=\"tx_full\"} 0"),
           std::string("rtpx_port_rx_packets_total{interface=\"media0\",port=\"0\"} 123"),
           std::string("rtpx_port_tx_packets_total{interface=\"media0\",port=\"0\"} 45"),
           std::string("rtpx_port_rx_bytes_total{interface=\"media0\",port=\"0\"} 6789"),
           std::string("rtpx_port_tx_bytes_total{interface=\"media0\",port=\"0\"} 1011"),
           std::string("rtpx_port_rx_missed_total{interface=\"media0\",port=\"0\"} 3"),
           std::string("rtpx_port_rx_errors_total{interface=\"media0\",port=\"0\"} 1"),
           std::string("rtpx_port_tx_errors_total{interface=\"media0\",port=\"0\"} 0"),
           std::string("rtpx_port_rx_nombuf_total{interface=\"media0\",port=\"0\"} 9"),
           std::string(
               "rtpx_port_link_up{interface=\"media0\",port=\"0\",driver=\"net_af_packet\"} 1"),
           std::string("rtpx_neighbors{state=\"reachable\"} 1"),
           std::string("rtpx_neighbors{state=\"stale\"} 1"),
           std::string("rtpx_neighbors{state=\"incomplete\"} 0"),
           std::string("rtpx_neighbors{state=\"failed\"} 0"),
           std::string("# TYPE rtpx_worker_drops_total counter"),
           std::string("# TYPE rtpx_neighbors gauge"),
           std::string("# TYPE rtpx_ready gauge"),
           std::string("# HELP rtpx_worker_rx_packets_total Packets received from the port"),
       }) {
    INFO("missing line: " << want);
    CHECK(hasLine(ls, want));
  }

  // One sample per worker per event, per worker per drop reason, per port per port metric
  // (8 counters and link_up), one per neighbor state, plus build_info, uptime and ready.
  size_t samples = 0;
  for (const auto& l : ls)
    if (!l.empty() && l[0] != '#') ++samples;
  CHECK(samples == 3 + 2 * rtpx::kNumWorkerEvents + 2 * rtpx::kNumDropReasons + 9 + 4);
}

TEST_CASE("renderMetrics shows the session gauges when the control plane gives them", "[metrics]") {
  rtpx::StatsSnapshot s = sampleSnapshot();
  CHECK(rtpx::renderMetrics(s, true).find("rtpx_calls") == std::string::npos);
  s.sessions = rtpx::SessionGauges{.calls = 3,
                                   .flows = 10,
                                   .flow_capacity = 4096,
                                   .ports = {{"media0", 6, 5000}, {"media1", 0, 100}}};
  const auto ls = lines(rtpx::renderMetrics(s, true));
  for (const char* want : {
           "# TYPE rtpx_calls gauge",
           "rtpx_calls 3",
           "rtpx_flows 10",
           "rtpx_flow_capacity 4096",
           "rtpx_media_port_pairs_in_use{interface=\"media0\"} 6",
           "rtpx_media_port_pairs_in_use{interface=\"media1\"} 0",
           "rtpx_media_port_pairs{interface=\"media0\"} 5000",
           "rtpx_media_port_pairs{interface=\"media1\"} 100",
       }) {
    INFO("missing line: " << want);
    CHECK(hasLine(ls, want));
  }
}

TEST_CASE("renderMetrics reports not ready as 0", "[metrics]") {
  const auto ls = lines(rtpx::renderMetrics(sampleSnapshot(), false));
  CHECK(hasLine(ls, "rtpx_ready 0"));
  CHECK_FALSE(hasLine(ls, "rtpx_ready 1"));
}

TEST_CASE("renderMetrics declares every metric exactly once and only valid samples", "[metrics]") {
  const std::string text = rtpx::renderMetrics(sampleSnapshot(), true);
  INFO(text);
  const auto ls = lines(text);

  // Prometheus text format 0.0.4.
  const std::regex help_re(R"(^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) \S.*$)");
  const std::regex type_re(
      R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$)");
  const std::string label = R"([a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*")";
  const std::regex sample_re(
      "^([a-zA-Z_:][a-zA-Z0-9_:]*)(\\{" + label + "(?:," + label +
      ")*\\})? ([-+]?[0-9]+(?:\\.[0-9]+)?(?:[eE][-+]?[0-9]+)?|NaN|[-+]Inf)$");

  std::map<std::string, int> helps, types;
  std::map<std::string, std::string> type_of;
  std::set<std::string> sampled;
  std::string current;  // the metric whose TYPE was seen last
  for (const auto& l : ls) {
    INFO("line: " << l);
    REQUIRE_FALSE(l.empty());
    std::smatch m;
    if (l.rfind("# HELP ", 0) == 0) {
      REQUIRE(std::regex_match(l, m, help_re));
      ++helps[m[1]];
    } else if (l.rfind("# TYPE ", 0) == 0) {
      REQUIRE(std::regex_match(l, m, type_re));
      ++types[m[1]];
      type_of[m[1]] = m[2];
      // HELP comes right before TYPE for the same metric.
      CHECK(helps.count(m[1]) == 1);
      current = m[1];
    } else {
      REQUIRE(std::regex_match(l, m, sample_re));
      // Samples follow their own metric's TYPE line, grouped together.
      CHECK(m[1] == current);
      sampled.insert(m[1]);
    }
  }

  REQUIRE_FALSE(helps.empty());
  for (const auto& [name, n] : helps) {
    INFO(name);
    CHECK(n == 1);
    CHECK(types[name] == 1);
    if (type_of[name] == "counter") CHECK(name.size() > 6);
    if (type_of[name] == "counter") CHECK(name.substr(name.size() - 6) == "_total");
  }
  CHECK(helps.size() == types.size());
  // Every declared metric has samples here (all lists are non-empty in this snapshot).
  CHECK(sampled.size() == helps.size());
  CHECK(helps.size() == 3 + rtpx::kNumWorkerEvents + 1 + 9 + 1);
  CHECK(type_of["rtpx_port_link_up"] == "gauge");
  CHECK(type_of["rtpx_worker_rx_packets_total"] == "counter");
  CHECK(type_of["rtpx_uptime_seconds"] == "gauge");
}

TEST_CASE("renderMetrics with no workers, ports or neighbors still declares its metrics",
          "[metrics]") {
  rtpx::StatsSnapshot empty;
  const auto ls = lines(rtpx::renderMetrics(empty, false));
  CHECK(hasLine(ls, "rtpx_uptime_seconds 0.000"));
  CHECK(hasLine(ls, "rtpx_ready 0"));
  CHECK(hasLine(ls, "# TYPE rtpx_worker_drops_total counter"));
  CHECK(hasLine(ls, "rtpx_neighbors{state=\"reachable\"} 0"));
  size_t samples = 0;
  for (const auto& l : ls)
    if (!l.empty() && l[0] != '#') {
      ++samples;
      CHECK((metricName(l) == "rtpx_build_info" || metricName(l) == "rtpx_uptime_seconds" ||
             metricName(l) == "rtpx_ready" || metricName(l) == "rtpx_neighbors"));
    }
  CHECK(samples == 3 + 4);
}

TEST_CASE("neighborStateName names every state", "[metrics]") {
  CHECK(rtpx::neighborStateName(rtpx::NeighborState::kIncomplete) == "incomplete");
  CHECK(rtpx::neighborStateName(rtpx::NeighborState::kReachable) == "reachable");
  CHECK(rtpx::neighborStateName(rtpx::NeighborState::kStale) == "stale");
  CHECK(rtpx::neighborStateName(rtpx::NeighborState::kFailed) == "failed");
  CHECK(rtpx::neighborStateName(rtpx::NeighborState::kNone) == "none");
}

TEST_CASE("renderMetrics escapes label values", "[metrics]") {
  rtpx::StatsSnapshot s = sampleSnapshot();
  s.ports[0].interface = "media\"0\\";
  const auto ls = lines(rtpx::renderMetrics(s, true));
  CHECK(hasLine(ls, R"(rtpx_port_rx_packets_total{interface="media\"0\\",port="0"} 123)"));
}

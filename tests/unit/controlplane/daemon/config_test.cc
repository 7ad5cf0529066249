#include "controlplane/daemon/config.h"

#include <unistd.h>

#include <catch2/catch.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

rtpx::Config parseOk(std::string_view text, const std::vector<std::string>& overrides = {}) {
  absl::StatusOr<rtpx::Config> c = rtpx::parseConfig(text, overrides);
  INFO(c.status().ToString());
  REQUIRE(c.ok());
  return *std::move(c);
}

std::string parseError(std::string_view text, const std::vector<std::string>& overrides = {}) {
  absl::StatusOr<rtpx::Config> c = rtpx::parseConfig(text, overrides);
  REQUIRE_FALSE(c.ok());
  CHECK(c.status().code() == absl::StatusCode::kInvalidArgument);
  return std::string(c.status().message());
}

std::string str(const std::optional<rtpx::IpPrefix>& p) {
  return p ? p->toString() : "(none)";
}
std::string str(const std::optional<rtpx::IpAddr>& a) {
  return a ? a->toString() : "(none)";
}

std::vector<std::string> strs(const std::vector<rtpx::IpPrefix>& v) {
  std::vector<std::string> out;
  for (const auto& p : v) out.push_back(p.toString());
  return out;
}

// Every effective value of two configurations agrees.
void checkSameConfig(const rtpx::Config& a, const rtpx::Config& b) {
  const auto &ea = a.dataplane.eal, &eb = b.dataplane.eal;
  CHECK(ea.main_cpu == eb.main_cpu);
  CHECK(ea.worker_cpus == eb.worker_cpus);
  CHECK(ea.no_huge == eb.no_huge);
  CHECK(ea.memory_mb == eb.memory_mb);
  CHECK(ea.file_prefix == eb.file_prefix);
  CHECK(ea.log_level == eb.log_level);
  CHECK(ea.extra_args == eb.extra_args);
  CHECK(a.dataplane.mbufs_per_socket == b.dataplane.mbufs_per_socket);
  CHECK(a.dataplane.mbuf_cache == b.dataplane.mbuf_cache);
  CHECK(a.dataplane.rx_burst == b.dataplane.rx_burst);
  CHECK(a.dataplane.idle.spin_polls == b.dataplane.idle.spin_polls);
  CHECK(a.dataplane.idle.max_sleep_us == b.dataplane.idle.max_sleep_us);
  CHECK(a.dataplane.neighbor.reachable_ms == b.dataplane.neighbor.reachable_ms);
  CHECK(a.dataplane.neighbor.retrans_ms == b.dataplane.neighbor.retrans_ms);
  CHECK(a.dataplane.neighbor.max_probes == b.dataplane.neighbor.max_probes);
  REQUIRE(a.dataplane.interfaces.size() == b.dataplane.interfaces.size());
  for (size_t i = 0; i < a.dataplane.interfaces.size(); ++i) {
    INFO("interface " << i);
    const auto &ia = a.dataplane.interfaces[i], &ib = b.dataplane.interfaces[i];
    CHECK(ia.name == ib.name);
    CHECK(ia.device == ib.device);
    CHECK(str(ia.ipv4) == str(ib.ipv4));
    CHECK(str(ia.ipv6) == str(ib.ipv6));
    CHECK(strs(ia.extra_ipv4) == strs(ib.extra_ipv4));
    CHECK(strs(ia.extra_ipv6) == strs(ib.extra_ipv6));
    CHECK(str(ia.gateway4) == str(ib.gateway4));
    CHECK(str(ia.gateway6) == str(ib.gateway6));
    CHECK(ia.mtu == ib.mtu);
    CHECK(ia.rx_descriptors == ib.rx_descriptors);
    CHECK(ia.tx_descriptors == ib.tx_descriptors);
  }
  REQUIRE(a.interface_sessions.size() == a.dataplane.interfaces.size());
  REQUIRE(b.interface_sessions.size() == b.dataplane.interfaces.size());
  for (size_t i = 0; i < a.interface_sessions.size(); ++i) {
    INFO("interface " << i);
    CHECK(str(a.interface_sessions[i].advertised_ipv4) ==
          str(b.interface_sessions[i].advertised_ipv4));
    CHECK(str(a.interface_sessions[i].advertised_ipv6) ==
          str(b.interface_sessions[i].advertised_ipv6));
  }
  CHECK(a.dataplane.flow_capacity == b.dataplane.flow_capacity);
  CHECK(a.sessions.port_min == b.sessions.port_min);
  CHECK(a.sessions.port_max == b.sessions.port_max);
  CHECK(a.sessions.no_media_s == b.sessions.no_media_s);
  CHECK(a.sessions.one_sided_s == b.sessions.one_sided_s);
  CHECK(a.sessions.offer_unanswered_s == b.sessions.offer_unanswered_s);
  CHECK(a.sessions.delete_delay_s == b.sessions.delete_delay_s);
  CHECK(a.dev_netns.enabled == b.dev_netns.enabled);
  CHECK(a.dev_netns.ns == b.dev_netns.ns);
  CHECK(a.dev_netns.host_ifname == b.dev_netns.host_ifname);
  CHECK(a.dev_netns.peer_ifname == b.dev_netns.peer_ifname);
  CHECK(str(a.dev_netns.peer_ipv4) == str(b.dev_netns.peer_ipv4));
  CHECK(str(a.dev_netns.peer_ipv6) == str(b.dev_netns.peer_ipv6));
  CHECK(a.dev_netns.remove_on_exit == b.dev_netns.remove_on_exit);
  CHECK(a.grpc_listen == b.grpc_listen);
  CHECK(a.http_listen == b.http_listen);
  CHECK(a.log_level == b.log_level);
}

// Overrides every key of every section.
constexpr std::string_view kFullExample = R"(
[eal]
main_cpu = 2
worker_cpus = [3, 4]
no_huge = false
memory_mb = 1024
file_prefix = "rtpx-lab"
log_level = "debug"
extra_args = ["--in-memory", "--huge-unlink"]

[dataplane]
mbufs_per_socket = 65535
mbuf_cache = 128
rx_burst = 16
idle_spin_polls = 100
idle_max_sleep_us = 200

[neighbor]
reachable_ms = 15000
retrans_ms = 500
max_probes = 5

[[interface]]
name = "uplink"
device = "0000:00:06.0"
ipv4 = "198.51.100.10/25"
ipv6 = "2001:db8:1::10/64"
gateway4 = "198.51.100.1"
gateway6 = "2001:db8:1::1"
advertised_ipv4 = "203.0.113.200"
advertised_ipv6 = "2001:db8:ff::10"
mtu = 9000
rx_descriptors = 2048
tx_descriptors = 512

[[interface]]
device = "net_tap0"
ipv4 = "203.0.113.5/24"

[sessions]
port_min = 20000
port_max = 29999
flow_capacity = 65536
no_media_s = 30
one_sided_s = 0
offer_unanswered_s = 90
delete_delay_s = 5

[dev_netns]
enabled = true
namespace = "lab"
host_ifname = "lab0"
peer_ifname = "lab0-peer"
peer_ipv4 = "203.0.113.1/24"
peer_ipv6 = "2001:db8:2::1/64"
remove_on_exit = false

[grpc]
listen = "0.0.0.0:6000"

[http]
listen = "[::1]:9000"

[log]
level = "debug"
)";

constexpr std::string_view kOneInterface = R"(
[[interface]]
device = "net_af_xdp0,iface=eth1"
ipv4 = "198.51.100.10/24"
)";

}  // namespace

TEST_CASE("defaultConfig is one af_packet interface in the rtpx dev namespace", "[config]") {
  const rtpx::Config c = rtpx::defaultConfig();
  const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  CHECK(c.dataplane.eal.worker_cpus == std::vector<unsigned>{cpus > 1 ? 1u : 0u});
  CHECK(c.dataplane.eal.main_cpu == 0);
  CHECK(c.dataplane.eal.no_huge);
  CHECK(c.dataplane.eal.memory_mb == 256);
  CHECK(c.dataplane.eal.file_prefix == "rtpx");
  CHECK(c.dataplane.eal.log_level == "notice");
  CHECK(c.dataplane.eal.extra_args.empty());

  REQUIRE(c.dataplane.interfaces.size() == 1);
  const rtpx::InterfaceConfig& ifc = c.dataplane.interfaces[0];
  CHECK(ifc.name == "media0");
  CHECK(ifc.device == "net_af_packet0,iface=rtpx0,qpairs=1");
  CHECK(ifc.deviceName() == "net_af_packet0");
  CHECK_FALSE(ifc.isPci());
  CHECK(str(ifc.ipv4) == "192.0.2.2/24");
  CHECK(str(ifc.ipv6) == "2001:db8::2/64");
  CHECK(str(ifc.gateway4) == "192.0.2.1");
  CHECK(str(ifc.gateway6) == "2001:db8::1");
  CHECK(ifc.mtu == 1500);
  CHECK(ifc.rx_descriptors == 1024);
  CHECK(ifc.tx_descriptors == 1024);

  CHECK(c.dev_netns.enabled);
  CHECK(c.dev_netns.ns == "rtpx");
  CHECK(c.dev_netns.host_ifname == "rtpx0");
  CHECK(c.dev_netns.peer_ifname == "rtpx0-peer");
  CHECK(str(c.dev_netns.peer_ipv4) == "192.0.2.1/24");
  CHECK(str(c.dev_netns.peer_ipv6) == "2001:db8::1/64");
  CHECK(c.dev_netns.remove_on_exit);

  CHECK(c.grpc_listen == "127.0.0.1:50051");
  CHECK(c.http_listen == "127.0.0.1:9911");
  CHECK(c.log_level == "info");
  CHECK(c.dataplane.mbufs_per_socket == 16383);
  CHECK(c.dataplane.mbuf_cache == 256);
  CHECK(c.dataplane.rx_burst == 32);
  CHECK(c.dataplane.idle.spin_polls == 2000);
  CHECK(c.dataplane.idle.max_sleep_us == 500);
  CHECK(c.dataplane.neighbor.reachable_ms == 30000);
  CHECK(c.dataplane.neighbor.retrans_ms == 1000);
  CHECK(c.dataplane.neighbor.max_probes == 3);

  REQUIRE(c.interface_sessions.size() == 1);
  CHECK(str(c.interface_sessions[0].advertised_ipv4) == "(none)");
  CHECK(str(c.interface_sessions[0].advertised_ipv6) == "(none)");
  CHECK(c.sessions.port_min == 30000);
  CHECK(c.sessions.port_max == 39999);
  CHECK(c.dataplane.flow_capacity == 262144);
  CHECK(c.sessions.no_media_s == 60);
  CHECK(c.sessions.one_sided_s == 60);
  CHECK(c.sessions.offer_unanswered_s == 120);
  CHECK(c.sessions.delete_delay_s == 0);
}

TEST_CASE("parseConfig of empty text is the default configuration", "[config]") {
  checkSameConfig(parseOk(""), rtpx::defaultConfig());
  checkSameConfig(parseOk("# only a comment\n\n"), rtpx::defaultConfig());
}

TEST_CASE("parseConfig applies every section of a full example", "[config]") {
  const rtpx::Config c = parseOk(kFullExample);
  const auto& e = c.dataplane.eal;
  CHECK(e.main_cpu == 2);
  CHECK(e.worker_cpus == std::vector<unsigned>{3, 4});
  CHECK_FALSE(e.no_huge);
  CHECK(e.memory_mb == 1024);
  CHECK(e.file_prefix == "rtpx-lab");
  CHECK(e.log_level == "debug");
  CHECK(e.extra_args == std::vector<std::string>{"--in-memory", "--huge-unlink"});

  CHECK(c.dataplane.mbufs_per_socket == 65535);
  CHECK(c.dataplane.mbuf_cache == 128);
  CHECK(c.dataplane.rx_burst == 16);
  CHECK(c.dataplane.idle.spin_polls == 100);
  CHECK(c.dataplane.idle.max_sleep_us == 200);
  CHECK(c.dataplane.neighbor.reachable_ms == 15000);
  CHECK(c.dataplane.neighbor.retrans_ms == 500);
  CHECK(c.dataplane.neighbor.max_probes == 5);

  REQUIRE(c.dataplane.interfaces.size() == 2);
  const auto& up = c.dataplane.interfaces[0];
  CHECK(up.name == "uplink");
  CHECK(up.device == "0000:00:06.0");
  CHECK(up.isPci());
  CHECK(str(up.ipv4) == "198.51.100.10/25");
  CHECK(str(up.ipv6) == "2001:db8:1::10/64");
  CHECK(str(up.gateway4) == "198.51.100.1");
  CHECK(str(up.gateway6) == "2001:db8:1::1");
  CHECK(up.mtu == 9000);
  CHECK(up.rx_descriptors == 2048);
  CHECK(up.tx_descriptors == 512);
  // The second interface takes defaults for everything it does not say, and no default
  // addresses from the built-in interface.
  const auto& tap = c.dataplane.interfaces[1];
  CHECK(tap.name == "media1");
  CHECK(tap.device == "net_tap0");
  CHECK(tap.deviceName() == "net_tap0");
  CHECK(str(tap.ipv4) == "203.0.113.5/24");
  CHECK(str(tap.ipv6) == "(none)");
  CHECK(str(tap.gateway4) == "(none)");
  CHECK(str(tap.gateway6) == "(none)");
  CHECK(tap.mtu == 1500);
  CHECK(tap.rx_descriptors == 1024);
  CHECK(tap.tx_descriptors == 1024);
  REQUIRE(c.interface_sessions.size() == 2);
  CHECK(str(c.interface_sessions[0].advertised_ipv4) == "203.0.113.200");
  CHECK(str(c.interface_sessions[0].advertised_ipv6) == "2001:db8:ff::10");
  CHECK(str(c.interface_sessions[1].advertised_ipv4) == "(none)");
  CHECK(str(c.interface_sessions[1].advertised_ipv6) == "(none)");

  CHECK(c.sessions.port_min == 20000);
  CHECK(c.sessions.port_max == 29999);
  CHECK(c.dataplane.flow_capacity == 65536);
  CHECK(c.sessions.no_media_s == 30);
  CHECK(c.sessions.one_sided_s == 0);
  CHECK(c.sessions.offer_unanswered_s == 90);
  CHECK(c.sessions.delete_delay_s == 5);

  CHECK(c.dev_netns.enabled);
  CHECK(c.dev_netns.ns == "lab");
  CHECK(c.dev_netns.host_ifname == "lab0");
  CHECK(c.dev_netns.peer_ifname == "lab0-peer");
  CHECK(str(c.dev_netns.peer_ipv4) == "203.0.113.1/24");
  CHECK(str(c.dev_netns.peer_ipv6) == "2001:db8:2::1/64");
  CHECK_FALSE(c.dev_netns.remove_on_exit);
  CHECK(c.grpc_listen == "0.0.0.0:6000");
  CHECK(c.http_listen == "[::1]:9000");
  CHECK(c.log_level == "debug");
}

TEST_CASE("An [[interface]] list disables the dev namespace unless it is enabled explicitly",
          "[config]") {
  SECTION("interface only") {
    const rtpx::Config c = parseOk(kOneInterface);
    CHECK_FALSE(c.dev_netns.enabled);
    REQUIRE(c.dataplane.interfaces.size() == 1);
    CHECK(c.dataplane.interfaces[0].name == "media0");
    CHECK(c.dataplane.interfaces[0].device == "net_af_xdp0,iface=eth1");
    CHECK(str(c.dataplane.interfaces[0].ipv6) == "(none)");
    // Other dev_netns settings keep their defaults.
    CHECK(c.dev_netns.ns == "rtpx");
  }
  SECTION("explicitly enabled") {
    const rtpx::Config c = parseOk(std::string(kOneInterface) + "[dev_netns]\nenabled = true\n");
    CHECK(c.dev_netns.enabled);
  }
  SECTION("dev_netns section before the interface in the file") {
    const rtpx::Config c =
        parseOk(std::string("[dev_netns]\nenabled = true\n") + std::string(kOneInterface));
    CHECK(c.dev_netns.enabled);
  }
  SECTION("dev_netns section without enabled") {
    const rtpx::Config c =
        parseOk(std::string(kOneInterface) + "[dev_netns]\nnamespace = \"other\"\n");
    CHECK_FALSE(c.dev_netns.enabled);
    CHECK(c.dev_netns.ns == "other");
  }
  SECTION("no interface list keeps it enabled") {
    CHECK(parseOk("[grpc]\nlisten = \"127.0.0.1:1\"\n").dev_netns.enabled);
  }
  SECTION("disabled without an interface list") {
    const rtpx::Config c = parseOk("[dev_netns]\nenabled = false\n");
    CHECK_FALSE(c.dev_netns.enabled);
    CHECK(c.dataplane.interfaces.size() == 1);
  }
}

TEST_CASE("Command-line overrides apply on top of the file", "[config][overrides]") {
  SECTION("quoted TOML string") {
    const rtpx::Config c = parseOk("", {"grpc.listen=\"0.0.0.0:1\""});
    CHECK(c.grpc_listen == "0.0.0.0:1");
  }
  SECTION("bare word is taken as a string") {
    const rtpx::Config c =
        parseOk("", {"log.level=debug", "http.listen=0.0.0.0:8080", "grpc.listen=[::1]:6000"});
    CHECK(c.log_level == "debug");
    CHECK(c.http_listen == "0.0.0.0:8080");
    CHECK(c.grpc_listen == "[::1]:6000");
  }
  SECTION("integer") {
    const rtpx::Config c = parseOk("", {"neighbor.max_probes=7"});
    CHECK(c.dataplane.neighbor.max_probes == 7);
    CHECK(c.dataplane.neighbor.reachable_ms == 30000);
  }
  SECTION("boolean and array") {
    const rtpx::Config c = parseOk("", {"dev_netns.enabled=false", "eal.worker_cpus=[2, 3]"});
    CHECK_FALSE(c.dev_netns.enabled);
    CHECK(c.dataplane.eal.worker_cpus == std::vector<unsigned>{2, 3});
  }
  SECTION("merges with the file's section and wins over it") {
    const rtpx::Config c =
        parseOk("[neighbor]\nreachable_ms = 5000\nmax_probes = 2\n[grpc]\nlisten = \"a:1\"\n",
                {"neighbor.max_probes=9", "grpc.listen=\"b:2\""});
    CHECK(c.dataplane.neighbor.reachable_ms == 5000);
    CHECK(c.dataplane.neighbor.max_probes == 9);
    CHECK(c.grpc_listen == "b:2");
  }
  SECTION("later overrides win") {
    const rtpx::Config c = parseOk("", {"log.level=warn", "log.level=error"});
    CHECK(c.log_level == "error");
  }
  SECTION("override without section.key=value") {
    const std::string msg = parseError("", {"loglevel=debug"});
    CHECK_THAT(msg, Catch::Contains("loglevel=debug"));
    CHECK_THAT(msg, Catch::Contains("section.key=value"));
    CHECK_THAT(parseError("", {"log.level"}), Catch::Contains("section.key=value"));
  }
  SECTION("override of the wrong type names the key") {
    CHECK_THAT(parseError("", {"neighbor.max_probes=\"many\""}),
               Catch::Contains("neighbor.max_probes"));
  }
  SECTION("override with an out-of-range value names the key") {
    CHECK_THAT(parseError("", {"neighbor.max_probes=0"}), Catch::Contains("neighbor.max_probes"));
  }
  SECTION("override of an unknown key names it") {
    CHECK_THAT(parseError("", {"grpc.port=1"}), Catch::Contains("grpc.port"));
  }
}

TEST_CASE("Unknown sections and keys are rejected with their name", "[config][errors]") {
  SECTION("unknown section") {
    const std::string msg = parseError("[metrics]\nlisten = \"x\"\n");
    CHECK_THAT(msg, Catch::Contains("'metrics'"));
    CHECK_THAT(msg, Catch::Contains("unknown section"));
  }
  SECTION("unknown top-level key") {
    CHECK_THAT(parseError("verbose = true\n"), Catch::Contains("'verbose'"));
  }
  SECTION("unknown key in a section") {
    const std::string msg = parseError("[grpc]\nlisten = \"x:1\"\nlistne = \"y:2\"\n");
    CHECK_THAT(msg, Catch::Contains("grpc.listne"));
    CHECK_THAT(msg, Catch::Contains("unknown key"));
    CHECK_THAT(msg, Catch::Contains("listen"));
  }
  SECTION("unknown key in an interface") {
    const std::string msg = parseError(std::string(kOneInterface) +
                                       "[[interface]]\ndevice = \"net_tap0\"\n"
                                       "ipv4 = \"192.0.2.9/24\"\nspeed = 10\n");
    CHECK_THAT(msg, Catch::Contains("interface[1].speed"));
  }
  SECTION("section given as a plain value") {
    CHECK_THAT(parseError("grpc = \"0.0.0.0:1\"\n"), Catch::Contains("grpc"));
  }
  SECTION("[interface] as a single table") {
    CHECK_THAT(parseError("[interface]\ndevice = \"net_tap0\"\nipv4 = \"192.0.2.9/24\"\n"),
               Catch::Contains("[[interface]]"));
  }
}

TEST_CASE("Values of the wrong type are rejected with the key", "[config][errors]") {
  CHECK_THAT(parseError("[neighbor]\nreachable_ms = \"fast\"\n"),
             Catch::Contains("neighbor.reachable_ms"));
  CHECK_THAT(parseError("[eal]\nno_huge = \"no\"\n"), Catch::Contains("eal.no_huge"));
  CHECK_THAT(parseError("[grpc]\nlisten = 50051\n"), Catch::Contains("grpc.listen"));
  CHECK_THAT(parseError("[eal]\nextra_args = \"--in-memory\"\n"),
             Catch::Contains("eal.extra_args"));
  CHECK_THAT(parseError("[eal]\nextra_args = [1]\n"), Catch::Contains("eal.extra_args"));
  CHECK_THAT(parseError("[eal]\nworker_cpus = 1\n"), Catch::Contains("eal.worker_cpus"));
  CHECK_THAT(parseError("[eal]\nworker_cpus = []\n"), Catch::Contains("eal.worker_cpus"));
  CHECK_THAT(parseError("[dataplane]\nrx_burst = 1.5\n"), Catch::Contains("dataplane.rx_burst"));
  CHECK_THAT(parseError("[dev_netns]\nenabled = \"yes\"\n"), Catch::Contains("dev_netns.enabled"));
  CHECK_THAT(parseError(std::string(kOneInterface) + "mtu = \"1500\"\n"),
             Catch::Contains("interface[0].mtu"));
}

TEST_CASE("Out-of-range numbers are rejected with the key and the range", "[config][errors]") {
  std::string msg = parseError("[dataplane]\nrx_burst = 65\n");
  CHECK_THAT(msg, Catch::Contains("dataplane.rx_burst"));
  CHECK_THAT(msg, Catch::Contains("[1, 64]"));
  CHECK_THAT(parseError("[dataplane]\nrx_burst = 0\n"), Catch::Contains("dataplane.rx_burst"));
  CHECK_THAT(parseError("[neighbor]\nreachable_ms = 999\n"),
             Catch::Contains("neighbor.reachable_ms"));
  CHECK_THAT(parseError("[eal]\nmain_cpu = -1\n"), Catch::Contains("eal.main_cpu"));
  CHECK_THAT(parseError("[eal]\nworker_cpus = [1, 1024]\n"), Catch::Contains("eal.worker_cpus"));
  msg = parseError(std::string(kOneInterface) + "mtu = 100\n");
  CHECK_THAT(msg, Catch::Contains("interface[0].mtu"));
  CHECK_THAT(msg, Catch::Contains("[576, 9000]"));
  CHECK_THAT(parseError(std::string(kOneInterface) + "rx_descriptors = 70000\n"),
             Catch::Contains("interface[0].rx_descriptors"));
  // Boundaries are inclusive.
  CHECK(parseOk("[dataplane]\nrx_burst = 64\n").dataplane.rx_burst == 64);
  CHECK(parseOk("[dataplane]\nrx_burst = 1\n").dataplane.rx_burst == 1);
}

TEST_CASE("Bad addresses are rejected with the key", "[config][errors]") {
  const std::string dev = "[[interface]]\ndevice = \"net_tap0\"\n";
  std::string msg = parseError(dev + "ipv4 = \"192.0.2.300/24\"\n");
  CHECK_THAT(msg, Catch::Contains("interface[0].ipv4"));
  CHECK_THAT(msg, Catch::Contains("192.0.2.300/24"));
  CHECK_THAT(parseError(dev + "ipv4 = \"192.0.2.3\"\n"), Catch::Contains("interface[0].ipv4"));
  CHECK_THAT(parseError(dev + "ipv4 = \"2001:db8::2/64\"\n"), Catch::Contains("interface[0].ipv4"));
  CHECK_THAT(parseError(dev + "ipv6 = \"192.0.2.3/24\"\n"), Catch::Contains("interface[0].ipv6"));
  CHECK_THAT(parseError(dev + "ipv6 = \"2001:db8::2/129\"\n"),
             Catch::Contains("interface[0].ipv6"));
  CHECK_THAT(parseError(dev + "ipv4 = \"192.0.2.3/24\"\ngateway4 = \"192.0.2\"\n"),
             Catch::Contains("interface[0].gateway4"));
  CHECK_THAT(parseError(dev + "ipv4 = \"192.0.2.3/24\"\ngateway6 = \"192.0.2.1\"\n"),
             Catch::Contains("interface[0].gateway6"));
  CHECK_THAT(parseError("[dev_netns]\npeer_ipv6 = \"192.0.2.1/24\"\n"),
             Catch::Contains("dev_netns.peer_ipv6"));
  CHECK_THAT(parseError("[dev_netns]\npeer_ipv4 = \"nowhere\"\n"),
             Catch::Contains("dev_netns.peer_ipv4"));
}

TEST_CASE("Interfaces need a device and an address", "[config][errors]") {
  std::string msg =
      parseError(std::string(kOneInterface) + "[[interface]]\nipv4 = \"192.0.2.9/24\"\n");
  CHECK_THAT(msg, Catch::Contains("interface[1].device"));
  CHECK_THAT(msg, Catch::Contains("required"));
  msg = parseError("[[interface]]\ndevice = \"net_tap0\"\n");
  CHECK_THAT(msg, Catch::Contains("interface[0]"));
  CHECK_THAT(msg, Catch::Contains("ipv4 or ipv6"));
  CHECK_THAT(parseError("[[interface]]\ndevice = \"net_tap0\"\nipv4 = \"\"\n"),
             Catch::Contains("interface[0]"));
}

TEST_CASE("Other semantic errors", "[config][errors]") {
  std::string msg = parseError("[log]\nlevel = \"verbose\"\n");
  CHECK_THAT(msg, Catch::Contains("log.level"));
  CHECK_THAT(msg, Catch::Contains("'verbose'"));
  CHECK_THAT(parseError("[dev_netns]\nhost_ifname = \"a-very-long-name0\"\n"),
             Catch::Contains("dev_netns"));
}

TEST_CASE("TOML syntax errors report the line", "[config][errors]") {
  std::string msg = parseError("[log]\nlevel = \"info\"\n[grpc\nlisten = \"x\"\n");
  CHECK_THAT(msg, Catch::Contains("line 3"));
  msg = parseError("# comment\n\n\n[neighbor]\nmax_probes = = 3\n");
  CHECK_THAT(msg, Catch::Contains("line 5"));
  msg = parseError("[grpc]\nlisten = \"unterminated\n");
  CHECK_THAT(msg, Catch::Contains("line 2"));
}

TEST_CASE("Empty address strings clear the address", "[config]") {
  const rtpx::Config c = parseOk(
      "[[interface]]\ndevice = \"net_tap0\"\nipv4 = \"192.0.2.9/24\"\nipv6 = \"\"\n"
      "gateway4 = \"\"\n[dev_netns]\npeer_ipv4 = \"\"\n");
  REQUIRE(c.dataplane.interfaces.size() == 1);
  CHECK(str(c.dataplane.interfaces[0].ipv6) == "(none)");
  CHECK(str(c.dataplane.interfaces[0].gateway4) == "(none)");
  CHECK(str(c.dev_netns.peer_ipv4) == "(none)");
  CHECK(str(c.dev_netns.peer_ipv6) == "2001:db8::1/64");
}

TEST_CASE("toToml output re-parses to the same configuration", "[config][totoml]") {
  SECTION("default") {
    const rtpx::Config c = rtpx::defaultConfig();
    const std::string text = rtpx::toToml(c);
    INFO(text);
    const rtpx::Config back = parseOk(text);
    checkSameConfig(back, c);
    CHECK(back.dev_netns.enabled);  // written out explicitly, so the interface list keeps it
  }
  SECTION("full example") {
    const rtpx::Config c = parseOk(kFullExample);
    const std::string text = rtpx::toToml(c);
    INFO(text);
    checkSameConfig(parseOk(text), c);
  }
  SECTION("interface list with the dev namespace off") {
    const rtpx::Config c = parseOk(kOneInterface);
    REQUIRE_FALSE(c.dev_netns.enabled);
    const std::string text = rtpx::toToml(c);
    INFO(text);
    checkSameConfig(parseOk(text), c);
  }
  SECTION("after overrides") {
    const rtpx::Config c = parseOk(kFullExample, {"log.level=trace", "neighbor.max_probes=1"});
    const std::string text = rtpx::toToml(c);
    INFO(text);
    const rtpx::Config back = parseOk(text);
    checkSameConfig(back, c);
    CHECK(back.log_level == "trace");
    CHECK(back.dataplane.neighbor.max_probes == 1);
  }
}

TEST_CASE("An interface takes several addresses: an array or a range", "[config][addresses]") {
  const std::string dev = "[[interface]]\ndevice = \"net_tap0\"\n";
  SECTION("arrays of each family") {
    const rtpx::Config c = parseOk(dev +
                                   "ipv4 = [\"10.99.0.2/24\", \"10.99.0.3/24\", \"10.98.0.9/16\"]\n"
                                   "ipv6 = [\"2001:db8::2/64\", \"2001:db8::3/64\"]\n");
    const rtpx::InterfaceConfig& i = c.dataplane.interfaces[0];
    CHECK(str(i.ipv4) == "10.99.0.2/24");
    CHECK(strs(i.extra_ipv4) == std::vector<std::string>{"10.99.0.3/24", "10.98.0.9/16"});
    CHECK(str(i.ipv6) == "2001:db8::2/64");
    CHECK(strs(i.extra_ipv6) == std::vector<std::string>{"2001:db8::3/64"});
    checkSameConfig(c, parseOk(rtpx::toToml(c)));
    CHECK_THAT(rtpx::toToml(c), Catch::Contains("10.98.0.9/16"));
  }
  SECTION("a one-element array and a single string mean the same") {
    const rtpx::Config a = parseOk(dev + "ipv4 = [\"10.99.0.2/24\"]\n");
    const rtpx::Config b = parseOk(dev + "ipv4 = \"10.99.0.2/24\"\n");
    checkSameConfig(a, b);
    CHECK(a.dataplane.interfaces[0].extra_ipv4.empty());
  }
  SECTION("ranges count up the last 32 bits") {
    const rtpx::Config c = parseOk(dev +
                                   "ipv4 = \"10.99.0.254-10.99.1.1/23\"\n"
                                   "ipv6 = [\"2001:db8::1:fffe-2001:db8::2:1/64\", "
                                   "\"2001:db8::1:2/64\"]\n");
    const rtpx::InterfaceConfig& i = c.dataplane.interfaces[0];
    CHECK(str(i.ipv4) == "10.99.0.254/23");
    CHECK(strs(i.extra_ipv4) ==
          std::vector<std::string>{"10.99.0.255/23", "10.99.1.0/23", "10.99.1.1/23"});
    CHECK(str(i.ipv6) == "2001:db8::1:fffe/64");
    CHECK(strs(i.extra_ipv6) == std::vector<std::string>{"2001:db8::1:ffff/64", "2001:db8::2:0/64",
                                                         "2001:db8::2:1/64", "2001:db8::1:2/64"});
    checkSameConfig(c, parseOk(rtpx::toToml(c)));
  }
  SECTION("errors name the key") {
    for (const char* bad : {
             "ipv4 = [\"10.99.0.2/24\", \"2001:db8::2/64\"]",  // wrong family
             "ipv4 = [\"10.99.0.2/24\", 7]",                   // not a string
             "ipv4 = [\"10.99.0.2/24\", \"10.99.0.2/24\"]",    // twice
             "ipv4 = \"10.99.0.2-10.99.0.1/24\"",              // backwards
             "ipv4 = \"10.99.0.2-10.99.1.2/24\"",              // leaves the prefix
             "ipv4 = \"10.99.0.1-10.99.0.40/24\"",             // too many
             "ipv4 = \"10.99.0.1-2001:db8::2/24\"",            // mixed
             "ipv6 = \"2001:db8::1-2001:db9::2/64\"",          // beyond the last 32 bits
             "ipv4 = 7",
         }) {
      INFO(bad);
      const std::string msg = parseError(dev + bad + "\n");
      CHECK_THAT(msg, Catch::Contains(std::string("interface[0].ipv") + bad[3]));
    }
  }
  SECTION("an advertised address stands for a single local one") {
    CHECK_THAT(parseError(dev + "ipv4 = [\"10.99.0.2/24\", \"10.99.0.3/24\"]\n"
                                "advertised_ipv4 = \"203.0.113.10\"\n"),
               Catch::Contains("advertised_ipv4: only with a single ipv4 address"));
  }
}

TEST_CASE("toToml round-trips cleared dev_netns peer addresses", "[config][totoml]") {
  const rtpx::Config c = parseOk("[dev_netns]\npeer_ipv4 = \"\"\npeer_ipv6 = \"\"\n");
  REQUIRE(str(c.dev_netns.peer_ipv4) == "(none)");
  REQUIRE(str(c.dev_netns.peer_ipv6) == "(none)");
  const rtpx::Config back = parseOk(rtpx::toToml(c));
  CHECK(str(back.dev_netns.peer_ipv4) == "(none)");
  CHECK(str(back.dev_netns.peer_ipv6) == "(none)");
}

TEST_CASE("Booleans and integers are not interchangeable", "[config][errors]") {
  for (const char* text : {"[eal]\nno_huge = 0\n", "[dataplane]\nrx_burst = true\n",
                           "[eal]\nworker_cpus = [true]\n", "[neighbor]\nmax_probes = 5.0\n"}) {
    INFO(text);
    const absl::StatusOr<rtpx::Config> c = rtpx::parseConfig(text);
    CHECK_FALSE(c.ok());
  }
}

TEST_CASE("[sessions] keys and advertised addresses", "[config][sessions]") {
  SECTION("overrides") {
    const rtpx::Config c = parseOk("", {"sessions.port_min=40000", "sessions.port_max=40099",
                                        "sessions.no_media_s=0", "sessions.flow_capacity=1024"});
    CHECK(c.sessions.port_min == 40000);
    CHECK(c.sessions.port_max == 40099);
    CHECK(c.sessions.no_media_s == 0);
    CHECK(c.dataplane.flow_capacity == 1024);
    CHECK(c.sessions.one_sided_s == 60);
  }
  SECTION("a range without an RTP/RTCP pair") {
    std::string msg = parseError("[sessions]\nport_min = 30000\nport_max = 30000\n");
    CHECK_THAT(msg, Catch::Contains("sessions"));
    CHECK_THAT(msg, Catch::Contains("30000-30000"));
    // Checked after overrides too, whichever bound moved.
    CHECK_THAT(parseError("", {"sessions.port_min=45000"}), Catch::Contains("45000-39999"));
    CHECK(parseOk("[sessions]\nport_min = 30001\nport_max = 30003\n").sessions.port_min == 30001);
  }
  SECTION("out of range and wrong types name the key") {
    CHECK_THAT(parseError("[sessions]\nport_min = 0\n"), Catch::Contains("sessions.port_min"));
    CHECK_THAT(parseError("[sessions]\nport_max = 65536\n"), Catch::Contains("sessions.port_max"));
    CHECK_THAT(parseError("[sessions]\nflow_capacity = 10\n"),
               Catch::Contains("sessions.flow_capacity"));
    CHECK_THAT(parseError("[sessions]\nno_media_s = -1\n"), Catch::Contains("sessions.no_media_s"));
    CHECK_THAT(parseError("[sessions]\ndelete_delay_s = \"5s\"\n"),
               Catch::Contains("sessions.delete_delay_s"));
    CHECK_THAT(parseError("[sessions]\ntimeout = 5\n"), Catch::Contains("sessions.timeout"));
    CHECK_THAT(parseError("sessions = 1\n"), Catch::Contains("sessions"));
  }
  SECTION("advertised addresses need the local address of their family") {
    const std::string dev = "[[interface]]\ndevice = \"net_tap0\"\nipv4 = \"10.0.0.5/24\"\n";
    const rtpx::Config c = parseOk(dev + "advertised_ipv4 = \"203.0.113.9\"\n");
    REQUIRE(c.interface_sessions.size() == 1);
    CHECK(str(c.interface_sessions[0].advertised_ipv4) == "203.0.113.9");
    std::string msg = parseError(dev + "advertised_ipv6 = \"2001:db8::9\"\n");
    CHECK_THAT(msg, Catch::Contains("interface[0].advertised_ipv6"));
    CHECK_THAT(msg, Catch::Contains("needs ipv6"));
    CHECK_THAT(parseError(dev + "advertised_ipv4 = \"2001:db8::9\"\n"),
               Catch::Contains("interface[0].advertised_ipv4"));
    CHECK_THAT(parseError(dev + "advertised_ipv4 = \"203.0.113\"\n"),
               Catch::Contains("interface[0].advertised_ipv4"));
  }
  SECTION("toToml writes them back") {
    const rtpx::Config c = parseOk(
        "[[interface]]\ndevice = \"net_tap0\"\nipv4 = \"10.0.0.5/24\"\n"
        "advertised_ipv4 = \"203.0.113.9\"\n[sessions]\ndelete_delay_s = 2\n");
    const std::string text = rtpx::toToml(c);
    INFO(text);
    CHECK_THAT(text, Catch::Contains("advertised_ipv4 = '203.0.113.9'"));
    CHECK_THAT(text, Catch::Contains("delete_delay_s = 2"));
    checkSameConfig(parseOk(text), c);
  }
}

// rtpxd's configuration: one TOML file (every key defaulted; see tools/rtpxd.toml for the
// commented example) plus command-line overrides. With no file at all rtpxd runs its embedded
// default: one worker on net_af_packet over a veth pair whose peer sits in namespace `rtpx`.
#pragma once

#include <absl/status/statusor.h>

#include <optional>
#include <string>
#include <vector>

#include "dataplane/config.h"

namespace rtpx {

struct DevNetnsConfig {
  bool enabled = true;
  std::string ns = "rtpx";
  std::string host_ifname = "rtpx0";
  std::string peer_ifname = "rtpx0-peer";
  std::optional<IpPrefix> peer_ipv4 = IpPrefix::parse("192.0.2.1/24");
  std::optional<IpPrefix> peer_ipv6 = IpPrefix::parse("2001:db8::1/64");
  bool remove_on_exit = true;
};

// [sessions]: media ports, flow table size and session timeouts (DESIGN.md §4).
struct SessionsConfig {
  // RTP/RTCP pairs come from [port_min, port_max] on every interface (RTP even, RTCP + 1).
  uint16_t port_min = 30000;
  uint16_t port_max = 39999;
  // (sessions.flow_capacity is DataplaneConfig::flow_capacity: the table is the dataplane's.)
  // Timeouts in seconds; 0 disables the first three. delete_delay_s is the default delay of a
  // delete request (0 = at once).
  uint32_t no_media_s = 60;           // answered, and no packet from either side for this long
  uint32_t one_sided_s = 60;          // packets from one side only for this long (event only)
  uint32_t offer_unanswered_s = 120;  // an offer that never got an answer
  uint32_t delete_delay_s = 0;
  // Load limits on new calls (0 = none): past them an offer for a new call is refused with
  // "load limit" (NG) / UNAVAILABLE (gRPC), so a softswitch tries another node.
  uint32_t max_sessions = 0;
  uint32_t max_load = 0;  // 1-minute load average x 100 (rtpengine's load-limit)
};

// Per [[interface]] session settings the dataplane does not need: the addresses written into
// SDP when they differ from the local ones (AWS: private local address, Elastic IP advertised).
struct InterfaceSessionConfig {
  std::optional<IpAddr> advertised_ipv4;
  std::optional<IpAddr> advertised_ipv6;
};

struct Config {
  DataplaneConfig dataplane;
  // One entry per dataplane.interfaces entry, same order.
  std::vector<InterfaceSessionConfig> interface_sessions{InterfaceSessionConfig{}};
  SessionsConfig sessions;
  DevNetnsConfig dev_netns;
  std::string grpc_listen = "127.0.0.1:50051";
  std::string http_listen = "127.0.0.1:9911";
  // rtpengine's NG control protocol (bencode over UDP), for Kamailio/OpenSIPS; "" = off.
  std::string ng_listen = "127.0.0.1:2223";
  std::string log_level = "info";
};

// The embedded default (for this machine's CPU count).
Config defaultConfig();

// Parses TOML text over the defaults. `overrides` are "section.key=value" strings applied on
// top (value in TOML syntax; a bare word is taken as a string). Errors name the key and say
// what is allowed.
absl::StatusOr<Config> parseConfig(std::string_view toml_text,
                                   const std::vector<std::string>& overrides = {});
absl::StatusOr<Config> loadConfigFile(const std::string& path,
                                      const std::vector<std::string>& overrides = {});

// The effective configuration as TOML (rtpxd --print-config).
std::string toToml(const Config& c);

}  // namespace rtpx

// rtpxd's configuration: one TOML file (every key defaulted; see tools/rtpxd.toml for the
// commented example) plus command-line overrides. With no file at all rtpxd runs its embedded
// default: one worker on net_af_packet over a veth pair whose peer sits in namespace `rtpx`.
#pragma once

#include <absl/status/statusor.h>

#include <optional>
#include <string>
#include <vector>

#include "controlplane/core/session_config.h"
#include "controlplane/core/session_manager.h"
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

// The interfaces of `cfg` as sessions see them, with DPDK port ids from `port_ids` (by
// interface index).
std::vector<SessionInterface> sessionInterfaces(const Config& cfg,
                                                const std::vector<uint16_t>& port_ids);

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

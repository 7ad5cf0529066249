// Plain configuration of the dataplane. The control plane fills it (from TOML and the command
// line) and validates it; the dataplane only reads it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "dataplane/net_types.h"

namespace rtpx {

struct EalConfig {
  unsigned main_cpu = 0;
  std::vector<unsigned> worker_cpus{1};  // one worker lcore per entry, pinned to that CPU
  bool no_huge = true;                   // malloc'd memory instead of hugepages (dev/CI)
  unsigned memory_mb = 256;              // -m; 0 lets EAL decide (hugepage deployments)
  std::string file_prefix = "rtpx";      // distinct per instance on one host
  std::string log_level = "notice";      // EAL's own log level
  std::vector<std::string> extra_args;   // passed to rte_eal_init verbatim
};

struct InterfaceConfig {
  std::string name = "media0";
  // A virtual device with its arguments ("net_af_packet0,iface=rtpx0,qpairs=1",
  // "net_af_xdp0,iface=eth1", "net_tap0", "net_memif0,role=client") or a PCI address
  // ("0000:00:06.0") of a port bound to vfio-pci.
  std::string device;
  // The first address of each family, then the others (TOML: a string or an array).
  std::optional<IpPrefix> ipv4;
  std::optional<IpPrefix> ipv6;
  std::vector<IpPrefix> extra_ipv4;  // only with ipv4 set
  std::vector<IpPrefix> extra_ipv6;  // only with ipv6 set
  std::optional<IpAddr> gateway4;
  std::optional<IpAddr> gateway6;
  uint16_t mtu = 1500;
  uint16_t rx_descriptors = 1024;
  uint16_t tx_descriptors = 1024;

  bool isPci() const { return device.rfind("net_", 0) != 0; }
  std::string deviceName() const { return device.substr(0, device.find(',')); }
};

struct IdleConfig {
  // Empty polls before the worker starts to sleep; under load it never gets there.
  uint32_t spin_polls = 2000;
  // ... and time without a packet before it sleeps (both must pass). A sleep costs far more
  // than it asks for (measured in the dev VM: nanosleep(1 µs) returns after 69 µs median,
  // 97 µs p99, timer slack and wake-up), so a worker that slept in the gaps of light traffic
  // (2000 polls pass in tens of µs) added that to the packets arriving during it: p99 101-145 µs
  // at 50 k pps. Traffic with gaps under this never meets a sleep.
  uint32_t spin_us = 1000;
  // Never sleep: the lowest latency, for a core given to the worker alone (production).
  bool busy_poll = false;
  // Sleeps double from 1 µs up to this; it bounds the extra latency of the first packet
  // after an idle period (a loaded worker never sleeps). Each wake-up is a context switch:
  // measured in a VM, 200 µs cost 14% of a core idle, 500 µs about 6%.
  uint32_t max_sleep_us = 500;
};

struct NeighborConfig {
  uint32_t reachable_ms = 30000;  // RFC 4861 REACHABLE_TIME
  uint32_t retrans_ms = 1000;     // RFC 4861 RETRANS_TIMER
  uint32_t max_probes = 3;        // then FAILED; retried every reachable_ms, or at once
                                  // (≤ 1 per retrans_ms) when media needs it
};

// STUN and DTLS on media ports (RFC 7983) go to the control plane through a ring per worker,
// never through the relay (dataplane/slow_path.h).
struct SlowPathConfig {
  // Per flow: sustained packets per second, and how many at once. An ICE agent paces its
  // checks (RFC 8445: Ta 50 ms by default) and a DTLS flight is a handful of datagrams;
  // a flood of either from one source costs at most this much control-plane work.
  uint32_t rate_pps = 50;
  uint32_t burst = 20;
  // Per worker: packets waiting for the control plane (1536 bytes each; the ring takes the
  // next power of two above this: 512 slots, 768 KiB); more are dropped as slowpath_ring_full.
  uint32_t ring_size = 511;
};

struct DataplaneConfig {
  EalConfig eal;
  std::vector<InterfaceConfig> interfaces;
  uint32_t mbufs_per_socket = 16383;
  uint32_t mbuf_cache = 256;
  uint16_t rx_burst = 32;
  uint32_t flow_capacity = 262144;  // media directions (two per stream, RTP and RTCP separate)
  IdleConfig idle;
  NeighborConfig neighbor;
  SlowPathConfig slow_path;
};

}  // namespace rtpx

// The dataplane as one object: EAL start-up, mbuf pools per NUMA socket, port configuration
// (RSS and checksum offloads where the port offers them), one worker per configured lcore, and
// the main lcore's control loop (neighbor resolution, statistics), and the slow path's seam to
// the control plane (pollSlowPath / sendFromFlow).
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <rte_mempool.h>
#include <rte_rcu_qsbr.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "dataplane/config.h"
#include "dataplane/counters.h"
#include "dataplane/flow.h"
#include "dataplane/interface.h"
#include "dataplane/neighbor_table.h"
#include "dataplane/slow_path.h"
#include "dataplane/worker.h"

namespace rtpx {

// rte_eal_init with arguments built from `cfg` plus the devices of `interfaces`. Once per
// process. Returns the argument vector it used (for the log) or what went wrong.
absl::StatusOr<std::vector<std::string>> initEal(const EalConfig& cfg,
                                                 const std::vector<InterfaceConfig>& interfaces);
std::vector<std::string> ealArguments(const EalConfig& cfg,
                                      const std::vector<InterfaceConfig>& interfaces);

struct PortSnapshot {
  uint16_t port_id = 0;
  std::string interface;
  std::string device;
  std::string driver;
  MacAddr mac;
  bool link_up = false;
  uint32_t speed_mbps = 0;
  uint16_t rx_queues = 0;
  uint16_t tx_queues = 0;
  bool rss = false;
  bool tx_cksum_offload = false;
  std::vector<std::string> addresses;
  uint64_t ipackets = 0, opackets = 0, ibytes = 0, obytes = 0;
  uint64_t imissed = 0, ierrors = 0, oerrors = 0, rx_nombuf = 0;
};

struct WorkerSnapshot {
  unsigned index = 0;
  unsigned lcore = 0;
  unsigned socket = 0;
  std::array<uint64_t, kNumWorkerEvents> events{};
  std::array<uint64_t, kNumDropReasons> drops{};
};

// What sessions hold right now. The control plane's session manager owns calls and ports, so
// it fills this in; the dataplane's own stats() leaves it empty.
struct SessionGauges {
  uint64_t calls = 0;
  uint64_t flows = 0;  // in the flow table
  uint64_t flow_capacity = 0;
  struct Ports {
    std::string interface;
    uint64_t pairs_in_use = 0;  // RTP/RTCP port pairs
    uint64_t pairs_total = 0;
  };
  std::vector<Ports> ports;  // by interface, in configuration order
};

struct StatsSnapshot {
  uint64_t uptime_ns = 0;
  uint64_t now_ns = 0;
  std::vector<WorkerSnapshot> workers;
  std::vector<PortSnapshot> ports;
  std::vector<NeighborEntry> neighbors;
  std::vector<std::string> interface_names;  // indexed by port id
  std::optional<SessionGauges> sessions;
};

class Dataplane {
 public:
  // EAL must be up. Configures ports and pools and launches the workers.
  static absl::StatusOr<std::unique_ptr<Dataplane>> start(const DataplaneConfig& cfg);
  ~Dataplane();
  Dataplane(const Dataplane&) = delete;
  Dataplane& operator=(const Dataplane&) = delete;

  // The main lcore's loop; returns once `stop` is set (and then stops the workers).
  // `on_ready` is called from this loop whenever readiness changes.
  void run(const std::atomic<bool>& stop, std::function<void(bool)> on_ready = {});

  // Thread-safe; for the gRPC / HTTP threads.
  StatsSnapshot stats() const;
  // Every port up and every worker's heartbeat fresh.
  bool ready() const { return ready_.load(std::memory_order_acquire); }
  const NeighborTable& neighbors() const { return neighbors_; }
  // The flow table; its writers are control-plane threads, serialised by the caller.
  FlowTable& flows() { return *flows_; }
  // Thread-safe: asks the main lcore to resolve `next_hop` on `port` and keep it fresh.
  void requestResolve(uint16_t port, const IpAddr& next_hop);

  // The slow path (dataplane/slow_path.h). Thread-safe, for any thread (EAL or not); never
  // waits for a worker.
  // Copies into `out` up to out.size() STUN/DTLS packets the workers have set aside, taking
  // from each worker's ring in turn; returns how many. The rings are bounded: what the control
  // plane does not take in time is dropped by the workers (slowpath_ring_full).
  std::size_t pollSlowPath(std::span<SlowPacket> out);
  // Sends `payload` from flow `id`'s local endpoint (its rtpx address:port, on its ingress
  // port) to `to`, through worker 0's inject ring: one UDP datagram, never fragmented.
  // UNAVAILABLE while the next hop is being resolved (asked for here; try again later),
  // NOT_FOUND for an unknown flow, RESOURCE_EXHAUSTED when no mbuf or ring slot is free, and
  // the errors of buildFlowPacket. The flow is looked up as FlowTable::spec does: call it
  // where the flow table's writers are serialised (the session manager's lock).
  absl::Status sendFromFlow(FlowId id, const Endpoint& to, std::span<const uint8_t> payload);

 private:
  struct Port {
    InterfaceConfig cfg;
    InterfaceAddrs addrs;
    std::string driver;
    uint16_t rx_queues = 0, tx_queues = 0;
    bool rss = false;
  };
  struct Resolve {
    uint16_t port;
    IpAddr ip;
    uint64_t last_probe_ns = 0;
    uint32_t probes = 0;
  };

  explicit Dataplane(const DataplaneConfig& cfg);
  absl::Status configurePorts();
  absl::Status createWorkers();
  void stopWorkers();
  void drainHintRings(uint64_t now_ns);
  // Hands `m` to worker 0 for `port`; takes the mbuf either way. False if its ring is full.
  bool inject(rte_mbuf* m, uint16_t port);
  void resolveTick(uint64_t now_ns);
  void sendProbe(const Resolve& r);
  void addResolve(uint16_t port, const IpAddr& ip, uint64_t now_ns);
  void refreshPortStats();
  void checkReady(uint64_t now_ns);

  std::function<void(bool)> on_ready_;

  DataplaneConfig cfg_;
  uint64_t start_ns_ = 0;
  std::vector<rte_mempool*> pools_;  // by socket id
  std::vector<Port> ports_;          // by port id order of the configuration
  std::vector<std::unique_ptr<Worker>> workers_;
  rte_rcu_qsbr* qsbr_ = nullptr;
  std::atomic<bool> stop_workers_{false};
  bool launched_ = false;
  NeighborTable neighbors_;
  std::vector<Resolve> resolves_;
  std::mutex pending_mu_;  // control threads → main lcore
  std::vector<std::pair<uint16_t, IpAddr>> pending_resolves_;
  std::atomic<bool> resolves_pending_{false};  // pending_resolves_ is not empty
  bool probe_due_ = false;                     // a resolve was added or restarted: probe now
  std::unique_ptr<FlowTable> flows_;
  std::array<const InterfaceAddrs*, kMaxPorts> ifaces_{};
  std::vector<uint64_t> last_loops_;
  uint64_t last_heartbeat_check_ns_ = 0;
  std::atomic<bool> ready_{false};
  std::mutex inject_mu_;  // producers of the inject rings: the main lcore and sendFromFlow
  std::mutex slow_mu_;    // consumers of the slow-path rings (pollSlowPath callers)
  size_t slow_next_ = 0;  // the worker pollSlowPath starts with (guarded by slow_mu_)

  mutable std::mutex port_stats_mu_;  // control side only: main lcore writes, RPC threads read
  std::vector<PortSnapshot> port_stats_;
};

uint64_t monotonicNs();

}  // namespace rtpx

// rtpx-gen's DPDK side: EAL, one port with one queue pair, the mbuf pool, and the traffic lcores
// (one doing TX and RX in one loop, or a TX lcore and an RX lcore). The lcores answer ARP for
// the generator's addresses at all times, send the flows' RTP while running, and measure what
// comes back; the control thread (the EAL main lcore) only flips phases and reads counters.
#pragma once

#include <rte_ether.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include <array>
#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bench/gen_net.h"
#include "bench/gen_srtp.h"
#include "bench/gen_stats.h"

namespace rtpx::gen {

struct EngineConfig {
  std::string vdev;                    // e.g. net_memif0,role=server,socket=/run/rtpxgen/m.sock
  std::vector<std::string> eal_extra;  // passed to rte_eal_init verbatim
  std::string file_prefix = "rtpxgen";
  unsigned memory_mb = 512;
  bool hugepages = false;
  unsigned main_cpu = 0;
  std::vector<unsigned> cpus{0};  // one: TX+RX lcore; two: TX lcore, RX lcore
  unsigned mbufs = 32767;
  uint16_t rx_descriptors = 1024;
  uint16_t tx_descriptors = 1024;
  std::optional<rte_ether_addr> mac;
  std::vector<uint32_t> addresses;  // host order; the generator answers ARP for these
  std::string eal_log_level = "notice";
  bool verify_checksums = false;  // verify the UDP checksum of every packet received
};

std::vector<std::string> ealArguments(const EngineConfig& cfg);

struct TxSnapshot {
  uint64_t sent = 0;
  uint64_t sent_measured = 0;
  uint64_t nombuf = 0;     // bursts skipped: the pool was empty
  uint64_t ring_full = 0;  // bursts the port did not take whole (the rest is retried)
  uint64_t srtp_failed = 0;
};

struct RxSnapshot {
  uint64_t received = 0;  // generator packets, duplicates included
  uint64_t duplicates = 0;
  uint64_t measured = 0;  // sent after the warm-up, duplicates excluded
  uint64_t measured_duplicates = 0;
  uint64_t measured_reordered = 0;  // arrived after a later packet of their flow
  uint64_t measured_late = 0;       // more than 64 packets behind (duplicate or not: unknown)
  uint64_t misdirected = 0;         // arrived at another address:port than the flow's sink
  uint64_t bad_checksum = 0;        // with --verify-cksum
  uint64_t srtp_failed = 0;         // SRTP authentication (or other unprotect) failures
  uint64_t foreign = 0;             // UDP without our payload header (or of another run)
  uint64_t other = 0;               // neither ARP nor IPv4/UDP
  uint64_t arp_replies = 0;         // ARP replies we sent for our addresses
};

struct PortSnapshot {
  uint64_t ipackets = 0, opackets = 0, imissed = 0, ierrors = 0, oerrors = 0, rx_nombuf = 0;
};

class Engine {
 public:
  // Initialises the EAL and the port; returns nullptr and sets `error` on failure.
  static std::unique_ptr<Engine> create(const EngineConfig& cfg, std::string* error);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  const rte_ether_addr& mac() const { return mac_; }
  const std::string& driver() const { return driver_; }
  bool linkUp() const;

  // Starts the lcores: ARP answers only, polling gently, until startTraffic().
  bool launch(std::string* error);

  // Sends an ARP request for `target` from each of `from`, repeated every 250 ms, until a reply
  // arrives, `timeout_s` passes or `stop` is set.
  std::optional<rte_ether_addr> resolve(uint32_t target, const std::vector<uint32_t>& from,
                                        double timeout_s, const std::atomic<bool>& stop);
  // One ARP request (so the relay learns `from` before it needs to send there).
  void announce(uint32_t from, uint32_t target);

  // The flows to send (with each flow's destination MAC) and what to expect back. Before
  // startTraffic(). Returns false if the checksum self-test fails.
  // With a 30-byte `srtp_key`, every flow is SRTP (AES_CM_128_HMAC_SHA1_80) with that key.
  bool setFlows(const std::vector<Flow>& flows, const std::vector<rte_ether_addr>& dst_macs,
                const FrameParams& frame, bool check_sink, const std::vector<uint8_t>& srtp_key,
                std::string* error);

  // rate_pps 0: as fast as the port takes them.
  void startTraffic(double rate_pps, double warmup_s);
  // TX stops (packets not yet taken by the port are dropped, not counted); RX goes on.
  void stopTraffic();
  // The lcores return. Idempotent.
  void stop();

  TxSnapshot tx() const;
  RxSnapshot rx() const;
  PortSnapshot port() const;
  // Latency of the packets received since the previous call (any phase, warm-up included).
  LatencyHistogram takeIntervalHistogram();
  // After stop(): latency of every measured packet, and the per-flow sink state.
  const LatencyHistogram& totalHistogram() const;
  const FlowRx* flowRx() const { return flow_rx_.get(); }
  size_t flowCount() const { return n_flows_; }
  double tscHz() const { return tsc_hz_; }

 private:
  static constexpr unsigned kBurst = 32;
  enum Phase : int { kIdle, kRun, kDrain, kExit };

  struct alignas(64) TxState {
    Counter sent, sent_measured, nombuf, ring_full, srtp_failed;
    uint64_t built = 0;
    uint32_t next_flow = 0;
    rte_mbuf* pending[kBurst];
    uint16_t n_pending = 0, pending_off = 0;
    bool pending_measured = false;
  };
  struct alignas(64) RxState {
    Counter received, duplicates, measured, measured_duplicates, measured_reordered, measured_late,
        misdirected, bad_checksum, srtp_failed, foreign, other, arp_replies;
    std::atomic<uint64_t> epoch_ack{0};
    uint64_t epoch = 0;
    LatencyHistogram total;
    LatencyHistogram interval[2];
  };
  struct ResolveSlot {
    std::atomic<uint32_t> ip{0};   // network order
    std::atomic<uint64_t> mac{0};  // bit 63: valid
  };
  struct LcoreArg {
    Engine* engine;
    bool tx;
    bool rx;
  };

  Engine() = default;
  static int lcoreMain(void* arg);
  void loop(bool tx, bool rx);
  void txBurst(uint64_t now);
  unsigned rxBurst();  // packets received
  // True when the mbuf was reused (an ARP reply queued for TX).
  bool handleArp(rte_mbuf* m);
  void drainControl();
  bool ours(uint32_t ip_be) const;
  void learn(uint32_t ip_be, const rte_ether_addr& mac);
  void sendControl(rte_mbuf* m);

  EngineConfig cfg_;
  uint16_t port_id_ = 0;
  bool port_started_ = false;
  bool eal_ready_ = false;
  std::string driver_;
  rte_ether_addr mac_{};
  rte_mempool* pool_ = nullptr;
  rte_ring* control_ = nullptr;  // MP/SC: mbufs to send, drained by the TX lcore
  std::vector<uint32_t> ours_be_;
  std::vector<LcoreArg> lcore_args_;
  std::vector<unsigned> lcores_;
  bool launched_ = false;

  alignas(64) std::atomic<int> phase_{kIdle};
  std::atomic<uint64_t> epoch_{0};
  double tsc_hz_ = 0;
  double ns_per_tsc_ = 0;
  uint64_t t0_ = 0, t_measure_ = 0;
  double pkts_per_tsc_ = 0;
  PortSnapshot port_at_start_;

  std::unique_ptr<FlowTemplate[]> templates_;
  std::unique_ptr<FlowRx[]> flow_rx_;
  uint32_t n_flows_ = 0;
  FrameParams frame_;
  std::vector<uint8_t> filler_;
  uint16_t frame_len_ = 0;
  bool check_sink_ = false;
  std::unique_ptr<SrtpFlows> srtp_;
  bool full_checksum_ = false;  // SRTP: the whole UDP checksum after protect

  std::array<ResolveSlot, 64> resolve_;
  std::atomic<unsigned> n_resolve_{0};

  TxState txs_;
  RxState rxs_;
};

}  // namespace rtpx::gen

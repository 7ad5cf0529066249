// rtpx-gen's session set-up: turns N sessions into flows, by asking the relay (rtpx over gRPC,
// rtpengine-compatible relays over NG) or, for reflectors such as testpmd, without asking
// anyone. Runs the offer/answer exchanges on several threads and times them.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "bench/gen_net.h"

namespace rtpx::gen {

enum class SetupMode { kNone, kRtpx, kNg };

struct SetupConfig {
  SetupMode mode = SetupMode::kNone;
  std::string server;  // gRPC or NG address
  unsigned sessions = 1;
  bool bidirectional = false;
  unsigned threads = 8;
  std::string call_prefix = "rtpxgen";
  double connect_timeout_s = 30;  // waiting for the relay's control interface
  // The generator's addresses (host order) and port range: session i takes endpoints 2i (the
  // caller) and 2i+1 (the callee's sink), endpoint k = addresses[k % n], port_min + 2 (k / n).
  std::vector<uint32_t> addresses;
  uint16_t port_min = 10000;
  uint16_t port_max = 65534;
  // SDP.
  uint8_t payload_type = 0;
  std::string encoding = "PCMU";
  uint32_t clock_rate = 8000;
  unsigned ptime_ms = 20;
  std::vector<std::string> ng_flags;
  // kNone: destination of session i is dst.ip, dst.port + 2 (i % dst_ports).
  Endpoint dst;
  unsigned dst_ports = 1;
};

struct SetupResult {
  std::vector<Flow> flows;  // per session: caller → sink, then (bidirectional) sink → caller
  std::vector<uint32_t> sessions_up;  // indexes of the sessions set up
  unsigned failed = 0;
  std::string first_error;
  double seconds = 0;
  double op_p50_ms = 0, op_p99_ms = 0, op_max_ms = 0;  // offer and answer round trips
};

// The endpoints of session i; false when the addresses × ports do not hold that many sessions.
bool sessionEndpoints(const SetupConfig& cfg, unsigned i, Endpoint* caller, Endpoint* sink);
// How many sessions the addresses × ports hold.
unsigned sessionCapacity(const SetupConfig& cfg);

// Sets the sessions up. Stops early (with what it has) when `stop` is set.
SetupResult setUp(const SetupConfig& cfg, const std::atomic<bool>& stop);

struct TeardownResult {
  unsigned deleted = 0, failed = 0;
  std::string first_error;
  double seconds = 0;
};
TeardownResult tearDown(const SetupConfig& cfg, const std::vector<uint32_t>& sessions);

std::string callId(const SetupConfig& cfg, uint32_t session);
std::string offerSdp(const SetupConfig& cfg, const Endpoint& ep, uint32_t session);
// The media address of the first audio m= line (media-level c= over session-level).
bool sdpMediaEndpoint(const std::string& sdp, Endpoint* out);

// The EAL pins the main thread, and so every thread it creates, to one CPU: set-up threads (and
// the gRPC threads they create) call this to run anywhere.
void unpinCurrentThread();

}  // namespace rtpx::gen

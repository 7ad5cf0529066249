// [sessions] settings the session core needs (the daemon reads them from TOML).
#pragma once

#include <cstdint>

namespace rtpx {

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

}  // namespace rtpx

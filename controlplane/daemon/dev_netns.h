// Development / CI topology: a veth pair whose host end rtpxd drives through DPDK
// (net_af_packet) and whose peer end sits in a network namespace with its own address, so
// kernel programs (ping, sipp, a softphone) reach the dataplane with `ip netns exec NS …` and
// the host's routing table never changes. Idempotent: an existing namespace or pair is reused.
#pragma once

#include <absl/status/status.h>

#include "controlplane/daemon/config.h"

namespace rtpx {

absl::Status setUpDevNetns(const DevNetnsConfig& cfg);
void tearDownDevNetns(const DevNetnsConfig& cfg);

}  // namespace rtpx

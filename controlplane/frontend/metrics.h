// Prometheus text exposition (format 0.0.4) of the dataplane's statistics.
#pragma once

#include <string>

#include "dataplane/dataplane.h"

namespace rtpx {

std::string renderMetrics(const StatsSnapshot& s, bool ready);
std::string_view neighborStateName(NeighborState s);

}  // namespace rtpx

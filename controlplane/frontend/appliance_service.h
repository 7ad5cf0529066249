// rtpx.v1.ApplianceService: the dataplane's statistics over gRPC. Protobuf types stop here.
#pragma once

#include <functional>

#include "dataplane/dataplane.h"
#include "rtpx/v1/appliance.grpc.pb.h"

namespace rtpx {

using StatsSource = std::function<StatsSnapshot()>;

void toProto(const StatsSnapshot& s, v1::GetStatisticsResponse* out);

class ApplianceService final : public v1::ApplianceService::Service {
 public:
  explicit ApplianceService(StatsSource stats) : stats_(std::move(stats)) {}
  grpc::Status GetStatistics(grpc::ServerContext*, const v1::GetStatisticsRequest*,
                             v1::GetStatisticsResponse* resp) override;

 private:
  StatsSource stats_;
};

}  // namespace rtpx

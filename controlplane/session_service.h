// rtpx.v1.SessionService: offer / answer / delete / query / list / events over gRPC. Validates
// requests, converts them to the session manager's plain structs and maps absl::Status codes to
// gRPC codes, once, here. Protobuf types stop in this file.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>

#include "controlplane/session_manager.h"
#include "rtpx/v1/session.grpc.pb.h"

namespace rtpx {

// absl and gRPC share their status code numbering; this is the one place that relies on it.
grpc::Status toGrpcStatus(const absl::Status& st);

class SessionService final : public v1::SessionService::Service {
 public:
  explicit SessionService(SessionManager& sessions) : sessions_(sessions) {}

  grpc::Status Offer(grpc::ServerContext*, const v1::OfferRequest* req,
                     v1::OfferResponse* resp) override;
  grpc::Status Answer(grpc::ServerContext*, const v1::AnswerRequest* req,
                      v1::AnswerResponse* resp) override;
  grpc::Status Delete(grpc::ServerContext*, const v1::DeleteRequest* req,
                      v1::DeleteResponse* resp) override;
  grpc::Status Query(grpc::ServerContext*, const v1::QueryRequest* req,
                     v1::QueryResponse* resp) override;
  grpc::Status List(grpc::ServerContext*, const v1::ListRequest* req,
                    v1::ListResponse* resp) override;
  grpc::Status WatchEvents(grpc::ServerContext* ctx, const v1::WatchEventsRequest* req,
                           grpc::ServerWriter<v1::SessionEvent>* writer) override;

  // Ends every WatchEvents stream within one poll interval and refuses new ones, so server
  // shutdown never waits for watchers. Call before grpc::Server::Shutdown.
  void shutdown();

  // How often a waiting WatchEvents checks for cancellation and shutdown.
  static constexpr std::chrono::milliseconds kWatchPoll{200};

 private:
  SessionManager& sessions_;
  std::atomic<bool> shutdown_{false};
};

}  // namespace rtpx

// rtpx.v1.SessionService: offer / answer / delete / query / list / events over gRPC. Validates
// requests, converts them to the session manager's plain structs and maps absl::Status codes to
// gRPC codes, once, here. Protobuf types stop in this file.
//
// The unary methods use gRPC's callback API: they never wait for anything but the session
// manager's mutex, so they run on the gRPC thread that read the request. (The synchronous API
// hands every request to a pool thread it grows and shrinks as load changes: two context
// switches per RPC and threads created and destroyed under load, most of the server's CPU at
// high set-up rates.) WatchEvents waits for events, so it stays synchronous, on its own thread.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>

#include "controlplane/core/reply_cache.h"
#include "controlplane/core/session_manager.h"
#include "rtpx/v1/session.grpc.pb.h"

namespace rtpx {

// absl and gRPC share their status code numbering; this is the one place that relies on it.
grpc::Status toGrpcStatus(const absl::Status& st);

using SessionServiceBase = v1::SessionService::WithCallbackMethod_Offer<
    v1::SessionService::WithCallbackMethod_Answer<v1::SessionService::WithCallbackMethod_Delete<
        v1::SessionService::WithCallbackMethod_Query<v1::SessionService::WithCallbackMethod_List<
            v1::SessionService::WithCallbackMethod_Exchange<v1::SessionService::Service>>>>>>;

class SessionService final : public SessionServiceBase {
 public:
  explicit SessionService(SessionManager& sessions) : sessions_(sessions) {}

  grpc::ServerUnaryReactor* Offer(grpc::CallbackServerContext* ctx, const v1::OfferRequest* req,
                                  v1::OfferResponse* resp) override;
  grpc::ServerUnaryReactor* Answer(grpc::CallbackServerContext* ctx, const v1::AnswerRequest* req,
                                   v1::AnswerResponse* resp) override;
  grpc::ServerUnaryReactor* Delete(grpc::CallbackServerContext* ctx, const v1::DeleteRequest* req,
                                   v1::DeleteResponse* resp) override;
  grpc::ServerUnaryReactor* Query(grpc::CallbackServerContext* ctx, const v1::QueryRequest* req,
                                  v1::QueryResponse* resp) override;
  grpc::ServerUnaryReactor* List(grpc::CallbackServerContext* ctx, const v1::ListRequest* req,
                                 v1::ListResponse* resp) override;
  grpc::ServerBidiReactor<v1::ExchangeRequest, v1::ExchangeResponse>* Exchange(
      grpc::CallbackServerContext* ctx) override;
  grpc::Status WatchEvents(grpc::ServerContext* ctx, const v1::WatchEventsRequest* req,
                           grpc::ServerWriter<v1::SessionEvent>* writer) override;

  // Ends every WatchEvents stream within one poll interval and every Exchange stream at once,
  // and refuses new ones, so server shutdown never waits for them. Call before
  // grpc::Server::Shutdown.
  void shutdown();

  // How often a waiting WatchEvents checks for cancellation and shutdown.
  static constexpr std::chrono::milliseconds kWatchPoll{200};

 private:
  class ExchangeReactor;
  v1::ExchangeResponse exchange(const v1::ExchangeRequest& req);

  // Offer, answer and delete: from the reply cache when the request_id was seen, else run.
  grpc::Status offer(const v1::OfferRequest& req, v1::OfferResponse& resp);
  grpc::Status answer(const v1::AnswerRequest& req, v1::AnswerResponse& resp);
  grpc::Status remove(const v1::DeleteRequest& req, v1::DeleteResponse& resp);
  grpc::Status runOffer(const v1::OfferRequest& req, v1::OfferResponse& resp);
  grpc::Status runAnswer(const v1::AnswerRequest& req, v1::AnswerResponse& resp);
  grpc::Status runRemove(const v1::DeleteRequest& req, v1::DeleteResponse& resp);
  grpc::Status query(const v1::QueryRequest& req, v1::QueryResponse& resp);
  grpc::Status list(v1::ListResponse& resp);

  SessionManager& sessions_;
  ReplyCache replies_;
  std::atomic<bool> shutdown_{false};
  std::mutex exchanges_mu_;
  std::set<grpc::CallbackServerContext*> exchanges_;  // open Exchange streams
};

}  // namespace rtpx

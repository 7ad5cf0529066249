// The control interfaces: the gRPC server (rtpx.v1 services, grpc.health.v1, server
// reflection) and the HTTP server (/metrics, /healthz, /readyz). Both run on their own
// threads and only read the dataplane through thread-safe snapshots.
#pragma once

#include <absl/status/status.h>
#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "controlplane/appliance_service.h"

namespace httplib {
class Server;
}

namespace rtpx {

class ControlServer {
 public:
  ControlServer(StatsSource stats, std::function<bool()> ready);
  ~ControlServer();

  // Binds both listeners; fails with the address that could not be bound.
  absl::Status start(const std::string& grpc_listen, const std::string& http_listen);
  // Health status of the whole server and of each rtpx.v1 service.
  void setServing(bool serving);
  void stop();
  int grpcPort() const { return grpc_port_; }
  int httpPort() const { return http_port_; }

 private:
  StatsSource stats_;
  std::function<bool()> ready_;
  ApplianceService appliance_;
  std::unique_ptr<grpc::Server> grpc_;
  std::unique_ptr<httplib::Server> http_;
  std::thread http_thread_;
  int grpc_port_ = 0;
  int http_port_ = 0;
};

}  // namespace rtpx

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
#include <vector>

#include "controlplane/frontend/appliance_service.h"

namespace httplib {
class Server;
}

namespace rtpx {

class ControlServer {
 public:
  ControlServer(StatsSource stats, std::function<bool()> ready);
  ~ControlServer();

  // Registers another rtpx.v1 service (before start()); `service` must outlive the server.
  // Its health status follows setServing() under `health_name` (its full name). `on_stop` runs
  // first in stop(), so that long-lived streams end before the server waits for them.
  void addService(grpc::Service* service, std::string health_name,
                  std::function<void()> on_stop = {});
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
  struct Extra {
    grpc::Service* service;
    std::string health_name;
    std::function<void()> on_stop;
  };
  std::vector<Extra> extra_;
  std::unique_ptr<grpc::Server> grpc_;
  std::unique_ptr<httplib::Server> http_;
  std::thread http_thread_;
  int grpc_port_ = 0;
  int http_port_ = 0;
};

}  // namespace rtpx

#include "controlplane/frontend/control_server.h"

#include <absl/strings/numbers.h>
#include <absl/strings/str_cat.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <httplib.h>
#include <spdlog/spdlog.h>

#include "controlplane/frontend/metrics.h"

namespace rtpx {

ControlServer::ControlServer(StatsSource stats, std::function<bool()> ready)
    : stats_(stats), ready_(std::move(ready)), appliance_(stats) {}

ControlServer::~ControlServer() {
  stop();
}

void ControlServer::addService(grpc::Service* service, std::string health_name,
                               std::function<void()> on_stop) {
  extra_.push_back({service, std::move(health_name), std::move(on_stop)});
}

absl::Status ControlServer::start(const std::string& grpc_listen, const std::string& http_listen) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder b;
  b.AddListeningPort(grpc_listen, grpc::InsecureServerCredentials(), &grpc_port_);
  b.RegisterService(&appliance_);
  for (const Extra& e : extra_) b.RegisterService(e.service);
  grpc_ = b.BuildAndStart();
  if (!grpc_ || grpc_port_ == 0)
    return absl::UnavailableError(absl::StrCat("gRPC: cannot listen on ", grpc_listen));
  setServing(false);

  auto colon = http_listen.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(http_listen.substr(colon + 1), &port))
    return absl::InvalidArgumentError(
        absl::StrCat("http.listen '", http_listen, "': expected host:port"));
  std::string host = http_listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  http_ = std::make_unique<httplib::Server>();
  http_->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(renderMetrics(stats_(), ready_()), "text/plain; version=0.0.4");
  });
  http_->Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain");
  });
  http_->Get("/readyz", [this](const httplib::Request&, httplib::Response& res) {
    const bool ok = ready_();
    res.status = ok ? 200 : 503;
    res.set_content(ok ? "ready\n" : "not ready\n", "text/plain");
  });
  if (port == 0)
    http_port_ = http_->bind_to_any_port(host);
  else
    http_port_ = http_->bind_to_port(host, port) ? port : -1;
  if (http_port_ <= 0)
    return absl::UnavailableError(absl::StrCat("HTTP: cannot listen on ", http_listen));
  http_thread_ = std::thread([this] { http_->listen_after_bind(); });
  spdlog::info("gRPC on {} (port {}), HTTP on {} (port {})", grpc_listen, grpc_port_, http_listen,
               http_port_);
  return absl::OkStatus();
}

void ControlServer::setServing(bool serving) {
  if (!grpc_) return;
  auto* h = grpc_->GetHealthCheckService();
  h->SetServingStatus(serving);
  h->SetServingStatus(v1::ApplianceService::service_full_name(), serving);
  for (const Extra& e : extra_) h->SetServingStatus(e.health_name, serving);
}

void ControlServer::stop() {
  if (grpc_) {
    setServing(false);
    for (const Extra& e : extra_)
      if (e.on_stop) e.on_stop();
    grpc_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    grpc_.reset();
  }
  if (http_) {
    http_->stop();
    if (http_thread_.joinable()) http_thread_.join();
    http_.reset();
  }
}

}  // namespace rtpx

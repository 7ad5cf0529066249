// rtpxctl: the operator's command line for rtpxd, over gRPC.
#include <fmt/format.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>
#include <CLI/CLI.hpp>

#include <cstdlib>
#include <iostream>

#include "health.grpc.pb.h"
#include "reflection.grpc.pb.h"
#include "rtpx/v1/appliance.grpc.pb.h"

namespace {

struct Options {
  std::string server = "127.0.0.1:50051";
  double timeout_s = 5.0;
};

std::shared_ptr<grpc::Channel> channel(const Options& o) {
  return grpc::CreateChannel(o.server, grpc::InsecureChannelCredentials());
}

void setDeadline(grpc::ClientContext& ctx, const Options& o) {
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::milliseconds(static_cast<int64_t>(o.timeout_s * 1000)));
}

int rpcError(const grpc::Status& st, const Options& o) {
  std::cerr << fmt::format("rtpxctl: {} ({}): {}\n", o.server, static_cast<int>(st.error_code()),
                           st.error_message());
  return st.error_code() == grpc::StatusCode::UNAVAILABLE ? 3 : 1;
}

int health(const Options& o, const std::string& service) {
  auto stub = grpc::health::v1::Health::NewStub(channel(o));
  grpc::ClientContext ctx;
  setDeadline(ctx, o);
  grpc::health::v1::HealthCheckRequest req;
  req.set_service(service);
  grpc::health::v1::HealthCheckResponse resp;
  auto st = stub->Check(&ctx, req, &resp);
  if (!st.ok()) return rpcError(st, o);
  std::cout << grpc::health::v1::HealthCheckResponse::ServingStatus_Name(resp.status()) << "\n";
  return resp.status() == grpc::health::v1::HealthCheckResponse::SERVING ? 0 : 1;
}

int services(const Options& o) {
  auto stub = grpc::reflection::v1alpha::ServerReflection::NewStub(channel(o));
  grpc::ClientContext ctx;
  setDeadline(ctx, o);
  auto stream = stub->ServerReflectionInfo(&ctx);
  grpc::reflection::v1alpha::ServerReflectionRequest req;
  req.set_list_services("");
  stream->Write(req);
  stream->WritesDone();
  grpc::reflection::v1alpha::ServerReflectionResponse resp;
  bool got = false;
  while (stream->Read(&resp)) {
    for (const auto& s : resp.list_services_response().service()) std::cout << s.name() << "\n";
    got = true;
  }
  auto st = stream->Finish();
  if (!st.ok()) return rpcError(st, o);
  return got ? 0 : 1;
}

std::string humanDuration(const google::protobuf::Duration& d) {
  int64_t s = d.seconds();
  return fmt::format("{}h{:02}m{:02}s", s / 3600, (s / 60) % 60, s % 60);
}

int stats(const Options& o, bool json, bool all) {
  auto stub = rtpx::v1::ApplianceService::NewStub(channel(o));
  grpc::ClientContext ctx;
  setDeadline(ctx, o);
  rtpx::v1::GetStatisticsResponse resp;
  auto st = stub->GetStatistics(&ctx, rtpx::v1::GetStatisticsRequest{}, &resp);
  if (!st.ok()) return rpcError(st, o);
  if (json) {
    std::string out;
    google::protobuf::util::JsonPrintOptions jo;
    jo.add_whitespace = true;
    jo.always_print_primitive_fields = true;
    jo.preserve_proto_field_names = true;
    (void)google::protobuf::util::MessageToJsonString(resp, &out, jo);
    std::cout << out;
    return 0;
  }
  std::cout << fmt::format("rtpxd {}  up {}\n\n", resp.version(), humanDuration(resp.uptime()));
  std::cout << fmt::format("{:<10} {:<16} {:<17} {:<5} {:>12} {:>12} {:>8} {:>8}\n", "INTERFACE",
                           "DRIVER", "MAC", "LINK", "RX PKTS", "TX PKTS", "MISSED", "ERRORS");
  for (const auto& p : resp.ports())
    std::cout << fmt::format("{:<10} {:<16} {:<17} {:<5} {:>12} {:>12} {:>8} {:>8}\n",
                             p.interface(), p.driver(), p.mac_address(),
                             p.link_up() ? "up" : "down", p.rx_packets(), p.tx_packets(),
                             p.rx_missed(), p.rx_errors() + p.tx_errors());
  for (const auto& w : resp.workers()) {
    std::cout << fmt::format("\nworker {} (lcore {}, socket {})\n", w.worker_id(), w.lcore_id(),
                             w.socket_id());
    for (const auto& c : w.counters())
      if (all || c.value() != 0) std::cout << fmt::format("  {:<24} {:>14}\n", c.name(), c.value());
    uint64_t total = 0;
    for (const auto& d : w.drops()) total += d.value();
    std::cout << fmt::format("  drops {:>33}\n", total);
    for (const auto& d : w.drops())
      if (all || d.value() != 0)
        std::cout << fmt::format("    {:<22} {:>14}  {}\n", d.name(), d.value(), d.description());
  }
  std::cout << fmt::format("\nneighbors\n");
  for (const auto& n : resp.neighbors())
    std::cout << fmt::format("  {:<10} {:<28} {:<17} {}\n", n.interface(), n.ip_address(),
                             n.mac_address(), rtpx::v1::NeighborState_Name(n.state()).substr(15));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (const char* env = std::getenv("RTPX_SERVER")) o.server = env;
  CLI::App app{"rtpxctl — control rtpxd over gRPC"};
  app.add_option("-s,--server", o.server, "rtpxd gRPC address (env RTPX_SERVER)");
  app.add_option("--timeout", o.timeout_s, "Seconds to wait for an answer");
  app.require_subcommand(1);

  std::string service;
  auto* h = app.add_subcommand("health", "gRPC health check (exit 0 when SERVING)");
  h->add_option("--service", service, "A service name, e.g. rtpx.v1.ApplianceService");
  bool json = false, all = false;
  auto* s = app.add_subcommand("stats", "Ports, per-worker counters and drops, neighbors");
  s->add_flag("--json", json, "JSON (proto3 mapping)");
  s->add_flag("--all", all, "Show zero counters too");
  auto* l = app.add_subcommand("services", "List gRPC services (server reflection)");
  CLI11_PARSE(app, argc, argv);

  if (h->parsed()) return health(o, service);
  if (s->parsed()) return stats(o, json, all);
  if (l->parsed()) return services(o);
  return 2;
}

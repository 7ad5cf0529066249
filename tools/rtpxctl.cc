// rtpxctl: the operator's command line for rtpxd, over gRPC.
#include <fmt/format.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>
#include <CLI/CLI.hpp>

#include <cctype>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <iterator>
#include <optional>

#include "health.grpc.pb.h"
#include "reflection.grpc.pb.h"
#include "rtpx/v1/appliance.grpc.pb.h"
#include "rtpx/v1/session.grpc.pb.h"

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

const char* codeName(grpc::StatusCode c) {
  static const char* const kNames[] = {"OK",
                                       "CANCELLED",
                                       "UNKNOWN",
                                       "INVALID_ARGUMENT",
                                       "DEADLINE_EXCEEDED",
                                       "NOT_FOUND",
                                       "ALREADY_EXISTS",
                                       "PERMISSION_DENIED",
                                       "RESOURCE_EXHAUSTED",
                                       "FAILED_PRECONDITION",
                                       "ABORTED",
                                       "OUT_OF_RANGE",
                                       "UNIMPLEMENTED",
                                       "INTERNAL",
                                       "UNAVAILABLE",
                                       "DATA_LOSS",
                                       "UNAUTHENTICATED"};
  const auto i = static_cast<size_t>(c);
  return i < std::size(kNames) ? kNames[i] : "UNKNOWN";
}

// Session commands: "rtpxctl: NOT_FOUND: no call 'x'" on stderr.
int sessionError(const grpc::Status& st, const Options& o) {
  std::cerr << fmt::format("rtpxctl: {}: {}", codeName(st.error_code()), st.error_message());
  if (st.error_code() == grpc::StatusCode::UNAVAILABLE) std::cerr << " (server " << o.server << ")";
  std::cerr << "\n";
  return st.error_code() == grpc::StatusCode::UNAVAILABLE ? 3 : 1;
}

std::string toJson(const google::protobuf::Message& m, bool pretty) {
  std::string out;
  google::protobuf::util::JsonPrintOptions jo;
  jo.add_whitespace = pretty;
  jo.always_print_primitive_fields = true;
  jo.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(m, &out, jo);
  return out;
}

std::string readStdin() {
  return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
}

double seconds(const google::protobuf::Duration& d) {
  return static_cast<double>(d.seconds()) + d.nanos() / 1e9;
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
  if (resp.has_sessions()) {
    const auto& ss = resp.sessions();
    std::cout << fmt::format("\nsessions\n  {:<24} {:>14}\n  {:<24} {:>14}  (capacity {})\n",
                             "calls", ss.calls(), "flows", ss.flows(), ss.flow_capacity());
    for (const auto& p : ss.media_ports())
      std::cout << fmt::format("  {:<24} {:>14}  (of {})\n",
                               fmt::format("port pairs {}", p.interface()), p.pairs_in_use(),
                               p.pairs_total());
  }
  std::cout << fmt::format("\nneighbors\n");
  for (const auto& n : resp.neighbors())
    std::cout << fmt::format("  {:<10} {:<28} {:<17} {}\n", n.interface(), n.ip_address(),
                             n.mac_address(), rtpx::v1::NeighborState_Name(n.state()).substr(15));
  return 0;
}

struct SessionArgs {
  std::string call_id, from_tag, to_tag, via_branch;
  std::string answerer_family;  // "", "ipv4", "ipv6"
  std::string answerer_interface, offerer_interface;
  bool keep_ice = false, replace_origin = false;
  std::optional<double> delay_s;
  bool json = false;
  uint64_t count = 0;
};

void setRewrite(const SessionArgs& a, rtpx::v1::RewriteOptions* r) {
  r->set_keep_ice_candidates(a.keep_ice);
  r->set_replace_origin(a.replace_origin);
}

int offer(const Options& o, const SessionArgs& a) {
  auto stub = rtpx::v1::SessionService::NewStub(channel(o));
  grpc::ClientContext ctx;
  setDeadline(ctx, o);
  rtpx::v1::OfferRequest req;
  req.set_call_id(a.call_id);
  req.set_from_tag(a.from_tag);
  req.set_sdp(readStdin());
  auto* opts = req.mutable_options();
  setRewrite(a, opts->mutable_rewrite());
  opts->set_offerer_interface(a.offerer_interface);
  if (!a.answerer_family.empty() || !a.answerer_interface.empty()) {
    auto* la = opts->mutable_answerer_address();
    // An interface without a family keeps the offer's family: say so explicitly.
    la->set_address_family(a.answerer_family == "ipv6"   ? rtpx::v1::ADDRESS_FAMILY_IPV6
                           : a.answerer_family == "ipv4" ? rtpx::v1::ADDRESS_FAMILY_IPV4
                                                         : rtpx::v1::ADDRESS_FAMILY_UNSPECIFIED);
    la->set_interface(a.answerer_interface);
  }
  rtpx::v1::OfferResponse resp;
  auto st = stub->Offer(&ctx, req, &resp);
  if (!st.ok()) return sessionError(st, o);
  std::cout << resp.sdp() << std::flush;
  return 0;
}

int answer(const Options& o, const SessionArgs& a) {
  auto stub = rtpx::v1::SessionService::NewStub(channel(o));
  grpc::ClientContext ctx;
  setDeadline(ctx, o);
  rtpx::v1::AnswerRequest req;
  req.set_call_id(a.call_id);
  req.set_from_tag(a.from_tag);
  req.set_to_tag(a.to_tag);
  req.set_sdp(readStdin());
  setRewrite(a, req.mutable_options());
  rtpx::v1::AnswerResponse resp;
  auto st = stub->Answer(&ctx, req, &resp);
  if (!st.ok()) return sessionError(st, o);
  std::cout << resp.sdp() << std::flush;
  return 0;
}

int deleteCall(const Options& o, const SessionArgs& a) {
  auto stub = rtpx::v1::SessionService::NewStub(channel(o));
  grpc::ClientContext ctx;
  setDeadline(ctx, o);
  rtpx::v1::DeleteRequest req;
  req.set_call_id(a.call_id);
  req.set_from_tag(a.from_tag);
  req.set_to_tag(a.to_tag);
  req.set_via_branch(a.via_branch);
  if (a.delay_s) {
    const auto ms = static_cast<int64_t>(*a.delay_s * 1000);
    req.mutable_delay()->set_seconds(ms / 1000);
    req.mutable_delay()->set_nanos(static_cast<int32_t>(ms % 1000) * 1000000);
  }
  rtpx::v1::DeleteResponse resp;
  auto st = stub->Delete(&ctx, req, &resp);
  if (!st.ok()) return sessionError(st, o);
  return 0;
}

std::string endpoint(const rtpx::v1::Endpoint& e) {
  if (e.address().empty()) return "-";
  return e.address().find(':') != std::string::npos ? fmt::format("[{}]:{}", e.address(), e.port())
                                                    : fmt::format("{}:{}", e.address(), e.port());
}

std::string stateName(rtpx::v1::CallState s) {
  std::string n = rtpx::v1::CallState_Name(s);
  return n.size() > 11 ? n.substr(11) : n;  // CALL_STATE_
}

int query(const Options& o, const SessionArgs& a) {
  auto stub = rtpx::v1::SessionService::NewStub(channel(o));
  grpc::ClientContext ctx;
  setDeadline(ctx, o);
  rtpx::v1::QueryRequest req;
  req.set_call_id(a.call_id);
  rtpx::v1::QueryResponse resp;
  auto st = stub->Query(&ctx, req, &resp);
  if (!st.ok()) return sessionError(st, o);
  if (a.json) {
    std::cout << toJson(resp, true);
    return 0;
  }
  const auto& c = resp.call();
  std::cout << fmt::format("call {}  {}  age {}\n", c.call_id(), stateName(c.state()),
                           humanDuration(c.age()));
  for (const auto& l : c.legs())
    std::cout << fmt::format("  leg {:<20} interface {}\n", l.tag().empty() ? "-" : l.tag(),
                             l.interface().empty() ? "-" : l.interface());
  for (const auto& m : c.media()) {
    std::cout << fmt::format("  m{} {}{}\n", m.index(), m.type(), m.rtcp_mux() ? " rtcp-mux" : "");
    std::cout << fmt::format(
        "    {:<12} {:<5} {:<24} {:<24} {:<4} {:>8} {:>10} {:>6} {:>9} {:>8} {}\n", "FROM>TO",
        "KIND", "LOCAL", "DESTINATION", "FWD", "PACKETS", "BYTES", "LOST", "JITTER_MS", "IDLE_S",
        "LATCHED");
    for (const auto& d : m.directions()) {
      const auto& s = d.statistics();
      const double jitter_ms = seconds(s.jitter()) * 1e3;
      const std::string idle =
          s.has_since_last_packet() ? fmt::format("{:.1f}", seconds(s.since_last_packet())) : "-";
      std::cout << fmt::format(
          "    {:<12} {:<5} {:<24} {:<24} {:<4} {:>8} {:>10} {:>6} {:>9.2f} {:>8} {}\n",
          fmt::format("{}>{}", d.from_tag().empty() ? "?" : d.from_tag(),
                      d.to_tag().empty() ? "?" : d.to_tag()),
          d.kind() == rtpx::v1::STREAM_KIND_RTCP ? "rtcp" : "rtp", endpoint(d.local()),
          endpoint(d.destination()), d.forwarding() ? "yes" : "no", s.packets(), s.bytes(),
          s.rtp_lost(), jitter_ms, idle,
          s.has_latched_source() ? endpoint(s.latched_source()) : "-");
    }
  }
  return 0;
}

int list(const Options& o, const SessionArgs& a) {
  auto stub = rtpx::v1::SessionService::NewStub(channel(o));
  grpc::ClientContext ctx;
  setDeadline(ctx, o);
  rtpx::v1::ListResponse resp;
  auto st = stub->List(&ctx, rtpx::v1::ListRequest{}, &resp);
  if (!st.ok()) return sessionError(st, o);
  if (a.json) {
    std::cout << toJson(resp, true);
    return 0;
  }
  std::cout << fmt::format("{:<40} {:<9} {:<20} {:<20} {:>5} {:>10}\n", "CALL-ID", "STATE",
                           "FROM-TAG", "TO-TAG", "MEDIA", "AGE");
  for (const auto& c : resp.calls())
    std::cout << fmt::format("{:<40} {:<9} {:<20} {:<20} {:>5} {:>10}\n", c.call_id(),
                             stateName(c.state()), c.tags_size() > 0 ? c.tags(0) : "",
                             c.tags_size() > 1 && !c.tags(1).empty() ? c.tags(1) : "-",
                             c.active_media(), humanDuration(c.age()));
  return 0;
}

std::string eventLine(const rtpx::v1::SessionEvent& e) {
  const std::time_t t = e.time().seconds();
  std::tm tm{};
  gmtime_r(&t, &tm);
  char when[32];
  std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string type = rtpx::v1::SessionEventType_Name(e.type()).substr(19);  // SESSION_EVENT_TYPE_
  for (char& ch : type) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  std::string line =
      fmt::format("{}.{:03}Z seq={} {} call={} from={} to={}", when, e.time().nanos() / 1000000,
                  e.sequence(), type, e.call_id(), e.from_tag().empty() ? "-" : e.from_tag(),
                  e.to_tag().empty() ? "-" : e.to_tag());
  if (e.reason() != rtpx::v1::EVENT_REASON_UNSPECIFIED) {
    std::string reason = rtpx::v1::EventReason_Name(e.reason()).substr(13);  // EVENT_REASON_
    for (char& ch : reason) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    line += " reason=" + reason;
  }
  if (e.dropped_before() != 0) line += fmt::format(" dropped_before={}", e.dropped_before());
  return line;
}

int events(const Options& o, const SessionArgs& a) {
  auto stub = rtpx::v1::SessionService::NewStub(channel(o));
  grpc::ClientContext ctx;  // no deadline: it runs until interrupted (or --count events)
  rtpx::v1::WatchEventsRequest req;
  req.set_call_id(a.call_id);
  auto reader = stub->WatchEvents(&ctx, req);
  reader->WaitForInitialMetadata();
  std::cerr << "rtpxctl: watching events\n";
  rtpx::v1::SessionEvent e;
  uint64_t seen = 0;
  while (reader->Read(&e)) {
    std::cout << (a.json ? toJson(e, false) : eventLine(e)) << "\n" << std::flush;
    if (a.count != 0 && ++seen >= a.count) {
      ctx.TryCancel();
      reader->Finish();
      return 0;
    }
  }
  auto st = reader->Finish();
  if (!st.ok()) return sessionError(st, o);
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

  SessionArgs sa;
  auto* of = app.add_subcommand(
      "offer", "SDP offer on stdin → rewritten offer (for the other leg) on stdout");
  of->add_option("--call-id", sa.call_id, "Call-ID")->required();
  of->add_option("--from-tag", sa.from_tag, "Tag of the leg that sends the offer")->required();
  auto* fam = of->add_option("--answerer-family", sa.answerer_family,
                             "rtpx address family shown to the answerer (default: the offer's)")
                  ->check(CLI::IsMember({"ipv4", "ipv6"}));
  of->add_option("--answerer-interface", sa.answerer_interface,
                 "Interface toward the answerer (needs --answerer-family)")
      ->needs(fam);
  of->add_option("--offerer-interface", sa.offerer_interface, "Interface toward the offerer");
  auto* an = app.add_subcommand(
      "answer", "SDP answer on stdin → rewritten answer (for the offerer) on stdout");
  an->add_option("--call-id", sa.call_id, "Call-ID")->required();
  an->add_option("--from-tag", sa.from_tag, "Tag of the leg that sent the offer")->required();
  an->add_option("--to-tag", sa.to_tag, "Tag of the answering leg")->required();
  for (auto* sub : {of, an}) {
    sub->add_flag("--keep-ice", sa.keep_ice, "Keep ICE candidates and credentials");
    sub->add_flag("--replace-origin", sa.replace_origin, "Write rtpx's address into o= too");
  }
  auto* de = app.add_subcommand("delete", "Delete a call, or one forked branch of it");
  de->add_option("--call-id", sa.call_id, "Call-ID")->required();
  de->add_option("--from-tag", sa.from_tag, "The leg that asks (alone: the whole call)");
  de->add_option("--to-tag", sa.to_tag, "One of several answering branches: only that one");
  de->add_option("--via-branch", sa.via_branch, "Only the branches that answered with it");
  de->add_option("--delay", sa.delay_s, "Seconds to wait first (default: sessions.delete_delay_s)")
      ->check(CLI::Range(0.0, 86400.0));
  auto* qu = app.add_subcommand("query", "A call's legs, streams and statistics");
  qu->add_option("--call-id", sa.call_id, "Call-ID")->required();
  qu->add_flag("--json", sa.json, "JSON (proto3 mapping)");
  auto* li = app.add_subcommand("list", "Every call");
  li->add_flag("--json", sa.json, "JSON (proto3 mapping)");
  auto* ev = app.add_subcommand("events", "Print session events, one per line, until interrupted");
  ev->add_option("--count", sa.count, "Exit after this many events");
  ev->add_option("--call-id", sa.call_id, "Only this call's events");
  ev->add_flag("--json", sa.json, "One JSON object per line");
  CLI11_PARSE(app, argc, argv);

  if (h->parsed()) return health(o, service);
  if (s->parsed()) return stats(o, json, all);
  if (l->parsed()) return services(o);
  if (of->parsed()) return offer(o, sa);
  if (an->parsed()) return answer(o, sa);
  if (de->parsed()) return deleteCall(o, sa);
  if (qu->parsed()) return query(o, sa);
  if (li->parsed()) return list(o, sa);
  if (ev->parsed()) return events(o, sa);
  return 2;
}

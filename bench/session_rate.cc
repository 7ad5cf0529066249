// session_rate: offer + answer + delete cycles against rtpxd's gRPC SessionService, from
// `--concurrency` client threads over one channel, for `--calls` calls. Prints the rate and the
// latency of each operation. With --hold, sets the calls up and keeps them (for memory
// measurements), deleting them only when stdin closes.
//   session_rate --server 127.0.0.1:50051 --calls 20000 --concurrency 8
// With --stream, each client thread sends the same operations as messages on one
// SessionService.Exchange stream (one request in flight per thread) instead of unary calls.
// With --ng, the same cycle (same SDP, tags and output) goes to rtpengine over its NG control
// protocol instead, one NG client (UDP socket) per thread:
//   session_rate --ng 198.51.100.2:2223 --calls 20000 --concurrency 8
#include <grpcpp/grpcpp.h>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <iostream>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "bench/ng_client.h"
#include "rtpx/v1/session.grpc.pb.h"

namespace {

using Clock = std::chrono::steady_clock;

std::string sdp(const std::string& ip, int port) {
  return fmt::format(
      "v=0\r\no=- 1 1 IN IP4 {0}\r\ns=-\r\nc=IN IP4 {0}\r\nt=0 0\r\nm=audio {1} RTP/AVP 0 101\r\n"
      "a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=rtcp-mux\r\na=sendrecv\r\n",
      ip, port);
}

double pct(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"session_rate — offer+answer+delete rate against rtpxd (gRPC) or rtpengine (NG)"};
  std::string server = "127.0.0.1:50051", prefix = "bench", ng_addr;
  int calls = 10000, concurrency = 8, ng_timeout_ms = 2000;
  bool hold = false, stream = false;
  auto* server_opt = app.add_option("--server", server, "rtpxd gRPC address");
  app.add_option("--ng", ng_addr, "Drive rtpengine over NG at HOST:PORT instead of rtpxd")
      ->excludes(server_opt);
  app.add_option("--ng-timeout-ms", ng_timeout_ms, "NG reply timeout (one retransmission)");
  app.add_option("--calls", calls);
  app.add_option("--concurrency", concurrency);
  app.add_option("--prefix", prefix, "Call-ID prefix");
  app.add_flag("--hold", hold, "Keep the calls until stdin closes, then delete them");
  app.add_flag("--stream", stream, "gRPC: one Exchange stream per thread instead of unary calls")
      ->excludes("--ng");
  CLI11_PARSE(app, argc, argv);

  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_MAX_CONCURRENT_STREAMS, 1000);
  auto channel = grpc::CreateCustomChannel(server, grpc::InsecureChannelCredentials(), args);
  auto stub = rtpx::v1::SessionService::NewStub(channel);
  std::atomic<int> next{0}, errors{0};
  std::vector<std::vector<double>> lat_offer(concurrency), lat_answer(concurrency),
      lat_delete(concurrency);
  std::string first_error;
  std::mutex err_mu;
  auto failWith = [&](const std::string& what) {
    if (errors++ == 0) {
      std::lock_guard lk(err_mu);
      first_error = what;
    }
  };
  auto fail = [&](const grpc::Status& st) {
    failWith(fmt::format("{}: {}", static_cast<int>(st.error_code()), st.error_message()));
  };
  auto ms = [](Clock::time_point a) {
    return std::chrono::duration<double, std::milli>(Clock::now() - a).count();
  };
  // NG mode: one client per thread (NgClient is thread-compatible), all created up front.
  std::vector<std::unique_ptr<rtpx::bench::NgClient>> ng;
  if (!ng_addr.empty()) {
    try {
      for (int t = 0; t < concurrency; ++t)
        ng.push_back(std::make_unique<rtpx::bench::NgClient>(ng_addr, ng_timeout_ms));
      ng.front()->ping();
    } catch (const rtpx::bench::NgError& e) {
      fmt::print(stderr, "session_rate: {}\n", e.what());
      return 2;
    }
  }
  auto ngSetup = [&](int i, int t) {
    const std::string id = fmt::format("{}-{}", prefix, i);
    auto t0 = Clock::now();
    try {
      ng[t]->offer(id, "a", sdp("192.0.2.10", 4000 + 2 * (i % 20000)));
    } catch (const rtpx::bench::NgError& e) {
      lat_offer[t].push_back(ms(t0));
      return failWith(e.what()), false;
    }
    lat_offer[t].push_back(ms(t0));
    t0 = Clock::now();
    try {
      ng[t]->answer(id, "a", "b", sdp("192.0.2.20", 4000 + 2 * (i % 20000)));
    } catch (const rtpx::bench::NgError& e) {
      lat_answer[t].push_back(ms(t0));
      return failWith(e.what()), false;
    }
    lat_answer[t].push_back(ms(t0));
    return true;
  };
  auto ngTeardown = [&](int i, int t) {
    const auto t0 = Clock::now();
    try {
      ng[t]->remove(fmt::format("{}-{}", prefix, i));
    } catch (const rtpx::bench::NgError& e) {
      failWith(e.what());
    }
    lat_delete[t].push_back(ms(t0));
  };
  auto grpcSetup = [&](int i, int t) {
    const std::string id = fmt::format("{}-{}", prefix, i);
    {
      grpc::ClientContext ctx;
      rtpx::v1::OfferRequest req;
      req.set_call_id(id);
      req.set_from_tag("a");
      req.set_sdp(sdp("192.0.2.10", 4000 + 2 * (i % 20000)));
      rtpx::v1::OfferResponse resp;
      auto t0 = Clock::now();
      auto st = stub->Offer(&ctx, req, &resp);
      lat_offer[t].push_back(ms(t0));
      if (!st.ok()) return fail(st), false;
    }
    grpc::ClientContext ctx;
    rtpx::v1::AnswerRequest req;
    req.set_call_id(id);
    req.set_from_tag("a");
    req.set_to_tag("b");
    req.set_sdp(sdp("192.0.2.20", 4000 + 2 * (i % 20000)));
    rtpx::v1::AnswerResponse resp;
    auto t0 = Clock::now();
    auto st = stub->Answer(&ctx, req, &resp);
    lat_answer[t].push_back(ms(t0));
    if (!st.ok()) return fail(st), false;
    return true;
  };
  auto grpcTeardown = [&](int i, int t) {
    grpc::ClientContext ctx;
    rtpx::v1::DeleteRequest req;
    req.set_call_id(fmt::format("{}-{}", prefix, i));
    rtpx::v1::DeleteResponse resp;
    auto t0 = Clock::now();
    auto st = stub->Delete(&ctx, req, &resp);
    lat_delete[t].push_back(ms(t0));
    if (!st.ok()) fail(st);
  };
  // --stream: one Exchange stream per thread, opened on first use.
  struct Stream {
    grpc::ClientContext ctx;
    std::unique_ptr<grpc::ClientReaderWriter<rtpx::v1::ExchangeRequest, rtpx::v1::ExchangeResponse>>
        rw;
    uint64_t next_id = 1;
  };
  std::vector<std::unique_ptr<Stream>> streams(concurrency);
  // One request and its response; false (and the error recorded) unless it succeeded.
  auto exchange = [&](int t, rtpx::v1::ExchangeRequest& req) {
    auto& st = streams[t];
    if (!st) {
      st = std::make_unique<Stream>();
      st->rw = stub->Exchange(&st->ctx);
    }
    req.set_id(st->next_id++);
    rtpx::v1::ExchangeResponse resp;
    if (!st->rw->Write(req) || !st->rw->Read(&resp))
      return failWith("Exchange stream broken"), false;
    if (resp.id() != req.id())
      return failWith(fmt::format("response id {} for request {}", resp.id(), req.id())), false;
    if (resp.code() != 0)
      return failWith(fmt::format("{}: {}", resp.code(), resp.message())), false;
    return true;
  };
  auto streamSetup = [&](int i, int t) {
    const std::string id = fmt::format("{}-{}", prefix, i);
    rtpx::v1::ExchangeRequest req;
    auto* o = req.mutable_offer();
    o->set_call_id(id);
    o->set_from_tag("a");
    o->set_sdp(sdp("192.0.2.10", 4000 + 2 * (i % 20000)));
    auto t0 = Clock::now();
    bool ok = exchange(t, req);
    lat_offer[t].push_back(ms(t0));
    if (!ok) return false;
    auto* a = req.mutable_answer();
    a->set_call_id(id);
    a->set_from_tag("a");
    a->set_to_tag("b");
    a->set_sdp(sdp("192.0.2.20", 4000 + 2 * (i % 20000)));
    t0 = Clock::now();
    ok = exchange(t, req);
    lat_answer[t].push_back(ms(t0));
    return ok;
  };
  auto streamTeardown = [&](int i, int t) {
    rtpx::v1::ExchangeRequest req;
    req.mutable_delete_()->set_call_id(fmt::format("{}-{}", prefix, i));
    const auto t0 = Clock::now();
    exchange(t, req);
    lat_delete[t].push_back(ms(t0));
  };
  auto setup = [&](int i, int t) {
    return !ng.empty() ? ngSetup(i, t) : stream ? streamSetup(i, t) : grpcSetup(i, t);
  };
  auto teardown = [&](int i, int t) {
    !ng.empty() ? ngTeardown(i, t) : stream ? streamTeardown(i, t) : grpcTeardown(i, t);
  };
  // Streams end cleanly before the report (the server sees WritesDone).
  auto closeStreams = [&] {
    for (auto& st : streams) {
      if (!st) continue;
      st->rw->WritesDone();
      if (grpc::Status s = st->rw->Finish(); !s.ok()) fail(s);
      st.reset();
    }
  };
  auto run = [&](auto body) {
    next = 0;
    std::vector<std::thread> th;
    for (int t = 0; t < concurrency; ++t)
      th.emplace_back([&, t] {
        for (int i; (i = next++) < calls;) body(i, t);
      });
    for (auto& x : th) x.join();
  };

  const auto t0 = Clock::now();
  if (hold) {
    run([&](int i, int t) { setup(i, t); });
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    fmt::print("{{\"held_calls\":{},\"errors\":{},\"setup_seconds\":{:.3f}}}\n", calls - errors,
               errors.load(), s);
    std::fflush(stdout);
    std::string line;
    while (std::getline(std::cin, line)) {
    }
    run([&](int i, int t) { teardown(i, t); });
    closeStreams();
    return errors == 0 ? 0 : 1;
  }
  run([&](int i, int t) {
    if (setup(i, t)) teardown(i, t);
  });
  closeStreams();
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  std::vector<double> o, a, d;
  for (int t = 0; t < concurrency; ++t) {
    o.insert(o.end(), lat_offer[t].begin(), lat_offer[t].end());
    a.insert(a.end(), lat_answer[t].begin(), lat_answer[t].end());
    d.insert(d.end(), lat_delete[t].begin(), lat_delete[t].end());
  }
  fmt::print(
      "{{\"calls\":{},\"errors\":{},\"seconds\":{:.3f},\"cycles_per_s\":{:.0f},"
      "\"offer_p50_ms\":{:.3f},\"offer_p99_ms\":{:.3f},\"answer_p50_ms\":{:.3f},"
      "\"answer_p99_ms\":{:.3f},\"delete_p50_ms\":{:.3f},\"delete_p99_ms\":{:.3f}}}\n",
      calls, errors.load(), s, (calls - errors) / s, pct(o, 0.5), pct(o, 0.99), pct(a, 0.5),
      pct(a, 0.99), pct(d, 0.5), pct(d, 0.99));
  if (errors > 0) fmt::print(stderr, "first error: {}\n", first_error);
  return errors == 0 ? 0 : 1;
}

#include "bench/gen_setup.h"

#include <fmt/format.h>
#include <grpcpp/grpcpp.h>
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <functional>
#include <mutex>
#include <thread>

#include "rtpx/v1/session.grpc.pb.h"

#include "bench/ng_client.h"

namespace rtpx::gen {
namespace {

using Clock = std::chrono::steady_clock;

double msSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// Runs body(i, thread) for i in [0, n) on `threads` unpinned threads.
void parallelFor(unsigned n, unsigned threads, const std::atomic<bool>* stop,
                 const std::function<void(unsigned, unsigned)>& body) {
  std::atomic<unsigned> next{0};
  std::vector<std::thread> th;
  threads = std::max(1u, std::min(threads, n));
  for (unsigned t = 0; t < threads; ++t)
    th.emplace_back([&, t] {
      unpinCurrentThread();
      for (unsigned i; (i = next++) < n;) {
        if (stop != nullptr && stop->load()) break;
        body(i, t);
      }
    });
  for (auto& x : th) x.join();
}

struct ErrorSink {
  std::mutex mu;
  unsigned count = 0;
  std::string first;
  void add(const std::string& e) {
    std::lock_guard lk(mu);
    if (count++ == 0) first = e;
  }
};

double quantile(std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))];
}

// One session's relay endpoints: where the caller sends (from the rewritten answer) and where
// the callee sends (from the rewritten offer).
struct Legs {
  Endpoint to_relay_from_caller;
  Endpoint to_relay_from_callee;
};

class Signaller {
 public:
  virtual ~Signaller() = default;
  // Offer + answer; fills `legs` or returns an error message. Appends round-trip times (ms).
  virtual std::string setUp(uint32_t session, const Endpoint& caller, const Endpoint& sink,
                            Legs* legs, std::vector<double>* rtt) = 0;
  virtual std::string tearDown(uint32_t session) = 0;
};

std::string parseLegs(const std::string& offer, const std::string& answer, Legs* legs) {
  if (!sdpMediaEndpoint(answer, &legs->to_relay_from_caller))
    return "no IPv4 audio endpoint in the rewritten answer:\n" + answer;
  if (!sdpMediaEndpoint(offer, &legs->to_relay_from_callee))
    return "no IPv4 audio endpoint in the rewritten offer:\n" + offer;
  return {};
}

class RtpxSignaller : public Signaller {
 public:
  RtpxSignaller(const SetupConfig& cfg, std::shared_ptr<grpc::Channel> ch)
      : cfg_(cfg), stub_(rtpx::v1::SessionService::NewStub(ch)) {}

  std::string setUp(uint32_t session, const Endpoint& caller, const Endpoint& sink, Legs* legs,
                    std::vector<double>* rtt) override {
    const std::string id = callId(cfg_, session);
    rtpx::v1::OfferResponse offer;
    {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
      rtpx::v1::OfferRequest req;
      req.set_call_id(id);
      req.set_from_tag("caller");
      req.set_sdp(offerSdp(cfg_, caller, session));
      const auto t0 = Clock::now();
      auto st = stub_->Offer(&ctx, req, &offer);
      rtt->push_back(msSince(t0));
      if (!st.ok())
        return fmt::format("Offer {}: {} {}", id, int(st.error_code()), st.error_message());
    }
    rtpx::v1::AnswerResponse answer;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    rtpx::v1::AnswerRequest req;
    req.set_call_id(id);
    req.set_from_tag("caller");
    req.set_to_tag("callee");
    req.set_sdp(offerSdp(cfg_, sink, session));
    const auto t0 = Clock::now();
    auto st = stub_->Answer(&ctx, req, &answer);
    rtt->push_back(msSince(t0));
    if (!st.ok())
      return fmt::format("Answer {}: {} {}", id, int(st.error_code()), st.error_message());
    return parseLegs(offer.sdp(), answer.sdp(), legs);
  }

  std::string tearDown(uint32_t session) override {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    rtpx::v1::DeleteRequest req;
    req.set_call_id(callId(cfg_, session));
    req.mutable_delay()->set_seconds(0);  // absent would mean rtpxd's default delay
    rtpx::v1::DeleteResponse resp;
    auto st = stub_->Delete(&ctx, req, &resp);
    if (!st.ok())
      return fmt::format("Delete {}: {} {}", req.call_id(), int(st.error_code()),
                         st.error_message());
    return {};
  }

 private:
  const SetupConfig& cfg_;
  std::unique_ptr<rtpx::v1::SessionService::Stub> stub_;
};

class NgSignaller : public Signaller {
 public:
  explicit NgSignaller(const SetupConfig& cfg) : cfg_(cfg), ng_(cfg.server) {}

  std::string setUp(uint32_t session, const Endpoint& caller, const Endpoint& sink, Legs* legs,
                    std::vector<double>* rtt) override {
    const std::string id = callId(cfg_, session);
    try {
      auto t0 = Clock::now();
      const std::string offer =
          ng_.offer(id, "caller", offerSdp(cfg_, caller, session), cfg_.ng_flags);
      rtt->push_back(msSince(t0));
      t0 = Clock::now();
      const std::string answer =
          ng_.answer(id, "caller", "callee", offerSdp(cfg_, sink, session), cfg_.ng_flags);
      rtt->push_back(msSince(t0));
      return parseLegs(offer, answer, legs);
    } catch (const std::exception& e) {
      return fmt::format("NG {}: {}", id, e.what());
    }
  }

  std::string tearDown(uint32_t session) override {
    try {
      ng_.remove(callId(cfg_, session));
      return {};
    } catch (const std::exception& e) {
      return fmt::format("NG delete {}: {}", callId(cfg_, session), e.what());
    }
  }

 private:
  const SetupConfig& cfg_;
  bench::NgClient ng_;
};

// One signaller per thread (NG clients are per thread; gRPC stubs share one channel).
std::vector<std::unique_ptr<Signaller>> makeSignallers(const SetupConfig& cfg, unsigned n,
                                                       std::string* error) {
  std::vector<std::unique_ptr<Signaller>> out;
  if (cfg.mode == SetupMode::kRtpx) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_MAX_CONCURRENT_STREAMS, 1000);
    auto ch = grpc::CreateCustomChannel(cfg.server, grpc::InsecureChannelCredentials(), args);
    const auto deadline = std::chrono::system_clock::now() +
                          std::chrono::milliseconds(static_cast<int>(cfg.connect_timeout_s * 1000));
    if (!ch->WaitForConnected(deadline)) {
      *error = fmt::format("cannot reach rtpxd's gRPC at {} within {} s", cfg.server,
                           cfg.connect_timeout_s);
      return out;
    }
    for (unsigned i = 0; i < n; ++i) out.push_back(std::make_unique<RtpxSignaller>(cfg, ch));
    return out;
  }
  try {
    for (unsigned i = 0; i < n; ++i) out.push_back(std::make_unique<NgSignaller>(cfg));
    bench::NgClient probe(cfg.server);
    const auto deadline =
        Clock::now() + std::chrono::milliseconds(static_cast<int>(cfg.connect_timeout_s * 1000));
    for (;;) {
      try {
        probe.ping();
        break;
      } catch (const bench::NgError& e) {
        if (Clock::now() > deadline) throw;
      }
    }
  } catch (const std::exception& e) {
    *error = fmt::format("NG at {}: {}", cfg.server, e.what());
    out.clear();
  }
  return out;
}

}  // namespace

void unpinCurrentThread() {
  cpu_set_t all;
  CPU_ZERO(&all);
  const unsigned n = std::thread::hardware_concurrency();
  for (unsigned c = 0; c < std::max(1u, n); ++c) CPU_SET(c, &all);
  pthread_setaffinity_np(pthread_self(), sizeof all, &all);
}

unsigned sessionCapacity(const SetupConfig& cfg) {
  if (cfg.addresses.empty() || cfg.port_max < cfg.port_min) return 0;
  const unsigned per_ip = (cfg.port_max - cfg.port_min) / 2 + 1;
  return static_cast<unsigned>(
      std::min<uint64_t>(UINT32_MAX, uint64_t{per_ip} * cfg.addresses.size() / 2));
}

bool sessionEndpoints(const SetupConfig& cfg, unsigned i, Endpoint* caller, Endpoint* sink) {
  if (i >= sessionCapacity(cfg)) return false;
  const size_t n = cfg.addresses.size();
  auto ep = [&](uint64_t k) {
    return Endpoint{cfg.addresses[k % n], static_cast<uint16_t>(cfg.port_min + 2 * (k / n))};
  };
  *caller = ep(2ull * i);
  *sink = ep(2ull * i + 1);
  return true;
}

std::string callId(const SetupConfig& cfg, uint32_t session) {
  return fmt::format("{}-{}", cfg.call_prefix, session);
}

std::string offerSdp(const SetupConfig& cfg, const Endpoint& ep, uint32_t session) {
  const std::string ip = ipv4String(ep.ip);
  return fmt::format(
      "v=0\r\no=rtpx-gen {0} 1 IN IP4 {1}\r\ns=rtpx-gen\r\nc=IN IP4 {1}\r\nt=0 0\r\n"
      "m=audio {2} RTP/AVP {3}\r\na=rtpmap:{3} {4}/{5}\r\na=ptime:{6}\r\na=rtcp-mux\r\n"
      "a=sendrecv\r\n",
      session + 1, ip, ep.port, cfg.payload_type, cfg.encoding, cfg.clock_rate, cfg.ptime_ms);
}

bool sdpMediaEndpoint(const std::string& sdp, Endpoint* out) {
  std::optional<uint32_t> session_c, media_c;
  std::optional<uint16_t> port;
  bool in_audio = false, seen_media = false;
  size_t pos = 0;
  while (pos < sdp.size()) {
    size_t eol = sdp.find('\n', pos);
    if (eol == std::string::npos) eol = sdp.size();
    std::string_view line(sdp.data() + pos, eol - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    pos = eol + 1;
    if (line.starts_with("m=")) {
      if (in_audio) break;  // only the first audio m= line
      seen_media = true;
      in_audio = line.starts_with("m=audio ");
      if (in_audio) {
        auto rest = line.substr(8);
        unsigned p = 0;
        auto [ptr, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), p);
        if (ec != std::errc{} || p > 65535) return false;
        port = static_cast<uint16_t>(p);
      }
    } else if (line.starts_with("c=IN IP4 ")) {
      auto addr = line.substr(9);
      if (auto slash = addr.find('/'); slash != std::string_view::npos)
        addr = addr.substr(0, slash);
      auto ip = parseIpv4(addr);
      if (!seen_media)
        session_c = ip;
      else if (in_audio)
        media_c = ip;
    }
  }
  const auto ip = media_c ? media_c : session_c;
  if (!port || !ip) return false;
  *out = Endpoint{*ip, *port};
  return true;
}

SetupResult setUp(const SetupConfig& cfg, const std::atomic<bool>& stop) {
  SetupResult r;
  auto t0 = Clock::now();
  std::vector<Endpoint> caller(cfg.sessions), sink(cfg.sessions);
  for (unsigned i = 0; i < cfg.sessions; ++i)
    if (!sessionEndpoints(cfg, i, &caller[i], &sink[i])) {
      r.failed = cfg.sessions;
      r.first_error = fmt::format(
          "{} addresses × ports {}-{} hold {} sessions; {} asked (add --ip or widen the ports)",
          cfg.addresses.size(), cfg.port_min, cfg.port_max, sessionCapacity(cfg), cfg.sessions);
      return r;
    }
  std::vector<Legs> legs(cfg.sessions);
  std::vector<uint8_t> ok(cfg.sessions, 0);
  if (cfg.mode == SetupMode::kNone) {
    for (unsigned i = 0; i < cfg.sessions; ++i) {
      const Endpoint d{cfg.dst.ip,
                       static_cast<uint16_t>(cfg.dst.port + 2 * (i % std::max(1u, cfg.dst_ports)))};
      legs[i] = {d, d};
      ok[i] = 1;
    }
  } else {
    const unsigned threads = std::max(1u, std::min(cfg.threads, cfg.sessions));
    std::string err;
    auto sig = makeSignallers(cfg, threads, &err);
    if (sig.empty()) {
      r.failed = cfg.sessions;
      r.first_error = err;
      return r;
    }
    t0 = Clock::now();  // the set-up time excludes waiting for the relay to come up
    ErrorSink errors;
    std::vector<std::vector<double>> rtt(threads);
    std::atomic<unsigned> done{0};
    const unsigned step = std::max(1000u, cfg.sessions / 10);
    parallelFor(cfg.sessions, threads, &stop, [&](unsigned i, unsigned t) {
      std::string e = sig[t]->setUp(i, caller[i], sink[i], &legs[i], &rtt[t]);
      if (e.empty())
        ok[i] = 1;
      else
        errors.add(e);
      if (const unsigned d = ++done; d % step == 0 && d < cfg.sessions)
        fmt::print(stderr, "rtpx-gen: {} / {} sessions set up ({:.1f} s)\n", d, cfg.sessions,
                   msSince(t0) / 1000);
    });
    std::vector<double> all;
    for (auto& v : rtt) all.insert(all.end(), v.begin(), v.end());
    r.op_p50_ms = quantile(all, 0.5);
    r.op_p99_ms = quantile(all, 0.99);
    r.op_max_ms = all.empty() ? 0 : all.back();
    r.failed = errors.count;
    r.first_error = errors.first;
  }
  for (unsigned i = 0; i < cfg.sessions; ++i) {
    if (!ok[i]) continue;
    r.sessions_up.push_back(i);
    r.flows.push_back({caller[i], legs[i].to_relay_from_caller,
                       cfg.mode == SetupMode::kNone ? Endpoint{} : sink[i], i});
    if (cfg.bidirectional)
      r.flows.push_back({sink[i], legs[i].to_relay_from_callee,
                         cfg.mode == SetupMode::kNone ? Endpoint{} : caller[i], i});
  }
  r.seconds = msSince(t0) / 1000;
  return r;
}

TeardownResult tearDown(const SetupConfig& cfg, const std::vector<uint32_t>& sessions) {
  TeardownResult r;
  if (cfg.mode == SetupMode::kNone || sessions.empty()) return r;
  const unsigned threads =
      std::max(1u, std::min<unsigned>(cfg.threads, static_cast<unsigned>(sessions.size())));
  std::string err;
  auto sig = makeSignallers(cfg, threads, &err);
  const auto t0 = Clock::now();
  if (sig.empty()) {
    r.failed = static_cast<unsigned>(sessions.size());
    r.first_error = err;
    return r;
  }
  ErrorSink errors;
  parallelFor(static_cast<unsigned>(sessions.size()), threads, nullptr,
              [&](unsigned i, unsigned t) {
                if (auto e = sig[t]->tearDown(sessions[i]); !e.empty()) errors.add(e);
              });
  r.failed = errors.count;
  r.deleted = static_cast<unsigned>(sessions.size()) - errors.count;
  r.first_error = errors.first;
  r.seconds = msSince(t0) / 1000;
  return r;
}

}  // namespace rtpx::gen

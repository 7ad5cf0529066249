#include "controlplane/frontend/session_service.h"

#include <chrono>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <tuple>

namespace rtpx {
namespace {

grpc::Status invalid(const std::string& message) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, message);
}

// Empty ids are refused here with the request field's name; the manager checks the rest.
grpc::Status requireField(const std::string& value, const char* field, const char* meaning) {
  if (!value.empty()) return grpc::Status::OK;
  return invalid(std::string(field) + " is empty: set it to " + meaning +
                 " (any non-empty string up to " + std::to_string(SessionManager::kMaxIdBytes) +
                 " bytes)");
}

absl::StatusOr<IpAddr::Family> family(v1::AddressFamily f, const char* field) {
  switch (f) {
    case v1::ADDRESS_FAMILY_IPV4:
      return IpAddr::Family::kV4;
    case v1::ADDRESS_FAMILY_IPV6:
      return IpAddr::Family::kV6;
    default:
      return absl::InvalidArgumentError(
          std::string(field) + " is " + v1::AddressFamily_Name(f) +
          (v1::AddressFamily_IsValid(f) ? "" : std::to_string(static_cast<int>(f))) +
          " (allowed: ADDRESS_FAMILY_IPV4, ADDRESS_FAMILY_IPV6; leave the enclosing message "
          "unset for the offer's own family)");
  }
}

absl::StatusOr<RewriteOptions> rewriteOptions(const v1::RewriteOptions& o, const char* field) {
  RewriteOptions r;
  r.keep_ice = o.keep_ice_candidates();
  r.replace_origin = o.replace_origin();
  for (const auto& [name, value, out] :
       {std::tuple<const char*, const std::string*, std::optional<IpAddr>*>{
            "media_address", &o.media_address(), &r.media_address},
        {"received_from", &o.received_from(), &r.received_from}}) {
    if (value->empty()) continue;
    *out = IpAddr::parse(*value);
    if (!*out)
      return absl::InvalidArgumentError(std::string(field) + "." + name + " '" + *value +
                                        "' is not an IPv4 or IPv6 address");
  }
  if (o.use_received_from() && !r.received_from)
    return absl::InvalidArgumentError(std::string(field) +
                                      ".use_received_from needs received_from");
  r.trust_address = !o.use_received_from();
  r.label = o.label();
  r.via_branch = o.via_branch();
  return r;
}

void setDuration(google::protobuf::Duration* d, uint64_t ns) {
  d->set_seconds(static_cast<int64_t>(ns / 1000000000ull));
  d->set_nanos(static_cast<int32_t>(ns % 1000000000ull));
}

void toProto(const Endpoint& e, v1::Endpoint* out) {
  if (!e.known()) return;
  out->set_address(e.addr.toString());
  out->set_port(e.port);
}

v1::CallState toProto(CallState s) {
  switch (s) {
    case CallState::kOffered:
      return v1::CALL_STATE_OFFERED;
    case CallState::kAnswered:
      return v1::CALL_STATE_ANSWERED;
    case CallState::kDeleting:
      return v1::CALL_STATE_DELETING;
  }
  return v1::CALL_STATE_UNSPECIFIED;
}

v1::SessionEventType toProto(SessionEvent::Type t) {
  switch (t) {
    case SessionEvent::Type::kCreated:
      return v1::SESSION_EVENT_TYPE_CREATED;
    case SessionEvent::Type::kAnswered:
      return v1::SESSION_EVENT_TYPE_ANSWERED;
    case SessionEvent::Type::kMediaStarted:
      return v1::SESSION_EVENT_TYPE_MEDIA_STARTED;
    case SessionEvent::Type::kTimeout:
      return v1::SESSION_EVENT_TYPE_TIMEOUT;
    case SessionEvent::Type::kDeleted:
      return v1::SESSION_EVENT_TYPE_DELETED;
  }
  return v1::SESSION_EVENT_TYPE_UNSPECIFIED;
}

v1::EventReason toProto(SessionEvent::Reason r) {
  switch (r) {
    case SessionEvent::Reason::kNone:
      return v1::EVENT_REASON_UNSPECIFIED;
    case SessionEvent::Reason::kRequested:
      return v1::EVENT_REASON_REQUESTED;
    case SessionEvent::Reason::kNoMedia:
      return v1::EVENT_REASON_NO_MEDIA;
    case SessionEvent::Reason::kOneSidedMedia:
      return v1::EVENT_REASON_ONE_SIDED_MEDIA;
    case SessionEvent::Reason::kOfferUnanswered:
      return v1::EVENT_REASON_OFFER_UNANSWERED;
    case SessionEvent::Reason::kDeleteDelay:
      return v1::EVENT_REASON_DELETE_DELAY;
  }
  return v1::EVENT_REASON_UNSPECIFIED;
}

void toProto(const FlowStats& s, uint64_t now_ns, v1::FlowStatistics* out) {
  out->set_packets(s.packets);
  out->set_bytes(s.bytes);
  out->set_forwarded(s.forwarded);
  out->set_dropped_source(s.dropped_source);
  out->set_dropped_no_destination(s.dropped_no_destination);
  out->set_dropped_no_route(s.dropped_no_route);
  out->set_dropped_not_forwarding(s.dropped_not_forwarding);
  if (s.last_packet_ns != 0 && now_ns >= s.last_packet_ns)
    setDuration(out->mutable_since_last_packet(), now_ns - s.last_packet_ns);
  if (s.latched) toProto(s.latched_source, out->mutable_latched_source());
  out->set_ssrc(s.ssrc);
  out->set_rtp_packets(s.rtp_packets);
  out->set_rtp_expected(s.rtp_expected);
  out->set_rtp_lost(s.rtp_lost);
  setDuration(out->mutable_jitter(), static_cast<uint64_t>(s.jitter_ms * 1e6));
  out->set_rtcp_packets(s.rtcp_packets);
}

void toProto(const CallInfo& c, v1::Call* out) {
  out->set_call_id(c.call_id);
  out->set_state(toProto(c.state));
  for (int side = 0; side < 2; ++side) {
    auto* l = out->add_legs();
    l->set_tag(c.tags[side]);
    l->set_interface(c.interfaces[side]);
    l->set_active(!c.tags[side].empty());
    for (const LegInfo& li : c.legs)
      if (li.side == side) {
        l->set_label(li.label);
        l->set_via_branch(li.via_branch);
      }
  }
  for (const LegInfo& li : c.legs) {
    if (li.side >= 0) continue;
    auto* l = out->add_legs();
    l->set_tag(li.tag);
    l->set_label(li.label);
    l->set_via_branch(li.via_branch);
  }
  if (c.now_ns >= c.created_ns) setDuration(out->mutable_age(), c.now_ns - c.created_ns);
  if (c.answered_ns != 0 && c.now_ns >= c.answered_ns)
    setDuration(out->mutable_answered_for(), c.now_ns - c.answered_ns);
  for (const MediaInfo& m : c.media) {
    auto* pm = out->add_media();
    pm->set_index(m.index);
    pm->set_type(m.type);
    pm->set_rtcp_mux(m.rtcp_mux);
    for (const DirectionInfo& d : m.directions) {
      auto* pd = pm->add_directions();
      pd->set_from_tag(d.from_tag);
      pd->set_to_tag(d.to_tag);
      pd->set_kind(d.rtcp ? v1::STREAM_KIND_RTCP : v1::STREAM_KIND_RTP);
      toProto(d.local, pd->mutable_local());
      toProto(d.egress_local, pd->mutable_egress_local());
      toProto(d.destination, pd->mutable_destination());
      pd->set_forwarding(d.forward);
      toProto(d.stats, c.now_ns, pd->mutable_statistics());
    }
  }
}

void toProto(const SessionEvent& e, uint64_t dropped_before, v1::SessionEvent* out) {
  out->set_sequence(e.sequence);
  out->set_type(toProto(e.type));
  out->set_reason(toProto(e.reason));
  out->set_call_id(e.call_id);
  out->set_from_tag(e.from_tag);
  out->set_to_tag(e.to_tag);
  const auto ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(e.wall_time.time_since_epoch()).count();
  out->mutable_time()->set_seconds(ns / 1000000000);
  out->mutable_time()->set_nanos(static_cast<int32_t>(ns % 1000000000));
  out->set_dropped_before(dropped_before);
}

}  // namespace

grpc::Status toGrpcStatus(const absl::Status& st) {
  if (st.ok()) return grpc::Status::OK;
  // absl::StatusCode and grpc::StatusCode both follow google.rpc.Code.
  return grpc::Status(static_cast<grpc::StatusCode>(st.code()), std::string(st.message()));
}

namespace {
grpc::ServerUnaryReactor* finish(grpc::CallbackServerContext* ctx, const grpc::Status& st) {
  grpc::ServerUnaryReactor* r = ctx->DefaultReactor();
  r->Finish(st);
  return r;
}
}  // namespace

grpc::ServerUnaryReactor* SessionService::Offer(grpc::CallbackServerContext* ctx,
                                                const v1::OfferRequest* req,
                                                v1::OfferResponse* resp) {
  return finish(ctx, offer(*req, *resp));
}
grpc::ServerUnaryReactor* SessionService::Answer(grpc::CallbackServerContext* ctx,
                                                 const v1::AnswerRequest* req,
                                                 v1::AnswerResponse* resp) {
  return finish(ctx, answer(*req, *resp));
}
grpc::ServerUnaryReactor* SessionService::Delete(grpc::CallbackServerContext* ctx,
                                                 const v1::DeleteRequest* req,
                                                 v1::DeleteResponse* resp) {
  return finish(ctx, remove(*req, *resp));
}
grpc::ServerUnaryReactor* SessionService::Query(grpc::CallbackServerContext* ctx,
                                                const v1::QueryRequest* req,
                                                v1::QueryResponse* resp) {
  return finish(ctx, query(*req, *resp));
}
grpc::ServerUnaryReactor* SessionService::List(grpc::CallbackServerContext* ctx,
                                               const v1::ListRequest*, v1::ListResponse* resp) {
  return finish(ctx, list(*resp));
}

// One Exchange stream: reads a request, handles it on the thread that read it, queues the
// response and reads the next; responses go out one write at a time, in request order.
class SessionService::ExchangeReactor final
    : public grpc::ServerBidiReactor<v1::ExchangeRequest, v1::ExchangeResponse> {
 public:
  ExchangeReactor(SessionService& service, grpc::CallbackServerContext* ctx)
      : service_(service), ctx_(ctx) {
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the client is done sending (or gone)
      std::lock_guard lk(mu_);
      reads_done_ = true;
      finishIfDone();
      return;
    }
    v1::ExchangeResponse response = service_.exchange(request_);
    {
      std::lock_guard lk(mu_);
      if (finished_) return;  // a write failed: the stream is over, read no more
      queue_.push_back(std::move(response));
      if (!writing_) {
        writing_ = true;
        StartWrite(&queue_.front());
      }
    }
    StartRead(&request_);
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard lk(mu_);
    queue_.pop_front();
    if (!ok) {  // the stream broke: drop the rest; reads end too
      queue_.clear();
      write_failed_ = true;
    }
    if (!queue_.empty()) {
      StartWrite(&queue_.front());
      return;
    }
    writing_ = false;
    finishIfDone();
  }

  void OnDone() override {
    {
      std::lock_guard lk(service_.exchanges_mu_);
      service_.exchanges_.erase(ctx_);
    }
    delete this;
  }

 private:
  void finishIfDone() {  // under mu_
    if (finished_ || writing_ || !(reads_done_ || write_failed_)) return;
    finished_ = true;
    Finish(write_failed_ ? grpc::Status(grpc::StatusCode::UNAVAILABLE, "stream broken")
                         : grpc::Status::OK);
  }

  SessionService& service_;
  grpc::CallbackServerContext* const ctx_;
  v1::ExchangeRequest request_;  // written only between StartRead and OnReadDone
  std::mutex mu_;
  std::deque<v1::ExchangeResponse> queue_;  // front: being written (deque keeps it in place)
  bool writing_ = false;
  bool reads_done_ = false;
  bool write_failed_ = false;
  bool finished_ = false;
};

grpc::ServerBidiReactor<v1::ExchangeRequest, v1::ExchangeResponse>* SessionService::Exchange(
    grpc::CallbackServerContext* ctx) {
  std::lock_guard lk(exchanges_mu_);
  // After shutdown(), a new stream ends at once (cancelled) instead of holding the server up.
  if (shutdown_.load()) ctx->TryCancel();
  exchanges_.insert(ctx);
  return new ExchangeReactor(*this, ctx);
}

v1::ExchangeResponse SessionService::exchange(const v1::ExchangeRequest& req) {
  v1::ExchangeResponse resp;
  resp.set_id(req.id());
  grpc::Status st;
  switch (req.operation_case()) {
    case v1::ExchangeRequest::kOffer:
      st = offer(req.offer(), *resp.mutable_offer());
      break;
    case v1::ExchangeRequest::kAnswer:
      st = answer(req.answer(), *resp.mutable_answer());
      break;
    case v1::ExchangeRequest::kDelete:
      st = remove(req.delete_(), *resp.mutable_delete_());
      break;
    default:
      st = invalid("operation is not set: set offer, answer or delete");
  }
  if (!st.ok()) {
    resp.clear_result();
    resp.set_code(static_cast<int32_t>(st.error_code()));
    resp.set_message(st.error_message());
  }
  return resp;
}

namespace {

uint64_t monotonicNs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

// A request with a request_id seen in the last 30-60 s gets the reply it got then (status and
// response), without running again; otherwise it runs and its reply is kept.
template <class Req, class Resp, class Run>
grpc::Status replayable(ReplyCache& cache, char kind, const Req& req, Resp& resp, Run run) {
  if (req.request_id().empty()) return run();
  std::string key(1, kind);
  key += req.request_id();
  if (std::optional<std::string> hit = cache.find(key)) {
    // <code byte><message length, 4 bytes><message><serialized response>
    const auto code = static_cast<grpc::StatusCode>(static_cast<uint8_t>((*hit)[0]));
    uint32_t len = 0;
    std::memcpy(&len, hit->data() + 1, 4);
    std::string message = hit->substr(5, len);
    if (!resp.ParseFromString(hit->substr(5 + len)))
      return grpc::Status(grpc::StatusCode::INTERNAL, "reply cache: corrupt entry");
    return grpc::Status(code, std::move(message));
  }
  const grpc::Status st = run();
  std::string entry(1, static_cast<char>(st.error_code()));
  const std::string& message = st.error_message();
  const auto len = static_cast<uint32_t>(message.size());
  entry.append(reinterpret_cast<const char*>(&len), 4);
  entry += message;
  resp.AppendToString(&entry);
  cache.insert(std::move(key), std::move(entry), monotonicNs());
  return st;
}

}  // namespace

grpc::Status SessionService::offer(const v1::OfferRequest& req, v1::OfferResponse& resp) {
  return replayable(replies_, 'o', req, resp, [&] { return runOffer(req, resp); });
}

grpc::Status SessionService::answer(const v1::AnswerRequest& req, v1::AnswerResponse& resp) {
  return replayable(replies_, 'a', req, resp, [&] { return runAnswer(req, resp); });
}

grpc::Status SessionService::remove(const v1::DeleteRequest& req, v1::DeleteResponse& resp) {
  return replayable(replies_, 'd', req, resp, [&] { return runRemove(req, resp); });
}

grpc::Status SessionService::runOffer(const v1::OfferRequest& req, v1::OfferResponse& resp) {
  if (auto st = requireField(req.call_id(), "call_id", "the SIP Call-ID"); !st.ok()) return st;
  if (auto st = requireField(req.from_tag(), "from_tag", "the tag of the leg that offers");
      !st.ok())
    return st;
  OfferOptions o;
  if (req.has_options()) {
    const v1::OfferOptions& po = req.options();
    absl::StatusOr<RewriteOptions> r = rewriteOptions(po.rewrite(), "options.rewrite");
    if (!r.ok()) return toGrpcStatus(r.status());
    static_cast<RewriteOptions&>(o) = *std::move(r);
    o.offerer_interface = po.offerer_interface();
    o.to_tag = po.to_tag();
    if (po.has_answerer_address()) {
      absl::StatusOr<IpAddr::Family> f =
          family(po.answerer_address().address_family(), "options.answerer_address.address_family");
      if (!f.ok()) return toGrpcStatus(f.status());
      o.answerer.family = *f;
      o.answerer.interface = po.answerer_address().interface();
    }
  }
  absl::StatusOr<std::string> sdp = sessions_.offer(req.call_id(), req.from_tag(), req.sdp(), o);
  if (!sdp.ok()) return toGrpcStatus(sdp.status());
  resp.set_sdp(*std::move(sdp));
  return grpc::Status::OK;
}

grpc::Status SessionService::runAnswer(const v1::AnswerRequest& req, v1::AnswerResponse& resp) {
  if (auto st = requireField(req.call_id(), "call_id", "the SIP Call-ID"); !st.ok()) return st;
  if (auto st = requireField(req.from_tag(), "from_tag", "the tag of the leg that offered");
      !st.ok())
    return st;
  if (auto st = requireField(req.to_tag(), "to_tag", "the tag of the leg that answers"); !st.ok())
    return st;
  absl::StatusOr<RewriteOptions> o = rewriteOptions(req.options(), "options");
  if (!o.ok()) return toGrpcStatus(o.status());
  absl::StatusOr<std::string> sdp =
      sessions_.answer(req.call_id(), req.from_tag(), req.to_tag(), req.sdp(), *o);
  if (!sdp.ok()) return toGrpcStatus(sdp.status());
  resp.set_sdp(*std::move(sdp));
  return grpc::Status::OK;
}

grpc::Status SessionService::runRemove(const v1::DeleteRequest& req, v1::DeleteResponse& resp) {
  if (auto st = requireField(req.call_id(), "call_id", "the SIP Call-ID"); !st.ok()) return st;
  DeleteOptions o;
  if (req.has_delay()) {
    const auto& d = req.delay();
    if (d.seconds() < 0 || d.nanos() < 0 || d.nanos() > 999999999 || d.seconds() > 86400)
      return invalid("delay must be between 0 and 86400 seconds (absent: the configured default)");
    o.delay = std::chrono::milliseconds(d.seconds() * 1000 + d.nanos() / 1000000);
  }
  o.from_tag = req.from_tag();
  o.to_tag = req.to_tag();
  o.via_branch = req.via_branch();
  absl::StatusOr<CallInfo> info = sessions_.deleteCall(req.call_id(), o);
  if (!info.ok()) {
    if (req.allow_missing() && info.status().code() == absl::StatusCode::kNotFound)
      return grpc::Status::OK;
    return toGrpcStatus(info.status());
  }
  toProto(*info, resp.mutable_call());
  return grpc::Status::OK;
}

grpc::Status SessionService::query(const v1::QueryRequest& req, v1::QueryResponse& resp) {
  if (auto st = requireField(req.call_id(), "call_id", "the SIP Call-ID"); !st.ok()) return st;
  absl::StatusOr<CallInfo> info = sessions_.query(req.call_id());
  if (!info.ok()) return toGrpcStatus(info.status());
  toProto(*info, resp.mutable_call());
  return grpc::Status::OK;
}

grpc::Status SessionService::list(v1::ListResponse& resp) {
  const uint64_t now = sessions_.now();
  for (const CallSummary& s : sessions_.list()) {
    auto* c = resp.add_calls();
    c->set_call_id(s.call_id);
    c->set_state(toProto(s.state));
    c->add_tags(s.tags[0]);
    c->add_tags(s.tags[1]);
    c->set_active_media(s.active_media);
    if (now >= s.created_ns) setDuration(c->mutable_age(), now - s.created_ns);
  }
  return grpc::Status::OK;
}

grpc::Status SessionService::WatchEvents(grpc::ServerContext* ctx,
                                         const v1::WatchEventsRequest* req,
                                         grpc::ServerWriter<v1::SessionEvent>* writer) {
  if (shutdown_.load()) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "shutting down");
  std::shared_ptr<EventSubscription> sub = sessions_.subscribe();
  // Tells the client the subscription is in place: events from now on reach it.
  writer->SendInitialMetadata();
  uint64_t dropped = 0;  // queue losses not yet reported to this client
  bool ended_by_shutdown = false;
  while (!ctx->IsCancelled()) {
    if (shutdown_.load()) {
      ended_by_shutdown = true;
      break;
    }
    std::optional<SessionEvent> e = sub->next(kWatchPoll);
    if (!e) {
      if (sub->closed()) {
        ended_by_shutdown = true;
        break;
      }
      continue;
    }
    dropped += e->dropped_before;
    if (!req->call_id().empty() && e->call_id != req->call_id()) continue;
    v1::SessionEvent pe;
    toProto(*e, dropped, &pe);
    dropped = 0;
    if (!writer->Write(pe)) break;  // the client went away
  }
  sessions_.unsubscribe(sub);
  if (ended_by_shutdown) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "shutting down");
  return grpc::Status::OK;
}

void SessionService::shutdown() {
  std::lock_guard lk(exchanges_mu_);
  shutdown_.store(true);
  // Open Exchange streams end now (their reactors finish once the cancellation reaches them).
  for (grpc::CallbackServerContext* ctx : exchanges_) ctx->TryCancel();
}

}  // namespace rtpx

// SessionService over a real in-process gRPC server (port 0) and a real SessionManager and
// FlowTable: request validation, status code mapping, the proto conversions, and WatchEvents
// streaming until the server shuts down without holding the shutdown up.
#include "controlplane/frontend/session_service.h"

#include <catch2/catch.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "tests/unit/test_support.h"

namespace {

using rtpx::v1::SessionService;

std::string sdp(const char* addr, int port) {
  return std::string("v=0\r\no=- 1 1 IN IP4 ") + addr + "\r\ns=-\r\nc=IN IP4 " + addr +
         "\r\nt=0 0\r\nm=audio " + std::to_string(port) + " RTP/AVP 0\r\n";
}

struct Server : rtpx::test::SessionFixture {
  std::unique_ptr<rtpx::SessionService> service;
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<SessionService::Stub> stub;

  Server()
      : SessionFixture(rtpx::SessionsConfig{}, rtpx::test::oneIpv4Interface(),
                       /*capacity=*/1024) {
    service = std::make_unique<rtpx::SessionService>(*sm);
    grpc::ServerBuilder b;
    int port = 0;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    b.RegisterService(service.get());
    server = b.BuildAndStart();
    REQUIRE(server != nullptr);
    REQUIRE(port != 0);
    stub = SessionService::NewStub(grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                                       grpc::InsecureChannelCredentials()));
  }
  ~Server() {
    if (server) {
      service->shutdown();
      server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    }
    stub.reset();
    server.reset();
    service.reset();
  }

  grpc::Status offer(const rtpx::v1::OfferRequest& req, rtpx::v1::OfferResponse* resp) {
    grpc::ClientContext ctx;
    return stub->Offer(&ctx, req, resp);
  }
};

rtpx::v1::OfferRequest offerRequest(const char* call, const char* tag, const std::string& body) {
  rtpx::v1::OfferRequest r;
  r.set_call_id(call);
  r.set_from_tag(tag);
  r.set_sdp(body);
  return r;
}

}  // namespace

TEST_CASE("SessionService: Exchange handles offers, answers and deletes on one stream",
          "[service][exchange]") {
  Server s;
  grpc::ClientContext ctx;
  auto rw = s.stub->Exchange(&ctx);
  auto roundTrip = [&](rtpx::v1::ExchangeRequest req, uint64_t id) {
    req.set_id(id);
    REQUIRE(rw->Write(req));
    rtpx::v1::ExchangeResponse resp;
    REQUIRE(rw->Read(&resp));
    CHECK(resp.id() == id);
    return resp;
  };
  rtpx::v1::ExchangeRequest offer;
  *offer.mutable_offer() = offerRequest("x1", "a", sdp("192.0.2.10", 4000));
  rtpx::v1::ExchangeResponse r = roundTrip(offer, 7);
  REQUIRE(r.code() == 0);
  REQUIRE(r.has_offer());
  CHECK(r.offer().sdp().find("c=IN IP4 192.0.2.2\r\n") != std::string::npos);

  // An error answers that request only; the stream goes on.
  rtpx::v1::ExchangeRequest bad;
  bad.mutable_answer()->set_call_id("nope");
  bad.mutable_answer()->set_from_tag("a");
  bad.mutable_answer()->set_to_tag("b");
  bad.mutable_answer()->set_sdp(sdp("192.0.2.20", 5000));
  r = roundTrip(bad, 8);
  CHECK(r.code() == static_cast<int>(grpc::StatusCode::NOT_FOUND));
  CHECK(r.message() == "no call 'nope'");
  CHECK(r.result_case() == rtpx::v1::ExchangeResponse::RESULT_NOT_SET);
  r = roundTrip(rtpx::v1::ExchangeRequest{}, 9);
  CHECK(r.code() == static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));

  rtpx::v1::ExchangeRequest answer = bad;
  answer.mutable_answer()->set_call_id("x1");
  r = roundTrip(answer, 10);
  REQUIRE(r.code() == 0);
  CHECK(r.answer().sdp().find("m=audio 30000 RTP/AVP 0\r\n") != std::string::npos);
  CHECK(s.sm->callCount() == 1);

  rtpx::v1::ExchangeRequest del;
  del.mutable_delete_()->set_call_id("x1");
  r = roundTrip(del, 11);
  CHECK(r.code() == 0);
  CHECK(r.has_delete_());
  CHECK(s.sm->callCount() == 0);
  CHECK(s.flows->size() == 0);

  // Pipelined: several requests before any response; answered in order.
  for (uint64_t id = 20; id < 25; ++id) {
    rtpx::v1::ExchangeRequest q = offer;
    q.mutable_offer()->set_call_id("p" + std::to_string(id));
    q.set_id(id);
    REQUIRE(rw->Write(q));
  }
  for (uint64_t id = 20; id < 25; ++id) {
    rtpx::v1::ExchangeResponse resp;
    REQUIRE(rw->Read(&resp));
    CHECK(resp.id() == id);
    CHECK(resp.code() == 0);
  }
  CHECK(s.sm->callCount() == 5);
  REQUIRE(rw->WritesDone());
  CHECK(rw->Finish().ok());
}

TEST_CASE("SessionService: shutdown ends open Exchange streams and refuses new ones",
          "[service][exchange]") {
  Server s;
  grpc::ClientContext ctx;
  auto rw = s.stub->Exchange(&ctx);
  rtpx::v1::ExchangeRequest req;
  req.set_id(1);
  req.mutable_delete_()->set_call_id("none");
  REQUIRE(rw->Write(req));
  rtpx::v1::ExchangeResponse resp;
  REQUIRE(rw->Read(&resp));
  CHECK(resp.code() == static_cast<int>(grpc::StatusCode::NOT_FOUND));

  s.service->shutdown();  // before grpc::Server::Shutdown, as ControlServer does
  CHECK_FALSE(rw->Read(&resp));
  CHECK(rw->Finish().error_code() == grpc::StatusCode::CANCELLED);

  grpc::ClientContext ctx2;
  auto late = s.stub->Exchange(&ctx2);
  late->Write(req);
  CHECK_FALSE(late->Read(&resp));
  CHECK(late->Finish().error_code() == grpc::StatusCode::CANCELLED);
}

TEST_CASE("SessionService: offer, answer, query, list and delete over gRPC", "[service]") {
  Server s;
  rtpx::v1::OfferResponse offered;
  REQUIRE(s.offer(offerRequest("c1", "a", sdp("192.0.2.10", 4000)), &offered).ok());
  CHECK(offered.sdp() ==
        "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.2\r\n"
        "t=0 0\r\nm=audio 30002 RTP/AVP 0\r\na=rtcp:30003\r\n");
  rtpx::v1::AnswerRequest ar;
  ar.set_call_id("c1");
  ar.set_from_tag("a");
  ar.set_to_tag("b");
  ar.set_sdp(sdp("192.0.2.20", 5000));
  rtpx::v1::AnswerResponse answered;
  {
    grpc::ClientContext ctx;
    REQUIRE(s.stub->Answer(&ctx, ar, &answered).ok());
  }
  CHECK(answered.sdp().find("m=audio 30000 RTP/AVP 0\r\n") != std::string::npos);

  rtpx::v1::QueryRequest qr;
  qr.set_call_id("c1");
  rtpx::v1::QueryResponse q;
  {
    grpc::ClientContext ctx;
    REQUIRE(s.stub->Query(&ctx, qr, &q).ok());
  }
  CHECK(q.call().state() == rtpx::v1::CALL_STATE_ANSWERED);
  REQUIRE(q.call().legs_size() == 2);
  CHECK(q.call().legs(1).tag() == "b");
  REQUIRE(q.call().media_size() == 1);
  REQUIRE(q.call().media(0).directions_size() == 4);
  const auto& d = q.call().media(0).directions(0);
  CHECK(d.kind() == rtpx::v1::STREAM_KIND_RTP);
  CHECK(d.local().address() == "192.0.2.2");
  CHECK(d.local().port() == 30000);
  CHECK(d.destination().address() == "192.0.2.20");
  CHECK(d.destination().port() == 5000);
  CHECK(d.forwarding());
  CHECK_FALSE(d.statistics().has_latched_source());
  CHECK(q.call().media(0).directions(2).kind() == rtpx::v1::STREAM_KIND_RTCP);

  rtpx::v1::ListResponse l;
  {
    grpc::ClientContext ctx;
    REQUIRE(s.stub->List(&ctx, rtpx::v1::ListRequest{}, &l).ok());
  }
  REQUIRE(l.calls_size() == 1);
  CHECK(l.calls(0).call_id() == "c1");
  CHECK(l.calls(0).tags(1) == "b");

  rtpx::v1::DeleteRequest dr;
  dr.set_call_id("c1");
  {
    grpc::ClientContext ctx;
    rtpx::v1::DeleteResponse resp;
    REQUIRE(s.stub->Delete(&ctx, dr, &resp).ok());
  }
  CHECK(s.flows->size() == 0);
  {
    grpc::ClientContext ctx;
    rtpx::v1::DeleteResponse resp;
    const grpc::Status st = s.stub->Delete(&ctx, dr, &resp);
    CHECK(st.error_code() == grpc::StatusCode::NOT_FOUND);
  }
}

TEST_CASE("SessionService: invalid requests say what is wrong and what is allowed",
          "[service][errors]") {
  Server s;
  rtpx::v1::OfferResponse resp;
  auto expect = [&](const rtpx::v1::OfferRequest& r, grpc::StatusCode code, const char* text) {
    const grpc::Status st = s.offer(r, &resp);
    INFO(st.error_message());
    CHECK(st.error_code() == code);
    CHECK_THAT(st.error_message(), Catch::Contains(text));
  };
  expect(offerRequest("", "a", sdp("192.0.2.10", 4000)), grpc::StatusCode::INVALID_ARGUMENT,
         "call_id is empty");
  expect(offerRequest("c", "", sdp("192.0.2.10", 4000)), grpc::StatusCode::INVALID_ARGUMENT,
         "from_tag is empty");
  expect(offerRequest("c", "a", "v=0\r\nx\r\n"), grpc::StatusCode::INVALID_ARGUMENT, "line 2");
  rtpx::v1::OfferRequest r = offerRequest("c", "a", sdp("192.0.2.10", 4000));
  r.mutable_options()->mutable_answerer_address()->set_interface("media0");
  expect(r, grpc::StatusCode::INVALID_ARGUMENT, "ADDRESS_FAMILY_UNSPECIFIED");
  expect(r, grpc::StatusCode::INVALID_ARGUMENT, "allowed: ADDRESS_FAMILY_IPV4");
  r.mutable_options()->mutable_answerer_address()->set_address_family(
      static_cast<rtpx::v1::AddressFamily>(7));
  expect(r, grpc::StatusCode::INVALID_ARGUMENT, "7");
  r.mutable_options()->mutable_answerer_address()->set_address_family(
      rtpx::v1::ADDRESS_FAMILY_IPV6);
  expect(r, grpc::StatusCode::INVALID_ARGUMENT, "no IPv6 address");
  CHECK(s.sm->callCount() == 0);

  rtpx::v1::AnswerRequest ar;
  ar.set_call_id("c");
  ar.set_from_tag("a");
  ar.set_sdp(sdp("192.0.2.20", 5000));
  {
    grpc::ClientContext ctx;
    rtpx::v1::AnswerResponse aresp;
    const grpc::Status st = s.stub->Answer(&ctx, ar, &aresp);
    CHECK(st.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK_THAT(st.error_message(), Catch::Contains("to_tag is empty"));
  }
  ar.set_to_tag("b");
  {
    grpc::ClientContext ctx;
    rtpx::v1::AnswerResponse aresp;
    CHECK(s.stub->Answer(&ctx, ar, &aresp).error_code() == grpc::StatusCode::NOT_FOUND);
  }
  REQUIRE(s.offer(offerRequest("c", "a", sdp("192.0.2.10", 4000)), &resp).ok());
  REQUIRE(s.offer(offerRequest("c2", "a", sdp("192.0.2.10", 4000)), &resp).ok());
  {
    grpc::ClientContext ctx;
    rtpx::v1::AnswerResponse aresp;
    REQUIRE(s.stub->Answer(&ctx, ar, &aresp).ok());
  }
  {
    grpc::ClientContext ctx;  // the other side made no offer to answer
    rtpx::v1::AnswerRequest reversed = ar;
    reversed.set_from_tag(ar.to_tag());
    reversed.set_to_tag(ar.from_tag());
    rtpx::v1::AnswerResponse aresp;
    CHECK(s.stub->Answer(&ctx, reversed, &aresp).error_code() ==
          grpc::StatusCode::FAILED_PRECONDITION);
  }
  rtpx::v1::DeleteRequest dr;
  dr.set_call_id("c");
  dr.mutable_delay()->set_seconds(-1);
  {
    grpc::ClientContext ctx;
    rtpx::v1::DeleteResponse dresp;
    const grpc::Status st = s.stub->Delete(&ctx, dr, &dresp);
    CHECK(st.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK_THAT(st.error_message(), Catch::Contains("delay"));
  }
  CHECK(s.sm->callCount() == 2);
}

TEST_CASE("SessionService: a retransmitted request_id gets its first reply without running again",
          "[service]") {
  Server s;
  rtpx::v1::OfferRequest req = offerRequest("r1", "a", sdp("192.0.2.10", 4000));
  req.set_request_id("req-1");
  rtpx::v1::OfferResponse first, again;
  REQUIRE(s.offer(req, &first).ok());
  {
    grpc::ClientContext ctx;
    rtpx::v1::DeleteRequest del;
    del.set_call_id("r1");
    rtpx::v1::DeleteResponse dresp;
    REQUIRE(s.stub->Delete(&ctx, del, &dresp).ok());
  }
  // The call is gone; the retransmitted offer is answered from the cache and creates nothing.
  REQUIRE(s.offer(req, &again).ok());
  CHECK(again.sdp() == first.sdp());
  CHECK(s.sm->callCount() == 0);
  // An error is replayed as well: the same code and message.
  rtpx::v1::AnswerRequest bad;
  bad.set_call_id("nope");
  bad.set_from_tag("a");
  bad.set_to_tag("b");
  bad.set_sdp(sdp("192.0.2.20", 5000));
  bad.set_request_id("req-2");
  for (int i = 0; i < 2; ++i) {
    grpc::ClientContext ctx;
    rtpx::v1::AnswerResponse aresp;
    const grpc::Status st = s.stub->Answer(&ctx, bad, &aresp);
    CHECK(st.error_code() == grpc::StatusCode::NOT_FOUND);
    CHECK(st.error_message() == "no call 'nope'");
  }
  // Without a request_id every request runs.
  req.clear_request_id();
  REQUIRE(s.offer(req, &again).ok());
  CHECK(s.sm->callCount() == 1);
}

TEST_CASE("toGrpcStatus keeps code and message", "[service]") {
  CHECK(rtpx::toGrpcStatus(absl::OkStatus()).ok());
  const grpc::Status st = rtpx::toGrpcStatus(absl::ResourceExhaustedError("no ports"));
  CHECK(st.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  CHECK(st.error_message() == "no ports");
  CHECK(rtpx::toGrpcStatus(absl::FailedPreconditionError("x")).error_code() ==
        grpc::StatusCode::FAILED_PRECONDITION);
  CHECK(rtpx::toGrpcStatus(absl::NotFoundError("x")).error_code() == grpc::StatusCode::NOT_FOUND);
}

TEST_CASE("SessionService: WatchEvents streams events and ends promptly at shutdown",
          "[service][events]") {
  Server s;
  grpc::ClientContext ctx;
  auto reader = s.stub->WatchEvents(&ctx, rtpx::v1::WatchEventsRequest{});
  reader->WaitForInitialMetadata();  // subscribed from here on
  rtpx::v1::OfferResponse resp;
  REQUIRE(s.offer(offerRequest("w", "a", sdp("192.0.2.10", 4000)), &resp).ok());
  rtpx::v1::SessionEvent e;
  REQUIRE(reader->Read(&e));
  CHECK(e.type() == rtpx::v1::SESSION_EVENT_TYPE_CREATED);
  CHECK(e.call_id() == "w");
  CHECK(e.from_tag() == "a");
  CHECK(e.sequence() == 1);
  CHECK(e.time().seconds() > 0);

  const auto t0 = std::chrono::steady_clock::now();
  s.service->shutdown();
  s.server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(10));
  const auto took = std::chrono::steady_clock::now() - t0;
  CHECK(took < std::chrono::seconds(2));  // one poll interval, not the 10 s deadline
  CHECK_FALSE(reader->Read(&e));
  const grpc::Status st = reader->Finish();
  CHECK(st.error_code() == grpc::StatusCode::UNAVAILABLE);
  s.server.reset();
}

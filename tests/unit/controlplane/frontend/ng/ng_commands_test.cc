// The NG front end (rtpengine's control protocol) over a real SessionManager and FlowTable:
// every request goes in as a datagram through handleDatagram() (cookie, bencode, ReplyCache)
// or as a dictionary through NgCommands::handle(). Checks rtpengine 10.5's reply shapes and
// exact strings (docs/rtpengine-ng-notes.md), that a retransmission is answered
// from the cache and never runs twice, the delete forms, the load limit, and that a refused
// or malformed request changes nothing.
#include "controlplane/frontend/ng/ng_commands.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "controlplane/frontend/ng/ng_server.h"
#include "tests/unit/test_support.h"

namespace {

namespace bencode = rtpx::ng::bencode;
using bencode::Dict;
using bencode::List;
using bencode::Value;
using rtpx::SessionsConfig;

constexpr uint64_t kSecond = 1'000'000'000ull;
constexpr std::string_view kNotFound = "Call-ID not found or tags didn't match";

// A minimal phone SDP (CRLF, as on the wire).
std::string sdp(const char* user, const char* addr, int port, const char* extra = "",
                int version = 1) {
  return std::string("v=0\r\no=") + user + " 1 " + std::to_string(version) + " IN IP4 " + addr +
         "\r\ns=-\r\nc=IN IP4 " + addr + "\r\nt=0 0\r\nm=audio " + std::to_string(port) +
         " RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n" + extra;
}

const std::string kSdpA = sdp("alice", "192.0.2.10", 4000);
const std::string kSdpB = sdp("bob", "192.0.2.20", 5000);
const std::string kSdpC = sdp("carol", "192.0.2.21", 5100);

// Requests as Kamailio 5.6's rtpengine module builds them for
// rtpengine_manage("replace-origin replace-session-connection").
Dict offerReq(const std::string& call, const std::string& from, const std::string& body) {
  return Dict{{"supports", List{"load limit"}},
              {"sdp", body},
              {"replace", List{"origin", "session-connection"}},
              {"call-id", call},
              {"received-from", List{"IP4", "192.0.2.5"}},
              {"from-tag", from},
              {"command", "offer"}};
}
Dict answerReq(const std::string& call, const std::string& from, const std::string& to,
               const std::string& body) {
  return Dict{{"supports", List{"load limit"}},
              {"sdp", body},
              {"replace", List{"origin", "session-connection"}},
              {"call-id", call},
              {"received-from", List{"IP4", "192.0.2.5"}},
              {"from-tag", from},
              {"to-tag", to},
              {"command", "answer"}};
}
Dict deleteReq(const std::string& call, const std::string& from, const std::string& to = "") {
  Dict d{{"supports", List{"load limit"}},
         {"call-id", call},
         {"received-from", List{"IP4", "192.0.2.5"}},
         {"from-tag", from},
         {"command", "delete"}};
  if (!to.empty()) bencode::set(d, "to-tag", to);
  return d;
}
Dict with(Dict d, std::string key, Value v) {
  bencode::set(d, std::move(key), std::move(v));
  return d;
}
Dict without(Dict d, std::string_view key) {
  d.erase(std::remove_if(d.begin(), d.end(), [&](const auto& e) { return e.first == key; }),
          d.end());
  return d;
}

std::vector<std::string> keys(const Dict& d) {
  std::vector<std::string> out;
  for (const auto& [k, v] : d) out.push_back(k);
  std::sort(out.begin(), out.end());
  return out;
}
std::string str(const Dict& d, std::string_view key) {
  const Value* v = bencode::find(d, key);
  INFO("key " << key);
  REQUIRE(v != nullptr);
  REQUIRE(v->str() != nullptr);
  return *v->str();
}

// A session manager over a real flow table (one interface, 192.0.2.2), the NG commands on it,
// a reply cache and an injected clock.
struct Ng : rtpx::test::SessionFixture {
  std::unique_ptr<rtpx::ng::NgCommands> commands;
  rtpx::ng::ReplyCache cache;
  int seq = 0;

  explicit Ng(SessionsConfig cfg = {})
      : SessionFixture(cfg, rtpx::test::oneIpv4Interface(), /*capacity=*/1024),
        commands(std::make_unique<rtpx::ng::NgCommands>(*sm)) {}

  std::string datagram(std::string_view d) {
    return rtpx::ng::handleDatagram(d, *commands, cache, now);
  }
  // `req` under `cookie`; the reply must carry the same cookie and one dictionary.
  Dict send(const std::string& cookie, const Dict& req) {
    return replyOf(cookie, datagram(cookie + " " + bencode::encode(Value(req))));
  }
  Dict send(const Dict& req) { return send("5_1234_" + std::to_string(++seq), req); }
  static Dict replyOf(const std::string& cookie, std::string_view out) {
    INFO(out);
    REQUIRE(out.substr(0, cookie.size() + 1) == cookie + " ");
    absl::StatusOr<Value> v = bencode::decode(out.substr(cookie.size() + 1));
    REQUIRE(v.ok());
    REQUIRE(v->dict() != nullptr);
    return *v->dict();
  }
  // An offer, then the answer; the call must succeed.
  void call(const std::string& id, const std::string& a = "A", const std::string& b = "B") {
    REQUIRE(str(send(offerReq(id, a, kSdpA)), "result") == "ok");
    REQUIRE(str(send(answerReq(id, a, b, kSdpB)), "result") == "ok");
  }
  std::size_t freePairs() const { return sm->ports(0).available(); }

  // Everything observable about the manager, for "this request changed nothing".
  std::string state() {
    std::ostringstream s;
    for (const rtpx::CallSummary& c : sm->list()) {
      s << c.call_id << " " << rtpx::callStateName(c.state) << " [" << c.tags[0] << "|" << c.tags[1]
        << "]";
      absl::StatusOr<rtpx::CallInfo> info = sm->query(c.call_id);
      REQUIRE(info.ok());
      for (const rtpx::LegInfo& l : info->legs) s << " " << l.tag << "/" << l.side;
      for (const rtpx::MediaInfo& m : info->media)
        for (const rtpx::DirectionInfo& d : m.directions)
          s << " " << d.local.toString() << ">" << d.destination.toString() << ":" << d.forward;
      s << "\n";
    }
    s << "flows=" << flows->size() << " free=" << freePairs();
    return s.str();
  }
};

// The tags of a query or delete reply.
std::vector<std::string> tagsOf(const Dict& reply) {
  const Value* tags = bencode::find(reply, "tags");
  REQUIRE(tags != nullptr);
  REQUIRE(tags->dict() != nullptr);
  return keys(*tags->dict());
}

void requireError(const Dict& reply, std::string_view reason) {
  INFO(bencode::encode(Value(reply)));
  CHECK(keys(reply) == std::vector<std::string>{"error-reason", "result"});
  CHECK(str(reply, "result") == "error");
  CHECK(str(reply, "error-reason") == reason);
}

}  // namespace

TEST_CASE("ng: ping is answered under the request's cookie, byte for byte", "[ng]") {
  Ng ng;
  CHECK(ng.datagram("0_17829_0 d7:command4:pinge") == "0_17829_0 d6:result4:ponge");
  // rtpengine: a datagram without a cookie gets no reply (nobody to address it to).
  CHECK(ng.datagram("d7:command4:pinge").empty());
  CHECK(ng.datagram(" d7:command4:pinge").empty());
  CHECK(ng.datagram("").empty());
}

TEST_CASE("ng: offer, answer, query, list, statistics and delete in rtpengine's shapes", "[ng]") {
  Ng ng;
  // Offer: exactly {sdp, result}; rtpx's address in c= and (replace origin) o=, its port, and
  // an a=rtcp line for the port it moved RTCP to.
  const Dict offer = ng.send(offerReq("call-1", "A", kSdpA));
  CHECK(keys(offer) == std::vector<std::string>{"result", "sdp"});
  CHECK(str(offer, "result") == "ok");
  CHECK(str(offer, "sdp") ==
        "v=0\r\no=alice 1 1 IN IP4 192.0.2.2\r\ns=-\r\nc=IN IP4 192.0.2.2\r\nt=0 0\r\n"
        "m=audio 30002 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\na=rtcp:30003\r\n");
  const Dict answer = ng.send(answerReq("call-1", "A", "B", kSdpB));
  CHECK(keys(answer) == std::vector<std::string>{"result", "sdp"});
  CHECK(str(answer, "sdp") ==
        "v=0\r\no=bob 1 1 IN IP4 192.0.2.2\r\ns=-\r\nc=IN IP4 192.0.2.2\r\nt=0 0\r\n"
        "m=audio 30000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\na=rtcp:30001\r\n");
  CHECK(ng.flows->size() == 4);

  const Dict query = ng.send(Dict{{"call-id", "call-1"}, {"command", "query"}});
  CHECK(keys(query) ==
        std::vector<std::string>{"created", "last signal", "result", "tags", "totals"});
  CHECK(str(query, "result") == "ok");
  CHECK(tagsOf(query) == std::vector<std::string>{"A", "B"});
  // Per tag, the port facing that party: A sends to 30000 (the answer it got), B to 30002.
  const Value* a = bencode::find(query, "tags")->find("A");
  const Value& a_rtp = a->find("medias")->list()->at(0).find("streams")->list()->at(0);
  CHECK(a_rtp.find("local port")->integer() == 30000);
  CHECK(*a_rtp.find("local address")->str() == "192.0.2.2");
  const Value* totals = bencode::find(query, "totals");
  CHECK(totals->find("RTP")->find("packets")->integer() == 0);
  CHECK(totals->find("RTCP")->find("errors")->integer() == 0);

  const Dict list = ng.send(Dict{{"command", "list"}});
  CHECK(keys(list) == std::vector<std::string>{"calls", "result"});
  CHECK(*bencode::find(list, "calls") == Value(List{"call-1"}));
  CHECK(*bencode::find(ng.send(Dict{{"command", "list"}, {"limit", 0}}), "calls") == Value(List{}));

  const Dict stats = ng.send(Dict{{"command", "statistics"}});
  CHECK(keys(stats) == std::vector<std::string>{"result", "statistics"});
  const Value* st = bencode::find(stats, "statistics");
  CHECK(st->find("currentstatistics")->find("sessionsown")->integer() == 1);
  CHECK(st->find("currentstatistics")->find("sessionstotal")->integer() == 1);
  CHECK(st->find("totalstatistics")->find("managedsessions")->integer() == 1);
  CHECK(st->find("totalstatistics")->find("rejectedsessions")->integer() == 0);

  // Delete: the call's final statistics, and everything is released.
  const Dict del = ng.send(deleteReq("call-1", "A"));
  CHECK(keys(del) ==
        std::vector<std::string>{"created", "last signal", "result", "tags", "totals"});
  CHECK(str(del, "result") == "ok");
  CHECK(tagsOf(del) == std::vector<std::string>{"A", "B"});
  CHECK(ng.sm->callCount() == 0);
  CHECK(ng.flows->size() == 0);
  CHECK(ng.freePairs() == 5000);
  CHECK(*bencode::find(ng.send(Dict{{"command", "list"}}), "calls") == Value(List{}));
  requireError(ng.send(Dict{{"call-id", "call-1"}, {"command", "query"}}), "Unknown call-id");
}

TEST_CASE("ng: a retransmission is answered from the cache and never runs twice", "[ng][cookie]") {
  Ng ng;
  const std::string first =
      ng.datagram("0_99_1 " + bencode::encode(Value(offerReq("c1", "A", kSdpA))));
  const std::string state = ng.state();
  REQUIRE(str(Ng::replyOf("0_99_1", first), "result") == "ok");

  // The same datagram again (Kamailio's retransmission after 1 s): the same bytes.
  CHECK(ng.datagram("0_99_1 " + bencode::encode(Value(offerReq("c1", "A", kSdpA)))) == first);
  CHECK(ng.state() == state);
  // The same cookie with another body: still the first reply; the new body never runs.
  CHECK(ng.datagram("0_99_1 " + bencode::encode(Value(offerReq("c2", "A", kSdpA)))) == first);
  CHECK(ng.datagram("0_99_1 d7:command4:pinge") == first);
  CHECK(ng.sm->callCount() == 1);
  CHECK(ng.state() == state);
  // A delete is not run again either: a retransmitted BYE's delete finds the cached stats.
  const std::string del = ng.datagram("0_99_2 " + bencode::encode(Value(deleteReq("c1", "A"))));
  REQUIRE(str(Ng::replyOf("0_99_2", del), "result") == "ok");
  CHECK(ng.datagram("0_99_2 " + bencode::encode(Value(deleteReq("c1", "A")))) == del);

  // Errors are cached as well.
  const std::string err = ng.datagram("0_99_3 d7:command3:fooe");
  requireError(Ng::replyOf("0_99_3", err), "Unrecognized command");
  CHECK(ng.datagram("0_99_3 d7:command4:pinge") == err);

  // A cookie is remembered for 30 to 60 s: two generations, rotated by later requests.
  ng.now += 31 * kSecond;
  ng.send(Dict{{"command", "ping"}});  // rotates: 0_99_x move to the previous generation
  CHECK(ng.datagram("0_99_3 d7:command4:pinge") == err);
  ng.now += 31 * kSecond;
  ng.send(Dict{{"command", "ping"}});  // rotates again: they are gone
  CHECK(ng.datagram("0_99_3 d7:command4:pinge") == "0_99_3 d6:result4:ponge");
}

TEST_CASE("ng: the same offer with a new cookie returns the same SDP and changes nothing", "[ng]") {
  Ng ng;
  const std::string sdp1 = str(ng.send(offerReq("c", "A", kSdpA)), "sdp");
  const std::string state = ng.state();
  CHECK(str(ng.send(offerReq("c", "A", kSdpA)), "sdp") == sdp1);
  CHECK(ng.state() == state);
  CHECK(ng.freePairs() == 5000 - 2);
}

TEST_CASE("ng: 183 then 200 with the same SDP get the same SDP", "[ng]") {
  Ng ng;
  ng.send(offerReq("c", "A", kSdpA));
  const std::string early = str(ng.send(answerReq("c", "A", "B", kSdpB)), "sdp");
  const std::string state = ng.state();
  CHECK(str(ng.send(answerReq("c", "A", "B", kSdpB)), "sdp") == early);
  CHECK(ng.state() == state);
}

TEST_CASE("ng: a forked offer answered by two to-tags; each branch ends alone", "[ng][fork]") {
  Ng ng;
  ng.send(offerReq("f", "A", kSdpA));
  const Dict b = ng.send(answerReq("f", "A", "B", kSdpB));
  const Dict c = ng.send(answerReq("f", "A", "C", kSdpC));
  REQUIRE(str(b, "result") == "ok");
  REQUIRE(str(c, "result") == "ok");
  // Both branches were sent the same offer, so both answers show A the same rtpx port.
  CHECK_THAT(str(b, "sdp"), Catch::Contains("m=audio 30000 "));
  CHECK_THAT(str(c, "sdp"), Catch::Contains("m=audio 30000 "));
  CHECK(tagsOf(ng.send(Dict{{"call-id", "f"}, {"command", "query"}})) ==
        std::vector<std::string>{"A", "B", "C"});
  CHECK(ng.freePairs() == 5000 - 2);

  // The losing branch's CANCEL/487 (from A, to C) ends C only.
  CHECK(str(ng.send(deleteReq("f", "A", "C")), "result") == "ok");
  CHECK(tagsOf(ng.send(Dict{{"call-id", "f"}, {"command", "query"}})) ==
        std::vector<std::string>{"A", "B"});
  // The winner's BYE ends the call.
  CHECK(str(ng.send(deleteReq("f", "B")), "result") == "ok");
  CHECK(ng.sm->callCount() == 0);
  CHECK(ng.flows->size() == 0);
  CHECK(ng.freePairs() == 5000);
}

TEST_CASE("ng: delete forms", "[ng][delete]") {
  Ng ng;
  ng.call("d");
  const std::string state = ng.state();
  auto gone = [&] {
    CHECK(ng.sm->callCount() == 0);
    CHECK(ng.flows->size() == 0);
    CHECK(ng.freePairs() == 5000);
  };
  auto warned = [&](const Dict& reply) {
    INFO(bencode::encode(Value(reply)));
    CHECK(keys(reply) == std::vector<std::string>{"result", "warning"});
    CHECK(str(reply, "result") == "ok");
    CHECK(str(reply, "warning") == kNotFound);
  };

  SECTION("from-tag only (a BYE from the caller)") {
    CHECK(str(ng.send(deleteReq("d", "A")), "result") == "ok");
    gone();
  }
  SECTION("from-tag only, the callee's (a BYE from the callee)") {
    CHECK(str(ng.send(deleteReq("d", "B")), "result") == "ok");
    gone();
  }
  SECTION("from-tag and to-tag") {
    CHECK(str(ng.send(deleteReq("d", "A", "B")), "result") == "ok");
    gone();
  }
  SECTION("call-id only") {
    CHECK(str(ng.send(Dict{{"call-id", "d"}, {"command", "delete"}}), "result") == "ok");
    gone();
  }
  SECTION("delete twice: the second (Kamailio's duplicate after a 486) is ok with a warning") {
    CHECK(str(ng.send(deleteReq("d", "A")), "result") == "ok");
    warned(ng.send(deleteReq("d", "A")));
    gone();
  }
  SECTION("unknown call: ok with rtpengine's warning") {
    warned(ng.send(deleteReq("nosuch", "A")));
    CHECK(ng.state() == state);
  }
  SECTION("an unknown tag of a known call deletes nothing") {
    warned(ng.send(deleteReq("d", "X")));
    warned(ng.send(deleteReq("d", "A", "X")));
    CHECK(ng.state() == state);
  }
  SECTION("with flags [fatal], an unknown call is an error") {
    requireError(ng.send(with(deleteReq("nosuch", "A"), "flags", List{"fatal"})), kNotFound);
    CHECK(ng.state() == state);
  }
}

TEST_CASE("ng: a delete by via-branch ends that branch of a fork", "[ng][delete][fork]") {
  Ng ng;
  ng.send(with(offerReq("v", "A", kSdpA), "via-branch", "z9hG4bK-1"));
  ng.send(with(offerReq("v", "A", kSdpA), "via-branch", "z9hG4bK-2"));
  REQUIRE(str(ng.send(with(answerReq("v", "A", "B", kSdpB), "via-branch", "z9hG4bK-1")),
              "result") == "ok");
  REQUIRE(str(ng.send(with(answerReq("v", "A", "C", kSdpC), "via-branch", "z9hG4bK-2")),
              "result") == "ok");
  const Dict q = ng.send(Dict{{"call-id", "v"}, {"command", "query"}});
  CHECK(*bencode::find(q, "tags")->find("C")->find("via-branch") == Value("z9hG4bK-2"));

  // The 487 of branch 2: from-tag A and the branch, no to-tag.
  CHECK(str(ng.send(with(deleteReq("v", "A"), "via-branch", "z9hG4bK-2")), "result") == "ok");
  CHECK(tagsOf(ng.send(Dict{{"call-id", "v"}, {"command", "query"}})) ==
        std::vector<std::string>{"A", "B"});
  // A via-branch no leg has (a BYE's own transaction): the tags decide, and A alone is the call.
  CHECK(str(ng.send(with(deleteReq("v", "A"), "via-branch", "z9hG4bK-bye")), "result") == "ok");
  CHECK(ng.sm->callCount() == 0);
  CHECK(ng.freePairs() == 5000);
}

TEST_CASE("ng: missing keys and unknown commands get rtpengine's exact error strings",
          "[ng][errors]") {
  Ng ng;
  ng.call("known");
  const std::string state = ng.state();
  requireError(ng.send(without(offerReq("c", "A", kSdpA), "sdp")), "No SDP body in message");
  requireError(ng.send(without(offerReq("c", "A", kSdpA), "call-id")), "No call-id in message");
  requireError(ng.send(without(offerReq("c", "A", kSdpA), "from-tag")), "No from-tag in message");
  requireError(ng.send(without(answerReq("known", "A", "B", kSdpB), "to-tag")),
               "No to-tag in message");
  requireError(ng.send(without(answerReq("known", "A", "B", kSdpB), "from-tag")),
               "No from-tag in message");
  requireError(ng.send(without(deleteReq("known", "A"), "call-id")), "No call-id in message");
  requireError(ng.send(Dict{{"command", "query"}}), "No call-id in message");
  requireError(ng.send(Dict{{"call-id", "nosuch"}, {"command", "query"}}), "Unknown call-id");
  requireError(ng.send(Dict{{"command", "list"}, {"limit", -1}}), "invalid limit, must be >= 0");
  requireError(ng.send(Dict{{"call-id", "known"}}), "Dictionary contains no key \"command\"");
  requireError(ng.send(Dict{{"command", "frobnicate"}}), "Unrecognized command");
  requireError(ng.send(Dict{{"command", "Offer"}}), "Unrecognized command");  // case matters
  CHECK(ng.state() == state);
}

TEST_CASE("ng: an answer for an unknown call is an error starting 'Unknown call-id'",
          "[ng][errors]") {
  Ng ng;
  const Dict r = ng.send(answerReq("nosuch", "A", "B", kSdpB));
  CHECK(str(r, "result") == "error");
  CHECK_THAT(str(r, "error-reason"), Catch::StartsWith("Unknown call-id"));
  CHECK(ng.sm->callCount() == 0);
}

TEST_CASE("ng: malformed datagrams get an error and change nothing", "[ng][errors]") {
  Ng ng;
  ng.call("known");
  const std::string state = ng.state();
  auto reason = [&](const std::string& cookie, std::string_view payload) {
    const Dict r = Ng::replyOf(cookie, ng.datagram(cookie + " " + std::string(payload)));
    INFO(payload);
    CHECK(keys(r) == std::vector<std::string>{"error-reason", "result"});
    CHECK(str(r, "result") == "error");
    return str(r, "error-reason");
  };
  CHECK(reason("m1", "") == "Invalid data (no payload)");
  CHECK_THAT(reason("m2", "hello"), Catch::StartsWith("Invalid NG data format"));
  CHECK_THAT(reason("m3", "l4:pinge"), Catch::StartsWith("Invalid NG data format"));
  CHECK_THAT(reason("m4", "i42e"), Catch::StartsWith("Invalid NG data format"));
  CHECK_THAT(reason("m5", "d7:command4:pin"),
             Catch::StartsWith("Could not decode bencode dictionary"));
  CHECK_THAT(reason("m6", "d7:command4:pinge trailing"),
             Catch::StartsWith("Could not decode bencode dictionary"));
  CHECK_THAT(reason("m7", "d7:command4:ping7:command4:pinge"),  // a key twice
             Catch::StartsWith("Could not decode bencode dictionary"));
  // Half an offer (a datagram cut short).
  const std::string whole = bencode::encode(Value(offerReq("new", "A", kSdpA)));
  CHECK_THAT(reason("m8", whole.substr(0, whole.size() / 2)),
             Catch::StartsWith("Could not decode bencode dictionary"));
  // A value that is not a dictionary, handed to the commands directly.
  requireError(ng.commands->handle(Value(List{"command", "ping"})),
               "Could not decode bencode dictionary");
  requireError(ng.commands->handle(Value("ping")), "Could not decode bencode dictionary");
  CHECK(ng.state() == state);
}

TEST_CASE("ng: an option rtpx cannot honour is refused and creates nothing", "[ng][errors]") {
  Ng ng;
  const Dict offer = offerReq("c", "A", kSdpA);
  const std::vector<Dict> refused = {
      with(offer, "codec", Dict{{"strip", List{"PCMA"}}}),
      with(offer, "flags", List{"codec-strip-PCMA"}),
      with(offer, "ICE", "force"),
      with(offer, "ptime", "20"),
      with(offer, "repacketize", 30),
      with(offer, "transport-protocol", "RTP/SAVP"),
      with(offer, "T.38", List{"decode"}),
      with(offer, "flags", List{"asymmetric"}),
      with(offer, "rtcp-mux", List{"demux"}),
      with(offer, "received-from", List{"IP4", "not-an-address"}),
  };
  for (const Dict& req : refused) {
    const Dict r = ng.send(req);
    INFO(bencode::encode(Value(req)) << " -> " << bencode::encode(Value(r)));
    CHECK(keys(r) == std::vector<std::string>{"error-reason", "result"});
    CHECK(str(r, "result") == "error");
    CHECK(ng.sm->callCount() == 0);
    CHECK(ng.flows->size() == 0);
    CHECK(ng.freePairs() == 5000);
  }
  // Nor does a refused re-offer touch an existing call.
  ng.call("c");
  const std::string state = ng.state();
  CHECK(str(ng.send(with(offer, "ptime", "30")), "result") == "error");
  CHECK(str(ng.send(with(answerReq("c", "A", "B", kSdpB), "ICE", "force")), "result") == "error");
  CHECK(ng.state() == state);
}

TEST_CASE("ng: an unknown flag or key is a warning on a successful reply", "[ng]") {
  Ng ng;
  const Dict r = ng.send(
      with(with(offerReq("c", "A", kSdpA), "flags", List{"no-such-flag"}), "x-vendor", "1"));
  CHECK(keys(r) == std::vector<std::string>{"result", "sdp", "warning"});
  CHECK(str(r, "result") == "ok");
  CHECK_THAT(str(r, "warning"), Catch::Contains("no-such-flag"));
  CHECK_THAT(str(r, "warning"), Catch::Contains("x-vendor"));
  CHECK(ng.sm->callCount() == 1);
  // What Kamailio always sends (supports, replace, received-from) earns no warning.
  CHECK(bencode::find(ng.send(answerReq("c", "A", "B", kSdpB)), "warning") == nullptr);
}

TEST_CASE("ng: past sessions.max_sessions a new call gets rtpengine's load-limit reply",
          "[ng][load]") {
  SessionsConfig cfg;
  cfg.max_sessions = 1;
  Ng ng(cfg);
  REQUIRE(str(ng.send(offerReq("c1", "A", kSdpA)), "result") == "ok");
  const std::string state = ng.state();

  // Kamailio (supports: ["load limit"]) tries the next node on this exact reply.
  const Dict limited = ng.send(offerReq("c2", "A", kSdpA));
  CHECK(keys(limited) == std::vector<std::string>{"message", "result"});
  CHECK(str(limited, "result") == "load limit");
  CHECK(str(limited, "message") == "Parallel session limit reached");
  // A client that does not announce it gets the error form (the same string).
  requireError(ng.send(without(offerReq("c3", "A", kSdpA), "supports")),
               "Parallel session limit reached");
  CHECK(ng.state() == state);

  // The call already there goes on: re-offer, answer, re-offer from the callee.
  CHECK(str(ng.send(offerReq("c1", "A", kSdpA)), "result") == "ok");
  CHECK(str(ng.send(answerReq("c1", "A", "B", kSdpB)), "result") == "ok");
  CHECK(str(ng.send(with(offerReq("c1", "B", sdp("bob", "192.0.2.20", 5000, "a=sendonly\r\n", 2)),
                         "to-tag", "A")),
            "result") == "ok");
  const Dict stats = ng.send(Dict{{"command", "statistics"}});
  const Value* total = bencode::find(stats, "statistics")->find("totalstatistics");
  CHECK(total->find("rejectedsessions")->integer() == 2);
  CHECK(total->find("managedsessions")->integer() == 1);
  // Room again once the call ends.
  ng.send(deleteReq("c1", "A"));
  CHECK(str(ng.send(offerReq("c2", "A", kSdpA)), "result") == "ok");
}

// Kamailio 5.6 fails over to the next node only when error-reason is exactly "Ran out of ports"
// (rtpengine.c compares length and bytes: RTPENGINE_SESS_OUT_OF_PORTS_MSG_LEN == error.len).
// Any detail appended to it would make Kamailio give up on the call instead.
TEST_CASE("ng: port exhaustion answers exactly 'Ran out of ports' so Kamailio fails over",
          "[ng][errors]") {
  SessionsConfig cfg;
  cfg.port_min = 30000;
  cfg.port_max = 30005;  // three pairs: one call takes two
  Ng ng(cfg);
  REQUIRE(str(ng.send(offerReq("c1", "A", kSdpA)), "result") == "ok");
  const std::string state = ng.state();
  requireError(ng.send(offerReq("c2", "A", kSdpA)), "Ran out of ports");
  CHECK(ng.state() == state);
}

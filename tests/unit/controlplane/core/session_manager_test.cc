// SessionManager against a real FlowTable (rte_hash + RCU QSBR, no reader threads): exact
// rewritten SDPs, the flows each call compiles to (read back through the table's packet-side
// lookup), ports, errors that change nothing, timeouts on an injected clock, and events. Media
// is real too: frames built byte by byte go through the dataplane's relay path.
#include "controlplane/core/session_manager.h"

#include <rte_byteorder.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <catch2/catch.hpp>

#include <malloc.h>

#include <cstring>
#include <functional>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "controlplane/core/sdp.h"
#include "dataplane/flow_internal.h"
#include "dataplane/ingress.h"
#include "tests/unit/test_support.h"

namespace {

using rtpx::CallInfo;
using rtpx::Endpoint;
using rtpx::FlowSpec;
using rtpx::IpAddr;
using rtpx::SessionEvent;
using rtpx::SessionInterface;
using rtpx::SessionManager;
using rtpx::SessionsConfig;
using rtpx::test::makeInterface;
using rtpx::test::oneInterface;

constexpr uint64_t kSecond = 1'000'000'000ull;

IpAddr ip(const char* s) {
  std::optional<IpAddr> a = IpAddr::parse(s);
  REQUIRE(a.has_value());
  return *a;
}

Endpoint ep(const char* addr, uint16_t port) {
  return Endpoint{ip(addr), port};
}

// SDP is CRLF on the wire; the fixtures are written with \n for readability.
std::string crlf(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '\n') out += '\r';
    out += c;
  }
  return out;
}

// A session manager over a real flow table, with an injected clock and a recording resolver.
struct Harness : rtpx::test::SessionFixture {
  using SessionFixture::SessionFixture;

  std::string offer(std::string_view call, std::string_view tag, std::string_view sdp,
                    const rtpx::OfferOptions& o = {}) {
    absl::StatusOr<std::string> r = sm->offer(call, tag, sdp, o);
    INFO(r.status().ToString());
    REQUIRE(r.ok());
    return *r;
  }
  std::string answer(std::string_view call, std::string_view from, std::string_view to,
                     std::string_view sdp, const rtpx::AnswerOptions& o = {}) {
    absl::StatusOr<std::string> r = sm->answer(call, from, to, sdp, o);
    INFO(r.status().ToString());
    REQUIRE(r.ok());
    return *r;
  }
  CallInfo query(std::string_view call) {
    absl::StatusOr<CallInfo> r = sm->query(call);
    INFO(r.status().ToString());
    REQUIRE(r.ok());
    return *r;
  }
  // The spec the dataplane executes for packets to rtpx's `addr`:`port`.
  FlowSpec specAt(const char* addr, uint16_t port) const {
    const rtpx::Flow* f = flows->lookup(ip(addr), rte_cpu_to_be_16(port));
    INFO(addr << ":" << port);
    REQUIRE(f != nullptr);
    return f->spec.load()->spec;
  }
  bool hasFlowAt(const char* addr, uint16_t port) const {
    return flows->lookup(ip(addr), rte_cpu_to_be_16(port)) != nullptr;
  }
  std::size_t freePairs() const { return sm->ports(0).available(); }
};

// One RTP packet (PCMU, 160 bytes) from `src`:`sport` to rtpx's `dst`:`dport`, through the
// dataplane's relay path. No interface is configured for egress, so it is counted and then
// dropped as no_route: enough for the manager's media checks.
// One RTP packet through the relay path, received at the worker's clock `now_ns`.
void sendRtp(rtpx::FlowTable& table, const char* src, uint16_t sport, const char* dst,
             uint16_t dport, uint16_t seq, uint64_t now_ns = 1) {
  const IpAddr s = ip(src), d = ip(dst);
  const bool v6 = s.isV6();
  const std::size_t l3 = v6 ? 40 : 20, payload = 12 + 160, len = 14 + l3 + 8 + payload;
  rte_mbuf* m = rte_pktmbuf_alloc(rtpx::test::testPool());
  REQUIRE(m != nullptr);
  auto* p = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, static_cast<uint16_t>(len)));
  REQUIRE(p != nullptr);
  std::memset(p, 0, len);
  const uint8_t macs[12] = {2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 10};
  std::memcpy(p, macs, 12);
  p[12] = v6 ? 0x86 : 0x08;
  p[13] = v6 ? 0xdd : 0x00;
  uint8_t* q = p + 14;
  const uint16_t udp_len = static_cast<uint16_t>(8 + payload);
  if (v6) {
    q[0] = 0x60;
    q[4] = static_cast<uint8_t>(udp_len >> 8);
    q[5] = static_cast<uint8_t>(udp_len);
    q[6] = 17;
    q[7] = 64;
    std::memcpy(q + 8, s.bytes.data(), 16);
    std::memcpy(q + 24, d.bytes.data(), 16);
  } else {
    const uint16_t total = static_cast<uint16_t>(20 + udp_len);
    q[0] = 0x45;
    q[2] = static_cast<uint8_t>(total >> 8);
    q[3] = static_cast<uint8_t>(total);
    q[8] = 64;
    q[9] = 17;
    std::memcpy(q + 12, s.bytes.data(), 4);
    std::memcpy(q + 16, d.bytes.data(), 4);
  }
  uint8_t* u = q + l3;
  u[0] = static_cast<uint8_t>(sport >> 8);
  u[1] = static_cast<uint8_t>(sport);
  u[2] = static_cast<uint8_t>(dport >> 8);
  u[3] = static_cast<uint8_t>(dport);
  u[4] = static_cast<uint8_t>(udp_len >> 8);
  u[5] = static_cast<uint8_t>(udp_len);
  uint8_t* r = u + 8;  // RTP: V=2, PT 0, seq, ts = seq * 160, SSRC 0x11223344
  r[0] = 0x80;
  r[2] = static_cast<uint8_t>(seq >> 8);
  r[3] = static_cast<uint8_t>(seq);
  const uint32_t ts = seq * 160u;
  r[4] = static_cast<uint8_t>(ts >> 24);
  r[5] = static_cast<uint8_t>(ts >> 16);
  r[6] = static_cast<uint8_t>(ts >> 8);
  r[7] = static_cast<uint8_t>(ts);
  r[8] = 0x11;
  r[9] = 0x22;
  r[10] = 0x33;
  r[11] = 0x44;
  rtpx::RelayContext ctx;
  ctx.flows = &table;
  ctx.worker = 0;
  ctx.now_ns = now_ns;
  rtpx::WorkerCounters counters;
  (void)rtpx::relayUdp(m, ctx, counters, false);
  rte_pktmbuf_free(m);
}

// Everything observable about the manager's state, for "an error changed nothing".
std::string describe(Harness& h) {
  std::ostringstream s;
  for (const rtpx::CallSummary& c : h.sm->list()) {
    s << c.call_id << " " << rtpx::callStateName(c.state) << " [" << c.tags[0] << "|" << c.tags[1]
      << "] media=" << c.active_media << "\n";
    const CallInfo info = h.query(c.call_id);
    for (const rtpx::MediaInfo& m : info.media) {
      s << "  m" << m.index << " " << m.type << " mux=" << m.rtcp_mux << "\n";
      for (const rtpx::DirectionInfo& d : m.directions)
        s << "    " << d.from_tag << ">" << d.to_tag << " rtcp=" << d.rtcp << " "
          << d.local.toString() << " -> " << d.egress_local.toString() << " -> "
          << d.destination.toString() << " fwd=" << d.forward << "\n";
    }
  }
  s << "flows=" << h.flows->size() << " free_pairs=" << h.freePairs() << "\n";
  return s.str();
}

std::vector<SessionEvent> drain(rtpx::EventSubscription& sub) {
  std::vector<SessionEvent> out;
  while (std::optional<SessionEvent> e = sub.next(std::chrono::milliseconds(0))) out.push_back(*e);
  return out;
}

std::string eventString(const SessionEvent& e) {
  std::string s = std::string(rtpx::eventTypeName(e.type));
  if (e.reason != SessionEvent::Reason::kNone)
    s += "/" + std::string(rtpx::eventReasonName(e.reason));
  return s + " " + e.call_id + " " + e.from_tag + ">" + e.to_tag;
}

std::vector<std::string> eventStrings(const std::vector<SessionEvent>& events) {
  std::vector<std::string> out;
  for (const SessionEvent& e : events) out.push_back(eventString(e));
  return out;
}

// ---- SDP fixtures ------------------------------------------------------------------------

// A SIP phone's offer, with attributes rtpx does not know (spacing kept byte for byte).
const std::string kOfferA = crlf(
    "v=0\n"
    "o=alice 2890844526 2890844526 IN IP4 192.0.2.10\n"
    "s=-\n"
    "c=IN IP4 192.0.2.10\n"
    "t=0 0\n"
    "a=X-session-attr:  spaced   value \n"
    "m=audio 49170 RTP/AVP 0 8 101\n"
    "a=rtpmap:0 PCMU/8000\n"
    "a=rtpmap:8 PCMA/8000\n"
    "a=rtpmap:101 telephone-event/8000\n"
    "a=fmtp:101 0-15\n"
    "a=ptime:20\n"
    "a=X-unknown-attr:with;odd=chars  and  spaces\n"
    "a=sendrecv\n");

const std::string kOfferAOut = crlf(
    "v=0\n"
    "o=alice 2890844526 2890844526 IN IP4 192.0.2.10\n"
    "s=-\n"
    "c=IN IP4 192.0.2.2\n"
    "t=0 0\n"
    "a=X-session-attr:  spaced   value \n"
    "m=audio 30002 RTP/AVP 0 8 101\n"
    "a=rtpmap:0 PCMU/8000\n"
    "a=rtpmap:8 PCMA/8000\n"
    "a=rtpmap:101 telephone-event/8000\n"
    "a=fmtp:101 0-15\n"
    "a=ptime:20\n"
    "a=X-unknown-attr:with;odd=chars  and  spaces\n"
    "a=sendrecv\n"
    "a=rtcp:30003\n");

// The callee answers from outside rtpx's prefix (next hop: the gateway).
const std::string kAnswerB = crlf(
    "v=0\n"
    "o=bob 2808844564 2808844564 IN IP4 198.51.100.20\n"
    "s=-\n"
    "c=IN IP4 198.51.100.20\n"
    "t=0 0\n"
    "m=audio 5004 RTP/AVP 0 101\n"
    "a=rtpmap:0 PCMU/8000\n"
    "a=rtpmap:101 telephone-event/8000\n"
    "a=fmtp:101 0-15\n"
    "a=sendrecv\n");

const std::string kAnswerBOut = crlf(
    "v=0\n"
    "o=bob 2808844564 2808844564 IN IP4 198.51.100.20\n"
    "s=-\n"
    "c=IN IP4 192.0.2.2\n"
    "t=0 0\n"
    "m=audio 30000 RTP/AVP 0 101\n"
    "a=rtpmap:0 PCMU/8000\n"
    "a=rtpmap:101 telephone-event/8000\n"
    "a=fmtp:101 0-15\n"
    "a=sendrecv\n"
    "a=rtcp:30001\n");

// A minimal offer / answer with a given address, port and extra media-level lines.
std::string simpleSdp(const char* user, const char* addr, uint16_t port,
                      const std::string& extra = "", const char* version = "1") {
  const bool v6 = std::string(addr).find(':') != std::string::npos;
  const std::string fam = v6 ? "IP6" : "IP4";
  return crlf(std::string("v=0\no=") + user + " 1 " + version + " IN " + fam + " " + addr +
              "\ns=-\nc=IN " + fam + " " + addr + "\nt=0 0\nm=audio " + std::to_string(port) +
              " RTP/AVP 0\na=rtpmap:0 PCMU/8000\n" + extra);
}

std::string twoMedia(const char* user, const char* addr, uint16_t audio, uint16_t video,
                     const char* version = "1") {
  return crlf(std::string("v=0\no=") + user + " 1 " + version + " IN IP4 " + addr +
              "\ns=-\nc=IN IP4 " + addr + "\nt=0 0\nm=audio " + std::to_string(audio) +
              " RTP/AVP 0\na=rtpmap:0 PCMU/8000\nm=video " + std::to_string(video) +
              " RTP/AVP 96\na=rtpmap:96 H264/90000\na=fmtp:96 profile-level-id=42801F\n");
}

}  // namespace

TEST_CASE("offer and answer: rtpx's address and ports in exact SDPs, four paired flows",
          "[sessions]") {
  Harness h;
  CHECK(h.offer("call-1", "tag-a", kOfferA) == kOfferAOut);
  // Before the answer: B→A knows where A is; A→B's destination is not known yet.
  CHECK(h.flows->size() == 4);
  FlowSpec ab = h.specAt("192.0.2.2", 30000);
  CHECK_FALSE(ab.destination.known());
  FlowSpec ba = h.specAt("192.0.2.2", 30002);
  CHECK(ba.destination == ep("192.0.2.10", 49170));
  CHECK(ba.egress_local == ep("192.0.2.2", 30000));

  CHECK(h.answer("call-1", "tag-a", "tag-b", kAnswerB) == kAnswerBOut);
  CHECK(h.flows->size() == 4);
  ab = h.specAt("192.0.2.2", 30000);  // A sends here (the port in A's answer)
  CHECK(ab.local == ep("192.0.2.2", 30000));
  CHECK(ab.egress_local == ep("192.0.2.2", 30002));  // the port B was offered
  CHECK(ab.destination == ep("198.51.100.20", 5004));
  CHECK(ab.announced_source == ep("192.0.2.10", 49170));
  CHECK(ab.forward);
  CHECK_FALSE(ab.rtcp);
  CHECK(ab.clock_rate == 8000);
  ba = h.specAt("192.0.2.2", 30002);
  CHECK(ba.destination == ep("192.0.2.10", 49170));
  CHECK(ba.egress_local == ep("192.0.2.2", 30000));
  const FlowSpec ab_rtcp = h.specAt("192.0.2.2", 30001);
  CHECK(ab_rtcp.rtcp);
  CHECK(ab_rtcp.destination == ep("198.51.100.20", 5005));
  CHECK(ab_rtcp.egress_local == ep("192.0.2.2", 30003));
  const FlowSpec ba_rtcp = h.specAt("192.0.2.2", 30003);
  CHECK(ba_rtcp.destination == ep("192.0.2.10", 49171));
  // The two directions are paired.
  const rtpx::Flow* fab = h.flows->lookup(ip("192.0.2.2"), rte_cpu_to_be_16(30000));
  const rtpx::Flow* fba = h.flows->lookup(ip("192.0.2.2"), rte_cpu_to_be_16(30002));
  CHECK(fab->reverse.load() == fba);
  CHECK(fba->reverse.load() == fab);
  // Next hops: A is on the interface's prefix, B behind the gateway.
  const std::set<std::pair<uint16_t, IpAddr>> hops(h.resolved.begin(), h.resolved.end());
  CHECK(hops == std::set<std::pair<uint16_t, IpAddr>>{{0, ip("192.0.2.10")}, {0, ip("192.0.2.1")}});

  const CallInfo info = h.query("call-1");
  CHECK(info.state == rtpx::CallState::kAnswered);
  CHECK(info.tags[0] == "tag-a");
  CHECK(info.tags[1] == "tag-b");
  REQUIRE(info.media.size() == 1);
  CHECK(info.media[0].type == "audio");
  CHECK_FALSE(info.media[0].rtcp_mux);
  REQUIRE(info.media[0].directions.size() == 4);
  CHECK(info.media[0].directions[0].from_tag == "tag-a");
  CHECK(info.media[0].directions[0].destination == ep("198.51.100.20", 5004));
  CHECK(info.media[0].directions[1].from_tag == "tag-b");
  CHECK(info.media[0].directions[2].rtcp);
  CHECK(h.freePairs() == 5000 - 2);
}

TEST_CASE("unknown lines pass through byte for byte, line endings included", "[sessions]") {
  Harness h;
  // LF-only input, an unknown line type, session and media attributes rtpx does not know.
  const std::string offer =
      "v=0\n"
      "o=- 7 7 IN IP4 192.0.2.10\n"
      "s=funny  session\n"
      "c=IN IP4 192.0.2.10\n"
      "t=0 0\n"
      "x=vendor extension\n"
      "m=audio 4000 RTP/AVP 0 96\n"
      "i=audio info\n"
      "a=rtpmap:96 opus/48000/2\n"
      "a=weird-attr:  two  spaces  and trailing space \n"
      "a=flag\n"
      "a=fmtp:96 useinbandfec=1;  minptime=10";  // no final line ending
  const std::string expected =
      "v=0\n"
      "o=- 7 7 IN IP4 192.0.2.10\n"
      "s=funny  session\n"
      "c=IN IP4 192.0.2.2\n"
      "t=0 0\n"
      "x=vendor extension\n"
      "m=audio 30002 RTP/AVP 0 96\n"
      "i=audio info\n"
      "a=rtpmap:96 opus/48000/2\n"
      "a=weird-attr:  two  spaces  and trailing space \n"
      "a=flag\n"
      "a=fmtp:96 useinbandfec=1;  minptime=10\n"
      "a=rtcp:30003";
  const std::string out = h.offer("c", "a", offer);
  CHECK(out == expected);
  // The first payload type is PCMU: its clock is 8000 even though opus is listed.
  CHECK(h.specAt("192.0.2.2", 30000).clock_rate == 8000);
}

TEST_CASE("audio and video get independent ports and flows", "[sessions]") {
  Harness h;
  const std::string out = h.offer("av", "a", twoMedia("alice", "192.0.2.10", 49170, 51372));
  CHECK(out == crlf("v=0\no=alice 1 1 IN IP4 192.0.2.10\ns=-\nc=IN IP4 192.0.2.2\nt=0 0\n"
                    "m=audio 30002 RTP/AVP 0\na=rtpmap:0 PCMU/8000\na=rtcp:30003\n"
                    "m=video 30006 RTP/AVP 96\na=rtpmap:96 H264/90000\n"
                    "a=fmtp:96 profile-level-id=42801F\na=rtcp:30007\n"));
  const std::string ans = h.answer("av", "a", "b", twoMedia("bob", "198.51.100.20", 5004, 5006));
  CHECK(ans == crlf("v=0\no=bob 1 1 IN IP4 198.51.100.20\ns=-\nc=IN IP4 192.0.2.2\nt=0 0\n"
                    "m=audio 30000 RTP/AVP 0\na=rtpmap:0 PCMU/8000\na=rtcp:30001\n"
                    "m=video 30004 RTP/AVP 96\na=rtpmap:96 H264/90000\n"
                    "a=fmtp:96 profile-level-id=42801F\na=rtcp:30005\n"));
  CHECK(h.flows->size() == 8);
  CHECK(h.freePairs() == 5000 - 4);
  CHECK(h.specAt("192.0.2.2", 30000).destination == ep("198.51.100.20", 5004));
  CHECK(h.specAt("192.0.2.2", 30004).destination == ep("198.51.100.20", 5006));
  CHECK(h.specAt("192.0.2.2", 30004).clock_rate == 90000);
  CHECK(h.specAt("192.0.2.2", 30006).destination == ep("192.0.2.10", 51372));
  CHECK(h.specAt("192.0.2.2", 30007).destination == ep("192.0.2.10", 51373));
  const CallInfo info = h.query("av");
  REQUIRE(info.media.size() == 2);
  CHECK(info.media[1].type == "video");
  CHECK(info.media[1].index == 1);
}

TEST_CASE("rtcp-mux uses one port per leg", "[sessions][rtcp-mux]") {
  Harness h;
  SECTION("both sides mux") {
    const std::string out =
        h.offer("m", "a", simpleSdp("alice", "192.0.2.10", 4000, "a=rtcp-mux\n"));
    CHECK(out == crlf("v=0\no=alice 1 1 IN IP4 192.0.2.10\ns=-\nc=IN IP4 192.0.2.2\nt=0 0\n"
                      "m=audio 30002 RTP/AVP 0\na=rtpmap:0 PCMU/8000\na=rtcp-mux\n"));
    CHECK(h.flows->size() == 2);
    const std::string ans =
        h.answer("m", "a", "b", simpleSdp("bob", "192.0.2.20", 5000, "a=rtcp-mux\n"));
    CHECK(ans == crlf("v=0\no=bob 1 1 IN IP4 192.0.2.20\ns=-\nc=IN IP4 192.0.2.2\nt=0 0\n"
                      "m=audio 30000 RTP/AVP 0\na=rtpmap:0 PCMU/8000\na=rtcp-mux\n"));
    CHECK(h.flows->size() == 2);
    CHECK_FALSE(h.hasFlowAt("192.0.2.2", 30001));
    CHECK_FALSE(h.hasFlowAt("192.0.2.2", 30003));
    CHECK(h.query("m").media[0].rtcp_mux);
  }
  SECTION("mux offered with a=rtcp naming the RTP port") {
    const std::string out =
        h.offer("m", "a", simpleSdp("alice", "192.0.2.10", 4000, "a=rtcp:4000\na=rtcp-mux\n"));
    CHECK(out.find("a=rtcp:30002\r\na=rtcp-mux\r\n") != std::string::npos);
  }
  SECTION("the answer declines mux: RTCP gets its own flows") {
    h.offer("m", "a", simpleSdp("alice", "192.0.2.10", 4000, "a=rtcp-mux\n"));
    const std::string ans = h.answer("m", "a", "b", simpleSdp("bob", "192.0.2.20", 5000));
    CHECK(ans == crlf("v=0\no=bob 1 1 IN IP4 192.0.2.20\ns=-\nc=IN IP4 192.0.2.2\nt=0 0\n"
                      "m=audio 30000 RTP/AVP 0\na=rtpmap:0 PCMU/8000\na=rtcp:30001\n"));
    CHECK(h.flows->size() == 4);
    CHECK(h.specAt("192.0.2.2", 30001).destination == ep("192.0.2.20", 5001));
    CHECK(h.specAt("192.0.2.2", 30003).destination == ep("192.0.2.10", 4001));
    CHECK_FALSE(h.query("m").media[0].rtcp_mux);
  }
}

TEST_CASE("IPv6 calls and IPv4/IPv6 bridging", "[sessions][ipv6]") {
  Harness h;
  SECTION("IPv6 on both sides") {
    const std::string out = h.offer("v6", "a", simpleSdp("alice", "2001:db8::10", 4000));
    CHECK(out == crlf("v=0\no=alice 1 1 IN IP6 2001:db8::10\ns=-\nc=IN IP6 2001:db8::2\nt=0 0\n"
                      "m=audio 30002 RTP/AVP 0\na=rtpmap:0 PCMU/8000\na=rtcp:30003\n"));
    const std::string ans = h.answer("v6", "a", "b", simpleSdp("bob", "2001:db8:1::20", 5000));
    CHECK(ans == crlf("v=0\no=bob 1 1 IN IP6 2001:db8:1::20\ns=-\nc=IN IP6 2001:db8::2\nt=0 0\n"
                      "m=audio 30000 RTP/AVP 0\na=rtpmap:0 PCMU/8000\na=rtcp:30001\n"));
    const FlowSpec ab = h.specAt("2001:db8::2", 30000);
    CHECK(ab.destination == ep("2001:db8:1::20", 5000));
    CHECK(ab.egress_local == ep("2001:db8::2", 30002));
    CHECK(h.specAt("2001:db8::2", 30002).destination == ep("2001:db8::10", 4000));
    const std::set<std::pair<uint16_t, IpAddr>> hops(h.resolved.begin(), h.resolved.end());
    CHECK(hops ==
          std::set<std::pair<uint16_t, IpAddr>>{{0, ip("2001:db8::10")}, {0, ip("2001:db8::1")}});
  }
  SECTION("an IPv4 phone calls an IPv6 callee") {
    rtpx::OfferOptions o;
    o.answerer.family = IpAddr::Family::kV6;
    const std::string out = h.offer("br", "a", simpleSdp("alice", "192.0.2.10", 4000), o);
    CHECK(out == crlf("v=0\no=alice 1 1 IN IP4 192.0.2.10\ns=-\nc=IN IP6 2001:db8::2\nt=0 0\n"
                      "m=audio 30002 RTP/AVP 0\na=rtpmap:0 PCMU/8000\na=rtcp:30003\n"));
    const std::string ans = h.answer("br", "a", "b", simpleSdp("bob", "2001:db8::20", 5000));
    CHECK(ans == crlf("v=0\no=bob 1 1 IN IP6 2001:db8::20\ns=-\nc=IN IP4 192.0.2.2\nt=0 0\n"
                      "m=audio 30000 RTP/AVP 0\na=rtpmap:0 PCMU/8000\na=rtcp:30001\n"));
    const FlowSpec ab = h.specAt("192.0.2.2", 30000);
    CHECK(ab.egress_local == ep("2001:db8::2", 30002));
    CHECK(ab.destination == ep("2001:db8::20", 5000));
    const FlowSpec ba = h.specAt("2001:db8::2", 30002);
    CHECK(ba.egress_local == ep("192.0.2.2", 30000));
    CHECK(ba.destination == ep("192.0.2.10", 4000));
    CHECK_FALSE(h.hasFlowAt("192.0.2.2", 30002));
  }
  SECTION("an answer in the family rtpx did not offer is refused") {
    h.offer("br", "a", simpleSdp("alice", "192.0.2.10", 4000));
    const std::string before = describe(h);
    absl::StatusOr<std::string> r =
        h.sm->answer("br", "a", "b", simpleSdp("bob", "2001:db8::20", 5000));
    CHECK(r.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(r.status().message()), Catch::Contains("IPv6"));
    CHECK(describe(h) == before);
  }
}

TEST_CASE("the advertised address goes into SDP, the local one into flows", "[sessions]") {
  std::vector<SessionInterface> ifs = oneInterface();
  ifs[0].advertised_ipv4 = ip("203.0.113.77");
  Harness h(SessionsConfig{}, ifs);
  rtpx::OfferOptions o;
  o.replace_origin = true;
  const std::string out = h.offer("aws", "a", simpleSdp("alice", "192.0.2.10", 4000), o);
  CHECK(out == crlf("v=0\no=alice 1 1 IN IP4 203.0.113.77\ns=-\nc=IN IP4 203.0.113.77\nt=0 0\n"
                    "m=audio 30002 RTP/AVP 0\na=rtpmap:0 PCMU/8000\na=rtcp:30003\n"));
  const std::string ans = h.answer("aws", "a", "b", simpleSdp("bob", "198.51.100.20", 5000));
  CHECK(ans.find("c=IN IP4 203.0.113.77\r\n") != std::string::npos);
  CHECK(ans.find("o=bob 1 1 IN IP4 198.51.100.20\r\n") != std::string::npos);  // not replaced
  const FlowSpec ab = h.specAt("192.0.2.2", 30000);
  CHECK(ab.egress_local == ep("192.0.2.2", 30002));
  CHECK_FALSE(h.flows->lookup(ip("203.0.113.77"), rte_cpu_to_be_16(30000)));
}

TEST_CASE("a T.38 (udptl) m= line is relayed as plain UDP, without RTP's first-byte demux",
          "[sessions]") {
  Harness h;
  const std::string t38 = "m=image 4100 udptl t38\na=T38FaxVersion:0\n";
  h.offer("fax", "a", simpleSdp("alice", "192.0.2.10", 4000) + crlf(t38));
  h.answer("fax", "a", "b",
           simpleSdp("bob", "192.0.2.20", 5000) + crlf("m=image 5100 udptl t38\n"));
  CHECK(h.specAt("192.0.2.2", 30000).demux);  // the audio
  const CallInfo info = h.query("fax");
  REQUIRE(info.media.size() == 2);
  const uint16_t fax_port = info.media[1].directions[0].local.port;
  CHECK_FALSE(h.specAt("192.0.2.2", fax_port).demux);
}

TEST_CASE("ICE attributes are removed unless kept", "[sessions]") {
  Harness h;
  const std::string ice =
      "a=ice-ufrag:F7gI\na=ice-pwd:x9cml/YzichV2+XlhiMu8g\n"
      "a=candidate:1 1 UDP 2130706431 192.0.2.10 4000 typ host\n";
  const std::string stripped = h.offer("i1", "a", simpleSdp("alice", "192.0.2.10", 4000, ice));
  CHECK(stripped.find("a=ice") == std::string::npos);
  CHECK(stripped.find("candidate") == std::string::npos);
  rtpx::OfferOptions keep;
  keep.keep_ice = true;
  const std::string kept = h.offer("i2", "a", simpleSdp("alice", "192.0.2.10", 4002, ice), keep);
  CHECK(kept.find("a=candidate:1 1 UDP 2130706431 192.0.2.10 4000 typ host\r\n") !=
        std::string::npos);
  CHECK(kept.find("a=ice-ufrag:F7gI\r\n") != std::string::npos);
}

TEST_CASE("a re-offer that moves the remote updates and relatches its flows", "[sessions]") {
  Harness h;
  h.offer("mv", "a", simpleSdp("alice", "192.0.2.10", 4000));
  h.answer("mv", "a", "b", simpleSdp("bob", "192.0.2.20", 5000));
  // A's first packet latches A→B to A's source.
  sendRtp(*h.flows, "192.0.2.10", 4000, "192.0.2.2", 30000, 1);
  rtpx::DirectionInfo ab = h.query("mv").media[0].directions[0];
  REQUIRE(ab.stats.latched);
  CHECK(ab.stats.latched_source == ep("192.0.2.10", 4000));
  CHECK(ab.stats.packets == 1);
  const uint32_t generation =
      h.flows->lookup(ip("192.0.2.2"), rte_cpu_to_be_16(30000))->spec.load()->generation;

  // A moves (new address and port); the offer B receives is unchanged but for the version.
  const std::string out = h.offer("mv", "a", simpleSdp("alice", "192.0.2.11", 4010, "", "2"));
  CHECK(out == crlf("v=0\no=alice 1 2 IN IP4 192.0.2.11\ns=-\nc=IN IP4 192.0.2.2\nt=0 0\n"
                    "m=audio 30002 RTP/AVP 0\na=rtpmap:0 PCMU/8000\na=rtcp:30003\n"));
  CHECK(h.flows->size() == 4);
  CHECK(h.specAt("192.0.2.2", 30002).destination == ep("192.0.2.11", 4010));
  CHECK(h.specAt("192.0.2.2", 30003).destination == ep("192.0.2.11", 4011));
  const FlowSpec moved = h.specAt("192.0.2.2", 30000);
  CHECK(moved.announced_source == ep("192.0.2.11", 4010));
  CHECK(moved.destination == ep("192.0.2.20", 5000));  // B did not move
  CHECK(h.flows->lookup(ip("192.0.2.2"), rte_cpu_to_be_16(30000))->spec.load()->generation ==
        generation + 1);
  ab = h.query("mv").media[0].directions[0];
  CHECK_FALSE(ab.stats.latched);  // forgot the old source: the next packet latches again
  CHECK(ab.stats.packets == 1);   // counters survive the update
  sendRtp(*h.flows, "192.0.2.11", 4010, "192.0.2.2", 30000, 2);
  ab = h.query("mv").media[0].directions[0];
  CHECK(ab.stats.latched_source == ep("192.0.2.11", 4010));

  // The answer to the re-offer keeps A's port.
  const std::string ans = h.answer("mv", "a", "b", simpleSdp("bob", "192.0.2.20", 5000, "", "2"));
  CHECK(ans.find("m=audio 30000 RTP/AVP 0\r\n") != std::string::npos);
  CHECK(h.freePairs() == 5000 - 2);
}

TEST_CASE("hold: a=sendonly stops the held direction only (RFC 3264 section 8.4)",
          "[sessions][hold]") {
  Harness h;
  h.offer("hold", "a", simpleSdp("alice", "192.0.2.10", 4000));
  h.answer("hold", "a", "b", simpleSdp("bob", "192.0.2.20", 5000));
  CHECK(h.specAt("192.0.2.2", 30000).forward);
  CHECK(h.specAt("192.0.2.2", 30002).forward);

  // A puts B on hold: A still sends (music on hold), A no longer wants B's media.
  const std::string out =
      h.offer("hold", "a", simpleSdp("alice", "192.0.2.10", 4000, "a=sendonly\n", "2"));
  CHECK(out.find("a=sendonly\r\n") != std::string::npos);  // passes through to B
  CHECK(h.specAt("192.0.2.2", 30000).forward);             // A→B
  CHECK_FALSE(h.specAt("192.0.2.2", 30002).forward);       // B→A held
  CHECK(h.specAt("192.0.2.2", 30001).forward);             // RTCP keeps flowing
  CHECK(h.specAt("192.0.2.2", 30003).forward);
  h.answer("hold", "a", "b", simpleSdp("bob", "192.0.2.20", 5000, "a=recvonly\n", "2"));
  CHECK(h.specAt("192.0.2.2", 30000).forward);
  CHECK_FALSE(h.specAt("192.0.2.2", 30002).forward);
  const CallInfo info = h.query("hold");
  CHECK(info.media[0].directions[0].forward);
  CHECK_FALSE(info.media[0].directions[1].forward);

  // Held media is counted and dropped.
  sendRtp(*h.flows, "192.0.2.20", 5000, "192.0.2.2", 30002, 1);
  CHECK(h.query("hold").media[0].directions[1].stats.dropped_not_forwarding == 1);

  SECTION("inactive stops both") {
    h.offer("hold", "a", simpleSdp("alice", "192.0.2.10", 4000, "a=inactive\n", "3"));
    h.answer("hold", "a", "b", simpleSdp("bob", "192.0.2.20", 5000, "a=inactive\n", "3"));
    CHECK_FALSE(h.specAt("192.0.2.2", 30000).forward);
    CHECK_FALSE(h.specAt("192.0.2.2", 30002).forward);
  }
  SECTION("resume") {
    h.offer("hold", "a", simpleSdp("alice", "192.0.2.10", 4000, "a=sendrecv\n", "3"));
    h.answer("hold", "a", "b", simpleSdp("bob", "192.0.2.20", 5000, "", "3"));
    CHECK(h.specAt("192.0.2.2", 30000).forward);
    CHECK(h.specAt("192.0.2.2", 30002).forward);
  }
  SECTION("the callee holds with a re-offer of its own") {
    const std::string reoffer =
        h.offer("hold", "b", simpleSdp("bob", "192.0.2.20", 5000, "a=sendonly\n", "3"));
    // B's re-offer goes to A with A's port.
    CHECK(reoffer.find("m=audio 30000 RTP/AVP 0\r\n") != std::string::npos);
    const std::string ans =
        h.answer("hold", "b", "a", simpleSdp("alice", "192.0.2.10", 4000, "a=recvonly\n", "3"));
    CHECK(ans.find("m=audio 30002 RTP/AVP 0\r\n") != std::string::npos);
    CHECK_FALSE(h.specAt("192.0.2.2", 30000).forward);  // A→B: B does not want it
    CHECK(h.specAt("192.0.2.2", 30002).forward);        // B→A
  }
}

TEST_CASE("an m= line set to port 0 frees its ports and flows", "[sessions]") {
  Harness h;
  h.offer("rm", "a", twoMedia("alice", "192.0.2.10", 4000, 4002));
  h.answer("rm", "a", "b", twoMedia("bob", "192.0.2.20", 5000, 5002));
  REQUIRE(h.flows->size() == 8);
  REQUIRE(h.freePairs() == 5000 - 4);

  const std::string out = h.offer("rm", "a", twoMedia("alice", "192.0.2.10", 4000, 0, "2"));
  CHECK(out == crlf("v=0\no=alice 1 2 IN IP4 192.0.2.10\ns=-\nc=IN IP4 192.0.2.2\nt=0 0\n"
                    "m=audio 30002 RTP/AVP 0\na=rtpmap:0 PCMU/8000\na=rtcp:30003\n"
                    "m=video 0 RTP/AVP 96\na=rtpmap:96 H264/90000\n"
                    "a=fmtp:96 profile-level-id=42801F\n"));
  CHECK(h.flows->size() == 4);
  CHECK(h.freePairs() == 5000 - 2);
  CHECK_FALSE(h.hasFlowAt("192.0.2.2", 30004));
  CHECK_FALSE(h.hasFlowAt("192.0.2.2", 30006));
  const std::string ans = h.answer("rm", "a", "b", twoMedia("bob", "192.0.2.20", 5000, 0, "2"));
  CHECK(ans.find("m=video 0 RTP/AVP 96\r\n") != std::string::npos);
  CHECK(h.query("rm").media.size() == 1);

  SECTION("re-enabling it takes fresh ports") {
    const std::string again = h.offer("rm", "a", twoMedia("alice", "192.0.2.10", 4000, 4002, "3"));
    CHECK(again.find("m=video 30010 RTP/AVP 96\r\n") != std::string::npos);  // FIFO reuse
    CHECK(h.flows->size() == 8);
    CHECK(h.freePairs() == 5000 - 4);
  }
  SECTION("the answerer rejects a stream") {
    h.offer("rm", "a", twoMedia("alice", "192.0.2.10", 4000, 4002, "3"));
    REQUIRE(h.flows->size() == 8);
    const std::string rejected =
        h.answer("rm", "a", "b", twoMedia("bob", "192.0.2.20", 5000, 0, "3"));
    CHECK(rejected.find("m=video 0 RTP/AVP 96\r\n") != std::string::npos);
    CHECK(h.flows->size() == 4);
    CHECK(h.freePairs() == 5000 - 2);
  }
}

TEST_CASE("delete frees every port and flow", "[sessions]") {
  Harness h;
  auto sub = h.sm->subscribe();
  h.offer("d1", "a", twoMedia("alice", "192.0.2.10", 4000, 4002));
  h.answer("d1", "a", "b", twoMedia("bob", "192.0.2.20", 5000, 5002));
  h.offer("d2", "x", simpleSdp("x", "192.0.2.30", 6000, "a=rtcp-mux\n"));
  REQUIRE(h.flows->size() == 10);
  REQUIRE(h.sm->deleteCall("d1").ok());
  CHECK(h.flows->size() == 2);
  REQUIRE(h.sm->deleteCall("d2", {.from_tag = "x"}).ok());  // a from-tag alone ends it
  CHECK(h.flows->size() == 0);
  CHECK(h.freePairs() == 5000);
  CHECK(h.sm->list().empty());
  CHECK(h.sm->query("d1").status().code() == absl::StatusCode::kNotFound);
  CHECK(eventStrings(drain(*sub)) ==
        std::vector<std::string>{"created d1 a>", "answered d1 a>b", "created d2 x>",
                                 "deleted/requested d1 a>b", "deleted/requested d2 x>"});
}

TEST_CASE("a forked offer answered by two branches: media to the latest, each ends alone",
          "[sessions][fork]") {
  Harness h;
  auto sub = h.sm->subscribe();
  h.offer("fork", "a", simpleSdp("alice", "192.0.2.10", 4000));
  // Both branches got the same offer, so both answers show Alice the same rtpx port.
  const std::string b1 = h.answer("fork", "a", "b1", simpleSdp("bob", "192.0.2.20", 5000));
  CHECK(h.specAt("192.0.2.2", 30000).destination == ep("192.0.2.20", 5000));
  const rtpx::AnswerOptions via2{.via_branch = "z9hG4bK-2"};
  const std::string b2 = h.answer("fork", "a", "b2", simpleSdp("carol", "192.0.2.21", 5100), via2);
  CHECK(b1.find("m=audio 30000 ") != std::string::npos);
  CHECK(b2.find("m=audio 30000 ") != std::string::npos);
  CHECK(h.specAt("192.0.2.2", 30000).destination == ep("192.0.2.21", 5100));
  CallInfo info = h.query("fork");
  CHECK(info.tags[1] == "b2");
  REQUIRE(info.legs.size() == 3);
  CHECK(info.legs[2].tag == "b1");
  CHECK(info.legs[2].side == -1);
  CHECK(h.flows->size() == 4);
  CHECK(h.freePairs() == 5000 - 2);  // one set of ports for every branch

  SECTION("the branch media flows to ends: media goes to the other branch") {
    REQUIRE(h.sm->deleteCall("fork", {.from_tag = "a", .to_tag = "b2"}).ok());
    CHECK(h.query("fork").tags[1] == "b1");
    CHECK(h.specAt("192.0.2.2", 30000).destination == ep("192.0.2.20", 5000));
    // Now a single dialog remains: a delete naming it ends the call.
    REQUIRE(h.sm->deleteCall("fork", {.from_tag = "a", .to_tag = "b1"}).ok());
    CHECK(h.sm->callCount() == 0);
    CHECK(h.freePairs() == 5000);
  }
  SECTION("a via-branch delete ends that branch only") {
    REQUIRE(h.sm->deleteCall("fork", {.via_branch = "z9hG4bK-2"}).ok());
    CHECK(h.query("fork").tags[1] == "b1");
    CHECK(h.query("fork").legs.size() == 2);
    // A via-branch no leg has (a BYE's own branch): the tags decide, and no tag is the call.
    REQUIRE(h.sm->deleteCall("fork", {.via_branch = "z9hG4bK-bye"}).ok());
    CHECK(h.sm->callCount() == 0);
  }
  SECTION("the earlier branch answers again (its 200 after both 183s): media goes back") {
    h.answer("fork", "a", "b1", simpleSdp("bob", "192.0.2.20", 5000));
    CHECK(h.query("fork").tags[1] == "b1");
    CHECK(h.specAt("192.0.2.2", 30000).destination == ep("192.0.2.20", 5000));
  }
  SECTION("ending every answering branch ends the call") {
    REQUIRE(h.sm->deleteCall("fork", {.via_branch = "z9hG4bK-2"}).ok());
    h.answer("fork", "a", "b1", simpleSdp("bob", "192.0.2.20", 5000), {.via_branch = "z9-1"});
    REQUIRE(h.sm->deleteCall("fork", {.via_branch = "z9-1"}).ok());
    CHECK(h.sm->callCount() == 0);
    CHECK(h.freePairs() == 5000);
  }
  SECTION("a BYE (from-tag only, either side) ends the whole call") {
    REQUIRE(h.sm->deleteCall("fork", {.from_tag = "b2"}).ok());
    CHECK(h.sm->callCount() == 0);
    CHECK(h.flows->size() == 0);
    CHECK(h.freePairs() == 5000);
  }
}

TEST_CASE("SIP call flows: 183 then 200, retransmissions, re-offers from either side",
          "[sessions][sip]") {
  Harness h;
  auto sub = h.sm->subscribe();
  const std::string offer = simpleSdp("alice", "192.0.2.10", 4000);
  const std::string o1 = h.offer("c", "a", offer);
  const std::string early = simpleSdp("bob", "192.0.2.20", 5000);
  const std::string a183 = h.answer("c", "a", "b", early);
  const std::string state = describe(h);
  SECTION("the same answer again (200 after a 183 with the same SDP): same SDP, no change") {
    CHECK(h.answer("c", "a", "b", early) == a183);
    CHECK(describe(h) == state);
    CHECK(eventStrings(drain(*sub)) ==
          std::vector<std::string>{"created c a>", "answered c a>b"});  // answered once
  }
  SECTION("the same offer again (a retransmitted INVITE): same SDP, no change") {
    CHECK(h.offer("c", "a", offer) == o1);
    CHECK(h.answer("c", "a", "b", early) == a183);
    CHECK(describe(h) == state);
  }
  SECTION("a changed answer from the same to-tag (200 with another port) updates the call") {
    h.answer("c", "a", "b", simpleSdp("bob", "192.0.2.20", 6000, "", "2"));
    CHECK(h.specAt("192.0.2.2", 30000).destination == ep("192.0.2.20", 6000));
    CHECK(h.freePairs() == 5000 - 2);
  }
  SECTION("a re-offer from the callee, answered by the caller") {
    const std::string re =
        h.offer("c", "b", simpleSdp("bob", "192.0.2.20", 5000, "a=sendonly\n", "2"));
    CHECK(re.find("m=audio 30000 ") != std::string::npos);  // the port Alice was shown
    h.answer("c", "b", "a", simpleSdp("alice", "192.0.2.10", 4000, "a=recvonly\n", "2"));
    CHECK_FALSE(h.specAt("192.0.2.2", 30000).forward);  // Alice's media is held
    CHECK(h.freePairs() == 5000 - 2);
  }
  SECTION("an offer from one side replaces the other side's unanswered one (a failed re-INVITE)") {
    h.offer("c", "b", simpleSdp("bob", "192.0.2.20", 5000, "", "2"));
    h.offer("c", "a", simpleSdp("alice", "192.0.2.10", 4000, "", "2"));
    h.answer("c", "a", "b", simpleSdp("bob", "192.0.2.20", 5000, "", "3"));
    CHECK(h.query("c").state == rtpx::CallState::kAnswered);
  }
}

TEST_CASE("errors return the right code and change nothing", "[sessions][errors]") {
  Harness h;
  h.offer("ok", "a", kOfferA);
  h.answer("ok", "a", "b", kAnswerB);
  h.offer("pending", "p", simpleSdp("p", "192.0.2.40", 7000));
  const std::string before = describe(h);
  const std::size_t resolves = h.resolved.size();

  struct Case {
    const char* what;
    std::function<absl::Status()> call;
    absl::StatusCode code;
    const char* message;
  };
  const std::string good = simpleSdp("z", "192.0.2.50", 8000);
  rtpx::OfferOptions bad_iface;
  bad_iface.answerer.interface = "nope";
  rtpx::OfferOptions bad_offerer_iface;
  bad_offerer_iface.offerer_interface = "nope2";
  const std::vector<Case> cases = {
      {"malformed SDP", [&] { return h.sm->offer("new", "a", "v=0\r\nbogus\r\n").status(); },
       absl::StatusCode::kInvalidArgument, "line 2"},
      {"empty SDP", [&] { return h.sm->offer("new", "a", "").status(); },
       absl::StatusCode::kInvalidArgument, "line 1"},
      {"malformed re-offer", [&] { return h.sm->offer("ok", "a", "v=1\r\n").status(); },
       absl::StatusCode::kInvalidArgument, "line 1"},
      {"empty call-id", [&] { return h.sm->offer("", "a", good).status(); },
       absl::StatusCode::kInvalidArgument, "call_id"},
      {"empty from-tag", [&] { return h.sm->offer("new", "", good).status(); },
       absl::StatusCode::kInvalidArgument, "from_tag"},
      {"huge call-id", [&] { return h.sm->offer(std::string(300, 'x'), "a", good).status(); },
       absl::StatusCode::kInvalidArgument, "at most 256"},
      {"unknown interface", [&] { return h.sm->offer("new", "a", good, bad_iface).status(); },
       absl::StatusCode::kInvalidArgument, "'nope'"},
      {"unknown offerer interface",
       [&] { return h.sm->offer("new", "a", good, bad_offerer_iface).status(); },
       absl::StatusCode::kInvalidArgument, "'nope2'"},
      {"offer from a tag the call does not have",
       [&] { return h.sm->offer("ok", "c", good).status(); }, absl::StatusCode::kNotFound,
       "tag 'c'"},
      {"re-offer removing an m= line",
       [&] {
         return h.sm->offer("ok", "a", crlf("v=0\no=- 1 1 IN IP4 192.0.2.10\ns=-\nt=0 0\n"))
             .status();
       },
       absl::StatusCode::kInvalidArgument, "never removed"},
      {"re-offer changing the address family",
       [&] { return h.sm->offer("ok", "a", simpleSdp("a", "2001:db8::10", 4000)).status(); },
       absl::StatusCode::kInvalidArgument, "cannot change"},
      {"multicast",
       [&] {
         return h.sm
             ->offer("new", "a",
                     crlf("v=0\no=- 1 1 IN IP4 192.0.2.10\ns=-\nc=IN IP4 233.252.0.1/127\n"
                          "t=0 0\nm=audio 4000 RTP/AVP 0\n"))
             .status();
       },
       absl::StatusCode::kInvalidArgument, "multicast"},
      {"port count",
       [&] {
         return h.sm
             ->offer("new", "a",
                     crlf("v=0\no=- 1 1 IN IP4 192.0.2.10\ns=-\nc=IN IP4 192.0.2.10\nt=0 0\n"
                          "m=audio 4000/2 RTP/AVP 0\n"))
             .status();
       },
       absl::StatusCode::kInvalidArgument, "port count"},
      {"answer for an unknown call", [&] { return h.sm->answer("nope", "a", "b", good).status(); },
       absl::StatusCode::kNotFound, "no call 'nope'"},
      {"answer from an unknown offerer tag",
       [&] { return h.sm->answer("pending", "q", "r", good).status(); },
       absl::StatusCode::kNotFound, "tag 'q'"},
      {"answer from the side that did not make the latest offer",
       [&] { return h.sm->answer("ok", "b", "a", kAnswerB).status(); },
       absl::StatusCode::kFailedPrecondition, "no offer from 'b'"},
      {"answer with a missing to-tag",
       [&] { return h.sm->answer("pending", "p", "", good).status(); },
       absl::StatusCode::kInvalidArgument, "to_tag"},
      {"answer with the wrong m= count",
       [&] {
         return h.sm->answer("pending", "p", "q", twoMedia("q", "192.0.2.41", 1, 2)).status();
       },
       absl::StatusCode::kInvalidArgument, "m= lines"},
      {"malformed answer",
       [&] { return h.sm->answer("pending", "p", "q", "v=0\r\nm=\r\n").status(); },
       absl::StatusCode::kInvalidArgument, "line 2"},
      {"delete of an unknown call", [&] { return h.sm->deleteCall("nope").status(); },
       absl::StatusCode::kNotFound, "no call"},
      {"delete of an unknown leg",
       [&] { return h.sm->deleteCall("ok", {.from_tag = "z"}).status(); },
       absl::StatusCode::kNotFound, "tag 'z'"},
      {"query of an unknown call", [&] { return h.sm->query("nope").status(); },
       absl::StatusCode::kNotFound, "no call"},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    const absl::Status st = c.call();
    INFO(st.ToString());
    CHECK(st.code() == c.code);
    CHECK_THAT(std::string(st.message()), Catch::Contains(c.message));
    CHECK(describe(h) == before);
  }
  CHECK(h.resolved.size() >= resolves);
  // The SDP module's message comes through unchanged.
  absl::StatusOr<std::string> r = h.sm->offer("new", "a", "v=0\r\nbogus\r\n");
  CHECK(r.status().message() == rtpx::sdp::parse("v=0\r\nbogus\r\n").status().message());
}

TEST_CASE("port exhaustion is RESOURCE_EXHAUSTED and leaks nothing", "[sessions][errors]") {
  SessionsConfig cfg;
  cfg.port_min = 30000;
  cfg.port_max = 30005;  // three pairs: one call takes two
  Harness h(cfg);
  h.offer("c1", "a", simpleSdp("a", "192.0.2.10", 4000));
  REQUIRE(h.freePairs() == 1);
  const std::string before = describe(h);
  // The second call gets one pair, fails on the second, and gives the first back.
  absl::StatusOr<std::string> r = h.sm->offer("c2", "a", simpleSdp("a", "192.0.2.11", 4000));
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == absl::StatusCode::kResourceExhausted);
  CHECK_THAT(std::string(r.status().message()), Catch::Contains("30000-30005"));
  CHECK(describe(h) == before);
  CHECK(h.freePairs() == 1);
  // A re-offer adding an m= line fails the same way and leaves the call as it was.
  r = h.sm->offer("c1", "a", twoMedia("a", "192.0.2.10", 4000, 4002, "2"));
  CHECK(r.status().code() == absl::StatusCode::kResourceExhausted);
  CHECK(describe(h) == before);
  REQUIRE(h.sm->deleteCall("c1").ok());
  CHECK(h.freePairs() == 3);
  h.offer("c2", "a", simpleSdp("a", "192.0.2.11", 4000));
  CHECK(h.freePairs() == 1);
}

TEST_CASE("a full flow table is RESOURCE_EXHAUSTED and leaks nothing", "[sessions][errors]") {
  Harness h(SessionsConfig{}, oneInterface(), /*capacity=*/8);
  h.offer("c1", "a", simpleSdp("a", "192.0.2.10", 4000));                  // 4 flows
  h.offer("c2", "a", simpleSdp("a", "192.0.2.11", 4000, "a=rtcp-mux\n"));  // 2 flows
  REQUIRE(h.flows->size() == 6);
  const std::string before = describe(h);
  // Two flows fit, the third does not: the two are removed again.
  absl::StatusOr<std::string> r = h.sm->offer("c3", "a", simpleSdp("a", "192.0.2.12", 4000));
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == absl::StatusCode::kResourceExhausted);
  CHECK_THAT(std::string(r.status().message()), Catch::Contains("flow_capacity"));
  CHECK(describe(h) == before);
  // An answer that needs RTCP flows (mux declined) fails cleanly too.
  r = h.sm->offer("c3", "a", simpleSdp("a", "192.0.2.12", 4000, "a=rtcp-mux\n"));
  REQUIRE(r.ok());
  const std::string offered = describe(h);
  r = h.sm->answer("c3", "a", "b", simpleSdp("b", "192.0.2.13", 5000));
  CHECK(r.status().code() == absl::StatusCode::kResourceExhausted);
  CHECK(describe(h) == offered);
}

TEST_CASE("1,000 calls set up and torn down leave no ports or flows", "[sessions][scale]") {
  Harness h;
  for (int i = 0; i < 1000; ++i) {
    const std::string id = "call-" + std::to_string(i);
    const uint16_t port = static_cast<uint16_t>(10000 + 2 * i);
    REQUIRE(h.sm->offer(id, "a", simpleSdp("a", "192.0.2.10", port)).ok());
    REQUIRE(h.sm->answer(id, "a", "b", simpleSdp("b", "198.51.100.20", port)).ok());
  }
  CHECK(h.sm->callCount() == 1000);
  CHECK(h.flows->size() == 4000);
  CHECK(h.freePairs() == 5000 - 2000);
  rtpx::SessionGauges g = h.sm->gauges();
  CHECK(g.calls == 1000);
  CHECK(g.flows == 4000);
  CHECK(g.flow_capacity == h.flows->capacity());
  REQUIRE(g.ports.size() == 1);
  CHECK(g.ports[0].pairs_in_use == 2000);
  CHECK(g.ports[0].pairs_total == 5000);
  for (int i = 0; i < 1000; ++i) REQUIRE(h.sm->deleteCall("call-" + std::to_string(i)).ok());
  CHECK(h.sm->callCount() == 0);
  CHECK(h.flows->size() == 0);
  CHECK(h.freePairs() == 5000);
  g = h.sm->gauges();
  CHECK((g.calls == 0 && g.flows == 0 && g.ports[0].pairs_in_use == 0));
  CHECK(h.sm->ports(0).available() == h.sm->ports(0).capacity());
}

TEST_CASE("calls spill over to the interface's next address when one is full",
          "[sessions][addresses]") {
  SessionsConfig cfg;
  cfg.port_min = 30000;
  cfg.port_max = 30003;  // two pairs per address: one single-stream call, both legs
  std::vector<SessionInterface> ifs = oneInterface();
  ifs[0].extra_ipv4 = {*rtpx::IpPrefix::parse("192.0.2.3/24"),
                       *rtpx::IpPrefix::parse("198.51.100.7/24")};
  Harness h(cfg, ifs);
  REQUIRE(h.sm->addressSlots(0) == 3);
  auto callOn = [&](const std::string& id) {
    const std::string offered = h.offer(id, "a", simpleSdp("a", "192.0.2.10", 4000));
    const std::string answered = h.answer(id, "a", "b", simpleSdp("b", "192.0.2.20", 5000));
    const std::size_t at = offered.find("c=IN IP4 ");
    REQUIRE(at != std::string::npos);
    CHECK_THAT(answered, Catch::Contains(offered.substr(at, offered.find('\r', at) - at)));
    return offered.substr(at + 9, offered.find('\r', at) - at - 9);
  };
  CHECK(callOn("c1") == "192.0.2.2");
  CHECK(callOn("c2") == "192.0.2.3");
  CHECK(callOn("c3") == "198.51.100.7");
  // Flows are keyed at the address the call was given.
  CHECK(h.hasFlowAt("192.0.2.3", 30000));
  CHECK(h.hasFlowAt("198.51.100.7", 30002));
  CHECK(h.specAt("198.51.100.7", 30000).egress_local == ep("198.51.100.7", 30002));
  for (std::size_t k = 0; k < 3; ++k) CHECK(h.sm->ports(0, k).available() == 0);
  rtpx::SessionGauges g = h.sm->gauges();
  REQUIRE(g.ports.size() == 1);
  CHECK(g.ports[0].pairs_in_use == 6);
  CHECK(g.ports[0].pairs_total == 6);

  // All full: refused, naming the addresses, and nothing changes.
  absl::StatusOr<std::string> full = h.sm->offer("c4", "a", simpleSdp("a", "192.0.2.10", 4000));
  REQUIRE_FALSE(full.ok());
  CHECK(full.status().code() == absl::StatusCode::kResourceExhausted);
  CHECK_THAT(std::string(full.status().message()), Catch::Contains("none of its 3 IPv4 addresses"));
  CHECK(h.sm->callCount() == 3);

  // A freed address is used again first.
  REQUIRE(h.sm->deleteCall("c2").ok());
  CHECK(h.sm->ports(0, 1).available() == 2);
  CHECK(callOn("c5") == "192.0.2.3");
  REQUIRE(h.sm->deleteCall("c1").ok());
  CHECK(callOn("c6") == "192.0.2.2");
  for (const char* id : {"c3", "c5", "c6"}) REQUIRE(h.sm->deleteCall(id).ok());
  CHECK(h.flows->size() == 0);
  for (std::size_t k = 0; k < 3; ++k) CHECK(h.sm->ports(0, k).available() == 2);
}

TEST_CASE("the two legs of a call may sit on different addresses", "[sessions][addresses]") {
  SessionsConfig cfg;
  cfg.port_min = 30000;
  cfg.port_max = 30005;  // three pairs per address
  std::vector<SessionInterface> ifs = oneInterface();
  ifs[0].extra_ipv4 = {*rtpx::IpPrefix::parse("192.0.2.3/24")};
  ifs[0].extra_ipv6 = {*rtpx::IpPrefix::parse("2001:db8::3/64")};
  Harness h(cfg, ifs);
  h.offer("c1", "a", simpleSdp("a", "192.0.2.10", 4000));
  h.answer("c1", "a", "b", simpleSdp("b", "192.0.2.20", 5000));
  // One pair left on 192.0.2.2: the offerer's leg takes it, the answerer's goes on.
  const std::string offered = h.offer("c2", "a", simpleSdp("a", "192.0.2.10", 4002));
  CHECK_THAT(offered, Catch::Contains("c=IN IP4 192.0.2.3"));
  const std::string answered = h.answer("c2", "a", "b", simpleSdp("b", "192.0.2.20", 5002));
  CHECK_THAT(answered, Catch::Contains("c=IN IP4 192.0.2.2"));
  const CallInfo info = h.query("c2");
  REQUIRE(info.media.size() == 1);
  REQUIRE(info.media[0].directions.size() >= 2);
  CHECK(info.media[0].directions[0].local.addr.toString() == "192.0.2.2");
  CHECK(info.media[0].directions[0].egress_local.addr.toString() == "192.0.2.3");
  // Slot 1 is shared by the second IPv4 and the second IPv6 address.
  rtpx::OfferOptions v6;
  v6.answerer.family = IpAddr::Family::kV6;
  const std::string bridged = h.offer("c3", "a", simpleSdp("a", "192.0.2.10", 4004), v6);
  CHECK_THAT(bridged, Catch::Contains("c=IN IP6 2001:db8::3"));
  CHECK(h.sm->ports(0, 0).available() == 0);
  CHECK(h.sm->ports(0, 1).available() == 0);
}

TEST_CASE("timeouts fire on the injected clock", "[sessions][timeouts]") {
  SessionsConfig cfg;  // no_media 60 s, one_sided 60 s, offer_unanswered 120 s
  Harness h(cfg);
  auto sub = h.sm->subscribe();
  const uint64_t t0 = h.now;

  SECTION("offer never answered") {
    h.offer("u", "a", simpleSdp("a", "192.0.2.10", 4000));
    h.sm->tick(t0 + 119 * kSecond);
    CHECK(h.sm->callCount() == 1);
    h.sm->tick(t0 + 120 * kSecond);
    CHECK(h.sm->callCount() == 0);
    CHECK(h.flows->size() == 0);
    CHECK(eventStrings(drain(*sub)) == std::vector<std::string>{"created u a>",
                                                                "timeout/offer_unanswered u a>",
                                                                "deleted/offer_unanswered u a>"});
  }
  SECTION("no media after the answer") {
    h.offer("n", "a", simpleSdp("a", "192.0.2.10", 4000));
    h.now = t0 + 10 * kSecond;
    h.answer("n", "a", "b", simpleSdp("b", "192.0.2.20", 5000));
    h.sm->tick(t0 + 69 * kSecond);
    CHECK(h.sm->callCount() == 1);
    h.sm->tick(t0 + 70 * kSecond);
    CHECK(h.sm->callCount() == 0);
    CHECK(h.freePairs() == 5000);
    CHECK(eventStrings(drain(*sub)) == std::vector<std::string>{"created n a>", "answered n a>b",
                                                                "timeout/no_media n a>b",
                                                                "deleted/no_media n a>b"});
  }
  SECTION("media keeps the call alive; one-sided media is reported once") {
    h.offer("s", "a", simpleSdp("a", "192.0.2.10", 4000));
    h.answer("s", "a", "b", simpleSdp("b", "192.0.2.20", 5000));
    uint16_t seq = 1;
    for (uint64_t s = 1; s <= 130; ++s) {
      // A talks, B is silent.
      sendRtp(*h.flows, "192.0.2.10", 4000, "192.0.2.2", 30000, seq++, t0 + s * kSecond);
      h.sm->tick(t0 + s * kSecond);
    }
    CHECK(h.sm->callCount() == 1);
    CHECK(eventStrings(drain(*sub)) == std::vector<std::string>{"created s a>", "answered s a>b",
                                                                "media_started s a>b",
                                                                "timeout/one_sided_media s a>b"});
    // B starts talking: no longer one-sided; when both stop, the call times out.
    for (uint64_t s = 131; s <= 140; ++s) {
      sendRtp(*h.flows, "192.0.2.10", 4000, "192.0.2.2", 30000, seq++, t0 + s * kSecond);
      sendRtp(*h.flows, "192.0.2.20", 5000, "192.0.2.2", 30002, static_cast<uint16_t>(s),
              t0 + s * kSecond);
      h.sm->tick(t0 + s * kSecond);
    }
    h.sm->tick(t0 + 199 * kSecond);
    CHECK(h.sm->callCount() == 1);
    h.sm->tick(t0 + 200 * kSecond);
    CHECK(h.sm->callCount() == 0);
    CHECK(eventStrings(drain(*sub)) ==
          std::vector<std::string>{"timeout/no_media s a>b", "deleted/no_media s a>b"});
  }
  SECTION("packets from a foreign source keep no call alive") {
    h.offer("j", "a", simpleSdp("a", "192.0.2.10", 4000));
    h.answer("j", "a", "b", simpleSdp("b", "192.0.2.20", 5000));
    sendRtp(*h.flows, "192.0.2.10", 4000, "192.0.2.2", 30000, 1, t0 + kSecond);  // latches A
    h.sm->tick(t0 + kSecond);
    for (uint64_t s = 2; s <= 60; ++s) {  // then only junk, from another port of A's host
      sendRtp(*h.flows, "192.0.2.10", 4444, "192.0.2.2", 30000, 1, t0 + s * kSecond);
      h.sm->tick(t0 + s * kSecond);
    }
    CHECK(h.query("j").media[0].directions[0].stats.dropped_source == 59);
    CHECK(h.sm->callCount() == 1);
    sendRtp(*h.flows, "192.0.2.10", 4444, "192.0.2.2", 30000, 1, t0 + 61 * kSecond);
    h.sm->tick(t0 + 61 * kSecond);  // 60 s after A's last accepted packet
    CHECK(h.sm->callCount() == 0);
  }
  SECTION("delete delay") {
    h.offer("dd", "a", simpleSdp("a", "192.0.2.10", 4000));
    h.answer("dd", "a", "b", simpleSdp("b", "192.0.2.20", 5000));
    REQUIRE(h.sm->deleteCall("dd", {.delay = std::chrono::seconds(5)}).ok());
    CHECK(h.query("dd").state == rtpx::CallState::kDeleting);
    h.sm->tick(t0 + 4 * kSecond);
    CHECK(h.sm->callCount() == 1);
    CHECK(h.flows->size() == 4);  // media still flows during the delay
    h.sm->tick(t0 + 5 * kSecond);
    CHECK(h.sm->callCount() == 0);
    CHECK(h.flows->size() == 0);
    CHECK(eventStrings(drain(*sub)) == std::vector<std::string>{"created dd a>", "answered dd a>b",
                                                                "deleted/delete_delay dd a>b"});
  }
  SECTION("a new offer cancels a postponed delete") {
    h.offer("dd", "a", simpleSdp("a", "192.0.2.10", 4000));
    h.answer("dd", "a", "b", simpleSdp("b", "192.0.2.20", 5000));
    REQUIRE(h.sm->deleteCall("dd", {.delay = std::chrono::seconds(5)}).ok());
    h.offer("dd", "a", simpleSdp("a", "192.0.2.10", 4000, "", "2"));
    CHECK(h.query("dd").state == rtpx::CallState::kAnswered);
    h.sm->tick(t0 + 6 * kSecond);
    CHECK(h.sm->callCount() == 1);
  }
}

TEST_CASE("calls with media flowing are looked at once per timeout period, not every tick",
          "[sessions][timeouts]") {
  SessionsConfig cfg;  // no_media 60 s, one_sided 60 s
  Harness h(cfg);
  const uint64_t t0 = h.now;
  constexpr int kCalls = 100;
  for (int k = 0; k < kCalls; ++k) {
    const std::string id = "m" + std::to_string(k);
    h.offer(id, "a", simpleSdp("a", "192.0.2.10", static_cast<uint16_t>(4000 + 2 * k)));
    h.answer(id, "a", "b", simpleSdp("b", "192.0.2.20", static_cast<uint16_t>(5000 + 2 * k)));
  }
  // Both sides of every call send a packet every second for 10 minutes; a tick every 200 ms.
  uint16_t seq = 1;
  for (uint64_t ms = 0; ms <= 600'000; ms += 200) {
    const uint64_t now = t0 + ms * 1'000'000;
    if (ms % 1000 == 0) {
      for (int k = 0; k < kCalls; ++k) {
        const auto a = static_cast<uint16_t>(30000 + 4 * k);  // A sends here; B to a + 2
        sendRtp(*h.flows, "192.0.2.10", static_cast<uint16_t>(4000 + 2 * k), "192.0.2.2", a, seq,
                now);
        sendRtp(*h.flows, "192.0.2.20", static_cast<uint16_t>(5000 + 2 * k), "192.0.2.2",
                static_cast<uint16_t>(a + 2), seq, now);
      }
      ++seq;
    }
    h.sm->tick(now);
  }
  CHECK(h.sm->callCount() == kCalls);
  // Once for media start (at most a second after the answer), then about once a minute: not
  // once a second (60,000 reads) nor once a tick (300,000).
  INFO("media checks: " << h.sm->mediaChecks());
  CHECK(h.sm->mediaChecks() <= kCalls * (1 + 600 / 59 + 1));
}

TEST_CASE("with the timeouts off, a tick looks only at calls whose media has not started",
          "[sessions][timeouts]") {
  SessionsConfig cfg;
  cfg.no_media_s = cfg.one_sided_s = cfg.offer_unanswered_s = 0;
  Harness h(cfg);
  auto sub = h.sm->subscribe();
  const uint64_t t0 = h.now;
  h.offer("q", "a", simpleSdp("a", "192.0.2.10", 4000));
  CHECK(h.sm->scheduledCount() == 0);  // an offer cannot time out
  h.answer("q", "a", "b", simpleSdp("b", "192.0.2.20", 5000));
  h.offer("r", "a", simpleSdp("a", "192.0.2.11", 4000));
  h.answer("r", "a", "b", simpleSdp("b", "192.0.2.21", 5000));
  CHECK(h.sm->scheduledCount() == 2);  // waiting for media to start

  sendRtp(*h.flows, "192.0.2.10", 4000, "192.0.2.2", 30000, 1);
  h.sm->tick(t0 + kSecond);
  CHECK(h.sm->scheduledCount() == 1);  // q started: nothing more to watch
  drain(*sub);

  // r stays silent for 100 s: checked ever less often, still seen within 8 s of its start.
  for (uint64_t s = 2; s <= 100; ++s) h.sm->tick(t0 + s * kSecond);
  sendRtp(*h.flows, "192.0.2.21", 5000, "192.0.2.2", 30006, 1);  // r: B→A
  uint64_t seen = 0;
  for (uint64_t s = 101; s <= 120 && seen == 0; ++s) {
    h.sm->tick(t0 + s * kSecond);
    for (const std::string& e : eventStrings(drain(*sub)))
      if (e == "media_started r b>a") seen = s;
  }
  CHECK(seen != 0);
  CHECK(seen <= 108);
  CHECK(h.sm->scheduledCount() == 0);
  CHECK(h.sm->callCount() == 2);
}

TEST_CASE("the configured delete delay applies when a delete gives none", "[sessions][timeouts]") {
  SessionsConfig cfg;
  cfg.delete_delay_s = 3;
  cfg.no_media_s = 0;  // disabled
  Harness h(cfg);
  const uint64_t t0 = h.now;
  h.offer("c", "a", simpleSdp("a", "192.0.2.10", 4000));
  h.answer("c", "a", "b", simpleSdp("b", "192.0.2.20", 5000));
  h.sm->tick(t0 + 1000 * kSecond);  // no_media disabled: still there
  REQUIRE(h.sm->callCount() == 1);
  REQUIRE(h.sm->deleteCall("c").ok());
  h.sm->tick(t0 + 2 * kSecond);
  CHECK(h.sm->callCount() == 1);
  h.sm->tick(t0 + 3 * kSecond);
  CHECK(h.sm->callCount() == 0);
  // An explicit zero deletes at once.
  h.offer("d", "a", simpleSdp("a", "192.0.2.10", 4000));
  REQUIRE(h.sm->deleteCall("d", {.delay = std::chrono::milliseconds(0)}).ok());
  CHECK(h.sm->callCount() == 0);
}

TEST_CASE("events reach every subscriber in order; a slow one loses the oldest",
          "[sessions][events]") {
  Harness h;
  auto all = h.sm->subscribe();
  auto small = h.sm->subscribe(2);
  h.offer("e", "a", simpleSdp("a", "192.0.2.10", 4000));
  h.answer("e", "a", "b", simpleSdp("b", "192.0.2.20", 5000));
  h.offer("f", "x", simpleSdp("x", "192.0.2.11", 4000));
  REQUIRE(h.sm->deleteCall("e").ok());
  REQUIRE(h.sm->deleteCall("f").ok());
  const std::vector<SessionEvent> events = drain(*all);
  REQUIRE(events.size() == 5);
  for (std::size_t i = 0; i < events.size(); ++i) {
    CHECK(events[i].sequence == i + 1);
    CHECK(events[i].dropped_before == 0);
  }
  CHECK(eventStrings(events) == std::vector<std::string>{"created e a>", "answered e a>b",
                                                         "created f x>", "deleted/requested e a>b",
                                                         "deleted/requested f x>"});
  const std::vector<SessionEvent> last = drain(*small);
  REQUIRE(last.size() == 2);
  CHECK(last[0].sequence == 4);
  CHECK(last[0].dropped_before == 3);
  CHECK(last[1].sequence == 5);
  CHECK(last[1].dropped_before == 0);
  CHECK(small->dropped() == 3);

  h.sm->unsubscribe(small);
  h.offer("g", "a", simpleSdp("a", "192.0.2.10", 4000));
  CHECK(drain(*small).empty());
  CHECK(drain(*all).size() == 1);
  // Closing wakes a waiter at once.
  h.sm->closeSubscriptions();
  CHECK(all->closed());
  CHECK_FALSE(all->next(std::chrono::seconds(10)).has_value());
}

namespace {
// Bytes allocated from DPDK's heaps (rte_malloc/rte_zmalloc, rte_hash tables) on all sockets.
size_t dpdkHeapInUse() {
  size_t total = 0;
  for (unsigned i = 0; i < rte_socket_count(); ++i) {
    rte_malloc_socket_stats st{};
    if (rte_malloc_get_socket_stats(rte_socket_id_by_idx(i), &st) == 0)
      total += st.heap_allocsz_bytes;
  }
  return total;
}
}  // namespace

TEST_CASE("100,000 calls fit, and each costs little memory", "[sessions][scale]") {
  // Ports bound the calls per address (a pair per leg and stream), so the calls are spread over
  // eight interfaces; rtcp-mux keeps it to two flows per call.
  std::vector<SessionInterface> ifs;
  for (int i = 0; i < 8; ++i) {
    const std::string v4 = "10." + std::to_string(i) + ".0.2/16";
    ifs.push_back(makeInterface("media" + std::to_string(i), static_cast<uint16_t>(i), v4.c_str(),
                                nullptr, nullptr, nullptr));
  }
  SessionsConfig cfg;
  cfg.port_min = 2;
  cfg.port_max = 65535;
  constexpr int kCalls = 100000;
  // The flow table's hash is sized up front in DPDK memory (rte_malloc), which the C heap
  // figures below do not see: measured apart, per call at this capacity.
  const size_t dpdk_before = dpdkHeapInUse();
  Harness h(cfg, ifs, /*capacity=*/2 * kCalls + 1024);
  const double hash_per_call = static_cast<double>(dpdkHeapInUse() - dpdk_before) / kCalls;
  const struct mallinfo2 before = mallinfo2();
  std::vector<rtpx::OfferOptions> options(8);
  for (int i = 0; i < 8; ++i) {
    options[i].offerer_interface = "media" + std::to_string(i);
    options[i].answerer.interface = options[i].offerer_interface;
  }
  const std::string offer = simpleSdp("a", "10.0.9.9", 4000, "a=rtcp-mux\n");
  const std::string answer = simpleSdp("b", "10.0.9.10", 5000, "a=rtcp-mux\n");
  for (int k = 0; k < kCalls; ++k) {
    // A typical SIP Call-ID and tags.
    const std::string id = "a84b4c76e66710-" + std::to_string(k) + "@pc33.atlanta.example.com";
    REQUIRE(h.sm->offer(id, "1928301774", offer, options[k % 8]).ok());
    REQUIRE(h.sm->answer(id, "1928301774", "a6c85cf", answer).ok());
  }
  const struct mallinfo2 after = mallinfo2();
  CHECK(h.sm->callCount() == kCalls);
  CHECK(h.flows->size() == 2 * kCalls);
  const double per_call = static_cast<double>(after.uordblks - before.uordblks) / kCalls;
  INFO("heap per call, flows included: " << per_call << " bytes; flow hash (DPDK memory) "
                                         << hash_per_call << " bytes");
  CHECK(per_call < 2048);
  CHECK(hash_per_call < 512);
  h.sm->tick(h.now + kSecond);  // one pass over every call
  CHECK(h.sm->callCount() == kCalls);
  for (int k = 0; k < kCalls; ++k)
    REQUIRE(
        h.sm->deleteCall("a84b4c76e66710-" + std::to_string(k) + "@pc33.atlanta.example.com").ok());
  CHECK(h.flows->size() == 0);
  for (int i = 0; i < 8; ++i) CHECK(h.sm->ports(i).available() == h.sm->ports(i).capacity());
}

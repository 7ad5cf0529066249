// FlowTable: the control-side API (add / update / pair / remove / stats) and the packet-side
// lookup, including lookups racing with add/update/remove under RCU QSBR. The record a lookup
// returns is inspected through dataplane/flow_internal.h; the one relay check builds its frame
// byte by byte, as in ingress_test.cc.
#include "dataplane/flow.h"

#include <rte_byteorder.h>
#include <rte_mbuf.h>
#include <rte_rcu_qsbr.h>
#include <catch2/catch.hpp>

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "dataplane/flow_internal.h"
#include "dataplane/ingress.h"
#include "dataplane/interface.h"
#include "dataplane/neighbor_table.h"
#include "tests/unit/test_support.h"

namespace {

using Bytes = std::vector<uint8_t>;
using rtpx::Endpoint;
using rtpx::Flow;
using rtpx::FlowId;
using rtpx::FlowSpec;
using rtpx::FlowTable;
using rtpx::IpAddr;

using rtpx::test::Qsbr;

std::unique_ptr<FlowTable> makeTable(uint32_t capacity, rte_rcu_qsbr* q) {
  std::unique_ptr<FlowTable> t = rtpx::test::makeFlowTable(capacity, q);
  REQUIRE(t != nullptr);
  return t;
}

IpAddr ip(const char* s) {
  auto a = IpAddr::parse(s);
  REQUIRE(a.has_value());
  return *a;
}

Endpoint ep(const char* addr, uint16_t port) {
  return Endpoint{ip(addr), port};
}

uint16_t be(uint16_t host) {
  return rte_cpu_to_be_16(host);
}

// A v4 flow arriving at 192.0.2.2:`port`, sent from 192.0.2.2:`port`+1 to 192.0.2.30:6000.
FlowSpec spec4(uint16_t port, const Endpoint& destination = ep("192.0.2.30", 6000)) {
  FlowSpec s;
  s.local = ep("192.0.2.2", port);
  s.egress_local = ep("192.0.2.2", static_cast<uint16_t>(port + 1));
  s.destination = destination;
  s.announced_source = ep("192.0.2.10", 4000);
  return s;
}

FlowSpec spec6(uint16_t port) {
  FlowSpec s;
  s.local = ep("2001:db8::2", port);
  s.egress_local = ep("2001:db8::2", static_cast<uint16_t>(port + 1));
  s.destination = ep("2001:db8::50", 7000);
  return s;
}

FlowId mustAdd(FlowTable& t, const FlowSpec& s) {
  auto id = t.add(s);
  INFO(id.status().ToString());
  REQUIRE(id.ok());
  return *id;
}

const FlowSpec& specOf(const Flow* f) {
  REQUIRE(f != nullptr);
  const rtpx::SpecRecord* r = f->spec.load(std::memory_order_acquire);
  REQUIRE(r != nullptr);
  return r->spec;
}

// ---- A minimal relay rig for "update swaps the spec": frames built byte by byte ----
const Bytes kOurMac = {0x02, 0x00, 0x00, 0x00, 0x00, 0x02};
const Bytes kPeerMac = {0x02, 0x00, 0x00, 0x00, 0x00, 0x0a};
const Bytes kMac30 = {0x02, 0x00, 0x00, 0x00, 0x00, 0x1e};
const Bytes kMac31 = {0x02, 0x00, 0x00, 0x00, 0x00, 0x1f};

void put16(Bytes& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v));
}
void append(Bytes& b, const Bytes& x) {
  b.insert(b.end(), x.begin(), x.end());
}
uint16_t get16(const Bytes& b, size_t off) {
  return static_cast<uint16_t>((b.at(off) << 8) | b.at(off + 1));
}
Bytes slice(const Bytes& b, size_t off, size_t len) {
  REQUIRE(off + len <= b.size());
  return Bytes(b.begin() + static_cast<long>(off), b.begin() + static_cast<long>(off + len));
}

// RFC 1071 one's complement sum, complemented.
uint16_t internetChecksum(const Bytes& data) {
  uint32_t acc = 0;
  for (size_t i = 0; i + 1 < data.size(); i += 2) acc += (uint32_t{data[i]} << 8) | data[i + 1];
  if (data.size() % 2 != 0) acc += uint32_t{data.back()} << 8;
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  return static_cast<uint16_t>(~acc & 0xffff);
}

// Ethernet / IPv4 (no options, DF clear) / UDP (no checksum) from 192.0.2.10:4000.
Bytes udpFrame(const Bytes& dst_ip, uint16_t dport, const Bytes& payload) {
  Bytes f = kOurMac;
  append(f, kPeerMac);
  put16(f, 0x0800);
  Bytes ip = {0x45, 0x00};
  put16(ip, static_cast<uint16_t>(20 + 8 + payload.size()));
  put16(ip, 0x0001);
  put16(ip, 0x0000);
  ip.push_back(64);
  ip.push_back(17);
  put16(ip, 0);
  append(ip, {192, 0, 2, 10});
  append(ip, dst_ip);
  const uint16_t ck = internetChecksum(ip);
  ip[10] = static_cast<uint8_t>(ck >> 8);
  ip[11] = static_cast<uint8_t>(ck);
  append(f, ip);
  put16(f, 4000);
  put16(f, dport);
  put16(f, static_cast<uint16_t>(8 + payload.size()));
  put16(f, 0);
  append(f, payload);
  return f;
}

struct MbufFree {
  void operator()(rte_mbuf* m) const noexcept { rte_pktmbuf_free(m); }
};
using MbufPtr = std::unique_ptr<rte_mbuf, MbufFree>;

MbufPtr makeMbuf(const Bytes& frame) {
  rte_mempool* pool = rtpx::test::testPool();
  REQUIRE(pool != nullptr);
  MbufPtr m(rte_pktmbuf_alloc(pool));
  REQUIRE(m != nullptr);
  char* p = rte_pktmbuf_append(m.get(), static_cast<uint16_t>(frame.size()));
  REQUIRE(p != nullptr);
  std::memcpy(p, frame.data(), frame.size());
  return m;
}

Bytes frameOf(const rte_mbuf* m) {
  REQUIRE(m->nb_segs == 1);
  const auto* p = rte_pktmbuf_mtod(m, const uint8_t*);
  return Bytes(p, p + m->data_len);
}

struct RelayRig {
  rtpx::InterfaceAddrs ifc;
  std::unique_ptr<rtpx::NeighborTable> nt = std::make_unique<rtpx::NeighborTable>();
  std::array<const rtpx::InterfaceAddrs*, 8> ifaces{};
  rtpx::WorkerCounters c;
  explicit RelayRig() {
    std::memcpy(ifc.mac.bytes.data(), kOurMac.data(), 6);
    ifc.ipv4 = rtpx::IpPrefix::parse("192.0.2.2/24");
    ifc.ipv6 = rtpx::IpPrefix::parse("2001:db8::2/64");
    ifc.ipv6_link_local = rtpx::linkLocalFromMac(ifc.mac);
    ifc.gateway4 = ip("192.0.2.1");
    ifaces[0] = &ifc;
    rtpx::MacAddr m30, m31;
    std::memcpy(m30.bytes.data(), kMac30.data(), 6);
    std::memcpy(m31.bytes.data(), kMac31.data(), 6);
    REQUIRE(nt->confirm(0, ip("192.0.2.30"), m30, 1));
    REQUIRE(nt->confirm(0, ip("192.0.2.31"), m31, 1));
  }
  // One packet from 192.0.2.10:4000 to 192.0.2.2:`port`; returns the verdict and output frame.
  // Its payload looks like RTP (first byte 0x80, RFC 7983): anything else is not relayed.
  std::pair<rtpx::IngressResult, Bytes> send(const FlowTable& t, uint16_t port) {
    rtpx::RelayContext ctx{&t, nt.get(), ifaces.data(), 8, 0, 1000000000};
    Bytes payload(40, 0x5a);
    payload[0] = 0x80;
    MbufPtr m = makeMbuf(udpFrame({192, 0, 2, 2}, port, payload));
    auto r = rtpx::handleIngress(m.get(), ifc, c, &ctx);
    return {r, frameOf(m.get())};
  }
};

}  // namespace

// ============================== add / lookup ==============================

TEST_CASE(
    "FlowTable: add publishes a flow that lookup finds by local address and "
    "network-order port only",
    "[flow]") {
  Qsbr qsbr(2);
  auto t = makeTable(101, qsbr.q);
  CHECK(t->capacity() == 101);
  CHECK(t->size() == 0);

  // 10000 = 0x2710: its byte-swapped value 0x1027 = 4135 is a different port.
  const FlowId a = mustAdd(*t, spec4(10000));
  const FlowId b = mustAdd(*t, spec6(10000));
  CHECK(a != b);
  CHECK(t->size() == 2);

  const Flow* fa = t->lookup(ip("192.0.2.2"), be(10000));
  REQUIRE(fa != nullptr);
  CHECK(fa->id == a);
  CHECK(specOf(fa).local == ep("192.0.2.2", 10000));
  CHECK(specOf(fa).destination == ep("192.0.2.30", 6000));
  CHECK(specOf(fa).egress_local == ep("192.0.2.2", 10001));

  const Flow* fb = t->lookup(ip("2001:db8::2"), be(10000));
  REQUIRE(fb != nullptr);
  CHECK(fb != fa);
  CHECK(fb->id == b);
  CHECK(specOf(fb).local == ep("2001:db8::2", 10000));

  // The port is in network byte order: the host-order value is another port.
  CHECK(t->lookup(ip("192.0.2.2"), 10000) == nullptr);
  CHECK(t->lookup(ip("192.0.2.2"), be(4135)) == nullptr);
  // Other ports and addresses miss.
  CHECK(t->lookup(ip("192.0.2.2"), be(10001)) == nullptr);
  CHECK(t->lookup(ip("192.0.2.2"), be(9999)) == nullptr);
  CHECK(t->lookup(ip("192.0.2.3"), be(10000)) == nullptr);
  CHECK(t->lookup(ip("2001:db8::3"), be(10000)) == nullptr);
  // Families never alias: an IPv6 address whose first four bytes are 192.0.2.2 (c000:202::),
  // an IPv4-mapped IPv6 address, and an address with no family all miss.
  CHECK(t->lookup(ip("c000:202::"), be(10000)) == nullptr);
  CHECK(t->lookup(ip("::ffff:192.0.2.2"), be(10000)) == nullptr);
  IpAddr none = ip("192.0.2.2");
  none.family = IpAddr::Family::kNone;
  CHECK(t->lookup(none, be(10000)) == nullptr);
  CHECK(t->lookup(IpAddr{}, be(10000)) == nullptr);

  // A fresh flow has no owner, no latch and zero statistics.
  CHECK(fa->owner.load() == -1);
  auto st = t->stats(a);
  REQUIRE(st.ok());
  CHECK(st->packets == 0);
  CHECK(st->forwarded == 0);
  CHECK_FALSE(st->latched);
  CHECK(st->first_packet_ns == 0);
}

TEST_CASE("FlowTable: adding a taken local endpoint is ALREADY_EXISTS and changes nothing",
          "[flow]") {
  Qsbr qsbr(2);
  auto t = makeTable(102, qsbr.q);
  const FlowId a = mustAdd(*t, spec4(12000, ep("192.0.2.30", 6000)));
  const Flow* before = t->lookup(ip("192.0.2.2"), be(12000));
  REQUIRE(before != nullptr);

  FlowSpec dup = spec4(12000, ep("192.0.2.31", 6100));
  dup.egress_local = ep("192.0.2.2", 12500);
  dup.forward = false;
  auto r = t->add(dup);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == absl::StatusCode::kAlreadyExists);

  CHECK(t->size() == 1);
  const Flow* after = t->lookup(ip("192.0.2.2"), be(12000));
  CHECK(after == before);
  CHECK(after->id == a);
  CHECK(specOf(after).destination == ep("192.0.2.30", 6000));
  CHECK(specOf(after).egress_local == ep("192.0.2.2", 12001));
  CHECK(specOf(after).forward);

  // Same port on another address or family, or another port on the same address, is not a
  // duplicate.
  CHECK(t->add(spec4(12001)).ok());
  FlowSpec other_addr = spec4(12000);
  other_addr.local = ep("192.0.2.3", 12000);
  CHECK(t->add(other_addr).ok());
  CHECK(t->add(spec6(12000)).ok());
  CHECK(t->size() == 4);
}

TEST_CASE("FlowTable: add with an unknown local endpoint is INVALID_ARGUMENT", "[flow]") {
  Qsbr qsbr(2);
  auto t = makeTable(103, qsbr.q);

  FlowSpec no_addr = spec4(13000);
  no_addr.local.addr = IpAddr{};
  FlowSpec no_port = spec4(13000);
  no_port.local.port = 0;
  FlowSpec neither = spec4(13000);
  neither.local = Endpoint{};

  for (const FlowSpec* s : {&no_addr, &no_port, &neither}) {
    auto r = t->add(*s);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == absl::StatusCode::kInvalidArgument);
  }
  CHECK(t->size() == 0);
  CHECK(t->lookup(ip("192.0.2.2"), be(13000)) == nullptr);
  CHECK(t->lookup(IpAddr{}, be(13000)) == nullptr);
  CHECK(t->lookup(ip("192.0.2.2"), 0) == nullptr);

  // A destination that is not known yet is fine (offer not answered).
  FlowSpec no_dest = spec4(13000);
  no_dest.destination = Endpoint{};
  CHECK(t->add(no_dest).ok());
  CHECK(t->size() == 1);
}

TEST_CASE("FlowTable: a full table refuses with RESOURCE_EXHAUSTED until a flow is removed",
          "[flow]") {
  Qsbr qsbr(2);
  constexpr uint32_t kCap = 64;
  auto t = makeTable(kCap, qsbr.q);

  std::vector<FlowId> ids;
  absl::Status first_failure;
  uint16_t port = 20000;
  // rte_hash may round its size up: allow a few more than `capacity`, but it must stop.
  for (; port < 20000 + kCap + 64; ++port) {
    auto r = t->add(spec4(port));
    if (!r.ok()) {
      first_failure = r.status();
      break;
    }
    ids.push_back(*r);
    CHECK(t->size() == ids.size());
  }
  INFO("accepted " << ids.size() << " flows in a table of " << kCap);
  CHECK(ids.size() >= kCap);
  CHECK(ids.size() <= kCap + 16);
  CHECK(first_failure.code() == absl::StatusCode::kResourceExhausted);
  CHECK(t->size() == ids.size());
  CHECK(std::set<FlowId>(ids.begin(), ids.end()).size() == ids.size());

  // Still full: more attempts fail the same way and change nothing; what was added is intact.
  for (uint16_t p = port; p < port + 8; ++p) {
    auto r = t->add(spec4(p));
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == absl::StatusCode::kResourceExhausted);
    CHECK(t->lookup(ip("192.0.2.2"), be(p)) == nullptr);
  }
  CHECK(t->size() == ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    const Flow* f = t->lookup(ip("192.0.2.2"), be(static_cast<uint16_t>(20000 + i)));
    REQUIRE(f != nullptr);
    CHECK(f->id == ids[i]);
  }

  // Removing one makes room for exactly one more.
  REQUIRE(t->remove({ids[5]}).ok());
  CHECK(t->size() == ids.size() - 1);
  auto again = t->add(spec4(30000));
  REQUIRE(again.ok());
  CHECK(*again == ids[5]);
  CHECK(t->lookup(ip("192.0.2.2"), be(30000)) != nullptr);
  auto refused = t->add(spec4(30001));
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().code() == absl::StatusCode::kResourceExhausted);
  CHECK(t->size() == ids.size());
}

// ============================== remove ==============================

TEST_CASE("FlowTable: remove unlinks and frees; size returns to 0 and ids are reused", "[flow]") {
  Qsbr qsbr(2);
  auto t = makeTable(104, qsbr.q);

  std::vector<FlowId> ids;
  for (uint16_t p = 14000; p < 14010; ++p) ids.push_back(mustAdd(*t, spec4(p)));
  ids.push_back(mustAdd(*t, spec6(14000)));
  CHECK(t->size() == 11);
  REQUIRE(t->pair(ids[0], ids[1]).ok());

  // Remove two (both directions of a stream), then the rest.
  REQUIRE(t->remove({ids[0], ids[1]}).ok());
  CHECK(t->size() == 9);
  CHECK(t->lookup(ip("192.0.2.2"), be(14000)) == nullptr);
  CHECK(t->lookup(ip("192.0.2.2"), be(14001)) == nullptr);
  CHECK(t->lookup(ip("192.0.2.2"), be(14002)) != nullptr);
  CHECK(t->stats(ids[0]).status().code() == absl::StatusCode::kNotFound);
  CHECK(t->stats(ids[1]).status().code() == absl::StatusCode::kNotFound);
  CHECK(t->stats(ids[2]).ok());

  REQUIRE(t->remove(std::vector<FlowId>(ids.begin() + 2, ids.end())).ok());
  CHECK(t->size() == 0);
  for (uint16_t p = 14000; p < 14010; ++p) CHECK(t->lookup(ip("192.0.2.2"), be(p)) == nullptr);
  CHECK(t->lookup(ip("2001:db8::2"), be(14000)) == nullptr);
  for (FlowId id : ids) {
    CHECK(t->stats(id).status().code() == absl::StatusCode::kNotFound);
    CHECK(t->update(id, spec4(14000), false).code() == absl::StatusCode::kNotFound);
  }

  // The same endpoints can be added again, and the freed ids are handed out again with fresh
  // records (no statistics, owner or latch carried over).
  std::set<FlowId> reused;
  for (uint16_t p = 14000; p < 14011; ++p) {
    const FlowId id = mustAdd(*t, spec4(p, ep("192.0.2.31", 6100)));
    reused.insert(id);
    const Flow* f = t->lookup(ip("192.0.2.2"), be(p));
    REQUIRE(f != nullptr);
    CHECK(f->id == id);
    CHECK(f->owner.load() == -1);
    CHECK(f->reverse.load() == nullptr);
    CHECK(specOf(f).destination == ep("192.0.2.31", 6100));
    auto st = t->stats(id);
    REQUIRE(st.ok());
    CHECK(st->packets == 0);
    CHECK_FALSE(st->latched);
  }
  CHECK(reused == std::set<FlowId>(ids.begin(), ids.end()));
  CHECK(t->size() == 11);
}

TEST_CASE("FlowTable: removing one flow of a pair unlinks it from the partner that stays",
          "[flow]") {
  Qsbr qsbr(2);
  auto t = makeTable(16, qsbr.q);
  const FlowId a = mustAdd(*t, spec4(15000));
  const FlowId b = mustAdd(*t, spec4(15002));
  REQUIRE(t->pair(a, b).ok());
  const Flow* fb = t->lookup(ip("192.0.2.2"), be(15002));
  REQUIRE(fb != nullptr);
  REQUIRE(fb->reverse.load() != nullptr);

  REQUIRE(t->remove({a}).ok());
  CHECK(fb->reverse.load() == nullptr);  // not a pointer to freed memory
  CHECK(t->lookup(ip("192.0.2.2"), be(15002)) == fb);
  REQUIRE(t->remove({b}).ok());
  CHECK(t->size() == 0);
}

TEST_CASE(
    "FlowTable: remove and update never wait for a worker; what they retire is freed "
    "after the grace period",
    "[flow]") {
  Qsbr qsbr(1);
  auto t = makeTable(16, qsbr.q);
  // This thread plays a worker that holds a flow from a lookup and has not yet reported a
  // quiescent state.
  REQUIRE(rte_rcu_qsbr_thread_register(qsbr.q, 0) == 0);
  rte_rcu_qsbr_thread_online(qsbr.q, 0);
  const FlowId a = mustAdd(*t, spec4(17000));
  const FlowId b = mustAdd(*t, spec4(17002));
  REQUIRE(t->lookup(ip("192.0.2.2"), be(17000)) != nullptr);

  REQUIRE(t->remove({a}).ok());  // returns although the "worker" is not quiescent
  CHECK(t->size() == 1);
  CHECK(t->retired() == 1);
  CHECK(t->lookup(ip("192.0.2.2"), be(17000)) == nullptr);
  CHECK(t->stats(a).status().code() == absl::StatusCode::kNotFound);
  REQUIRE(t->update(b, spec4(17002, ep("192.0.2.31", 6100)), false).ok());
  CHECK(t->retired() == 2);  // the replaced spec
  t->reclaim();
  CHECK(t->retired() == 2);

  // While a's id is retired, a new flow gets another id.
  const FlowId c = mustAdd(*t, spec4(17004));
  CHECK(c != a);
  CHECK(t->retired() == 2);

  rte_rcu_qsbr_quiescent(qsbr.q, 0);
  t->reclaim();
  CHECK(t->retired() == 0);
  CHECK(t->size() == 2);
  CHECK(mustAdd(*t, spec4(17000)) == a);  // id and endpoint reused after the grace period

  // Offline (an idle worker asleep) does not hold grace periods up.
  rte_rcu_qsbr_thread_offline(qsbr.q, 0);
  REQUIRE(t->remove({b, c}).ok());
  CHECK(t->retired() == 0);
  rte_rcu_qsbr_thread_unregister(qsbr.q, 0);
}

// ============================== update ==============================

TEST_CASE("FlowTable: update keeps the local endpoint and swaps the spec a relay uses", "[flow]") {
  Qsbr qsbr(2);
  auto t = makeTable(105, qsbr.q);
  RelayRig rig;
  const FlowId id = mustAdd(*t, spec4(15000, ep("192.0.2.30", 6000)));
  const Flow* f = t->lookup(ip("192.0.2.2"), be(15000));
  REQUIRE(f != nullptr);

  // First packet: to the original destination, from egress_local 192.0.2.2:15001.
  {
    auto [r, out] = rig.send(*t, 15000);
    REQUIRE(r.verdict == rtpx::Verdict::kTransmit);
    CHECK(slice(out, 0, 6) == kMac30);
    CHECK(slice(out, 30, 4) == Bytes({192, 0, 2, 30}));
    CHECK(get16(out, 34) == 15001);
    CHECK(get16(out, 36) == 6000);
  }

  // Changing the local endpoint is refused and leaves the spec alone.
  FlowSpec moved_port = spec4(15002, ep("192.0.2.31", 6100));
  FlowSpec moved_addr = spec4(15000, ep("192.0.2.31", 6100));
  moved_addr.local = ep("192.0.2.3", 15000);
  FlowSpec moved_family = spec4(15000, ep("192.0.2.31", 6100));
  moved_family.local = ep("2001:db8::2", 15000);
  for (const FlowSpec* s : {&moved_port, &moved_addr, &moved_family}) {
    CHECK(t->update(id, *s, false).code() == absl::StatusCode::kInvalidArgument);
  }
  CHECK(t->lookup(ip("192.0.2.2"), be(15000)) == f);
  CHECK(specOf(f).destination == ep("192.0.2.30", 6000));
  CHECK(t->lookup(ip("192.0.2.2"), be(15002)) == nullptr);
  CHECK(t->lookup(ip("192.0.2.3"), be(15000)) == nullptr);
  CHECK(t->update(id + 1000, spec4(15000), false).code() == absl::StatusCode::kNotFound);

  // A real re-offer: new destination and egress port number; same record, same id.
  FlowSpec reoffer = spec4(15000, ep("192.0.2.31", 6100));
  reoffer.egress_local = ep("192.0.2.2", 15100);
  REQUIRE(t->update(id, reoffer, false).ok());
  CHECK(t->size() == 1);
  CHECK(t->lookup(ip("192.0.2.2"), be(15000)) == f);
  CHECK(specOf(f).destination == ep("192.0.2.31", 6100));
  {
    auto [r, out] = rig.send(*t, 15000);
    REQUIRE(r.verdict == rtpx::Verdict::kTransmit);
    CHECK(slice(out, 0, 6) == kMac31);
    CHECK(slice(out, 30, 4) == Bytes({192, 0, 2, 31}));
    CHECK(get16(out, 34) == 15100);
    CHECK(get16(out, 36) == 6100);
  }
  // Statistics survive an update; without relatch the latch survives too.
  auto st = t->stats(id);
  REQUIRE(st.ok());
  CHECK(st->packets == 2);
  CHECK(st->forwarded == 2);
  CHECK(st->latched);
  CHECK(st->latched_source == ep("192.0.2.10", 4000));

  // With relatch the flow forgets its source until the next packet.
  REQUIRE(t->update(id, reoffer, true).ok());
  st = t->stats(id);
  REQUIRE(st.ok());
  CHECK_FALSE(st->latched);
  CHECK(st->packets == 2);
  auto [r3, out3] = rig.send(*t, 15000);
  CHECK(r3.verdict == rtpx::Verdict::kTransmit);
  st = t->stats(id);
  REQUIRE(st.ok());
  CHECK(st->latched);
  CHECK(st->latched_source == ep("192.0.2.10", 4000));
}

TEST_CASE("FlowTable: stats, update and pair of an unknown id are NOT_FOUND", "[flow]") {
  Qsbr qsbr(2);
  auto t = makeTable(106, qsbr.q);
  CHECK(t->stats(0).status().code() == absl::StatusCode::kNotFound);
  CHECK(t->stats(12345).status().code() == absl::StatusCode::kNotFound);
  const FlowId a = mustAdd(*t, spec4(16000));
  CHECK(t->stats(a).ok());
  CHECK(t->stats(a + 1).status().code() == absl::StatusCode::kNotFound);
  CHECK(t->stats(UINT32_MAX).status().code() == absl::StatusCode::kNotFound);
  CHECK(t->update(a + 1, spec4(16000), false).code() == absl::StatusCode::kNotFound);
  CHECK(t->pair(a, a + 1).code() == absl::StatusCode::kNotFound);
  CHECK(t->pair(a + 1, a).code() == absl::StatusCode::kNotFound);
  CHECK(t->lookup(ip("192.0.2.2"), be(16000))->reverse.load() == nullptr);
}

// ============================== concurrency ==============================

TEST_CASE("FlowTable: lookups racing with add/update/remove only ever see the flow of their key",
          "[flow][concurrency]") {
  constexpr uint16_t kBase = 40000;
  constexpr unsigned kKeys = 256;
  constexpr unsigned kReaders = 2;
  Qsbr qsbr(kReaders);
  auto t = makeTable(kKeys * 2 + 7, qsbr.q);
  const IpAddr local = ip("192.0.2.2");

  // Every spec the writer publishes keeps egress_local.port == local.port + 1 and encodes its
  // key in the destination port, so a reader can tell a record of another key (a freed and
  // reused record) from the right one.
  // (Built from addresses parsed once: no Catch assertions inside the timed loop.)
  const IpAddr dest = ip("192.0.2.30");
  const IpAddr peer = ip("192.0.2.10");
  auto specFor = [&](uint16_t port, uint32_t version) {
    FlowSpec s;
    s.local = Endpoint{local, port};
    s.egress_local = Endpoint{local, static_cast<uint16_t>(port + 1)};
    s.destination = Endpoint{dest, static_cast<uint16_t>(1000 + (port - kBase))};
    s.announced_source = Endpoint{peer, static_cast<uint16_t>(1 + version % 60000)};
    return s;
  };

  struct ReaderStats {
    uint64_t lookups = 0, found = 0, bad = 0;
  };
  std::array<ReaderStats, kReaders> rs{};
  std::atomic<bool> stop{false};
  std::atomic<unsigned> online{0};

  auto reader = [&](unsigned tid) {
    // The EAL pinned the main thread (lcore 0) to CPU 0 and threads inherit that. Move the
    // readers to the other CPUs so they really run beside the writer, which spins in
    // rte_rcu_qsbr_synchronize and must not share its CPU with a reader it waits for.
    const unsigned ncpu = std::thread::hardware_concurrency();
    if (ncpu > 1) {
      cpu_set_t others;
      CPU_ZERO(&others);
      for (unsigned c = 1; c < ncpu; ++c) CPU_SET(c, &others);
      pthread_setaffinity_np(pthread_self(), sizeof others, &others);
    }
    rte_rcu_qsbr_thread_register(qsbr.q, tid);
    rte_rcu_qsbr_thread_online(qsbr.q, tid);
    online.fetch_add(1);
    ReaderStats& s = rs[tid];
    unsigned k = tid * 97;
    while (!stop.load(std::memory_order_acquire)) {
      const uint16_t port = static_cast<uint16_t>(kBase + (k++ % kKeys));
      const Flow* f = t->lookup(local, rte_cpu_to_be_16(port));
      ++s.lookups;
      if (f != nullptr) {
        ++s.found;
        auto ok = [&](const rtpx::SpecRecord* rec) {
          return rec != nullptr && rec->spec.local.port == port && rec->spec.local.addr == local &&
                 rec->spec.egress_local.port == port + 1 &&
                 rec->spec.destination.port == 1000 + (port - kBase) && rec->generation != 0;
        };
        const rtpx::SpecRecord* rec = f->spec.load(std::memory_order_acquire);
        if (!ok(rec)) ++s.bad;
        // Hold the flow and its spec for a couple of microseconds, as a worker holds them for
        // a burst, then read both again: a remove or update that freed them without waiting
        // for this reader shows up as a record of another key or as allocator garbage.
        const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(2);
        while (std::chrono::steady_clock::now() < until) {
        }
        if (!ok(rec)) ++s.bad;
        if (!ok(f->spec.load(std::memory_order_acquire))) ++s.bad;
      }
      rte_rcu_qsbr_quiescent(qsbr.q, tid);
      // Two readers and the writer share two cores here: yield now and then, after a
      // quiescent report, so a descheduled reader does not stretch every grace period.
      if ((s.lookups & 15) == 0) std::this_thread::yield();
    }
    rte_rcu_qsbr_thread_offline(qsbr.q, tid);
    rte_rcu_qsbr_thread_unregister(qsbr.q, tid);
  };

  std::vector<std::thread> threads;
  for (unsigned i = 0; i < kReaders; ++i) threads.emplace_back(reader, i);
  while (online.load() < kReaders) std::this_thread::yield();

  std::array<std::optional<FlowId>, kKeys> present{};
  uint64_t adds = 0, updates = 0, removes = 0, errors = 0, version = 0;
  std::mt19937 rng(12345);
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + std::chrono::milliseconds(300);
  while (std::chrono::steady_clock::now() < deadline) {
    // Add a batch of absent keys, update a batch of present ones, remove a batch together.
    for (int i = 0; i < 16; ++i) {
      const unsigned k = rng() % kKeys;
      if (present[k]) continue;
      auto r = t->add(specFor(static_cast<uint16_t>(kBase + k), ++version));
      if (!r.ok()) {
        ++errors;
        continue;
      }
      present[k] = *r;
      ++adds;
    }
    for (int i = 0; i < 8; ++i) {
      const unsigned k = rng() % kKeys;
      if (!present[k]) continue;
      if (!t->update(*present[k], specFor(static_cast<uint16_t>(kBase + k), ++version), i & 1).ok())
        ++errors;
      ++updates;
    }
    std::vector<FlowId> gone;
    for (int i = 0; i < 12; ++i) {
      const unsigned k = rng() % kKeys;
      if (!present[k]) continue;
      gone.push_back(*present[k]);
      present[k].reset();
    }
    if (!gone.empty()) {
      if (!t->remove(gone).ok()) ++errors;
      removes += gone.size();
    }
  }
  stop.store(true, std::memory_order_release);
  for (auto& th : threads) th.join();

  uint64_t lookups = 0, found = 0, bad = 0;
  for (const auto& s : rs) {
    lookups += s.lookups;
    found += s.found;
    bad += s.bad;
  }
  INFO("adds " << adds << ", updates " << updates << ", removes " << removes << ", lookups "
               << lookups << ", found " << found);
  CHECK(errors == 0);
  CHECK(bad == 0);
  CHECK(adds > 0);
  CHECK(updates > 0);
  CHECK(removes > 0);
  for (const auto& s : rs) CHECK(s.lookups > 0);
  CHECK(found > 0);
  CHECK(found < lookups);  // some keys were absent while looked up

  // Quiescent again: the table holds exactly what the writer thinks it holds.
  size_t expected_size = 0;
  std::vector<FlowId> all;
  for (unsigned k = 0; k < kKeys; ++k) {
    const Flow* f = t->lookup(local, rte_cpu_to_be_16(static_cast<uint16_t>(kBase + k)));
    if (present[k]) {
      ++expected_size;
      all.push_back(*present[k]);
      REQUIRE(f != nullptr);
      CHECK(f->id == *present[k]);
      CHECK(specOf(f).local.port == kBase + k);
    } else {
      CHECK(f == nullptr);
    }
  }
  CHECK(t->size() == expected_size);
  REQUIRE(t->remove(all).ok());
  CHECK(t->size() == 0);
}

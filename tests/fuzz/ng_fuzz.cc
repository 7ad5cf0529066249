// libFuzzer target: the NG front end with a real SessionManager over a real FlowTable. An input
// is a sequence of datagrams separated by NUL bytes ("<cookie> <bencoded dict>" each, as
// Kamailio sends them); an empty one advances the clock by 10 s and ticks the manager (delete
// delays, timeouts). One NgCommands, SessionManager and ReplyCache live for the whole run.
//
// Checks, besides no crash, leak or sanitizer report:
//  - every reply carries the request's cookie and one bencoded dictionary with a string
//    "result" (or nothing at all for a datagram without a cookie);
//  - after every datagram the gauges agree: the flow table holds exactly the flows the calls
//    report, each findable at its local endpoint, and the ports in use are two pairs per
//    active m= line (one per side);
//  - after NG deletes of every call NG "list" names, no call, flow or port is left, so each
//    input starts from an empty manager.
// The reply cache is rotated twice (two pings 31 s apart) before each input, so a cookie an
// earlier input used runs again instead of being answered from the cache.
#include <rte_byteorder.h>
#include <rte_eal.h>
#include <rte_malloc.h>
#include <rte_rcu_qsbr.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "controlplane/core/session_manager.h"
#include "controlplane/frontend/ng/bencode.h"
#include "controlplane/frontend/ng/ng_commands.h"
#include "controlplane/frontend/ng/ng_server.h"
#include "dataplane/flow.h"

namespace {

namespace bencode = rtpx::ng::bencode;

constexpr uint64_t kSecond = 1'000'000'000ull;
constexpr char kSeparator = '\0';

// NG_FUZZ_TRACE=1: print every request and reply (to read what a reproducer does).
const bool g_trace = std::getenv("NG_FUZZ_TRACE") != nullptr;
uint64_t g_now = 1000 * kSecond;
uint64_t g_seq = 0;
std::unique_ptr<rtpx::FlowTable> g_flows;
std::unique_ptr<rtpx::SessionManager> g_sessions;
std::unique_ptr<rtpx::ng::NgCommands> g_commands;
rtpx::ng::ReplyCache g_cache;

[[noreturn]] void fail(const char* what, std::string_view detail = {}) {
  std::fprintf(stderr, "ng_fuzz: %s %.*s\n", what, static_cast<int>(detail.size()), detail.data());
  std::abort();
}

// The datagram's reply, checked for shape; the decoded dictionary (empty for no reply).
bencode::Dict exchange(std::string_view datagram) {
  const std::string reply = rtpx::ng::handleDatagram(datagram, *g_commands, g_cache, g_now);
  if (g_trace)
    std::fprintf(stderr, ">> %.*s\n<< %s\n", static_cast<int>(datagram.size()), datagram.data(),
                 reply.c_str());
  const std::size_t space = datagram.find(' ');
  if (space == std::string_view::npos || space == 0) {
    if (!reply.empty()) fail("a datagram without a cookie got a reply:", reply);
    return {};
  }
  const std::string_view cookie = datagram.substr(0, space);
  if (reply.size() <= cookie.size() || reply.compare(0, cookie.size(), cookie) != 0 ||
      reply[cookie.size()] != ' ')
    fail("reply without the request's cookie:", reply);
  absl::StatusOr<bencode::Value> v =
      bencode::decode(std::string_view(reply).substr(cookie.size() + 1));
  if (!v.ok() || v->dict() == nullptr) fail("reply is not one bencoded dictionary:", reply);
  const bencode::Value* result = v->find("result");
  if (result == nullptr || result->str() == nullptr) fail("reply without a result:", reply);
  return *v->dict();
}

// A request of our own under a cookie no input uses (inputs cannot hold a NUL in a cookie).
bencode::Dict request(const bencode::Dict& req) {
  std::string d = "fuzz";
  d += kSeparator;
  d += std::to_string(++g_seq);
  d += ' ';
  bencode::encodeTo(bencode::Value(req), d);
  return exchange(d);
}

void checkGauges() {
  const rtpx::SessionGauges g = g_sessions->gauges();
  uint64_t flows = 0, pairs = 0;
  for (const rtpx::CallSummary& s : g_sessions->list()) {
    absl::StatusOr<rtpx::CallInfo> info = g_sessions->query(s.call_id);
    if (!info.ok()) fail("a listed call cannot be queried:", s.call_id);
    for (const rtpx::MediaInfo& m : info->media) {
      pairs += 2;
      for (const rtpx::DirectionInfo& d : m.directions) {
        ++flows;
        if (g_flows->lookup(d.local.addr, rte_cpu_to_be_16(d.local.port)) == nullptr)
          fail("a call's flow is not in the table:", d.local.toString());
      }
    }
  }
  if (g.calls != g_sessions->list().size()) fail("gauges: calls != listed calls");
  if (g.flows != g_flows->size()) fail("gauges: flows != the table's size");
  if (flows != g_flows->size())
    fail("the table's flows != the flows the calls report",
         std::to_string(g_flows->size()) + " vs " + std::to_string(flows));
  uint64_t in_use = 0;
  for (const auto& p : g.ports) in_use += p.pairs_in_use;
  if (in_use != pairs)
    fail("port pairs in use != two per active m= line",
         std::to_string(in_use) + " vs " + std::to_string(pairs));
}

// Deletes every call through NG (list, then a call-id-only delete each) and checks that
// nothing is left.
void deleteAll() {
  const bencode::Dict listed =
      request(bencode::Dict{{"command", "list"}, {"limit", int64_t{1} << 30}});
  const bencode::Value* calls = bencode::find(listed, "calls");
  if (calls == nullptr || calls->list() == nullptr) fail("list without calls");
  for (const bencode::Value& id : *calls->list()) {
    const bencode::Dict r = request(bencode::Dict{{"call-id", id}, {"command", "delete"}});
    if (*bencode::find(r, "result")->str() != "ok")
      fail("delete of a listed call failed:", bencode::encode(bencode::Value(r)));
  }
  const rtpx::SessionGauges g = g_sessions->gauges();
  uint64_t in_use = 0;
  for (const auto& p : g.ports) in_use += p.pairs_in_use;
  if (g.calls != 0 || g.flows != 0 || g_flows->size() != 0 || in_use != 0)
    fail("left after deleting every listed call:",
         std::to_string(g.calls) + " calls, " + std::to_string(g_flows->size()) + " flows, " +
             std::to_string(in_use) + " port pairs");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* argv[] = {"ng_fuzz",       "--no-huge", "--no-shconf", "-m",          "128",
                        "--no-pci",      "-l",        "0",           "--log-level", "lib.eal:error",
                        "--no-telemetry"};
  if (rte_eal_init(static_cast<int>(std::size(argv)), const_cast<char**>(argv)) < 0) abort();
  auto* qsbr = static_cast<rte_rcu_qsbr*>(
      rte_zmalloc(nullptr, rte_rcu_qsbr_get_memsize(1), RTE_CACHE_LINE_SIZE));
  if (qsbr == nullptr || rte_rcu_qsbr_init(qsbr, 1) != 0) abort();
  auto flows = rtpx::FlowTable::create(4096, qsbr, 0);
  if (!flows.ok()) abort();
  g_flows = std::move(*flows);
  rtpx::SessionInterface i;
  i.name = "media0";
  i.ipv4 = rtpx::IpPrefix::parse("192.0.2.2/24");
  i.ipv6 = rtpx::IpPrefix::parse("2001:db8::2/64");
  i.gateway4 = rtpx::IpAddr::parse("192.0.2.1");
  i.gateway6 = rtpx::IpAddr::parse("2001:db8::1");
  rtpx::SessionsConfig cfg;
  cfg.port_min = 30000;
  cfg.port_max = 30199;   // 100 pairs: inputs can reach port exhaustion
  cfg.max_sessions = 20;  // and the load limit
  auto sm = rtpx::SessionManager::create(
      cfg, {i}, *g_flows, [](uint16_t, const rtpx::IpAddr&) {}, [] { return g_now; });
  if (!sm.ok()) abort();
  g_sessions = std::move(*sm);
  g_commands = std::make_unique<rtpx::ng::NgCommands>(*g_sessions);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Forget the previous inputs' cookies (each insert past a generation's 30 s rotates).
  for (int i = 0; i < 2; ++i) {
    g_now += 31 * kSecond;
    request(bencode::Dict{{"command", "ping"}});
  }
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  std::size_t pos = 0;
  while (pos <= in.size()) {
    std::size_t end = in.find(kSeparator, pos);
    if (end == std::string_view::npos) end = in.size();
    const std::string_view datagram = in.substr(pos, end - pos);
    if (datagram.empty()) {
      g_now += 10 * kSecond;
      g_sessions->tick(g_now);
    } else {
      exchange(datagram);
    }
    checkGauges();
    pos = end + 1;
  }
  deleteAll();
  return 0;
}

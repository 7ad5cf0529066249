#include "controlplane/session_manager.h"
#include "controlplane/str_cat.h"

#include <spdlog/spdlog.h>
#include <time.h>

#include <algorithm>
#include <functional>
#include <type_traits>
#include <utility>

#include "absl/strings/string_view.h"
#include "controlplane/sdp.h"

namespace rtpx {
namespace {

constexpr FlowId kNoFlow = UINT32_MAX;
// RFC 3264 allows many m= lines; a relay call with more than this is an abuse, not a session.
constexpr std::size_t kMaxMedia = 32;
// How often one call's media counters are read (timeouts have second granularity).
constexpr uint64_t kMediaCheckIntervalNs = 1'000'000'000ull;
// With the media timeouts off, counters are read only to see media start: ever less often as
// a call stays silent (a quarter of its silence so far), up to this.
constexpr uint64_t kMaxMediaStartCheckNs = 8'000'000'000ull;
constexpr uint64_t kNsPerSecond = 1'000'000'000ull;

uint64_t monotonicClockNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * kNsPerSecond + static_cast<uint64_t>(ts.tv_nsec);
}

const char* familyName(IpAddr::Family f) {
  return f == IpAddr::Family::kV6 ? "IPv6" : f == IpAddr::Family::kV4 ? "IPv4" : "none";
}

IpAddr::Family familyOf(sdp::AddressType t) {
  return t == sdp::AddressType::kIp6 ? IpAddr::Family::kV6 : IpAddr::Family::kV4;
}

bool isUnspecified(const IpAddr& a) {
  const std::size_t n = a.isV4() ? 4 : 16;
  for (std::size_t i = 0; i < n; ++i)
    if (a.bytes[i] != 0) return false;
  return true;
}

// An endpoint from SDP: 0.0.0.0 / :: (RFC 3264 section 8.4 hold, or trickle ICE) is unknown.
Endpoint sdpEndpoint(const std::string& address, uint16_t port) {
  std::optional<IpAddr> a = IpAddr::parse(address);
  if (!a || isUnspecified(*a) || port == 0) return Endpoint{};
  return Endpoint{*a, port};
}

bool sends(sdp::Direction d) {
  return d == sdp::Direction::kSendRecv || d == sdp::Direction::kSendOnly;
}
bool receives(sdp::Direction d) {
  return d == sdp::Direction::kSendRecv || d == sdp::Direction::kRecvOnly;
}

// RTP clock of a static payload type (RFC 3551 tables 4 and 5); 8000 for dynamic ones
// without an rtpmap.
uint32_t staticClockRate(std::string_view pt) {
  if (pt == "6") return 16000;
  if (pt == "10" || pt == "11") return 44100;
  if (pt == "16") return 11025;
  if (pt == "17") return 22050;
  if (pt == "14" || pt == "25" || pt == "26" || pt == "28" || pt == "31" || pt == "32" ||
      pt == "33" || pt == "34")
    return 90000;
  return 8000;
}

uint32_t clockRateOf(const sdp::MediaSection& m) {
  const std::vector<std::string> formats = m.formats();
  if (formats.empty()) return 8000;
  if (std::optional<sdp::Rtpmap> map = m.rtpmap(formats.front()); map && map->clock_rate != 0)
    return map->clock_rate;
  return staticClockRate(formats.front());
}

// One leg's view of one m= line.
struct LegSide {
  Endpoint rtp;               // where the leg receives RTP (from its SDP); unknown until it arrives
  Endpoint rtcp;              // where it receives RTCP (= rtp under rtcp-mux)
  FlowId rtp_flow = kNoFlow;  // packets from this leg, keyed at `port`
  FlowId rtcp_flow = kNoFlow;  // keyed at `port + 1`
  uint32_t clock_rate = 8000;  // of what this leg sends
  uint16_t port = 0;           // rtpx RTP port shown to this leg (RTCP: + 1); 0 = none
  sdp::Direction direction = sdp::Direction::kSendRecv;
  bool seen = false;  // the leg's SDP for this m= line arrived
  bool mux = false;   // ... and it had a=rtcp-mux

  bool muxOrUnknown() const { return seen ? mux : true; }
  bool sendsMedia() const { return seen ? sends(direction) : true; }
  bool receivesMedia() const { return seen ? receives(direction) : true; }
};

struct Media {
  std::string type;  // m= media
  LegSide side[2];

  bool active() const { return side[0].port != 0; }
  // RFC 5761 section 5.1.1: muxed only if both offered/accepted it (an unknown answer is
  // assumed to accept until it arrives).
  bool mux() const { return side[0].muxOrUnknown() && side[1].muxOrUnknown(); }
};

}  // namespace

struct SessionManager::Call {
  std::string id;
  std::string tag[2];
  uint8_t iface[2] = {0, 0};
  uint8_t slot[2] = {0, 0};  // address slot of each leg on its interface
  IpAddr::Family family[2] = {IpAddr::Family::kNone, IpAddr::Family::kNone};
  CallState state = CallState::kOffered;
  int8_t pending_offerer = -1;  // leg whose offer waits for an answer
  int8_t delete_leg = -1;       // postponed delete: -1 the whole call, else that leg
  bool media_started = false;
  bool one_sided_reported = false;
  std::vector<Media> media;
  uint64_t created_ns = 0;
  uint64_t offered_ns = 0;  // the unanswered offer's time
  uint64_t answered_ns = 0;
  uint64_t delete_at_ns = 0;
  uint64_t next_check_ns = 0;
  std::optional<uint64_t> timer;      // its key in timers_, if it is there
  uint64_t packets_from[2] = {0, 0};  // received from each leg, at the last check
  uint64_t active_ns[2] = {0, 0};     // last check that saw packets_from[leg] grow

  int legOf(std::string_view tag_value) const {
    if (!tag[0].empty() && tag[0] == tag_value) return 0;
    if (!tag[1].empty() && tag[1] == tag_value) return 1;
    return -1;
  }
  std::string legList() const {
    std::string s = cat("'", tag[0], "'");
    if (!tag[1].empty()) s += cat(", '", tag[1], "'");
    return s;
  }
};

namespace {

absl::Status checkId(std::string_view what, std::string_view value) {
  if (value.empty())
    return absl::InvalidArgumentError(
        cat(what, " is empty (the SIP Call-ID / tag, or any non-empty string up to ",
            SessionManager::kMaxIdBytes, " bytes)"));
  if (value.size() > SessionManager::kMaxIdBytes)
    return absl::InvalidArgumentError(
        cat(what, " is ", value.size(), " bytes (at most ", SessionManager::kMaxIdBytes, ")"));
  return absl::OkStatus();
}

// What one SDP says about its active media, checked for what a relay can carry.
struct SdpFacts {
  IpAddr::Family family = IpAddr::Family::kNone;  // of every active m= line
};

absl::StatusOr<SdpFacts> examine(const sdp::SessionDescription& sd, std::string_view what) {
  SdpFacts f;
  if (sd.mediaCount() > kMaxMedia)
    return absl::InvalidArgumentError(
        cat(what, " has ", sd.mediaCount(), " m= lines (at most ", kMaxMedia, ")"));
  for (std::size_t i = 0; i < sd.mediaCount(); ++i) {
    const sdp::MediaSection& m = sd.media(i);
    if (m.port() == 0) continue;
    if (m.portCount() && *m.portCount() != 1)
      return absl::InvalidArgumentError(cat(what, " m= line ", i, ": a port count (\"", m.port(),
                                            "/", *m.portCount(),
                                            "\") is not supported (one RTP port per m= line)"));
    const std::optional<sdp::Connection> c = sd.effectiveConnection(i);
    if (!c)
      return absl::InvalidArgumentError(cat(what, " m= line ", i, ": no c= connection address"));
    if (c->ttl || c->address_count)
      return absl::InvalidArgumentError(cat(what, " m= line ", i, ": multicast connection '",
                                            c->address,
                                            "' is not supported (unicast addresses only)"));
    const IpAddr::Family fam = familyOf(c->address_type);
    if (f.family != IpAddr::Family::kNone && f.family != fam)
      return absl::InvalidArgumentError(cat(what, " mixes IPv4 and IPv6 media (m= line ", i,
                                            "); one address family per SDP is supported"));
    f.family = fam;
  }
  if (f.family == IpAddr::Family::kNone) {
    // No active media: take the session-level c= if any, so the leg still gets a family.
    if (std::optional<sdp::Connection> c = sd.connection()) f.family = familyOf(c->address_type);
  }
  return f;
}

// Fills a leg's side of one m= line from its SDP.
void readSide(const sdp::SessionDescription& sd, std::size_t i, LegSide& side) {
  const sdp::MediaSection& m = sd.media(i);
  const std::optional<sdp::Connection> c = sd.effectiveConnection(i);
  const std::string address = c ? c->address : std::string();
  side.seen = true;
  side.mux = m.rtcpMux();
  side.direction = sd.effectiveDirection(i);
  side.clock_rate = clockRateOf(m);
  side.rtp = sdpEndpoint(address, m.port());
  // Where RTCP goes when it is not muxed; also kept for rtcp-mux offers, since the answer may
  // decline mux (RFC 5761 section 5.1.1).
  if (std::optional<sdp::Rtcp> r = m.rtcp()) {
    side.rtcp = sdpEndpoint(r->connection ? r->connection->address : address, r->port);
  } else {
    side.rtcp = m.port() < 65535 ? sdpEndpoint(address, m.port() + 1) : Endpoint{};
  }
}

// Rewrites one active m= line of an SDP going to a leg that is shown rtpx port `port`. The
// line's own a=rtcp-mux (which passes through) decides whether RTCP gets its own port.
absl::Status rewriteMediaPorts(sdp::MediaSection& m, uint16_t port) {
  const std::optional<sdp::Rtcp> rtcp = m.rtcp();
  const uint16_t original_port = m.port();
  m.setPort(port);
  if (m.rtcpMux()) {
    // RFC 5761 section 5.1.3: an a=rtcp next to rtcp-mux names the fallback RTCP port, or the
    // RTP port itself for mux-only.
    if (rtcp) return m.setRtcp(rtcp->port == original_port ? port : port + 1);
    return absl::OkStatus();
  }
  return m.setRtcp(port + 1);  // RFC 3605: without mux, say where RTCP goes
}

bool sameEndpoint(const Endpoint& a, const Endpoint& b) {
  return a == b;
}

bool sameSpec(const FlowSpec& a, const FlowSpec& b) {
  return a.ingress_port == b.ingress_port && sameEndpoint(a.local, b.local) &&
         a.egress_port == b.egress_port && sameEndpoint(a.egress_local, b.egress_local) &&
         sameEndpoint(a.destination, b.destination) &&
         sameEndpoint(a.announced_source, b.announced_source) && a.forward == b.forward &&
         a.strict_source == b.strict_source && a.rtcp == b.rtcp && a.clock_rate == b.clock_rate;
}

}  // namespace

// ---- plain helpers exposed in the header --------------------------------------------------

std::string_view callStateName(CallState s) {
  switch (s) {
    case CallState::kOffered:
      return "offered";
    case CallState::kAnswered:
      return "answered";
    case CallState::kDeleting:
      return "deleting";
  }
  return "unknown";
}

std::string_view eventTypeName(SessionEvent::Type t) {
  switch (t) {
    case SessionEvent::Type::kCreated:
      return "created";
    case SessionEvent::Type::kAnswered:
      return "answered";
    case SessionEvent::Type::kMediaStarted:
      return "media_started";
    case SessionEvent::Type::kTimeout:
      return "timeout";
    case SessionEvent::Type::kDeleted:
      return "deleted";
  }
  return "unknown";
}

std::string_view eventReasonName(SessionEvent::Reason r) {
  switch (r) {
    case SessionEvent::Reason::kNone:
      return "none";
    case SessionEvent::Reason::kRequested:
      return "requested";
    case SessionEvent::Reason::kNoMedia:
      return "no_media";
    case SessionEvent::Reason::kOneSidedMedia:
      return "one_sided_media";
    case SessionEvent::Reason::kOfferUnanswered:
      return "offer_unanswered";
    case SessionEvent::Reason::kDeleteDelay:
      return "delete_delay";
  }
  return "unknown";
}

std::vector<SessionInterface> sessionInterfaces(const Config& cfg,
                                                const std::vector<uint16_t>& port_ids) {
  std::vector<SessionInterface> out;
  for (std::size_t i = 0; i < cfg.dataplane.interfaces.size(); ++i) {
    const InterfaceConfig& ic = cfg.dataplane.interfaces[i];
    SessionInterface s;
    s.name = ic.name;
    s.port_id = i < port_ids.size() ? port_ids[i] : static_cast<uint16_t>(i);
    s.ipv4 = ic.ipv4;
    s.ipv6 = ic.ipv6;
    s.extra_ipv4 = ic.extra_ipv4;
    s.extra_ipv6 = ic.extra_ipv6;
    s.gateway4 = ic.gateway4;
    s.gateway6 = ic.gateway6;
    if (i < cfg.interface_sessions.size()) {
      s.advertised_ipv4 = cfg.interface_sessions[i].advertised_ipv4;
      s.advertised_ipv6 = cfg.interface_sessions[i].advertised_ipv6;
    }
    out.push_back(std::move(s));
  }
  return out;
}

// ---- EventSubscription ---------------------------------------------------------------------

std::optional<SessionEvent> EventSubscription::next(std::chrono::milliseconds timeout) {
  std::unique_lock lk(mu_);
  cv_.wait_for(lk, timeout, [this] { return !queue_.empty() || closed_; });
  if (queue_.empty()) return std::nullopt;
  SessionEvent e = std::move(queue_.front());
  queue_.pop_front();
  // The oldest events are the ones dropped, so every loss so far happened before this one.
  e.dropped_before = dropped_ - dropped_reported_;
  dropped_reported_ = dropped_;
  return e;
}

uint64_t EventSubscription::dropped() const {
  std::lock_guard lk(mu_);
  return dropped_;
}

bool EventSubscription::closed() const {
  std::lock_guard lk(mu_);
  return closed_;
}

void EventSubscription::close() {
  {
    std::lock_guard lk(mu_);
    closed_ = true;
  }
  cv_.notify_all();
}

void EventSubscription::push(const SessionEvent& e) {
  {
    std::lock_guard lk(mu_);
    if (closed_) return;
    if (queue_.size() >= capacity_) {
      queue_.pop_front();
      ++dropped_;
    }
    queue_.push_back(e);
  }
  cv_.notify_one();
}

// ---- SessionManager ------------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<SessionManager>> SessionManager::create(
    const SessionsConfig& cfg, std::vector<SessionInterface> interfaces, FlowTable& flows,
    Resolver resolver, Clock clock) {
  if (interfaces.empty())
    return absl::InvalidArgumentError("sessions: no interface to allocate media ports on");
  if (interfaces.size() > 255)
    return absl::InvalidArgumentError("sessions: at most 255 interfaces are supported");
  std::vector<std::vector<PortAllocator>> ports;
  for (const SessionInterface& i : interfaces) {
    if (!i.ipv4 && !i.ipv6)
      return absl::InvalidArgumentError(cat("sessions: interface ", i.name, " has no address"));
    if ((i.advertised_ipv4 && !i.advertised_ipv4->isV4()) ||
        (i.advertised_ipv6 && !i.advertised_ipv6->isV6()))
      return absl::InvalidArgumentError(
          cat("sessions: interface ", i.name, ": advertised address of the wrong family"));
    if ((!i.extra_ipv4.empty() && (!i.ipv4 || i.advertised_ipv4)) ||
        (!i.extra_ipv6.empty() && (!i.ipv6 || i.advertised_ipv6)))
      return absl::InvalidArgumentError(
          cat("sessions: interface ", i.name,
              ": more addresses of a family need a first one and no advertised address"));
    const std::size_t slots = 1 + std::max(i.extra_ipv4.size(), i.extra_ipv6.size());
    if (slots > 255)
      return absl::InvalidArgumentError(
          cat("sessions: interface ", i.name, ": at most 255 addresses per family"));
    ports.emplace_back();
    for (std::size_t k = 0; k < slots; ++k) {
      absl::StatusOr<PortAllocator> p = PortAllocator::create(cfg.port_min, cfg.port_max, i.name);
      if (!p.ok()) return p.status();
      ports.back().push_back(*std::move(p));
    }
  }
  if (!clock) clock = monotonicClockNs;
  return std::unique_ptr<SessionManager>(new SessionManager(
      cfg, std::move(interfaces), std::move(ports), flows, std::move(resolver), std::move(clock)));
}

SessionManager::SessionManager(const SessionsConfig& cfg, std::vector<SessionInterface> interfaces,
                               std::vector<std::vector<PortAllocator>> ports, FlowTable& flows,
                               Resolver resolver, Clock clock)
    : cfg_(cfg),
      interfaces_(std::move(interfaces)),
      ports_(std::move(ports)),
      flows_(flows),
      resolver_(std::move(resolver)),
      clock_(std::move(clock)) {}

// Flows stay in the table: it belongs to the dataplane, which outlives no session.
SessionManager::~SessionManager() {
  closeSubscriptions();
}

const PortAllocator& SessionManager::ports(std::size_t interface_index, std::size_t slot) const {
  return ports_.at(interface_index).at(slot);
}

std::size_t SessionManager::addressSlots(std::size_t interface_index) const {
  return ports_.at(interface_index).size();
}

std::size_t SessionManager::callCount() const {
  std::lock_guard lk(mu_);
  return calls_.size();
}

std::size_t SessionManager::scheduledCount() const {
  std::lock_guard lk(mu_);
  return timers_.size();
}

SessionGauges SessionManager::gauges() const {
  std::lock_guard lk(mu_);
  SessionGauges g;
  g.calls = calls_.size();
  g.flows = flows_.size();
  g.flow_capacity = flows_.capacity();
  for (const std::vector<PortAllocator>& slots : ports_) {
    SessionGauges::Ports sum{slots.front().name(), 0, 0};
    for (const PortAllocator& p : slots) {
      sum.pairs_in_use += p.capacity() - p.available();
      sum.pairs_total += p.capacity();
    }
    g.ports.push_back(std::move(sum));
  }
  return g;
}

namespace {

struct Sides {
  const SessionInterface* iface[2];
  IpAddr::Family family[2];
  uint8_t slot[2];
};

// Addresses of family `f` on the interface: slot 0 is the first, slot k extra[k - 1].
std::size_t addressCount(const SessionInterface& i, IpAddr::Family f) {
  if (f == IpAddr::Family::kV6) return i.ipv6 ? 1 + i.extra_ipv6.size() : 0;
  return i.ipv4 ? 1 + i.extra_ipv4.size() : 0;
}

IpAddr localAddr(const SessionInterface& i, IpAddr::Family f, uint8_t slot) {
  const bool v6 = f == IpAddr::Family::kV6;
  const std::optional<IpPrefix>& first = v6 ? i.ipv6 : i.ipv4;
  const std::vector<IpPrefix>& extra = v6 ? i.extra_ipv6 : i.extra_ipv4;
  if (!first) return IpAddr{};
  return slot == 0 ? first->addr : extra.at(slot - 1).addr;
}

IpAddr advertisedAddr(const SessionInterface& i, IpAddr::Family f, uint8_t slot) {
  const std::optional<IpAddr>& adv =
      f == IpAddr::Family::kV6 ? i.advertised_ipv6 : i.advertised_ipv4;
  return adv && slot == 0 ? *adv : localAddr(i, f, slot);
}

// On the prefix of one of the interface's addresses of the family of `a`.
bool onLink(const SessionInterface& i, const IpAddr& a) {
  const std::optional<IpPrefix>& first = a.isV6() ? i.ipv6 : i.ipv4;
  if (first && first->contains(a)) return true;
  for (const IpPrefix& p : a.isV6() ? i.extra_ipv6 : i.extra_ipv4)
    if (p.contains(a)) return true;
  return false;
}

bool hasFamily(const SessionInterface& i, IpAddr::Family f) {
  return f == IpAddr::Family::kV6 ? i.ipv6.has_value() : i.ipv4.has_value();
}

// Direction x→y of `m`: RTP (rtcp = false) or the separate RTCP port.
FlowSpec flowSpec(const Sides& s, const Media& m, int x, bool rtcp) {
  const int y = 1 - x;
  const LegSide& from = m.side[x];
  const LegSide& to = m.side[y];
  FlowSpec f;
  f.ingress_port = s.iface[x]->port_id;
  f.local = Endpoint{localAddr(*s.iface[x], s.family[x], s.slot[x]),
                     static_cast<uint16_t>(from.port + (rtcp ? 1 : 0))};
  f.egress_port = s.iface[y]->port_id;
  f.egress_local = Endpoint{localAddr(*s.iface[y], s.family[y], s.slot[y]),
                            static_cast<uint16_t>(to.port + (rtcp ? 1 : 0))};
  f.destination = to.seen ? (rtcp ? to.rtcp : to.rtp) : Endpoint{};
  f.announced_source = from.seen ? (rtcp ? from.rtcp : from.rtp) : Endpoint{};
  // RFC 3264 section 8.4: hold stops media one way; RTCP keeps flowing both ways.
  f.forward = rtcp || (from.sendsMedia() && to.receivesMedia());
  f.strict_source = true;
  f.rtcp = rtcp;
  f.clock_rate = from.clock_rate;
  return f;
}

// Makes the flow table match `next` (a call's new media), given `prev` (its current media).
// Fallible steps (adds, pairs) come first and are undone on failure, so an error leaves the
// table as it was; updates of existing flows cannot fail short of a bug. On success `next`
// holds the flow ids and `removed` the ids the caller removes once it commits.
absl::Status syncFlows(FlowTable& table, const Sides& sides, const std::vector<Media>& prev,
                       std::vector<Media>& next, std::vector<FlowId>& removed) {
  struct Added {
    std::size_t media;
    int leg;
    bool rtcp;
    FlowId id;
  };
  std::vector<Added> added;
  auto rollback = [&] {
    std::vector<FlowId> ids;
    for (const Added& a : added) ids.push_back(a.id);
    if (!ids.empty()) {
      if (absl::Status st = table.remove(ids); !st.ok())
        spdlog::error("sessions: BUG: rollback of {} flows failed: {}", ids.size(),
                      std::string(st.message()));
    }
  };
  // 1. New flows.
  for (std::size_t i = 0; i < next.size(); ++i) {
    Media& m = next[i];
    if (!m.active()) continue;
    const bool want_rtcp = !m.mux();
    for (int x = 0; x < 2; ++x) {
      for (bool rtcp : {false, true}) {
        if (rtcp && !want_rtcp) continue;
        FlowId& id = rtcp ? m.side[x].rtcp_flow : m.side[x].rtp_flow;
        if (id != kNoFlow) continue;
        absl::StatusOr<FlowId> r = table.add(flowSpec(sides, m, x, rtcp));
        if (!r.ok()) {
          rollback();
          return r.status();
        }
        id = *r;
        added.push_back({i, x, rtcp, *r});
      }
    }
    for (bool rtcp : {false, true}) {
      FlowId a = rtcp ? m.side[0].rtcp_flow : m.side[0].rtp_flow;
      FlowId b = rtcp ? m.side[1].rtcp_flow : m.side[1].rtp_flow;
      const bool fresh = std::any_of(added.begin(), added.end(), [&](const Added& e) {
        return e.media == i && e.rtcp == rtcp;
      });
      if (!fresh || a == kNoFlow || b == kNoFlow) continue;
      if (absl::Status st = table.pair(a, b); !st.ok()) {
        rollback();
        return st;
      }
    }
  }
  // 2. Changed flows, and 3. flows no longer wanted.
  for (std::size_t i = 0; i < next.size(); ++i) {
    Media& m = next[i];
    const Media* old = i < prev.size() && prev[i].active() ? &prev[i] : nullptr;
    const bool want_rtcp = m.active() && !m.mux();
    for (int x = 0; x < 2; ++x) {
      for (bool rtcp : {false, true}) {
        FlowId& id = rtcp ? m.side[x].rtcp_flow : m.side[x].rtp_flow;
        if (id == kNoFlow) continue;
        if (!m.active() || (rtcp && !want_rtcp)) {
          removed.push_back(id);
          id = kNoFlow;
          continue;
        }
        const bool fresh =
            std::any_of(added.begin(), added.end(), [&](const Added& e) { return e.id == id; });
        if (fresh || old == nullptr) continue;
        const FlowSpec before = flowSpec(sides, *old, x, rtcp);
        const FlowSpec after = flowSpec(sides, m, x, rtcp);
        if (sameSpec(before, after)) continue;
        // The sender moved (re-offer with a new address): forget the latched source.
        const bool relatch = !sameEndpoint(before.announced_source, after.announced_source);
        if (absl::Status st = table.update(id, after, relatch); !st.ok())
          spdlog::error("sessions: BUG: flow {} update failed: {}", id, std::string(st.message()));
      }
    }
  }
  // Media that the new state no longer has at all (cannot happen: m= lines are never
  // removed), kept for safety.
  for (std::size_t i = next.size(); i < prev.size(); ++i)
    for (int x = 0; x < 2; ++x)
      for (FlowId id : {prev[i].side[x].rtp_flow, prev[i].side[x].rtcp_flow})
        if (id != kNoFlow) removed.push_back(id);
  return absl::OkStatus();
}

Sides sidesOf(const std::vector<SessionInterface>& interfaces, const uint8_t iface[2],
              const IpAddr::Family family[2], const uint8_t slot[2]) {
  return Sides{
      {&interfaces[iface[0]], &interfaces[iface[1]]}, {family[0], family[1]}, {slot[0], slot[1]}};
}

}  // namespace

void SessionManager::emit(SessionEvent::Type type, SessionEvent::Reason reason, const Call& call,
                          std::string_view from_tag, std::string_view to_tag, uint64_t now) {
  const uint64_t sequence = ++event_sequence_;
  std::lock_guard lk(subscribers_mu_);
  if (subscribers_.empty()) return;  // nobody to build it for
  SessionEvent e;
  e.sequence = sequence;
  e.type = type;
  e.reason = reason;
  e.call_id = call.id;
  e.from_tag = std::string(from_tag);
  e.to_tag = std::string(to_tag);
  e.time_ns = now;
  e.wall_time = std::chrono::system_clock::now();
  for (const auto& s : subscribers_) s->push(e);
}

std::shared_ptr<EventSubscription> SessionManager::subscribe(std::size_t queue_capacity) {
  auto s = std::make_shared<EventSubscription>(queue_capacity);
  std::lock_guard lk(subscribers_mu_);
  if (subscriptions_closed_)
    s->close();
  else
    subscribers_.push_back(s);
  return s;
}

void SessionManager::unsubscribe(const std::shared_ptr<EventSubscription>& subscription) {
  std::lock_guard lk(subscribers_mu_);
  subscribers_.erase(std::remove(subscribers_.begin(), subscribers_.end(), subscription),
                     subscribers_.end());
  if (subscription) subscription->close();
}

void SessionManager::closeSubscriptions() {
  std::lock_guard lk(subscribers_mu_);
  subscriptions_closed_ = true;
  for (const auto& s : subscribers_) s->close();
  subscribers_.clear();
}

void SessionManager::requestResolve(const Call& call) {
  if (!resolver_) return;
  std::vector<std::pair<uint16_t, IpAddr>> asked;
  for (const Media& m : call.media) {
    if (!m.active()) continue;
    for (int x = 0; x < 2; ++x) {
      const SessionInterface& i = interfaces_[call.iface[x]];
      for (const Endpoint& e : {m.side[x].rtp, m.side[x].rtcp}) {
        if (!m.side[x].seen || !e.known()) continue;
        std::optional<IpAddr> hop;
        if (onLink(i, e.addr))
          hop = e.addr;
        else
          hop = e.addr.isV6() ? i.gateway6 : i.gateway4;
        if (!hop) continue;  // no route: the flow counts dropped_no_route
        const std::pair<uint16_t, IpAddr> key{i.port_id, *hop};
        if (std::find(asked.begin(), asked.end(), key) != asked.end()) continue;
        asked.push_back(key);
        resolver_(i.port_id, *hop);
      }
    }
  }
}

absl::StatusOr<std::string> SessionManager::offer(std::string_view call_id,
                                                  std::string_view from_tag, std::string_view sdp,
                                                  const OfferOptions& options) {
  if (absl::Status st = checkId("call_id", call_id); !st.ok()) return st;
  if (absl::Status st = checkId("from_tag", from_tag); !st.ok()) return st;
  for (const std::string* name : {&options.offerer_interface, &options.answerer.interface}) {
    if (name->empty()) continue;
    if (std::none_of(interfaces_.begin(), interfaces_.end(),
                     [&](const SessionInterface& i) { return i.name == *name; })) {
      std::string names;
      for (const auto& i : interfaces_) names += cat(names.empty() ? "" : ", ", i.name);
      return absl::InvalidArgumentError(
          cat("interface '", *name, "' is not configured (interfaces: ", names, ")"));
    }
  }
  if (options.answerer.family && *options.answerer.family == IpAddr::Family::kNone)
    return absl::InvalidArgumentError("answerer address family must be IPv4 or IPv6");
  absl::StatusOr<sdp::SessionDescription> parsed = sdp::parse(sdp);
  if (!parsed.ok()) return parsed.status();
  sdp::SessionDescription& sd = *parsed;
  absl::StatusOr<SdpFacts> facts = examine(sd, "offer");
  if (!facts.ok()) return facts.status();

  std::lock_guard lk(mu_);
  const uint64_t now = clock_();
  auto it = calls_.find(call_id);
  std::unique_ptr<Call> fresh;
  Call* call = nullptr;
  int x = 0;
  if (it == calls_.end()) {
    fresh = std::make_unique<Call>();
    fresh->id = std::string(call_id);
    fresh->tag[0] = std::string(from_tag);
    call = fresh.get();
  } else {
    call = it->second.get();
    x = call->legOf(from_tag);
    if (x < 0)
      return absl::NotFoundError(cat("call '", call_id, "' has no leg with tag '", from_tag,
                                     "' (legs: ", call->legList(), ")"));
    if (call->pending_offerer == 1 - x)
      return absl::FailedPreconditionError(
          cat("call '", call_id, "': the offer of leg '", call->tag[1 - x],
              "' is waiting for an answer; answer it before offering from '", from_tag, "'"));
  }
  const int y = 1 - x;
  const std::size_t n = sd.mediaCount();
  if (n < call->media.size())
    return absl::InvalidArgumentError(
        cat("offer has ", n, " m= lines but the session has ", call->media.size(),
            " (RFC 3264 section 8: m= lines are never removed; set a port of 0 to disable one)"));

  // Interfaces and address families of both legs.
  uint8_t iface[2] = {call->iface[0], call->iface[1]};
  IpAddr::Family family[2] = {call->family[0], call->family[1]};
  auto pick = [&](const std::string& name, IpAddr::Family fam, std::string_view leg,
                  uint8_t& out) -> absl::Status {
    for (std::size_t i = 0; i < interfaces_.size(); ++i) {
      if (!name.empty() && interfaces_[i].name != name) continue;
      if (!hasFamily(interfaces_[i], fam)) continue;
      out = static_cast<uint8_t>(i);
      return absl::OkStatus();
    }
    return absl::InvalidArgumentError(
        name.empty()
            ? cat("no interface has an ", familyName(fam), " address for the ", leg,
                  " (configure one on an [[interface]], or choose another address family)")
            : cat("interface '", name, "' has no ", familyName(fam), " address for the ", leg));
  };
  const IpAddr::Family offer_family =
      facts->family != IpAddr::Family::kNone
          ? facts->family
          : (family[x] != IpAddr::Family::kNone ? family[x] : IpAddr::Family::kV4);
  if (family[x] == IpAddr::Family::kNone) {
    if (absl::Status st = pick(options.offerer_interface, offer_family, "offerer", iface[x]);
        !st.ok())
      return st;
    family[x] = offer_family;
  } else {
    if (offer_family != family[x])
      return absl::InvalidArgumentError(cat("offer from '", from_tag, "' uses ",
                                            familyName(offer_family),
                                            " but this leg was set up with ", familyName(family[x]),
                                            "; a leg's address family cannot change"));
    if (!options.offerer_interface.empty() &&
        options.offerer_interface != interfaces_[iface[x]].name)
      return absl::InvalidArgumentError(cat("leg '", from_tag, "' uses interface ",
                                            interfaces_[iface[x]].name, "; it cannot change"));
  }
  if (family[y] == IpAddr::Family::kNone) {
    const IpAddr::Family fam = options.answerer.family.value_or(family[x]);
    if (absl::Status st = pick(options.answerer.interface, fam, "answerer", iface[y]); !st.ok())
      return st;
    family[y] = fam;
  } else {
    if (options.answerer.family && *options.answerer.family != family[y])
      return absl::InvalidArgumentError(cat("the other leg of call '", call_id, "' uses ",
                                            familyName(family[y]),
                                            "; its address family cannot change in a re-offer"));
    if (!options.answerer.interface.empty() &&
        options.answerer.interface != interfaces_[iface[y]].name)
      return absl::InvalidArgumentError(cat("the other leg of call '", call_id, "' uses interface ",
                                            interfaces_[iface[y]].name,
                                            "; it cannot change in a re-offer"));
  }

  // The address slot of each new leg: the first of its family on its interface with a free
  // pair for every m= line that needs one (both legs on one slot need twice as many).
  uint8_t slot[2] = {call->slot[0], call->slot[1]};
  std::size_t needed = 0;
  for (std::size_t i = 0; i < n; ++i)
    if (sd.media(i).port() != 0 && !(i < call->media.size() && call->media[i].active())) ++needed;
  const bool new_leg[2] = {call->family[0] == IpAddr::Family::kNone,
                           call->family[1] == IpAddr::Family::kNone};
  for (int leg : {x, y}) {
    if (!new_leg[leg] || needed == 0) continue;
    const std::size_t count = addressCount(interfaces_[iface[leg]], family[leg]);
    std::size_t s = 0;
    for (; s < count; ++s) {
      const int other = 1 - leg;
      const bool shared =
          leg == y && new_leg[other] && iface[other] == iface[leg] && slot[other] == s;
      if (ports_[iface[leg]][s].available() >= needed * (shared ? 2 : 1)) break;
    }
    if (s == count)
      return absl::ResourceExhaustedError(cat(
          "interface ", interfaces_[iface[leg]].name, ": none of its ", count, " ",
          familyName(family[leg]), " addresses has ", needed, " free media port pair(s) for the ",
          leg == x ? "offerer" : "answerer", " (ports ", cfg_.port_min, "-", cfg_.port_max,
          " per address; add addresses or widen the range)"));
    slot[leg] = static_cast<uint8_t>(s);
  }

  // The new media state: existing m= lines keep their ports; new or re-enabled ones get ports
  // on both legs; disabled ones (port 0) lose theirs.
  std::vector<Media> next = call->media;
  next.resize(n);
  struct Allocated {
    uint8_t iface;
    uint8_t slot;
    uint16_t port;
  };
  std::vector<Allocated> allocated;
  auto releaseAllocated = [&] {
    for (const Allocated& a : allocated)
      if (absl::Status st = ports_[a.iface][a.slot].release(a.port); !st.ok())
        spdlog::error("sessions: BUG: {}", std::string(st.message()));
  };
  std::vector<Allocated> to_release;  // ports of disabled m= lines, freed after commit
  for (std::size_t i = 0; i < n; ++i) {
    const sdp::MediaSection& ms = sd.media(i);
    Media& m = next[i];
    if (ms.port() == 0) {
      if (m.active())
        for (int leg = 0; leg < 2; ++leg)
          to_release.push_back({iface[leg], slot[leg], m.side[leg].port});
      // Keep the flow ids so sync() removes them; forget everything else.
      Media disabled;
      disabled.type = std::string(ms.media());
      for (int leg = 0; leg < 2; ++leg) {
        disabled.side[leg].rtp_flow = m.side[leg].rtp_flow;
        disabled.side[leg].rtcp_flow = m.side[leg].rtcp_flow;
      }
      m = std::move(disabled);
      continue;
    }
    if (!m.active()) {
      m = Media{};
      for (int leg = 0; leg < 2; ++leg) {
        absl::StatusOr<uint16_t> p = ports_[iface[leg]][slot[leg]].allocate();
        if (!p.ok()) {
          releaseAllocated();
          return p.status();
        }
        allocated.push_back({iface[leg], slot[leg], *p});
        m.side[leg].port = *p;
      }
    }
    m.type = std::string(ms.media());
    readSide(sd, i, m.side[x]);
  }

  // The SDP for the answerer: rtpx's address and ports on its leg.
  const std::string address = advertisedAddr(interfaces_[iface[y]], family[y], slot[y]).toString();
  absl::Status rewrite = sd.setAllConnectionAddresses(address);
  for (std::size_t i = 0; i < n && rewrite.ok(); ++i)
    if (next[i].active()) rewrite = rewriteMediaPorts(sd.media(i), next[i].side[y].port);
  if (rewrite.ok() && options.replace_origin) rewrite = sd.setOriginAddress(address, false);
  if (!rewrite.ok()) {
    releaseAllocated();
    return absl::InternalError(cat("rewriting the offer: ", rewrite.message()));
  }
  if (!options.keep_ice) sd.removeIceAttributes();

  std::vector<FlowId> removed;
  const Sides sides = sidesOf(interfaces_, iface, family, slot);
  if (absl::Status st = syncFlows(flows_, sides, call->media, next, removed); !st.ok()) {
    releaseAllocated();
    if (st.code() == absl::StatusCode::kResourceExhausted)
      return absl::ResourceExhaustedError(
          cat("flow table full (", flows_.size(), " of ", flows_.capacity(),
              " flows; raise sessions.flow_capacity): ", st.message()));
    return st;
  }

  // Commit.
  for (int leg = 0; leg < 2; ++leg) {
    call->iface[leg] = iface[leg];
    call->family[leg] = family[leg];
    call->slot[leg] = slot[leg];
  }
  call->media = std::move(next);
  call->pending_offerer = static_cast<int8_t>(x);
  if (call->state == CallState::kDeleting) {
    call->state = call->answered_ns != 0 ? CallState::kAnswered : CallState::kOffered;
    call->delete_leg = -1;
  }
  if (fresh) {
    call->created_ns = now;
    call->offered_ns = now;
    Call& c = *fresh;
    calls_.emplace(std::string_view(c.id), std::move(fresh));
    emit(SessionEvent::Type::kCreated, SessionEvent::Reason::kNone, c, from_tag, "", now);
  }
  schedule(*call);
  if (!removed.empty())
    if (absl::Status st = flows_.remove(removed); !st.ok())
      spdlog::error("sessions: BUG: removing {} flows: {}", removed.size(),
                    std::string(st.message()));
  for (const Allocated& a : to_release)
    if (absl::Status st = ports_[a.iface][a.slot].release(a.port); !st.ok())
      spdlog::error("sessions: BUG: {}", std::string(st.message()));
  requestResolve(*call);
  return sd.serialize();
}

absl::StatusOr<std::string> SessionManager::answer(std::string_view call_id,
                                                   std::string_view from_tag,
                                                   std::string_view to_tag, std::string_view sdp,
                                                   const AnswerOptions& options) {
  if (absl::Status st = checkId("call_id", call_id); !st.ok()) return st;
  if (absl::Status st = checkId("from_tag", from_tag); !st.ok()) return st;
  if (absl::Status st = checkId("to_tag", to_tag); !st.ok()) return st;
  if (from_tag == to_tag)
    return absl::InvalidArgumentError(
        cat("to_tag equals from_tag ('", to_tag, "'); the answerer is the other leg"));
  absl::StatusOr<sdp::SessionDescription> parsed = sdp::parse(sdp);
  if (!parsed.ok()) return parsed.status();
  sdp::SessionDescription& sd = *parsed;
  absl::StatusOr<SdpFacts> facts = examine(sd, "answer");
  if (!facts.ok()) return facts.status();

  std::lock_guard lk(mu_);
  const uint64_t now = clock_();
  auto it = calls_.find(call_id);
  if (it == calls_.end()) return absl::NotFoundError(cat("no call '", call_id, "'"));
  Call& call = *it->second;
  const int x = call.legOf(from_tag);
  if (x < 0)
    return absl::NotFoundError(cat("call '", call_id, "' has no leg with tag '", from_tag,
                                   "' (legs: ", call.legList(), ")"));
  const int y = 1 - x;
  if (!call.tag[y].empty() && call.tag[y] != to_tag)
    return absl::NotFoundError(cat("call '", call_id, "' has no leg with tag '", to_tag,
                                   "' (legs: ", call.legList(), ")"));
  if (call.pending_offerer != x)
    return absl::FailedPreconditionError(cat("call '", call_id, "': no offer from '", from_tag,
                                             "' is waiting for an answer (send the offer first)"));
  const std::size_t n = sd.mediaCount();
  if (n != call.media.size())
    return absl::InvalidArgumentError(
        cat("answer has ", n, " m= lines but the offer had ", call.media.size(),
            " (RFC 3264 section 6: one per offered m= line, in order)"));
  if (facts->family != IpAddr::Family::kNone && facts->family != call.family[y])
    return absl::InvalidArgumentError(cat(
        "answer uses ", familyName(facts->family), " but rtpx offered this leg an ",
        familyName(call.family[y]), " address; choose the answerer's address family in the offer"));

  std::vector<Media> next = call.media;
  struct Port {
    uint8_t iface;
    uint8_t slot;
    uint16_t port;
  };
  std::vector<Port> to_release;
  for (std::size_t i = 0; i < n; ++i) {
    const sdp::MediaSection& ms = sd.media(i);
    Media& m = next[i];
    if (!m.active()) continue;  // offered with port 0: stays rejected
    if (ms.port() == 0) {       // rejected by the answerer (RFC 3264 section 6)
      for (int leg = 0; leg < 2; ++leg)
        to_release.push_back({call.iface[leg], call.slot[leg], m.side[leg].port});
      Media rejected;
      rejected.type = m.type;
      for (int leg = 0; leg < 2; ++leg) {
        rejected.side[leg].rtp_flow = m.side[leg].rtp_flow;
        rejected.side[leg].rtcp_flow = m.side[leg].rtcp_flow;
      }
      m = std::move(rejected);
      continue;
    }
    readSide(sd, i, m.side[y]);
  }

  const std::string address =
      advertisedAddr(interfaces_[call.iface[x]], call.family[x], call.slot[x]).toString();
  absl::Status rewrite = sd.setAllConnectionAddresses(address);
  for (std::size_t i = 0; i < n && rewrite.ok(); ++i) {
    if (next[i].active())
      rewrite = rewriteMediaPorts(sd.media(i), next[i].side[x].port);
    else
      sd.media(i).setPort(0);
  }
  if (rewrite.ok() && options.replace_origin) rewrite = sd.setOriginAddress(address, false);
  if (!rewrite.ok()) return absl::InternalError(cat("rewriting the answer: ", rewrite.message()));
  if (!options.keep_ice) sd.removeIceAttributes();

  std::vector<FlowId> removed;
  const Sides sides = sidesOf(interfaces_, call.iface, call.family, call.slot);
  if (absl::Status st = syncFlows(flows_, sides, call.media, next, removed); !st.ok()) {
    if (st.code() == absl::StatusCode::kResourceExhausted)
      return absl::ResourceExhaustedError(
          cat("flow table full (", flows_.size(), " of ", flows_.capacity(),
              " flows; raise sessions.flow_capacity): ", st.message()));
    return st;
  }

  call.media = std::move(next);
  call.tag[y] = std::string(to_tag);
  call.pending_offerer = -1;
  if (call.answered_ns == 0) {
    call.answered_ns = now;
    // Spread the calls' once-a-second checks over the second, so that one tick never reads
    // every call's counters at once (100,000 calls: ~100 ms under the mutex).
    call.next_check_ns = now + std::hash<std::string>{}(call.id) % kMediaCheckIntervalNs;
  }
  call.state = CallState::kAnswered;
  call.delete_leg = -1;
  schedule(call);
  emit(SessionEvent::Type::kAnswered, SessionEvent::Reason::kNone, call, from_tag, to_tag, now);
  if (!removed.empty())
    if (absl::Status st = flows_.remove(removed); !st.ok())
      spdlog::error("sessions: BUG: removing {} flows: {}", removed.size(),
                    std::string(st.message()));
  for (const Port& p : to_release)
    if (absl::Status st = ports_[p.iface][p.slot].release(p.port); !st.ok())
      spdlog::error("sessions: BUG: {}", std::string(st.message()));
  requestResolve(call);
  return sd.serialize();
}

void SessionManager::destroyCall(Call& call) {
  unschedule(call);
  std::vector<FlowId> ids;
  for (const Media& m : call.media)
    for (int leg = 0; leg < 2; ++leg)
      for (FlowId id : {m.side[leg].rtp_flow, m.side[leg].rtcp_flow})
        if (id != kNoFlow) ids.push_back(id);
  if (!ids.empty())
    if (absl::Status st = flows_.remove(ids); !st.ok())
      spdlog::error("sessions: BUG: removing the {} flows of call {}: {}", ids.size(), call.id,
                    std::string(st.message()));
  for (const Media& m : call.media) {
    if (!m.active()) continue;
    for (int leg = 0; leg < 2; ++leg)
      if (absl::Status st = ports_[call.iface[leg]][call.slot[leg]].release(m.side[leg].port);
          !st.ok())
        spdlog::error("sessions: BUG: {}", std::string(st.message()));
  }
  call.media.clear();
}

// The answering leg leaves (a forked branch ended): its endpoints are forgotten and the call
// waits for an answer to the offer again. The ports shown to it stay: they are in the offer
// that other branches received.
void SessionManager::detachAnswerer(Call& call, uint64_t now) {
  std::vector<Media> next = call.media;
  for (Media& m : next) {
    if (!m.active()) continue;
    LegSide& s = m.side[1];
    const LegSide kept = s;
    s = LegSide{};
    s.port = kept.port;
    s.rtp_flow = kept.rtp_flow;
    s.rtcp_flow = kept.rtcp_flow;
  }
  std::vector<FlowId> removed;
  const Sides sides = sidesOf(interfaces_, call.iface, call.family, call.slot);
  if (absl::Status st = syncFlows(flows_, sides, call.media, next, removed); !st.ok()) {
    // Only adds can fail, and forgetting a leg never adds an RTCP flow: a bug.
    spdlog::error("sessions: BUG: detaching a leg of call {}: {}", call.id,
                  std::string(st.message()));
    return;
  }
  call.media = std::move(next);
  if (!removed.empty())
    if (absl::Status st = flows_.remove(removed); !st.ok())
      spdlog::error("sessions: BUG: removing {} flows: {}", removed.size(),
                    std::string(st.message()));
  call.tag[1].clear();
  call.state = CallState::kOffered;
  call.pending_offerer = 0;
  call.offered_ns = now;
  call.answered_ns = 0;
  call.delete_leg = -1;
  call.media_started = false;
  call.one_sided_reported = false;
  call.packets_from[0] = call.packets_from[1] = 0;
  call.active_ns[0] = call.active_ns[1] = 0;
  schedule(call);
}

absl::Status SessionManager::deleteCall(std::string_view call_id,
                                        std::optional<std::string_view> tag,
                                        std::optional<std::chrono::milliseconds> delay) {
  if (absl::Status st = checkId("call_id", call_id); !st.ok()) return st;
  if (tag)
    if (absl::Status st = checkId("from_tag", *tag); !st.ok()) return st;
  if (delay && delay->count() < 0)
    return absl::InvalidArgumentError("delete delay is negative (0 deletes at once)");
  std::lock_guard lk(mu_);
  const uint64_t now = clock_();
  auto it = calls_.find(call_id);
  if (it == calls_.end()) return absl::NotFoundError(cat("no call '", call_id, "'"));
  Call& call = *it->second;
  int leg = -1;
  if (tag) {
    leg = call.legOf(*tag);
    if (leg < 0)
      return absl::NotFoundError(cat("call '", call_id, "' has no leg with tag '", *tag,
                                     "' (legs: ", call.legList(), ")"));
  }
  const uint64_t delay_ns = delay ? static_cast<uint64_t>(delay->count()) * 1'000'000ull
                                  : static_cast<uint64_t>(cfg_.delete_delay_s) * kNsPerSecond;
  if (delay_ns > 0) {
    call.state = CallState::kDeleting;
    call.delete_at_ns = now + delay_ns;
    call.delete_leg = static_cast<int8_t>(leg);
    schedule(call);
    return absl::OkStatus();
  }
  const std::string from = leg >= 0 ? call.tag[leg] : call.tag[0];
  const std::string to = leg >= 0 ? std::string() : call.tag[1];
  if (leg == 1) {
    detachAnswerer(call, now);
    emit(SessionEvent::Type::kDeleted, SessionEvent::Reason::kRequested, call, from, to, now);
    return absl::OkStatus();
  }
  destroyCall(call);
  emit(SessionEvent::Type::kDeleted, SessionEvent::Reason::kRequested, call, from, to, now);
  calls_.erase(it);
  return absl::OkStatus();
}

absl::StatusOr<CallInfo> SessionManager::query(std::string_view call_id) const {
  if (absl::Status st = checkId("call_id", call_id); !st.ok()) return st;
  std::lock_guard lk(mu_);
  auto it = calls_.find(call_id);
  if (it == calls_.end()) return absl::NotFoundError(cat("no call '", call_id, "'"));
  const Call& call = *it->second;
  CallInfo info;
  info.call_id = call.id;
  info.state = call.state;
  for (int leg = 0; leg < 2; ++leg) {
    info.tags[leg] = call.tag[leg];
    if (call.family[leg] != IpAddr::Family::kNone)
      info.interfaces[leg] = interfaces_[call.iface[leg]].name;
  }
  info.created_ns = call.created_ns;
  info.answered_ns = call.answered_ns;
  info.now_ns = clock_();
  const Sides sides = sidesOf(interfaces_, call.iface, call.family, call.slot);
  for (std::size_t i = 0; i < call.media.size(); ++i) {
    const Media& m = call.media[i];
    if (!m.active()) continue;
    MediaInfo mi;
    mi.index = static_cast<uint32_t>(i);
    mi.type = m.type;
    mi.rtcp_mux = m.mux();
    for (bool rtcp : {false, true}) {
      for (int x = 0; x < 2; ++x) {
        const FlowId id = rtcp ? m.side[x].rtcp_flow : m.side[x].rtp_flow;
        if (id == kNoFlow) continue;
        const FlowSpec spec = flowSpec(sides, m, x, rtcp);
        DirectionInfo d;
        d.from_tag = call.tag[x];
        d.to_tag = call.tag[1 - x];
        d.rtcp = rtcp;
        d.local = spec.local;
        d.egress_local = spec.egress_local;
        d.destination = spec.destination;
        d.forward = spec.forward;
        if (absl::StatusOr<FlowStats> s = flows_.stats(id); s.ok()) d.stats = *s;
        mi.directions.push_back(std::move(d));
      }
    }
    info.media.push_back(std::move(mi));
  }
  return info;
}

std::vector<CallSummary> SessionManager::list() const {
  std::lock_guard lk(mu_);
  std::vector<CallSummary> out;
  out.reserve(calls_.size());
  for (const auto& [id, call] : calls_) {
    CallSummary s;
    s.call_id = call->id;
    s.state = call->state;
    s.tags[0] = call->tag[0];
    s.tags[1] = call->tag[1];
    s.created_ns = call->created_ns;
    for (const Media& m : call->media) s.active_media += m.active() ? 1 : 0;
    out.push_back(std::move(s));
  }
  std::sort(out.begin(), out.end(), [](const CallSummary& a, const CallSummary& b) {
    return a.created_ns != b.created_ns ? a.created_ns < b.created_ns : a.call_id < b.call_id;
  });
  return out;
}

// Reads the call's counters: media start, inactivity, one-sided media.
void SessionManager::checkMedia(Call& call, uint64_t now, std::vector<std::string>& to_delete) {
  const bool timeouts = cfg_.no_media_s != 0 || cfg_.one_sided_s != 0;
  call.next_check_ns = now + (timeouts ? kMediaCheckIntervalNs
                                       : std::clamp((now - std::min(now, call.answered_ns)) / 4,
                                                    kMediaCheckIntervalNs, kMaxMediaStartCheckNs));
  uint64_t from[2] = {0, 0};
  for (const Media& m : call.media)
    for (int leg = 0; leg < 2; ++leg)
      for (FlowId id : {m.side[leg].rtp_flow, m.side[leg].rtcp_flow})
        if (id != kNoFlow) from[leg] += flows_.packets(id);
  for (int leg = 0; leg < 2; ++leg) {
    if (from[leg] != call.packets_from[leg]) call.active_ns[leg] = now;
    call.packets_from[leg] = from[leg];
  }
  if (!call.media_started && from[0] + from[1] > 0) {
    call.media_started = true;
    emit(SessionEvent::Type::kMediaStarted, SessionEvent::Reason::kNone, call,
         from[0] > 0 ? call.tag[0] : call.tag[1], from[0] > 0 ? call.tag[1] : call.tag[0], now);
  }
  const uint64_t since[2] = {std::max(call.answered_ns, call.active_ns[0]),
                             std::max(call.answered_ns, call.active_ns[1])};
  const uint64_t last = std::max(since[0], since[1]);
  if (cfg_.no_media_s != 0 && now >= last + cfg_.no_media_s * kNsPerSecond) {
    emit(SessionEvent::Type::kTimeout, SessionEvent::Reason::kNoMedia, call, call.tag[0],
         call.tag[1], now);
    to_delete.push_back(call.id);
    return;
  }
  if (cfg_.one_sided_s == 0) return;
  const uint64_t window = cfg_.one_sided_s * kNsPerSecond;
  bool one_sided = false;
  for (int leg = 0; leg < 2; ++leg) {
    const bool talking = call.active_ns[leg] != 0 && now < call.active_ns[leg] + window;
    const bool silent = now >= since[1 - leg] + window;
    if (talking && silent) {
      one_sided = true;
      if (!call.one_sided_reported)
        emit(SessionEvent::Type::kTimeout, SessionEvent::Reason::kOneSidedMedia, call,
             call.tag[leg], call.tag[1 - leg], now);
    }
  }
  call.one_sided_reported = one_sided;
}

std::optional<uint64_t> SessionManager::deadline(const Call& call) const {
  switch (call.state) {
    case CallState::kDeleting:
      return call.delete_at_ns;
    case CallState::kOffered:
      if (cfg_.offer_unanswered_s == 0) return std::nullopt;
      return call.offered_ns + cfg_.offer_unanswered_s * kNsPerSecond;
    case CallState::kAnswered:
      // Media counters matter for the timeouts, and until media starts for its event.
      if (cfg_.no_media_s == 0 && cfg_.one_sided_s == 0 && call.media_started) return std::nullopt;
      return call.next_check_ns;
  }
  return std::nullopt;
}

void SessionManager::schedule(Call& call) {
  const std::optional<uint64_t> at = deadline(call);
  if (call.timer && at == call.timer) return;
  unschedule(call);
  if (!at) return;
  call.timer = *at;
  timers_.emplace(*at, &call);
}

void SessionManager::unschedule(Call& call) {
  if (!call.timer) return;
  timers_.erase({*call.timer, &call});
  call.timer.reset();
}

void SessionManager::tick(uint64_t now_ns) {
  std::lock_guard lk(mu_);
  flows_.reclaim();
  struct Due {
    std::string id;
    SessionEvent::Reason reason;
  };
  std::vector<std::string> timed_out;
  std::vector<Due> due;
  std::vector<Call*> ready;
  while (!timers_.empty() && timers_.begin()->first <= now_ns) {
    Call* call = timers_.begin()->second;
    timers_.erase(timers_.begin());
    call->timer.reset();
    ready.push_back(call);
  }
  for (Call* c : ready) {
    Call& call = *c;
    switch (call.state) {
      case CallState::kDeleting:
        if (now_ns >= call.delete_at_ns)
          due.push_back({call.id, SessionEvent::Reason::kDeleteDelay});
        break;
      case CallState::kOffered:
        if (cfg_.offer_unanswered_s != 0 &&
            now_ns >= call.offered_ns + cfg_.offer_unanswered_s * kNsPerSecond) {
          emit(SessionEvent::Type::kTimeout, SessionEvent::Reason::kOfferUnanswered, call,
               call.tag[0], call.tag[1], now_ns);
          due.push_back({call.id, SessionEvent::Reason::kOfferUnanswered});
        }
        break;
      case CallState::kAnswered:
        if (now_ns >= call.next_check_ns) checkMedia(call, now_ns, timed_out);
        break;
    }
    schedule(call);  // due ones are deleted below; the rest wait for their next deadline
  }
  for (std::string& id : timed_out) due.push_back({std::move(id), SessionEvent::Reason::kNoMedia});
  for (const Due& d : due) {
    auto it = calls_.find(d.id);
    if (it == calls_.end()) continue;
    Call& call = *it->second;
    const int leg = d.reason == SessionEvent::Reason::kDeleteDelay ? call.delete_leg : -1;
    if (leg == 1) {
      const std::string tag = call.tag[1];
      detachAnswerer(call, now_ns);
      emit(SessionEvent::Type::kDeleted, d.reason, call, tag, "", now_ns);
      continue;
    }
    const std::string from = call.tag[0];
    const std::string to = leg == 0 ? std::string() : call.tag[1];
    destroyCall(call);
    emit(SessionEvent::Type::kDeleted, d.reason, call, from, to, now_ns);
    calls_.erase(it);
  }
}

}  // namespace rtpx

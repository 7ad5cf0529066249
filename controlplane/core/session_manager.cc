#include "controlplane/core/session_manager.h"
#include "controlplane/core/str_cat.h"

#include <spdlog/spdlog.h>
#include <time.h>

#include <algorithm>
#include <charconv>
#include <functional>
#include <type_traits>
#include <utility>

#include "absl/strings/string_view.h"
#include "controlplane/core/sdp.h"

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

// One codec of an m= line, as its SDP described it (parsed once, for transcoding later).
struct Codec {
  uint8_t payload_type = 0;
  uint8_t channels = 1;
  uint32_t clock_rate = 0;
  std::string name;  // from a=rtpmap; empty for a static type without one
  std::string fmtp;  // a=fmtp parameters, if any

  bool operator==(const Codec& o) const = default;
};

// Crypto, DTLS and ICE attributes of one m= line, for the SRTP/WebRTC work that builds on
// them. Immutable once read, so drafts of a call share them; absent when the SDP has none.
struct SecurityAttrs {
  std::vector<std::string> crypto;  // raw a=crypto values (RFC 4568)
  std::string fingerprint;          // a=fingerprint (RFC 8122), media or session level
  std::string setup;                // a=setup (RFC 4145)
  std::string ice_ufrag, ice_pwd;
  std::vector<std::string> ice_candidates;
};

// What one leg's SDP says about one m= line.
struct LegMedia {
  bool seen = false;  // the leg's SDP for this m= line arrived
  bool mux = false;   // a=rtcp-mux
  sdp::Direction direction = sdp::Direction::kSendRecv;
  uint32_t clock_rate = 8000;  // of the first (preferred) format
  float ptime_ms = 0;          // a=ptime; 0 = none
  Endpoint rtp;                // where the leg receives RTP; unknown for hold (0.0.0.0) or port 0
  Endpoint rtcp;               // where it receives RTCP (= rtp under rtcp-mux)
  std::string proto;           // RTP/AVP, RTP/SAVPF, UDP/TLS/RTP/SAVPF, udptl, ...
  std::vector<Codec> codecs;   // RTP payload types, in m= line order
  std::shared_ptr<const SecurityAttrs> security;
};

// The compiled view of one m= line that flows are made from: per side, the ports rtpx shows
// it, its flows, and what the leg on that side said in its SDP.
struct SideView {
  Endpoint rtp;
  Endpoint rtcp;
  FlowId rtp_flow = kNoFlow;   // packets from this side, keyed at `port`
  FlowId rtcp_flow = kNoFlow;  // keyed at `port + 1`
  uint32_t clock_rate = 8000;  // of what this side sends
  uint16_t port = 0;           // rtpx RTP port shown to this side (RTCP: + 1); 0 = none
  sdp::Direction direction = sdp::Direction::kSendRecv;
  bool seen = false;
  bool mux = false;
  bool rtp_profile = true;  // RTP/AVP, RTP/SAVPF, ...: RFC 7983 demux; not plain UDP (udptl)

  bool muxOrUnknown() const { return seen ? mux : true; }
  bool sendsMedia() const { return seen ? sends(direction) : true; }
  bool receivesMedia() const { return seen ? receives(direction) : true; }
};

struct MediaView {
  std::string type;
  SideView side[2];

  bool active() const { return side[0].port != 0; }
  // RFC 5761 section 5.1.1: muxed only if both offered/accepted it (an unknown answer is
  // assumed to accept until it arrives).
  bool mux() const { return side[0].muxOrUnknown() && side[1].muxOrUnknown(); }
};

// The rtpx ports one side of an m= line is shown, and the flows keyed at them.
struct SidePorts {
  uint16_t port = 0;  // 0 = none (m= line inactive)
  FlowId rtp_flow = kNoFlow;
  FlowId rtcp_flow = kNoFlow;
};

struct Media {
  std::string type;  // m= media
  SidePorts side[2];

  bool active() const { return side[0].port != 0; }
};

struct Leg {
  std::string tag;
  std::string label;
  std::string via_branch;
  std::vector<LegMedia> media;  // by m= line; shorter than the call's until its SDP arrives
};

}  // namespace

struct SessionManager::Call {
  std::string id;
  std::vector<Leg> legs;       // the first offerer first; answering branches after it
  int side_leg[2] = {-1, -1};  // index in legs of each side's leg
  uint8_t iface[2] = {0, 0};
  uint8_t slot[2] = {0, 0};  // address slot of each side on its interface
  IpAddr::Family family[2] = {IpAddr::Family::kNone, IpAddr::Family::kNone};
  CallState state = CallState::kOffered;
  int8_t pending_offerer = -1;  // side whose offer waits for an answer
  int8_t last_offerer = -1;     // side that made the latest offer
  // A postponed delete: empty, the whole call; else the tags of the branches it ends.
  std::vector<std::string> delete_tags;
  bool media_started = false;
  bool one_sided_reported = false;
  std::vector<Media> media;
  uint64_t created_ns = 0;
  uint64_t offered_ns = 0;  // the unanswered offer's time
  uint64_t answered_ns = 0;
  uint64_t delete_at_ns = 0;
  uint64_t next_check_ns = 0;
  std::optional<uint64_t> timer;   // its key in timers_, if it is there
  uint64_t active_ns[2] = {0, 0};  // each side's latest accepted packet, at the last check

  int findLeg(std::string_view tag_value) const {
    for (std::size_t i = 0; i < legs.size(); ++i)
      if (legs[i].tag == tag_value) return static_cast<int>(i);
    return -1;
  }
  int sideOf(int leg) const {
    if (leg < 0) return -1;
    return side_leg[0] == leg ? 0 : side_leg[1] == leg ? 1 : -1;
  }
  const std::string& sideTag(int side) const {
    static const std::string kNone;
    return side_leg[side] >= 0 ? legs[side_leg[side]].tag : kNone;
  }
  std::string legList() const {
    std::string s;
    for (const Leg& l : legs) s += cat(s.empty() ? "'" : ", '", l.tag, "'");
    return s;
  }
  // The flows' view: ports and flows of each side, with what the leg on that side said.
  std::vector<MediaView> views() const {
    std::vector<MediaView> out(media.size());
    for (std::size_t i = 0; i < media.size(); ++i) {
      out[i].type = media[i].type;
      for (int x = 0; x < 2; ++x) {
        SideView& v = out[i].side[x];
        v.port = media[i].side[x].port;
        v.rtp_flow = media[i].side[x].rtp_flow;
        v.rtcp_flow = media[i].side[x].rtcp_flow;
        if (side_leg[x] < 0 || i >= legs[side_leg[x]].media.size()) continue;
        const LegMedia& lm = legs[side_leg[x]].media[i];
        if (!lm.seen) continue;
        v.seen = true;
        v.rtp = lm.rtp;
        v.rtcp = lm.rtcp;
        v.clock_rate = lm.clock_rate;
        v.direction = lm.direction;
        v.mux = lm.mux;
        v.rtp_profile = lm.proto.find("RTP") != std::string::npos;
      }
    }
    return out;
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

// What one m= line of a leg's SDP says. Without trust_address, the address the signaling saw
// the request come from replaces the SDP's (same family only), keeping the SDP's ports.
LegMedia readLegMedia(const sdp::SessionDescription& sd, std::size_t i,
                      const RewriteOptions& options) {
  const sdp::MediaSection& m = sd.media(i);
  LegMedia lm;
  lm.seen = true;
  const std::optional<sdp::Connection> c = sd.effectiveConnection(i);
  std::string address = c ? c->address : std::string();
  if (!options.trust_address && options.received_from && c &&
      options.received_from->family == familyOf(c->address_type))
    address = options.received_from->toString();
  lm.mux = m.rtcpMux();
  lm.direction = sd.effectiveDirection(i);
  lm.clock_rate = clockRateOf(m);
  lm.proto = std::string(m.proto());
  lm.rtp = sdpEndpoint(address, m.port());
  // Where RTCP goes when it is not muxed; also kept for rtcp-mux offers, since the answer may
  // decline mux (RFC 5761 section 5.1.1).
  if (std::optional<sdp::Rtcp> r = m.rtcp()) {
    lm.rtcp = sdpEndpoint(r->connection && options.trust_address ? r->connection->address : address,
                          r->port);
  } else {
    lm.rtcp = m.port() < 65535 ? sdpEndpoint(address, m.port() + 1) : Endpoint{};
  }
  for (const std::string& pt : m.formats()) {
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(pt.data(), pt.data() + pt.size(), value);
    if (ec != std::errc() || end != pt.data() + pt.size() || value > 127) continue;  // not RTP
    Codec codec;
    codec.payload_type = static_cast<uint8_t>(value);
    if (std::optional<sdp::Rtpmap> map = m.rtpmap(pt)) {
      codec.name = map->encoding_name;
      codec.clock_rate = map->clock_rate;
      codec.channels = static_cast<uint8_t>(std::min<uint32_t>(map->channels.value_or(1), 255));
    } else {
      codec.clock_rate = staticClockRate(pt);
    }
    if (std::vector<std::string> f = m.fmtp(pt); !f.empty()) codec.fmtp = f.front();
    lm.codecs.push_back(std::move(codec));
  }
  lm.ptime_ms = static_cast<float>(m.ptime().value_or(0));
  SecurityAttrs sec;
  sec.crypto = m.cryptos();
  if (std::vector<std::string> f = m.attributes("fingerprint"); !f.empty()) {
    sec.fingerprint = f.front();
  } else {
    for (const sdp::Line& l : sd.sessionLines())  // RFC 8122: session level applies to all
      if (l.type == 'a' && l.value.rfind("fingerprint:", 0) == 0)
        sec.fingerprint = l.value.substr(12);
  }
  if (std::vector<std::string> f = m.attributes("setup"); !f.empty()) sec.setup = f.front();
  const sdp::IceAttributes ice = m.ice();
  const sdp::IceAttributes session_ice = sd.ice();
  sec.ice_ufrag = ice.ufrag.value_or(session_ice.ufrag.value_or(""));
  sec.ice_pwd = ice.pwd.value_or(session_ice.pwd.value_or(""));
  sec.ice_candidates = ice.candidates;
  if (!sec.crypto.empty() || !sec.fingerprint.empty() || !sec.setup.empty() ||
      !sec.ice_ufrag.empty() || !sec.ice_candidates.empty())
    lm.security = std::make_shared<const SecurityAttrs>(std::move(sec));
  return lm;
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
         a.strict_source == b.strict_source && a.rtcp == b.rtcp && a.clock_rate == b.clock_rate &&
         a.demux == b.demux;
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

uint64_t SessionManager::mediaChecks() const {
  std::lock_guard lk(mu_);
  return media_checks_;
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
FlowSpec flowSpec(const Sides& s, const MediaView& m, int x, bool rtcp) {
  const int y = 1 - x;
  const SideView& from = m.side[x];
  const SideView& to = m.side[y];
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
  // Plain UDP (UDPTL for T.38) on either side: relayed as it comes, no first-byte demux.
  f.demux = from.rtp_profile && to.rtp_profile;
  return f;
}

// Makes the flow table match `next` (a call's new media), given `prev` (its current media).
// Fallible steps (adds, pairs) come first and are undone on failure, so an error leaves the
// table as it was; updates of existing flows cannot fail short of a bug. On success `next`
// holds the flow ids and `removed` the ids the caller removes once it commits.
absl::Status syncFlows(FlowTable& table, const Sides& sides, const std::vector<MediaView>& prev,
                       std::vector<MediaView>& next, std::vector<FlowId>& removed) {
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
    MediaView& m = next[i];
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
    MediaView& m = next[i];
    const MediaView* old = i < prev.size() && prev[i].active() ? &prev[i] : nullptr;
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

namespace {

// A port of one side: interface, address slot, port.
struct PortRef {
  uint8_t iface;
  uint8_t slot;
  uint16_t port;
};

// What negotiate() reads from an SDP, outside the session lock.
struct Negotiated {
  sdp::SessionDescription sd;
  SdpFacts facts;
  std::vector<LegMedia> media;  // by m= line
};

absl::StatusOr<Negotiated> negotiate(std::string_view text, std::string_view what,
                                     const RewriteOptions& options) {
  absl::StatusOr<sdp::SessionDescription> parsed = sdp::parse(text);
  if (!parsed.ok()) return parsed.status();
  absl::StatusOr<SdpFacts> facts = examine(*parsed, what);
  if (!facts.ok()) return facts.status();
  if (options.media_address && facts->family != IpAddr::Family::kNone &&
      options.media_address->family == IpAddr::Family::kNone)
    return absl::InvalidArgumentError("media address is not an IPv4 or IPv6 address");
  Negotiated n{*std::move(parsed), *facts, {}};
  n.media.reserve(n.sd.mediaCount());
  for (std::size_t i = 0; i < n.sd.mediaCount(); ++i)
    n.media.push_back(readLegMedia(n.sd, i, options));
  return n;
}

// What render() writes: rtpx's address and, per m= line, the port (0: rejected / disabled).
struct RenderPlan {
  std::string address;
  std::vector<uint16_t> ports;
};

absl::StatusOr<std::string> render(sdp::SessionDescription& sd, const RenderPlan& plan,
                                   const RewriteOptions& options, std::string_view what) {
  const std::string address =
      options.media_address ? options.media_address->toString() : plan.address;
  absl::Status st = sd.setAllConnectionAddresses(address);
  for (std::size_t i = 0; i < plan.ports.size() && st.ok(); ++i) {
    if (plan.ports[i] != 0)
      st = rewriteMediaPorts(sd.media(i), plan.ports[i]);
    else
      sd.media(i).setPort(0);
  }
  if (st.ok() && options.replace_origin) st = sd.setOriginAddress(address, false);
  if (!st.ok()) return absl::InternalError(cat("rewriting the ", what, ": ", st.message()));
  if (!options.keep_ice) sd.removeIceAttributes();
  return sd.serialize();
}

}  // namespace

// A draft of a call's next state, and what goes with committing it.
struct SessionManager::Commit {
  std::unique_ptr<Call> draft;
  std::vector<PortRef> allocated;  // taken for the draft: given back if the commit fails
  std::vector<PortRef> released;   // the draft no longer uses: given back once it commits
  struct Event {
    SessionEvent::Type type;
    SessionEvent::Reason reason;
    std::string from, to;
  };
  std::vector<Event> events;
};

void SessionManager::requestResolve(const Call& call) {
  if (!resolver_) return;
  std::vector<std::pair<uint16_t, IpAddr>> asked;
  for (const MediaView& m : call.views()) {
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

absl::Status SessionManager::loadLimit() const {
  if (cfg_.max_sessions != 0 && calls_.size() >= cfg_.max_sessions)
    return absl::UnavailableError(cat("load limit: ", calls_.size(),
                                      " calls (sessions.max_sessions = ", cfg_.max_sessions,
                                      "); try another node"));
  if (cfg_.max_load != 0) {
    double avg[1];
    if (getloadavg(avg, 1) == 1 && avg[0] * 100 >= cfg_.max_load)
      return absl::UnavailableError(cat("load limit: load average ", static_cast<int>(avg[0] * 100),
                                        "/100 (sessions.max_load = ", cfg_.max_load,
                                        "); try another node"));
  }
  return absl::OkStatus();
}

// The one funnel through which every change of a call goes: flows follow the draft, then the
// draft replaces the call, its events go out, freed ports return and next hops are resolved.
// HA replication hooks in here. On error nothing changed (the draft's new ports are returned).
absl::StatusOr<SessionManager::Call*> SessionManager::commit(Call* existing, Commit c,
                                                             uint64_t now) {
  Call& draft = *c.draft;
  const std::vector<MediaView> prev = existing ? existing->views() : std::vector<MediaView>{};
  std::vector<MediaView> next = draft.views();
  std::vector<FlowId> removed;
  const Sides sides = sidesOf(interfaces_, draft.iface, draft.family, draft.slot);
  if (absl::Status st = syncFlows(flows_, sides, prev, next, removed); !st.ok()) {
    for (const PortRef& p : c.allocated)
      if (absl::Status r = ports_[p.iface][p.slot].release(p.port); !r.ok())
        spdlog::error("sessions: BUG: {}", std::string(r.message()));
    if (st.code() == absl::StatusCode::kResourceExhausted)
      return absl::ResourceExhaustedError(
          cat("flow table full (", flows_.size(), " of ", flows_.capacity(),
              " flows; raise sessions.flow_capacity): ", st.message()));
    return st;
  }
  for (std::size_t i = 0; i < draft.media.size(); ++i)
    for (int x = 0; x < 2; ++x) {
      draft.media[i].side[x].rtp_flow = next[i].side[x].rtp_flow;
      draft.media[i].side[x].rtcp_flow = next[i].side[x].rtcp_flow;
    }
  draft.timer.reset();
  Call* call = c.draft.get();
  if (existing != nullptr) {
    unschedule(*existing);
    auto node = calls_.extract(std::string_view(existing->id));
    node.key() = std::string_view(call->id);
    node.mapped() = std::move(c.draft);  // frees the old state
    calls_.insert(std::move(node));
  } else {
    calls_.emplace(std::string_view(call->id), std::move(c.draft));
  }
  schedule(*call);
  for (const Commit::Event& e : c.events) emit(e.type, e.reason, *call, e.from, e.to, now);
  if (!removed.empty())
    if (absl::Status st = flows_.remove(removed); !st.ok())
      spdlog::error("sessions: BUG: removing {} flows: {}", removed.size(),
                    std::string(st.message()));
  for (const PortRef& p : c.released)
    if (absl::Status st = ports_[p.iface][p.slot].release(p.port); !st.ok())
      spdlog::error("sessions: BUG: {}", std::string(st.message()));
  requestResolve(*call);
  return call;
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
  absl::StatusOr<Negotiated> neg = negotiate(sdp, "offer", options);
  if (!neg.ok()) return neg.status();
  sdp::SessionDescription& sd = neg->sd;
  const SdpFacts& facts = neg->facts;

  RenderPlan plan;
  {
    std::lock_guard lk(mu_);
    const uint64_t now = clock_();
    auto it = calls_.find(call_id);
    Call* existing = it == calls_.end() ? nullptr : it->second.get();
    Commit c;
    int x = 0;  // the offerer's side
    if (existing == nullptr) {
      if (absl::Status st = loadLimit(); !st.ok()) return st;
      c.draft = std::make_unique<Call>();
      c.draft->id = std::string(call_id);
      c.draft->legs.push_back(Leg{std::string(from_tag), {}, {}, {}});
      c.draft->side_leg[0] = 0;
      c.draft->created_ns = now;
      c.draft->offered_ns = now;
      c.events.push_back(
          {SessionEvent::Type::kCreated, SessionEvent::Reason::kNone, std::string(from_tag), ""});
    } else {
      c.draft = std::make_unique<Call>(*existing);
      Call& d = *c.draft;
      const int leg = d.findLeg(from_tag);
      if (leg < 0)
        return absl::NotFoundError(cat("call '", call_id, "' has no leg with tag '", from_tag,
                                       "' (legs: ", d.legList(), ")"));
      x = d.sideOf(leg);
      if (x < 0) {  // a branch media did not flow to re-offers: the call continues with it
        x = 1;
        d.side_leg[1] = leg;
      }
      if (x == 0 && !options.to_tag.empty()) {  // names the branch the call continues with
        const int other = d.findLeg(options.to_tag);
        if (other >= 0 && other != d.side_leg[0]) d.side_leg[1] = other;
      }
    }
    Call& d = *c.draft;
    const int y = 1 - x;
    const std::size_t n = sd.mediaCount();
    if (n < d.media.size())
      return absl::InvalidArgumentError(
          cat("offer has ", n, " m= lines but the session has ", d.media.size(),
              " (RFC 3264 section 8: m= lines are never removed; set a port of 0 to disable one)"));

    // Interfaces and address families of both sides.
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
    const bool new_side[2] = {d.family[0] == IpAddr::Family::kNone,
                              d.family[1] == IpAddr::Family::kNone};
    const IpAddr::Family offer_family =
        facts.family != IpAddr::Family::kNone
            ? facts.family
            : (d.family[x] != IpAddr::Family::kNone ? d.family[x] : IpAddr::Family::kV4);
    if (new_side[x]) {
      if (absl::Status st = pick(options.offerer_interface, offer_family, "offerer", d.iface[x]);
          !st.ok())
        return st;
      d.family[x] = offer_family;
    } else {
      if (offer_family != d.family[x])
        return absl::InvalidArgumentError(
            cat("offer from '", from_tag, "' uses ", familyName(offer_family),
                " but this leg was set up with ", familyName(d.family[x]),
                "; a leg's address family cannot change"));
      if (!options.offerer_interface.empty() &&
          options.offerer_interface != interfaces_[d.iface[x]].name)
        return absl::InvalidArgumentError(cat("leg '", from_tag, "' uses interface ",
                                              interfaces_[d.iface[x]].name, "; it cannot change"));
    }
    if (new_side[y]) {
      const IpAddr::Family fam = options.answerer.family.value_or(d.family[x]);
      if (absl::Status st = pick(options.answerer.interface, fam, "answerer", d.iface[y]); !st.ok())
        return st;
      d.family[y] = fam;
    } else {
      if (options.answerer.family && *options.answerer.family != d.family[y])
        return absl::InvalidArgumentError(cat("the other leg of call '", call_id, "' uses ",
                                              familyName(d.family[y]),
                                              "; its address family cannot change in a re-offer"));
      if (!options.answerer.interface.empty() &&
          options.answerer.interface != interfaces_[d.iface[y]].name)
        return absl::InvalidArgumentError(cat("the other leg of call '", call_id,
                                              "' uses interface ", interfaces_[d.iface[y]].name,
                                              "; it cannot change in a re-offer"));
    }

    // The address slot of each new side: the first of its family on its interface with a free
    // pair for every m= line that needs one (both sides on one slot need twice as many).
    std::size_t needed = 0;
    for (std::size_t i = 0; i < n; ++i)
      if (sd.media(i).port() != 0 && !(i < d.media.size() && d.media[i].active())) ++needed;
    for (int side : {x, y}) {
      if (!new_side[side] || needed == 0) continue;
      const std::size_t count = addressCount(interfaces_[d.iface[side]], d.family[side]);
      std::size_t s = 0;
      for (; s < count; ++s) {
        const int other = 1 - side;
        const bool shared =
            side == y && new_side[other] && d.iface[other] == d.iface[side] && d.slot[other] == s;
        if (ports_[d.iface[side]][s].available() >= needed * (shared ? 2 : 1)) break;
      }
      if (s == count)
        return absl::ResourceExhaustedError(cat(
            "interface ", interfaces_[d.iface[side]].name, ": none of its ", count, " ",
            familyName(d.family[side]), " addresses has ", needed,
            " free media port pair(s) for the ", side == x ? "offerer" : "answerer", " (ports ",
            cfg_.port_min, "-", cfg_.port_max, " per address; add addresses or widen the range)"));
      d.slot[side] = static_cast<uint8_t>(s);
    }

    // Existing m= lines keep their ports; new or re-enabled ones get ports on both sides;
    // disabled ones (port 0) lose theirs.
    d.media.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      Media& m = d.media[i];
      m.type = std::string(sd.media(i).media());
      if (sd.media(i).port() == 0) {
        if (m.active())
          for (int side = 0; side < 2; ++side)
            c.released.push_back({d.iface[side], d.slot[side], m.side[side].port});
        // Keep the flow ids so the commit removes them.
        for (SidePorts& p : m.side) p.port = 0;
        continue;
      }
      if (m.active()) continue;
      for (int side = 0; side < 2; ++side) {
        absl::StatusOr<uint16_t> p = ports_[d.iface[side]][d.slot[side]].allocate();
        if (!p.ok()) {
          for (const PortRef& a : c.allocated)
            if (absl::Status r = ports_[a.iface][a.slot].release(a.port); !r.ok())
              spdlog::error("sessions: BUG: {}", std::string(r.message()));
          return p.status();
        }
        c.allocated.push_back({d.iface[side], d.slot[side], *p});
        m.side[side].port = *p;
      }
    }
    Leg& offerer = d.legs[d.side_leg[x]];
    offerer.media = std::move(neg->media);
    if (!options.label.empty()) offerer.label = options.label;
    d.pending_offerer = static_cast<int8_t>(x);
    d.last_offerer = static_cast<int8_t>(x);
    if (d.state == CallState::kDeleting) {
      d.state = d.answered_ns != 0 ? CallState::kAnswered : CallState::kOffered;
      d.delete_tags.clear();
    }

    plan.address = advertisedAddr(interfaces_[d.iface[y]], d.family[y], d.slot[y]).toString();
    for (const Media& m : d.media) plan.ports.push_back(m.active() ? m.side[y].port : 0);
    if (absl::StatusOr<Call*> done = commit(existing, std::move(c), now); !done.ok())
      return done.status();
  }
  return render(sd, plan, options, "offer");
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
  absl::StatusOr<Negotiated> neg = negotiate(sdp, "answer", options);
  if (!neg.ok()) return neg.status();
  sdp::SessionDescription& sd = neg->sd;

  RenderPlan plan;
  {
    std::lock_guard lk(mu_);
    const uint64_t now = clock_();
    auto it = calls_.find(call_id);
    if (it == calls_.end()) return absl::NotFoundError(cat("no call '", call_id, "'"));
    Call* existing = it->second.get();
    const int f = existing->findLeg(from_tag);
    if (f < 0)
      return absl::NotFoundError(cat("call '", call_id, "' has no leg with tag '", from_tag,
                                     "' (legs: ", existing->legList(), ")"));
    const int s = existing->sideOf(f);  // the offerer's side
    if (s < 0 || existing->last_offerer != s)
      return absl::FailedPreconditionError(
          cat("call '", call_id, "': no offer from '", from_tag,
              "' to answer (the latest offer came from '",
              existing->last_offerer >= 0 ? existing->sideTag(existing->last_offerer) : "", "')"));
    const int o = 1 - s;
    int t = existing->findLeg(to_tag);
    if (o == 0 ? t != existing->side_leg[0] : t >= 0 && existing->sideOf(t) == s)
      return absl::NotFoundError(cat("call '", call_id, "' has no leg with tag '", to_tag,
                                     "' that can answer '", from_tag,
                                     "' (legs: ", existing->legList(), ")"));
    const std::size_t n = sd.mediaCount();
    if (n != existing->media.size())
      return absl::InvalidArgumentError(
          cat("answer has ", n, " m= lines but the offer had ", existing->media.size(),
              " (RFC 3264 section 6: one per offered m= line, in order)"));
    if (neg->facts.family != IpAddr::Family::kNone && neg->facts.family != existing->family[o])
      return absl::InvalidArgumentError(
          cat("answer uses ", familyName(neg->facts.family), " but rtpx offered this leg an ",
              familyName(existing->family[o]),
              " address; choose the answerer's address family in the offer"));

    Commit c;
    c.draft = std::make_unique<Call>(*existing);
    Call& d = *c.draft;
    if (t < 0) {  // a new branch (forked offer) answers
      d.legs.push_back(Leg{std::string(to_tag), {}, {}, {}});
      t = static_cast<int>(d.legs.size() - 1);
    }
    if (d.side_leg[o] != t || d.answered_ns == 0)
      c.events.push_back({SessionEvent::Type::kAnswered, SessionEvent::Reason::kNone,
                          std::string(from_tag), std::string(to_tag)});
    d.side_leg[o] = t;
    for (std::size_t i = 0; i < n; ++i) {
      Media& m = d.media[i];
      if (!m.active() || sd.media(i).port() != 0) continue;
      // Rejected by the answerer (RFC 3264 section 6): both sides' ports go.
      for (int side = 0; side < 2; ++side) {
        c.released.push_back({d.iface[side], d.slot[side], m.side[side].port});
        m.side[side].port = 0;
      }
    }
    Leg& answerer = d.legs[t];
    answerer.media = std::move(neg->media);
    if (!options.label.empty()) answerer.label = options.label;
    if (!options.via_branch.empty()) answerer.via_branch = options.via_branch;
    d.pending_offerer = -1;
    if (d.answered_ns == 0) {
      d.answered_ns = now;
      // Spread the calls' once-a-second checks over the second, so that one tick never reads
      // every call's counters at once (100,000 calls: ~100 ms under the mutex).
      d.next_check_ns = now + std::hash<std::string>{}(d.id) % kMediaCheckIntervalNs;
    }
    d.state = CallState::kAnswered;
    d.delete_tags.clear();

    plan.address = advertisedAddr(interfaces_[d.iface[s]], d.family[s], d.slot[s]).toString();
    for (const Media& m : d.media) plan.ports.push_back(m.active() ? m.side[s].port : 0);
    if (absl::StatusOr<Call*> done = commit(existing, std::move(c), now); !done.ok())
      return done.status();
  }
  return render(sd, plan, options, "answer");
}

void SessionManager::destroyCall(Call& call) {
  unschedule(call);
  std::vector<FlowId> ids;
  for (const Media& m : call.media)
    for (int side = 0; side < 2; ++side)
      for (FlowId id : {m.side[side].rtp_flow, m.side[side].rtcp_flow})
        if (id != kNoFlow) ids.push_back(id);
  if (!ids.empty())
    if (absl::Status st = flows_.remove(ids); !st.ok())
      spdlog::error("sessions: BUG: removing the {} flows of call {}: {}", ids.size(), call.id,
                    std::string(st.message()));
  for (const Media& m : call.media) {
    if (!m.active()) continue;
    for (int side = 0; side < 2; ++side)
      if (absl::Status st = ports_[call.iface[side]][call.slot[side]].release(m.side[side].port);
          !st.ok())
        spdlog::error("sessions: BUG: {}", std::string(st.message()));
  }
  call.media.clear();
}

// A forked branch ended: its leg goes. If media flowed to it, side 1 passes to the latest
// other branch that answered, or the call waits for an answer again; the ports shown to side 1
// stay, since they are in the offer every branch received.
SessionManager::Call& SessionManager::endBranch(Call& call, int leg, SessionEvent::Reason reason,
                                                uint64_t now) {
  Commit c;
  c.draft = std::make_unique<Call>(call);
  Call& d = *c.draft;
  const std::string tag = d.legs[leg].tag;
  const bool was_active = d.side_leg[1] == leg;
  d.legs.erase(d.legs.begin() + leg);
  for (int& s : d.side_leg)
    if (s > leg) --s;
  if (was_active) {
    d.side_leg[1] = -1;
    for (int i = static_cast<int>(d.legs.size()) - 1; i >= 0; --i)
      if (i != d.side_leg[0] && !d.legs[i].media.empty()) {
        d.side_leg[1] = i;
        break;
      }
    if (d.side_leg[1] < 0) {
      d.state = CallState::kOffered;
      d.pending_offerer = 0;
      d.last_offerer = 0;
      d.offered_ns = now;
      d.answered_ns = 0;
      d.media_started = false;
      d.one_sided_reported = false;
      d.active_ns[0] = d.active_ns[1] = 0;
    }
  }
  if (d.state == CallState::kDeleting) {
    d.state = d.answered_ns != 0 ? CallState::kAnswered : CallState::kOffered;
    d.delete_tags.clear();
  }
  c.events.push_back({SessionEvent::Type::kDeleted, reason, tag, ""});
  absl::StatusOr<Call*> done = commit(&call, std::move(c), now);
  if (!done.ok()) {
    // Forgetting a leg never adds a flow, so it cannot fail short of a bug.
    spdlog::error("sessions: BUG: ending branch '{}' of call {}: {}", tag, call.id,
                  std::string(done.status().message()));
    return call;
  }
  return **done;
}

CallInfo SessionManager::infoOf(const Call& call) const {
  CallInfo info;
  info.call_id = call.id;
  info.state = call.state;
  for (int side = 0; side < 2; ++side) {
    info.tags[side] = call.sideTag(side);
    if (call.family[side] != IpAddr::Family::kNone)
      info.interfaces[side] = interfaces_[call.iface[side]].name;
  }
  for (int side = 0; side < 2; ++side)
    if (call.side_leg[side] >= 0) {
      const Leg& l = call.legs[call.side_leg[side]];
      info.legs.push_back({l.tag, l.label, l.via_branch, side});
    }
  for (std::size_t i = 0; i < call.legs.size(); ++i)
    if (call.sideOf(static_cast<int>(i)) < 0)
      info.legs.push_back({call.legs[i].tag, call.legs[i].label, call.legs[i].via_branch, -1});
  info.created_ns = call.created_ns;
  info.answered_ns = call.answered_ns;
  info.now_ns = clock_();
  const Sides sides = sidesOf(interfaces_, call.iface, call.family, call.slot);
  const std::vector<MediaView> views = call.views();
  for (std::size_t i = 0; i < views.size(); ++i) {
    const MediaView& m = views[i];
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
        DirectionInfo dir;
        dir.from_tag = call.sideTag(x);
        dir.to_tag = call.sideTag(1 - x);
        dir.rtcp = rtcp;
        dir.local = spec.local;
        dir.egress_local = spec.egress_local;
        dir.destination = spec.destination;
        dir.forward = spec.forward;
        if (absl::StatusOr<FlowStats> s = flows_.stats(id); s.ok()) dir.stats = *s;
        mi.directions.push_back(std::move(dir));
      }
    }
    info.media.push_back(std::move(mi));
  }
  return info;
}

absl::StatusOr<CallInfo> SessionManager::deleteCall(std::string_view call_id,
                                                    const DeleteOptions& options) {
  if (absl::Status st = checkId("call_id", call_id); !st.ok()) return st;
  for (const auto& [what, value] :
       {std::pair<const char*, const std::string*>{"from_tag", &options.from_tag},
        {"to_tag", &options.to_tag},
        {"via_branch", &options.via_branch}})
    if (!value->empty())
      if (absl::Status st = checkId(what, *value); !st.ok()) return st;
  if (options.delay && options.delay->count() < 0)
    return absl::InvalidArgumentError("delete delay is negative (0 deletes at once)");
  std::lock_guard lk(mu_);
  const uint64_t now = clock_();
  auto it = calls_.find(call_id);
  if (it == calls_.end()) return absl::NotFoundError(cat("no call '", call_id, "'"));
  Call& call = *it->second;
  for (const std::string* tag : {&options.from_tag, &options.to_tag})
    if (!tag->empty() && call.findLeg(*tag) < 0)
      return absl::NotFoundError(cat("call '", call_id, "' has no leg with tag '", *tag,
                                     "' (legs: ", call.legList(), ")"));
  // The branches it ends; none: the whole call.
  std::vector<std::string> branches;
  bool whole = true;
  const std::size_t answering = call.legs.size() - (call.side_leg[0] >= 0 ? 1 : 0);
  if (!options.to_tag.empty()) {
    const int t = call.findLeg(options.to_tag);
    if (answering > 1 && t != call.side_leg[0]) {
      whole = false;
      branches.push_back(options.to_tag);
    }
  } else if (!options.via_branch.empty()) {
    for (std::size_t i = 0; i < call.legs.size(); ++i)
      if (static_cast<int>(i) != call.side_leg[0] && call.legs[i].via_branch == options.via_branch)
        branches.push_back(call.legs[i].tag);
    // No branch of that name (a BYE's own branch): the tags decide, as without one.
    whole = branches.empty();
  }
  // Ending every answering branch ends the call.
  if (!whole && branches.size() >= answering) {
    whole = true;
    branches.clear();
  }
  CallInfo info = infoOf(call);
  const uint64_t delay_ns = options.delay
                                ? static_cast<uint64_t>(options.delay->count()) * 1'000'000ull
                                : static_cast<uint64_t>(cfg_.delete_delay_s) * kNsPerSecond;
  if (delay_ns > 0) {
    call.state = CallState::kDeleting;
    call.delete_at_ns = now + delay_ns;
    call.delete_tags = branches;
    schedule(call);
    info.state = CallState::kDeleting;
    return info;
  }
  if (whole) {
    const std::string from = call.sideTag(0), to = call.sideTag(1);
    destroyCall(call);
    emit(SessionEvent::Type::kDeleted, SessionEvent::Reason::kRequested, call, from, to, now);
    calls_.erase(it);
    return info;
  }
  Call* c = &call;
  for (const std::string& tag : branches)
    c = &endBranch(*c, c->findLeg(tag), SessionEvent::Reason::kRequested, now);
  return info;
}

absl::StatusOr<CallInfo> SessionManager::query(std::string_view call_id) const {
  if (absl::Status st = checkId("call_id", call_id); !st.ok()) return st;
  std::lock_guard lk(mu_);
  auto it = calls_.find(call_id);
  if (it == calls_.end()) return absl::NotFoundError(cat("no call '", call_id, "'"));
  return infoOf(*it->second);
}

std::vector<CallSummary> SessionManager::list() const {
  std::lock_guard lk(mu_);
  std::vector<CallSummary> out;
  out.reserve(calls_.size());
  for (const auto& [id, call] : calls_) {
    CallSummary s;
    s.call_id = call->id;
    s.state = call->state;
    s.tags[0] = call->sideTag(0);
    s.tags[1] = call->sideTag(1);
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
// Media start, inactivity and one-sided media, from the dataplane's last-packet times (of
// accepted packets only: junk from a foreign source keeps no call alive). The next check is
// the earliest time any of them could change, so a call with media flowing both ways is
// looked at once per timeout period, not every second.
void SessionManager::checkMedia(Call& call, uint64_t now, std::vector<std::string>& to_delete) {
  ++media_checks_;
  uint64_t last[2] = {0, 0};  // per side: its latest accepted packet (0: none yet)
  for (const Media& m : call.media)
    for (int side = 0; side < 2; ++side)
      for (FlowId id : {m.side[side].rtp_flow, m.side[side].rtcp_flow})
        if (id != kNoFlow) last[side] = std::max(last[side], flows_.lastPacket(id));
  call.active_ns[0] = last[0];
  call.active_ns[1] = last[1];
  if (!call.media_started && (last[0] != 0 || last[1] != 0)) {
    call.media_started = true;
    const int first = last[1] == 0 || (last[0] != 0 && last[0] <= last[1]) ? 0 : 1;
    emit(SessionEvent::Type::kMediaStarted, SessionEvent::Reason::kNone, call, call.sideTag(first),
         call.sideTag(1 - first), now);
  }
  uint64_t next = UINT64_MAX;
  auto consider = [&](uint64_t t) {
    if (t > now) next = std::min(next, t);
  };
  if (!call.media_started)  // nothing to read a time from yet: look again, ever less often
    consider(now + std::clamp((now - std::min(now, call.answered_ns)) / 4, kMediaCheckIntervalNs,
                              kMaxMediaStartCheckNs));
  const uint64_t since[2] = {std::max(call.answered_ns, last[0]),
                             std::max(call.answered_ns, last[1])};
  if (cfg_.no_media_s != 0) {
    const uint64_t silent_at = std::max(since[0], since[1]) + cfg_.no_media_s * kNsPerSecond;
    if (now >= silent_at) {
      emit(SessionEvent::Type::kTimeout, SessionEvent::Reason::kNoMedia, call, call.sideTag(0),
           call.sideTag(1), now);
      to_delete.push_back(call.id);
      return;
    }
    consider(silent_at);
  }
  if (cfg_.one_sided_s != 0) {
    const uint64_t window = cfg_.one_sided_s * kNsPerSecond;
    bool one_sided = false;
    for (int side = 0; side < 2; ++side) {
      const bool talking = last[side] != 0 && now < last[side] + window;
      const bool silent = now >= since[1 - side] + window;
      if (talking) consider(last[side] + window);       // when it would stop talking
      if (!silent) consider(since[1 - side] + window);  // when the other would be silent
      if (talking && silent) {
        one_sided = true;
        if (!call.one_sided_reported)
          emit(SessionEvent::Type::kTimeout, SessionEvent::Reason::kOneSidedMedia, call,
               call.sideTag(side), call.sideTag(1 - side), now);
      }
    }
    call.one_sided_reported = one_sided;
  }
  call.next_check_ns = next;  // UINT64_MAX: nothing can change until a request does
}

std::optional<uint64_t> SessionManager::deadline(const Call& call) const {
  switch (call.state) {
    case CallState::kDeleting:
      return call.delete_at_ns;
    case CallState::kOffered:
      if (cfg_.offer_unanswered_s == 0) return std::nullopt;
      return call.offered_ns + cfg_.offer_unanswered_s * kNsPerSecond;
    case CallState::kAnswered:
      if (call.next_check_ns == UINT64_MAX) return std::nullopt;
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
               call.sideTag(0), call.sideTag(1), now_ns);
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
    if (d.reason == SessionEvent::Reason::kDeleteDelay && !call.delete_tags.empty()) {
      const std::vector<std::string> tags = std::move(call.delete_tags);
      Call* c = &call;
      for (const std::string& tag : tags)
        if (const int leg = c->findLeg(tag); leg >= 0) c = &endBranch(*c, leg, d.reason, now_ns);
      continue;
    }
    const std::string from = call.sideTag(0);
    const std::string to = call.sideTag(1);
    destroyCall(call);
    emit(SessionEvent::Type::kDeleted, d.reason, call, from, to, now_ns);
    calls_.erase(it);
  }
}

}  // namespace rtpx

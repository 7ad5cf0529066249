// The session manager (DESIGN.md §4): the authoritative state of every call, built from SDP
// offers and answers (RFC 3264), compiled into dataplane flows.
//
//   Call (call-id) ─► legs, keyed by tag (the first offerer, and every to-tag that answered:
//     a forked offer may be answered by several) ─► per leg and m= line, what its SDP said
//     (LegMedia: endpoints, direction, codecs, crypto, DTLS, ICE, rtcp-mux).
//   The call has two sides: side 0 is the first offerer's leg, side 1 the answering leg that
//   media currently flows to (the latest to answer, among forks). Each side owns, per m= line,
//   the rtpx ports shown to it; every leg that answers from side 1 was shown the same ports.
//
// For a stream, direction X→Y is one flow: key = the rtpx endpoint shown to side X (X sends
// there), egress_local = the rtpx endpoint shown to Y, destination = Y's endpoint from Y's SDP
// (unknown until Y's SDP arrives). The two directions are paired, so each sends to where its
// peer really sends from once that latches.
//
// Every operation runs in three steps:
//   negotiate: parse and validate the SDP, read what each m= line says (outside the lock);
//   commit:    under the one session lock, plan the call's next state as a draft, allocate
//              ports, sync the flow table, then swap the draft in, emit events and count. An
//              error before the swap leaves the state exactly as it was;
//   render:    rewrite the SDP with rtpx's address and ports (outside the lock).
// Offer and answer are idempotent: the same request again changes nothing and returns the
// same SDP. Workers never touch the lock.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "controlplane/core/port_allocator.h"
#include "controlplane/core/session_config.h"
#include "dataplane/dataplane.h"
#include "dataplane/flow.h"
#include "dataplane/net_types.h"

namespace rtpx {

// One interface as sessions see it (built from [[interface]] and the DPDK port id).
struct SessionInterface {
  std::string name;
  uint16_t port_id = 0;  // DPDK port
  std::optional<IpPrefix> ipv4;
  std::optional<IpPrefix> ipv6;
  // More addresses of each family (only with ipv4 / ipv6). Media ports are allocated per
  // address slot: slot 0 is ipv4 and ipv6, slot k is extra_ipv4[k-1] and extra_ipv6[k-1],
  // each slot with its own [port_min, port_max]. A new leg takes the first slot of its family
  // with enough free pairs, so calls spill over to the next address when one is full.
  std::vector<IpPrefix> extra_ipv4;
  std::vector<IpPrefix> extra_ipv6;
  std::optional<IpAddr> gateway4;
  std::optional<IpAddr> gateway6;
  // Written into SDP instead of the local address when set (the flows use the local one).
  std::optional<IpAddr> advertised_ipv4;
  std::optional<IpAddr> advertised_ipv6;
};

// Which rtpx address a leg is shown. Unset fields take the defaults described per option.
struct LegAddressOption {
  // nullopt: the family of the SDP being rewritten (the offer's).
  std::optional<IpAddr::Family> family;
  // Empty: the first interface that has an address of the family.
  std::string interface;
};

// Typed options of offer and answer, the same whether they came over gRPC or NG.
struct RewriteOptions {
  bool keep_ice = false;        // keep a=candidate & co. (default: removed, rtpx is the endpoint)
  bool replace_origin = false;  // write rtpx's address into o= as well
  // Written into the SDP instead of rtpx's (advertised) address; the flows keep the local one.
  std::optional<IpAddr> media_address;
  // Where the signaling saw the sender's request come from (NG received-from). Unless
  // trust_address, it replaces the SDP's connection address of the sender's media (a phone
  // behind NAT announces its private address); the SDP's ports stay.
  std::optional<IpAddr> received_from;
  bool trust_address = true;
  std::string label;       // kept on the sender's leg (query, list)
  std::string via_branch;  // the SIP branch (forks); kept on the answering leg
};

struct OfferOptions : RewriteOptions {
  // The rtpx address shown to the answerer (in the rewritten offer): family and interface.
  // Only when that leg has none yet (the first offer); a re-offer may repeat it, not change it.
  LegAddressOption answerer;
  // Interface toward the offerer (its family is always that of the offer's own addresses).
  std::string offerer_interface;
  // The other leg's tag, for a re-offer (optional): with forks, names the branch the call
  // continues with.
  std::string to_tag;
};

using AnswerOptions = RewriteOptions;

// Which part of a call a delete ends (rtpengine's rules, on gRPC and NG alike):
//  - no tag, or only from_tag: the whole call (a BYE from either side);
//  - to_tag naming one of several answering legs (forks): that branch only;
//  - via_branch naming the branch of some answering legs: those legs only; naming none, the
//    tags decide as above;
//  - ending every answering leg ends the whole call.
// An ended branch that media flowed to hands side 1 to the latest other branch.
struct DeleteOptions {
  std::string from_tag;
  std::string to_tag;
  std::string via_branch;
  // Postpones the delete (late packets still flow); an offer or answer cancels it. nullopt:
  // sessions.delete_delay_s.
  std::optional<std::chrono::milliseconds> delay;
};

enum class CallState : uint8_t {
  kOffered,   // waiting for the first answer
  kAnswered,  // media can flow (an offer from either leg may be pending)
  kDeleting,  // a delayed delete is due
};
std::string_view callStateName(CallState s);

// One flow as Query shows it.
struct DirectionInfo {
  std::string from_tag;  // sender leg (empty: not known yet)
  std::string to_tag;    // receiver leg
  bool rtcp = false;     // an RTCP-only flow (the RTP flow also carries RTCP under rtcp-mux)
  Endpoint local;        // rtpx endpoint the sender sends to
  Endpoint egress_local;
  Endpoint destination;  // the receiver's endpoint from its SDP (unknown until known)
  bool forward = true;
  FlowStats stats;
};

struct MediaInfo {
  uint32_t index = 0;  // m= line
  std::string type;    // "audio", "video", ...
  bool rtcp_mux = false;
  std::vector<DirectionInfo> directions;  // RTP 0→1, RTP 1→0, then RTCP 0→1, 1→0 if any
};

struct LegInfo {
  std::string tag;
  std::string label;
  std::string via_branch;
  int side = -1;  // 0 or 1: media flows through it; -1: a forked branch media does not use
};

struct CallInfo {
  std::string call_id;
  CallState state = CallState::kOffered;
  std::string tags[2];  // side 0 (first offerer), side 1 (answerer; empty before the answer)
  std::string interfaces[2];
  std::vector<LegInfo> legs;  // every leg: the two sides, then other branches
  uint64_t created_ns = 0;
  uint64_t answered_ns = 0;      // 0 = never
  uint64_t now_ns = 0;           // the manager's clock at the query (for packet ages)
  std::vector<MediaInfo> media;  // active m= lines only
};

struct CallSummary {
  std::string call_id;
  CallState state = CallState::kOffered;
  std::string tags[2];
  uint32_t active_media = 0;
  uint64_t created_ns = 0;
};

struct SessionEvent {
  enum class Type : uint8_t { kCreated, kAnswered, kMediaStarted, kTimeout, kDeleted };
  // Why: set for kTimeout and kDeleted.
  enum class Reason : uint8_t {
    kNone,
    kRequested,        // deleted on request
    kNoMedia,          // no packet from either side for sessions.no_media_s
    kOneSidedMedia,    // packets from one leg only for sessions.one_sided_s
    kOfferUnanswered,  // no answer within sessions.offer_unanswered_s
    kDeleteDelay,      // a delayed delete was carried out
  };
  uint64_t sequence = 0;  // 1, 2, 3 … in the order the manager produced them
  Type type = Type::kCreated;
  Reason reason = Reason::kNone;
  std::string call_id;
  std::string from_tag;  // the leg concerned, if any
  std::string to_tag;
  uint64_t time_ns = 0;  // the manager's clock (monotonic)
  std::chrono::system_clock::time_point wall_time;
  // Events this subscriber lost (its queue was full) since the previous one it received.
  uint64_t dropped_before = 0;
};
std::string_view eventTypeName(SessionEvent::Type t);
std::string_view eventReasonName(SessionEvent::Reason r);

// A subscriber's bounded queue. The manager never waits for it: when the queue is full the
// oldest event is dropped and counted.
class EventSubscription {
 public:
  explicit EventSubscription(std::size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}
  // The next event, waiting at most `timeout`; nullopt on timeout or once closed and drained.
  std::optional<SessionEvent> next(std::chrono::milliseconds timeout);
  uint64_t dropped() const;
  bool closed() const;
  void close();

 private:
  friend class SessionManager;
  void push(const SessionEvent& e);

  const std::size_t capacity_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<SessionEvent> queue_;
  uint64_t dropped_ = 0;
  uint64_t dropped_reported_ = 0;
  bool closed_ = false;
};

class SessionManager {
 public:
  using Resolver = std::function<void(uint16_t port_id, const IpAddr& next_hop)>;
  using Clock = std::function<uint64_t()>;  // monotonic nanoseconds

  static constexpr std::size_t kMaxIdBytes = 256;  // call-id and tags
  static constexpr std::size_t kDefaultEventQueue = 1024;

  // `flows` must outlive the manager; `resolver` is asked for the next hop of every
  // destination (thread-safe, must not block). `clock` defaults to CLOCK_MONOTONIC.
  static absl::StatusOr<std::unique_ptr<SessionManager>> create(
      const SessionsConfig& cfg, std::vector<SessionInterface> interfaces, FlowTable& flows,
      Resolver resolver, Clock clock = nullptr);
  ~SessionManager();
  SessionManager(const SessionManager&) = delete;
  SessionManager& operator=(const SessionManager&) = delete;

  // An offer from leg `from_tag` (a new call, or a re-offer from either leg, which replaces an
  // offer still pending): the SDP to send to the other leg. Allocates ports and flows for new
  // m= lines, frees those of m= lines now at port 0, updates the rest (moved addresses
  // relatch, direction attributes set forwarding). A new call past sessions.max_sessions or
  // sessions.max_load is UNAVAILABLE with a message starting "load limit".
  absl::StatusOr<std::string> offer(std::string_view call_id, std::string_view from_tag,
                                    std::string_view sdp, const OfferOptions& options = {});
  // The answer of leg `to_tag` to the latest offer of leg `from_tag`: the SDP to send back to
  // the offerer. Answering again (183 then 200) updates the answer; a new `to_tag` is another
  // branch of a forked offer, and media flows to the latest branch to answer.
  // FAILED_PRECONDITION if the latest offer came from the other leg.
  absl::StatusOr<std::string> answer(std::string_view call_id, std::string_view from_tag,
                                     std::string_view to_tag, std::string_view sdp,
                                     const AnswerOptions& options = {});
  // Deletes the call or a branch of it (see DeleteOptions). Returns the call as it was just
  // before (its final statistics); with a delay, as it is when the delete is scheduled.
  absl::StatusOr<CallInfo> deleteCall(std::string_view call_id, const DeleteOptions& options = {});
  absl::StatusOr<CallInfo> query(std::string_view call_id) const;
  std::vector<CallSummary> list() const;
  std::size_t callCount() const;
  // Calls, flows and ports in use, consistent with each other (taken under the manager's lock,
  // which also serialises every flow table writer). For statistics and /metrics.
  SessionGauges gauges() const;

  // Evaluates timeouts, media start and postponed deletes. Call every 100 ms to 1 s with the
  // same clock as the manager's.
  void tick(uint64_t now_ns);

  std::shared_ptr<EventSubscription> subscribe(std::size_t queue_capacity = kDefaultEventQueue);
  void unsubscribe(const std::shared_ptr<EventSubscription>& subscription);
  // Ends every subscription (waiters return) and refuses new ones; for server shutdown.
  void closeSubscriptions();

  // For tests and statistics: the media ports of an interface's address slot.
  const PortAllocator& ports(std::size_t interface_index, std::size_t slot = 0) const;
  std::size_t addressSlots(std::size_t interface_index) const;
  const std::vector<SessionInterface>& interfaces() const { return interfaces_; }
  // Calls that a tick will look at again (the others wait for a request).
  std::size_t scheduledCount() const;
  // Reads of a call's media times by tick() so far: the cost of the media timeouts.
  uint64_t mediaChecks() const;
  uint64_t now() const { return clock_(); }

 private:
  struct Call;  // defined in session_manager.cc

  SessionManager(const SessionsConfig& cfg, std::vector<SessionInterface> interfaces,
                 std::vector<std::vector<PortAllocator>> ports, FlowTable& flows, Resolver resolver,
                 Clock clock);

  void emit(SessionEvent::Type type, SessionEvent::Reason reason, const Call& call,
            std::string_view from_tag, std::string_view to_tag, uint64_t now);
  struct Commit;  // a draft of a call's next state, and what goes with it

  // The one funnel of every change to a call (see session_manager.cc). `existing` is null for
  // a new call. On error nothing changed.
  absl::StatusOr<Call*> commit(Call* existing, Commit c, uint64_t now);
  absl::Status loadLimit() const;
  void destroyCall(Call& call);
  // Ends the forked branch `leg`; returns the call's new state.
  Call& endBranch(Call& call, int leg, SessionEvent::Reason reason, uint64_t now);
  CallInfo infoOf(const Call& call) const;
  void requestResolve(const Call& call);
  void checkMedia(Call& call, uint64_t now, std::vector<std::string>& to_delete);
  // When tick() next has something to do for the call (none: nothing until it changes).
  std::optional<uint64_t> deadline(const Call& call) const;
  // Files the call under its deadline in timers_; after every change of its state or times.
  void schedule(Call& call);
  void unschedule(Call& call);

  const SessionsConfig cfg_;
  const std::vector<SessionInterface> interfaces_;
  std::vector<std::vector<PortAllocator>> ports_;  // by interface index, then address slot
  FlowTable& flows_;
  Resolver resolver_;
  Clock clock_;

  mutable std::mutex mu_;
  // Keyed by a view of the call's own id (no second copy of every call-id).
  std::unordered_map<std::string_view, std::unique_ptr<Call>> calls_;
  // Calls by the time tick() next looks at them: a tick touches only the calls that are due,
  // not every call (10,000 calls: ~2 ms per tick before).
  std::set<std::pair<uint64_t, Call*>> timers_;
  uint64_t event_sequence_ = 0;
  uint64_t media_checks_ = 0;

  std::mutex subscribers_mu_;
  std::vector<std::shared_ptr<EventSubscription>> subscribers_;
  bool subscriptions_closed_ = false;
};

}  // namespace rtpx

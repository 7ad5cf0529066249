#include <absl/strings/str_cat.h>
#include <rte_byteorder.h>
#include <rte_errno.h>
#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <rte_rcu_qsbr.h>

#include "dataplane/flow.h"
#include "dataplane/flow_internal.h"

namespace rtpx {

std::string Endpoint::toString() const {
  if (!known()) return "-";
  return addr.isV6() ? absl::StrCat("[", addr.toString(), "]:", port)
                     : absl::StrCat(addr.toString(), ":", port);
}

absl::StatusOr<std::unique_ptr<FlowTable>> FlowTable::create(uint32_t capacity, rte_rcu_qsbr* qsbr,
                                                             int socket) {
  static std::atomic<int> seq{0};
  std::string name = absl::StrCat("rtpx_flows_", seq++);
  rte_hash_parameters p{};
  p.name = name.c_str();
  p.entries = capacity;
  p.key_len = sizeof(FlowKey);
  p.hash_func = rte_hash_crc;  // SSE4.2 crc32 instructions: a few cycles per key
  p.hash_func_init_val = 0;
  p.socket_id = socket;
  // Lock-free readers (workers) with one writer at a time (the control plane, serialised by
  // the session manager). Deleted keys stay reserved until we free them after a grace period.
  p.extra_flag = RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF | RTE_HASH_EXTRA_FLAGS_EXT_TABLE;
  std::unique_ptr<FlowTable> t(new FlowTable());
  t->hash_ = rte_hash_create(&p);
  if (t->hash_ == nullptr)
    return absl::ResourceExhaustedError(absl::StrCat("cannot create a flow table of ", capacity,
                                                     " entries: ", rte_strerror(rte_errno)));
  t->qsbr_ = qsbr;
  t->capacity_ = capacity;
  return t;
}

FlowTable::~FlowTable() {
  // The workers have stopped: nothing is in use any more.
  for (const Retired& r : retired_) free(r);
  for (Flow* f : by_id_) {
    if (f == nullptr) continue;
    delete f->spec.load();
    delete f;
  }
  rte_hash_free(hash_);
}

void FlowTable::free(const Retired& r) {
  if (r.flow == nullptr) {
    delete r.spec;
    return;
  }
  if (r.key_position >= 0) rte_hash_free_key_with_position(hash_, r.key_position);
  free_ids_.push_back(r.flow->id);
  delete r.flow->spec.load(std::memory_order_relaxed);
  delete r.flow;
}

void FlowTable::reclaim() {
  if (retired_.empty()) return;
  // Tokens grow: once the newest has passed, everything has.
  if (rte_rcu_qsbr_check(qsbr_, retired_.back().token, false) == 1) {
    for (const Retired& r : retired_) free(r);
    retired_.clear();
    return;
  }
  while (!retired_.empty() && rte_rcu_qsbr_check(qsbr_, retired_.front().token, false) == 1) {
    free(retired_.front());
    retired_.pop_front();
  }
}

void FlowTable::reclaimOldest() {
  if (retired_.empty()) return;
  rte_rcu_qsbr_check(qsbr_, retired_.front().token, true);
  reclaim();
}

absl::StatusOr<FlowId> FlowTable::add(const FlowSpec& spec) {
  if (!spec.local.known())
    return absl::InvalidArgumentError("flow: the local endpoint must be a known address:port");
  reclaim();
  if (live_ >= capacity_)
    return absl::ResourceExhaustedError(absl::StrCat("flow table full (", capacity_, " flows)"));
  const FlowKey key = makeFlowKey(spec.local.addr, rte_cpu_to_be_16(spec.local.port));
  if (rte_hash_lookup(hash_, &key) >= 0)
    return absl::AlreadyExistsError(
        absl::StrCat("flow: local endpoint ", spec.local.toString(), " is in use"));
  auto* f = new Flow();
  f->spec.store(new SpecRecord{spec, 1}, std::memory_order_relaxed);
  if (free_ids_.empty()) {
    f->id = static_cast<FlowId>(by_id_.size());
    by_id_.push_back(f);
  } else {
    f->id = free_ids_.back();
    free_ids_.pop_back();
    by_id_[f->id] = f;
  }
  // rte_hash_add_key_data publishes with release semantics: a reader that finds the key sees
  // a fully built flow. Key slots of retired flows come back only after their grace period:
  // when they are all that fills the table, wait for them.
  int rc = rte_hash_add_key_data(hash_, &key, f);
  while (rc == -ENOSPC && !retired_.empty()) {
    reclaimOldest();
    rc = rte_hash_add_key_data(hash_, &key, f);
  }
  if (rc != 0) {
    by_id_[f->id] = nullptr;
    free_ids_.push_back(f->id);
    delete f->spec.load();
    delete f;
    return absl::ResourceExhaustedError(absl::StrCat("flow table: ", rte_strerror(-rc)));
  }
  ++live_;
  return f->id;
}

namespace {
Flow* get(const std::vector<Flow*>& v, FlowId id) {
  return id < v.size() ? v[id] : nullptr;
}
}  // namespace

absl::Status FlowTable::pair(FlowId a, FlowId b) {
  Flow* fa = get(by_id_, a);
  Flow* fb = get(by_id_, b);
  if (fa == nullptr || fb == nullptr) return absl::NotFoundError("flow: unknown id");
  fa->reverse.store(fb, std::memory_order_release);
  fb->reverse.store(fa, std::memory_order_release);
  return absl::OkStatus();
}

absl::Status FlowTable::update(FlowId id, const FlowSpec& spec, bool relatch) {
  Flow* f = get(by_id_, id);
  if (f == nullptr) return absl::NotFoundError("flow: unknown id");
  const SpecRecord* old = f->spec.load(std::memory_order_relaxed);
  if (!(old->spec.local == spec.local))
    return absl::InvalidArgumentError("flow: the local endpoint of a flow cannot change");
  f->spec.store(new SpecRecord{spec, old->generation + (relatch ? 1 : 0)},
                std::memory_order_release);
  // Workers may still hold `old` for the packet in hand: it is freed after every worker has
  // passed a quiescent point.
  retired_.push_back({rte_rcu_qsbr_start(qsbr_), nullptr, -1, old});
  reclaim();
  return absl::OkStatus();
}

absl::Status FlowTable::remove(const std::vector<FlowId>& ids) {
  const size_t first = retired_.size();
  for (FlowId id : ids) {
    Flow* f = get(by_id_, id);
    if (f == nullptr) continue;
    const SpecRecord* s = f->spec.load(std::memory_order_relaxed);
    const FlowKey key = makeFlowKey(s->spec.local.addr, rte_cpu_to_be_16(s->spec.local.port));
    const int32_t pos = rte_hash_del_key(hash_, &key);
    retired_.push_back({0, f, pos, nullptr});
    by_id_[id] = nullptr;
    --live_;
    // A partner that stays must not keep pointing at this flow once it is freed; workers
    // still holding the old pointer finish with it before the grace period ends.
    if (Flow* rev = f->reverse.load(std::memory_order_relaxed))
      if (rev->reverse.load(std::memory_order_relaxed) == f)
        rev->reverse.store(nullptr, std::memory_order_release);
  }
  if (retired_.size() == first) return absl::OkStatus();
  // One grace period for the whole batch, started after every unlink above.
  const uint64_t token = rte_rcu_qsbr_start(qsbr_);
  for (size_t i = first; i < retired_.size(); ++i) retired_[i].token = token;
  reclaim();
  return absl::OkStatus();
}

uint64_t FlowTable::packets(FlowId id) const {
  const Flow* f = get(by_id_, id);
  return f == nullptr ? 0 : f->packets.read();
}

uint64_t FlowTable::lastPacket(FlowId id) const {
  const Flow* f = get(by_id_, id);
  return f == nullptr ? 0 : f->last_packet_ns.load(std::memory_order_relaxed);
}

absl::StatusOr<FlowStats> FlowTable::stats(FlowId id) const {
  const Flow* f = get(by_id_, id);
  if (f == nullptr) return absl::NotFoundError("flow: unknown id");
  FlowStats s;
  s.packets = f->packets.read();
  s.bytes = f->bytes.read();
  s.forwarded = f->forwarded.read();
  s.dropped_source = f->dropped_source.read();
  s.dropped_no_destination = f->dropped_no_destination.read();
  s.dropped_no_route = f->dropped_no_route.read();
  s.dropped_not_forwarding = f->dropped_not_forwarding.read();
  s.first_packet_ns = f->first_packet_ns.load(std::memory_order_relaxed);
  s.last_packet_ns = f->last_packet_ns.load(std::memory_order_relaxed);
  const auto latch = f->readLatch();
  const uint32_t gen = f->spec.load(std::memory_order_acquire)->generation;
  s.latched = latch.latched && latch.generation == gen;
  if (s.latched) s.latched_source = latch.source;
  s.ssrc = f->ssrc.load(std::memory_order_relaxed);
  s.rtp_packets = f->rtp_packets.read();
  s.rtp_expected = f->rtp_expected.load(std::memory_order_relaxed);
  s.rtp_lost = f->rtp_lost.load(std::memory_order_relaxed);
  s.rtp_seq_errors = static_cast<uint32_t>(f->rtp_seq_errors.read());
  s.jitter_ms = static_cast<double>(f->jitter_ns.load(std::memory_order_relaxed)) / 1e6;
  s.rtcp_packets = f->rtcp_packets.read();
  s.slowpath_packets = f->slowpath_packets.read();
  return s;
}

absl::StatusOr<FlowSpec> FlowTable::spec(FlowId id) const {
  const Flow* f = get(by_id_, id);
  if (f == nullptr) return absl::NotFoundError(absl::StrCat("flow: unknown id ", id));
  return f->spec.load(std::memory_order_acquire)->spec;
}

Flow* FlowTable::lookup(const IpAddr& local, uint16_t port_be) const noexcept {
  const FlowKey key = makeFlowKey(local, port_be);
  void* data = nullptr;
  if (rte_hash_lookup_data(hash_, &key, &data) < 0) return nullptr;
  return static_cast<Flow*>(data);
}

void FlowTable::lookupBulk(const void* const* keys, uint32_t n, Flow** flows) const noexcept {
  uint64_t hits = 0;
  rte_hash_lookup_bulk_data(hash_, const_cast<const void**>(keys), n, &hits,
                            reinterpret_cast<void**>(flows));
  for (uint32_t i = 0; i < n; ++i)
    if (((hits >> i) & 1) == 0) flows[i] = nullptr;
}

}  // namespace rtpx

// rtpx-gen's measurements: a log-linear latency histogram (fixed size, no allocation on add)
// and the sink's per-flow sequence, duplicate, reordering and RFC 3550 jitter state.
#pragma once

#include <array>
#include <atomic>
#include <bit>
#include <cstdint>

namespace rtpx::gen {

// Values in ns. Below 2^kSubBits ns one bucket per ns; above, 2^kSubBits buckets per power of
// two (relative error < 1/2^kSubBits = 3 %), up to 2^63 ns.
class LatencyHistogram {
 public:
  static constexpr unsigned kSubBits = 5;
  static constexpr unsigned kSub = 1u << kSubBits;
  static constexpr unsigned kBuckets = (64 - kSubBits + 1) * kSub;

  void add(uint64_t ns) {
    ++counts_[bucketOf(ns)];
    ++count_;
    sum_ += ns;
    if (ns > max_) max_ = ns;
    if (ns < min_) min_ = ns;
  }
  void merge(const LatencyHistogram& o);
  void clear() { *this = LatencyHistogram{}; }

  uint64_t count() const { return count_; }
  uint64_t maxNs() const { return max_; }
  uint64_t minNs() const { return count_ == 0 ? 0 : min_; }
  double meanNs() const { return count_ == 0 ? 0 : static_cast<double>(sum_) / count_; }
  // The value below which fraction q of the samples lie (bucket midpoint; max for q = 1).
  double quantileNs(double q) const;

  static unsigned bucketOf(uint64_t v) {
    if (v < kSub) return static_cast<unsigned>(v);
    const unsigned msb = 63 - static_cast<unsigned>(std::countl_zero(v));
    const unsigned shift = msb - kSubBits;
    return ((shift + 1) << kSubBits) + static_cast<unsigned>((v >> shift) & (kSub - 1));
  }
  static uint64_t bucketLow(unsigned b);
  static uint64_t bucketWidth(unsigned b);

 private:
  std::array<uint64_t, kBuckets> counts_{};
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t max_ = 0;
  uint64_t min_ = UINT64_MAX;
};

// The sink's state for one flow (RX lcore only). Sequence numbers are the PayloadHeader's 64-bit
// packet index, so no wrap handling is needed.
struct FlowRx {
  uint64_t max_seq = 0;
  uint64_t window = 0;  // bit i: max_seq - i received
  uint64_t received = 0;
  int64_t last_transit = 0;  // TSC ticks
  uint64_t jitter16 = 0;     // RFC 3550 A.8: 16 × J, TSC ticks
  uint32_t expect_ip = 0;    // network order; 0: any
  uint16_t expect_port = 0;  // network order
  uint16_t pad = 0;
};

enum class SeqVerdict : uint8_t { kNew, kReordered, kDuplicate, kLate };

// Records packet `seq` (RFC 3550 A.8 jitter on every non-duplicate, with S = the send TSC, so
// the generator's own pacing is excluded).
inline SeqVerdict recordSeq(FlowRx& f, uint64_t seq, int64_t transit) {
  SeqVerdict v = SeqVerdict::kNew;
  if (f.received == 0) {
    f.max_seq = seq;
    f.window = 1;
  } else if (seq > f.max_seq) {
    const uint64_t d = seq - f.max_seq;
    f.window = d >= 64 ? 1 : (f.window << d) | 1;
    f.max_seq = seq;
  } else {
    const uint64_t back = f.max_seq - seq;
    if (back >= 64) {
      v = SeqVerdict::kLate;  // too old to tell a duplicate from a late packet
    } else if (f.window & (uint64_t{1} << back)) {
      return SeqVerdict::kDuplicate;
    } else {
      f.window |= uint64_t{1} << back;
      v = SeqVerdict::kReordered;
    }
  }
  if (f.received != 0) {
    int64_t d = transit - f.last_transit;
    if (d < 0) d = -d;
    f.jitter16 += static_cast<uint64_t>(d) - ((f.jitter16 + 8) >> 4);
  }
  f.last_transit = transit;
  ++f.received;
  return v;
}

// Counters written by one lcore (relaxed store of load + n: a plain add on x86), read by the
// control thread at any time.
struct Counter {
  std::atomic<uint64_t> v{0};
  void add(uint64_t n) {
    v.store(v.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  uint64_t get() const { return v.load(std::memory_order_relaxed); }
};

}  // namespace rtpx::gen

#include "bench/gen_stats.h"

#include <algorithm>
#include <cmath>

namespace rtpx::gen {

uint64_t LatencyHistogram::bucketLow(unsigned b) {
  if (b < kSub) return b;
  const unsigned shift = (b >> kSubBits) - 1;
  return (uint64_t{kSub} + (b & (kSub - 1))) << shift;
}

uint64_t LatencyHistogram::bucketWidth(unsigned b) {
  if (b < kSub) return 1;
  return uint64_t{1} << ((b >> kSubBits) - 1);
}

void LatencyHistogram::merge(const LatencyHistogram& o) {
  for (unsigned i = 0; i < kBuckets; ++i) counts_[i] += o.counts_[i];
  count_ += o.count_;
  sum_ += o.sum_;
  max_ = std::max(max_, o.max_);
  min_ = std::min(min_, o.min_);
}

double LatencyHistogram::quantileNs(double q) const {
  if (count_ == 0) return 0;
  if (q >= 1) return static_cast<double>(max_);
  const uint64_t rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(count_)));
  uint64_t seen = 0;
  for (unsigned b = 0; b < kBuckets; ++b) {
    seen += counts_[b];
    if (seen >= std::max<uint64_t>(rank, 1)) {
      const double mid =
          static_cast<double>(bucketLow(b)) + static_cast<double>(bucketWidth(b) - 1) / 2;
      return std::clamp(mid, static_cast<double>(minNs()), static_cast<double>(max_));
    }
  }
  return static_cast<double>(max_);
}

}  // namespace rtpx::gen

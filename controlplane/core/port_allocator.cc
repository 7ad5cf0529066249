#include "controlplane/core/port_allocator.h"

#include <absl/strings/str_cat.h>

namespace rtpx {

absl::StatusOr<PortAllocator> PortAllocator::create(uint16_t min, uint16_t max, std::string name) {
  const uint32_t first = min + (min % 2);  // round up to even
  if (min == 0 || first + 1 > max)
    return absl::InvalidArgumentError(
        absl::StrCat("interface ", name, ": port range ", min, "-", max,
                     " holds no RTP/RTCP pair (need 1 <= min and an even port p with p+1 <= max)"));
  PortAllocator a;
  a.name_ = std::move(name);
  a.min_ = min;
  a.max_ = max;
  a.first_ = static_cast<uint16_t>(first);
  const std::size_t pairs = (static_cast<uint32_t>(max) - first + 1) / 2;
  a.free_.resize(pairs);
  for (std::size_t i = 0; i < pairs; ++i) a.free_[i] = static_cast<uint16_t>(i);
  a.free_count_ = pairs;
  a.allocated_.assign(pairs, false);
  return a;
}

absl::StatusOr<uint16_t> PortAllocator::allocate() {
  if (free_count_ == 0)
    return absl::ResourceExhaustedError(absl::StrCat(
        "interface ", name_, ": no free RTP/RTCP port pair in ", min_, "-", max_, " (all ",
        capacity(), " pairs in use; widen sessions.port_min/port_max or add an interface)"));
  const uint16_t index = free_[head_];
  head_ = (head_ + 1) % free_.size();
  --free_count_;
  allocated_[index] = true;
  return static_cast<uint16_t>(first_ + 2 * index);
}

absl::Status PortAllocator::release(uint16_t rtp_port) {
  if (rtp_port < first_ || (rtp_port - first_) % 2 != 0 ||
      static_cast<std::size_t>(rtp_port - first_) / 2 >= allocated_.size())
    return absl::FailedPreconditionError(absl::StrCat("interface ", name_, ": port ", rtp_port,
                                                      " is not an RTP port of ", min_, "-", max_));
  const std::size_t index = (rtp_port - first_) / 2;
  if (!allocated_[index])
    return absl::FailedPreconditionError(
        absl::StrCat("interface ", name_, ": port ", rtp_port, " is not allocated"));
  allocated_[index] = false;
  free_[(head_ + free_count_) % free_.size()] = static_cast<uint16_t>(index);
  ++free_count_;
  return absl::OkStatus();
}

bool PortAllocator::isAllocated(uint16_t rtp_port) const {
  if (rtp_port < first_ || (rtp_port - first_) % 2 != 0) return false;
  const std::size_t index = (rtp_port - first_) / 2;
  return index < allocated_.size() && allocated_[index];
}

}  // namespace rtpx

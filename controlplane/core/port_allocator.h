// Media ports of one interface: a configured range [min, max] handed out as RTP/RTCP pairs, the
// RTP port even and RTCP on the next port (RFC 3550 section 11). A pair is the unit even for
// rtcp-mux streams (RFC 5761), so a re-offer or answer that drops rtcp-mux still has its RTCP
// port without re-numbering what the peers were told.
//
// Allocation and release are O(1): free pairs wait in a FIFO, so a released port is the last to
// be reused (late packets of an ended call rarely reach a new one). Control side only; the
// session manager's mutex serialises callers.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace rtpx {

class PortAllocator {
 public:
  // The pairs are the even ports p with min <= p and p + 1 <= max. INVALID_ARGUMENT unless the
  // range holds at least one pair and min > 0. `name` (the interface) appears in errors.
  static absl::StatusOr<PortAllocator> create(uint16_t min, uint16_t max, std::string name);

  // The RTP port of a free pair (its RTCP port is the result + 1). RESOURCE_EXHAUSTED when
  // every pair is in use.
  absl::StatusOr<uint16_t> allocate();
  // Returns the pair whose RTP port is `rtp_port`. Releasing a port that is not allocated (or
  // not an RTP port of this range) is a caller bug: FAILED_PRECONDITION, nothing changes.
  absl::Status release(uint16_t rtp_port);

  bool isAllocated(uint16_t rtp_port) const;
  std::size_t capacity() const { return allocated_.size(); }  // pairs
  std::size_t available() const { return free_count_; }       // free pairs
  uint16_t min() const { return min_; }
  uint16_t max() const { return max_; }
  uint16_t firstPort() const { return first_; }
  const std::string& name() const { return name_; }

 private:
  PortAllocator() = default;

  std::string name_;
  uint16_t min_ = 0;
  uint16_t max_ = 0;
  uint16_t first_ = 0;  // RTP port of pair 0
  // FIFO ring of free pair indices: free_[head_ .. head_ + free_count_) modulo capacity.
  std::vector<uint16_t> free_;
  std::size_t head_ = 0;
  std::size_t free_count_ = 0;
  std::vector<bool> allocated_;  // by pair index
};

}  // namespace rtpx

// ARP / ND neighbor table. One writer (the main lcore, which owns resolution), any number of
// lock-free readers (workers choosing an egress MAC, the stats path). Each slot is a seqlock
// over a few atomic words: a reader never blocks and retries only if it raced with a write to
// that very slot. Entries are never removed, only aged (REACHABLE → STALE) or marked FAILED,
// so a probe chain never breaks; a full table refuses new neighbors and says so.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <optional>
#include <vector>

#include "dataplane/net_types.h"

namespace rtpx {

enum class NeighborState : uint8_t { kNone = 0, kIncomplete, kReachable, kStale, kFailed };

struct NeighborEntry {
  uint16_t port = 0;
  IpAddr ip;
  MacAddr mac;
  NeighborState state = NeighborState::kNone;
  uint64_t confirmed_ns = 0;  // last reply/request seen from it (monotonic clock)
};

class NeighborTable {
 public:
  static constexpr size_t kCapacity = 4096;  // power of two

  NeighborTable();

  // Readers: any thread, never block, never allocate.
  std::optional<NeighborEntry> find(uint16_t port, const IpAddr& ip) const noexcept;
  // A usable MAC: the entry is REACHABLE or STALE (still used while being refreshed).
  std::optional<MacAddr> resolve(uint16_t port, const IpAddr& ip) const noexcept;

  // Writer: only the owning thread.
  // Records proof of reachability (a reply, or a request from that neighbor).
  bool confirm(uint16_t port, const IpAddr& ip, const MacAddr& mac, uint64_t now_ns) noexcept;
  // Records that a request went out for an address not yet known; keeps a known MAC.
  bool markIncomplete(uint16_t port, const IpAddr& ip) noexcept;
  bool setState(uint16_t port, const IpAddr& ip, NeighborState state) noexcept;
  // REACHABLE entries confirmed before now - reachable_ns become STALE.
  void age(uint64_t now_ns, uint64_t reachable_ns) noexcept;

  // Control side: a consistent copy of every entry.
  std::vector<NeighborEntry> snapshot() const;
  size_t size() const noexcept { return used_.load(std::memory_order_relaxed); }

 private:
  static constexpr size_t kWords = 5;
  struct alignas(64) Slot {
    std::atomic<uint32_t> seq{0};
    std::array<std::atomic<uint64_t>, kWords> w{};
  };

  static size_t hashOf(uint16_t port, const IpAddr& ip) noexcept;
  static bool decode(const std::array<uint64_t, kWords>& w, NeighborEntry* e) noexcept;
  static std::array<uint64_t, kWords> encode(const NeighborEntry& e) noexcept;
  bool readSlot(const Slot& s, NeighborEntry* e) const noexcept;
  void writeSlot(Slot& s, const NeighborEntry& e) noexcept;
  // Slot holding (port, ip), or the empty slot where it would go, or nullptr if full.
  Slot* probe(uint16_t port, const IpAddr& ip, bool* found) noexcept;

  std::vector<Slot> slots_;
  std::atomic<size_t> used_{0};
};

}  // namespace rtpx

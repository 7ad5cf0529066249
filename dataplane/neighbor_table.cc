#include "dataplane/neighbor_table.h"

#include <cstring>

namespace rtpx {

NeighborTable::NeighborTable() : slots_(kCapacity) {}

size_t NeighborTable::hashOf(uint16_t port, const IpAddr& ip) noexcept {
  // FNV-1a over the key; the table is small and keys are few, so quality beats speed here.
  uint64_t h = 1469598103934665603ull;
  auto mix = [&h](uint8_t b) {
    h ^= b;
    h *= 1099511628211ull;
  };
  mix(static_cast<uint8_t>(port));
  mix(static_cast<uint8_t>(port >> 8));
  mix(static_cast<uint8_t>(ip.family));
  for (uint8_t b : ip.bytes) mix(b);
  return static_cast<size_t>(h) & (kCapacity - 1);
}

std::array<uint64_t, NeighborTable::kWords> NeighborTable::encode(const NeighborEntry& e) noexcept {
  std::array<uint64_t, kWords> w{};
  std::memcpy(&w[0], e.ip.bytes.data(), 16);
  uint64_t mac = 0;
  std::memcpy(&mac, e.mac.bytes.data(), 6);
  w[2] = mac;
  w[3] = static_cast<uint64_t>(e.ip.family) | (static_cast<uint64_t>(e.state) << 8) |
         (static_cast<uint64_t>(e.port) << 16);
  w[4] = e.confirmed_ns;
  return w;
}

bool NeighborTable::decode(const std::array<uint64_t, kWords>& w, NeighborEntry* e) noexcept {
  auto family = static_cast<IpAddr::Family>(w[3] & 0xff);
  if (family == IpAddr::Family::kNone) return false;
  e->ip.family = family;
  std::memcpy(e->ip.bytes.data(), &w[0], 16);
  std::memcpy(e->mac.bytes.data(), &w[2], 6);
  e->state = static_cast<NeighborState>((w[3] >> 8) & 0xff);
  e->port = static_cast<uint16_t>(w[3] >> 16);
  e->confirmed_ns = w[4];
  return true;
}

bool NeighborTable::readSlot(const Slot& s, NeighborEntry* e) const noexcept {
  std::array<uint64_t, kWords> w;
  for (;;) {
    uint32_t s1 = s.seq.load(std::memory_order_acquire);
    if (s1 & 1) continue;  // writer inside: it finishes in a few stores
    for (size_t i = 0; i < kWords; ++i) w[i] = s.w[i].load(std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (s.seq.load(std::memory_order_relaxed) == s1) break;
  }
  return decode(w, e);
}

void NeighborTable::writeSlot(Slot& s, const NeighborEntry& e) noexcept {
  auto w = encode(e);
  uint32_t seq = s.seq.load(std::memory_order_relaxed);
  s.seq.store(seq + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  for (size_t i = 0; i < kWords; ++i) s.w[i].store(w[i], std::memory_order_relaxed);
  s.seq.store(seq + 2, std::memory_order_release);
}

std::optional<NeighborEntry> NeighborTable::find(uint16_t port, const IpAddr& ip) const noexcept {
  size_t i = hashOf(port, ip);
  for (size_t n = 0; n < kCapacity; ++n, i = (i + 1) & (kCapacity - 1)) {
    NeighborEntry e;
    if (!readSlot(slots_[i], &e)) return std::nullopt;  // empty slot ends the chain
    if (e.port == port && e.ip == ip) return e;
  }
  return std::nullopt;
}

std::optional<MacAddr> NeighborTable::resolve(uint16_t port, const IpAddr& ip) const noexcept {
  auto e = find(port, ip);
  if (!e || (e->state != NeighborState::kReachable && e->state != NeighborState::kStale))
    return std::nullopt;
  return e->mac;
}

NeighborTable::Slot* NeighborTable::probe(uint16_t port, const IpAddr& ip, bool* found) noexcept {
  size_t i = hashOf(port, ip);
  for (size_t n = 0; n < kCapacity; ++n, i = (i + 1) & (kCapacity - 1)) {
    NeighborEntry e;
    if (!readSlot(slots_[i], &e)) {
      *found = false;
      return &slots_[i];
    }
    if (e.port == port && e.ip == ip) {
      *found = true;
      return &slots_[i];
    }
  }
  return nullptr;
}

bool NeighborTable::confirm(uint16_t port, const IpAddr& ip, const MacAddr& mac,
                            uint64_t now_ns) noexcept {
  bool found = false;
  Slot* s = probe(port, ip, &found);
  if (s == nullptr) return false;
  if (!found) used_.fetch_add(1, std::memory_order_relaxed);
  writeSlot(*s, NeighborEntry{port, ip, mac, NeighborState::kReachable, now_ns});
  return true;
}

bool NeighborTable::markIncomplete(uint16_t port, const IpAddr& ip) noexcept {
  bool found = false;
  Slot* s = probe(port, ip, &found);
  if (s == nullptr) return false;
  if (found) return true;  // known entries keep their MAC while being refreshed
  used_.fetch_add(1, std::memory_order_relaxed);
  writeSlot(*s, NeighborEntry{port, ip, MacAddr{}, NeighborState::kIncomplete, 0});
  return true;
}

bool NeighborTable::setState(uint16_t port, const IpAddr& ip, NeighborState state) noexcept {
  bool found = false;
  Slot* s = probe(port, ip, &found);
  if (s == nullptr || !found) return false;
  NeighborEntry e;
  readSlot(*s, &e);
  e.state = state;
  writeSlot(*s, e);
  return true;
}

void NeighborTable::age(uint64_t now_ns, uint64_t reachable_ns) noexcept {
  for (auto& s : slots_) {
    NeighborEntry e;
    if (!readSlot(s, &e) || e.state != NeighborState::kReachable) continue;
    if (now_ns - e.confirmed_ns > reachable_ns) {
      e.state = NeighborState::kStale;
      writeSlot(s, e);
    }
  }
}

std::vector<NeighborEntry> NeighborTable::snapshot() const {
  std::vector<NeighborEntry> out;
  for (const auto& s : slots_) {
    NeighborEntry e;
    if (readSlot(s, &e)) out.push_back(e);
  }
  return out;
}

}  // namespace rtpx

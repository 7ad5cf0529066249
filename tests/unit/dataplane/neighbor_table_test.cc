#include "dataplane/neighbor_table.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

namespace {

rtpx::IpAddr ip(const char* s) {
  auto a = rtpx::IpAddr::parse(s);
  REQUIRE(a.has_value());
  return *a;
}

rtpx::MacAddr mac(const char* s) {
  auto m = rtpx::MacAddr::parse(s);
  REQUIRE(m.has_value());
  return *m;
}

// 10.x.y.z from an index: distinct IPv4 keys.
rtpx::IpAddr v4Key(uint32_t i) {
  rtpx::IpAddr a;
  a.family = rtpx::IpAddr::Family::kV4;
  a.bytes[0] = 10;
  a.bytes[1] = static_cast<uint8_t>(i >> 16);
  a.bytes[2] = static_cast<uint8_t>(i >> 8);
  a.bytes[3] = static_cast<uint8_t>(i);
  return a;
}

rtpx::MacAddr uniformMac(uint8_t b) {
  return rtpx::MacAddr{{b, b, b, b, b, b}};
}

constexpr uint64_t kSec = 1'000'000'000;

}  // namespace

TEST_CASE("NeighborTable confirm, find and resolve", "[neighbor]") {
  rtpx::NeighborTable t;
  const rtpx::IpAddr a = ip("192.0.2.1");
  CHECK(t.size() == 0);
  CHECK_FALSE(t.find(0, a).has_value());
  CHECK_FALSE(t.resolve(0, a).has_value());

  REQUIRE(t.confirm(0, a, mac("02:aa:bb:cc:dd:ee"), 5 * kSec));
  CHECK(t.size() == 1);
  auto e = t.find(0, a);
  REQUIRE(e.has_value());
  CHECK(e->port == 0);
  CHECK(e->ip == a);
  CHECK(e->mac.toString() == "02:aa:bb:cc:dd:ee");
  CHECK(e->state == rtpx::NeighborState::kReachable);
  CHECK(e->confirmed_ns == 5 * kSec);
  auto m = t.resolve(0, a);
  REQUIRE(m.has_value());
  CHECK(m->toString() == "02:aa:bb:cc:dd:ee");

  // A new confirmation replaces MAC and time without adding an entry.
  REQUIRE(t.confirm(0, a, mac("02:11:22:33:44:55"), 7 * kSec));
  CHECK(t.size() == 1);
  e = t.find(0, a);
  REQUIRE(e.has_value());
  CHECK(e->mac.toString() == "02:11:22:33:44:55");
  CHECK(e->confirmed_ns == 7 * kSec);
  CHECK(t.resolve(0, a)->toString() == "02:11:22:33:44:55");
}

TEST_CASE("NeighborTable markIncomplete creates an unresolved entry and keeps a known MAC",
          "[neighbor]") {
  rtpx::NeighborTable t;
  const rtpx::IpAddr unknown = ip("192.0.2.7");
  REQUIRE(t.markIncomplete(1, unknown));
  CHECK(t.size() == 1);
  auto e = t.find(1, unknown);
  REQUIRE(e.has_value());
  CHECK(e->state == rtpx::NeighborState::kIncomplete);
  CHECK(e->mac.isZero());
  CHECK(e->confirmed_ns == 0);
  CHECK_FALSE(t.resolve(1, unknown).has_value());
  // Marking again changes nothing.
  REQUIRE(t.markIncomplete(1, unknown));
  CHECK(t.size() == 1);

  const rtpx::IpAddr known = ip("2001:db8::1");
  REQUIRE(t.confirm(1, known, mac("02:aa:bb:cc:dd:ee"), 3 * kSec));
  REQUIRE(t.markIncomplete(1, known));
  CHECK(t.size() == 2);
  e = t.find(1, known);
  REQUIRE(e.has_value());
  CHECK(e->mac.toString() == "02:aa:bb:cc:dd:ee");
  CHECK(e->confirmed_ns == 3 * kSec);
  REQUIRE(t.resolve(1, known).has_value());
  CHECK(t.resolve(1, known)->toString() == "02:aa:bb:cc:dd:ee");

  // The answer to the request completes the incomplete entry.
  REQUIRE(t.confirm(1, unknown, mac("02:00:00:00:00:07"), 4 * kSec));
  CHECK(t.size() == 2);
  CHECK(t.resolve(1, unknown)->toString() == "02:00:00:00:00:07");
}

TEST_CASE("NeighborTable setState FAILED stops resolution; a confirmation revives it",
          "[neighbor]") {
  rtpx::NeighborTable t;
  const rtpx::IpAddr a = ip("192.0.2.1");
  CHECK_FALSE(t.setState(0, a, rtpx::NeighborState::kFailed));  // unknown key
  CHECK(t.size() == 0);

  REQUIRE(t.confirm(0, a, mac("02:aa:bb:cc:dd:ee"), kSec));
  REQUIRE(t.setState(0, a, rtpx::NeighborState::kFailed));
  CHECK_FALSE(t.resolve(0, a).has_value());
  auto e = t.find(0, a);
  REQUIRE(e.has_value());
  CHECK(e->state == rtpx::NeighborState::kFailed);
  CHECK(e->mac.toString() == "02:aa:bb:cc:dd:ee");  // only the state changed
  CHECK(e->confirmed_ns == kSec);

  REQUIRE(t.setState(0, a, rtpx::NeighborState::kIncomplete));
  CHECK_FALSE(t.resolve(0, a).has_value());
  REQUIRE(t.setState(0, a, rtpx::NeighborState::kStale));
  CHECK(t.resolve(0, a).has_value());

  REQUIRE(t.setState(0, a, rtpx::NeighborState::kFailed));
  REQUIRE(t.confirm(0, a, mac("02:aa:bb:cc:dd:ef"), 2 * kSec));
  CHECK(t.find(0, a)->state == rtpx::NeighborState::kReachable);
  CHECK(t.resolve(0, a)->toString() == "02:aa:bb:cc:dd:ef");
  CHECK(t.size() == 1);
}

TEST_CASE("NeighborTable age moves REACHABLE to STALE after the reachable time", "[neighbor]") {
  rtpx::NeighborTable t;
  const rtpx::IpAddr a = ip("192.0.2.1");
  const rtpx::IpAddr b = ip("192.0.2.2");
  const rtpx::IpAddr inc = ip("192.0.2.3");
  const rtpx::IpAddr failed = ip("192.0.2.4");
  const uint64_t reachable = 30 * kSec;
  REQUIRE(t.confirm(0, a, mac("02:00:00:00:00:01"), 100 * kSec));
  REQUIRE(t.confirm(0, b, mac("02:00:00:00:00:02"), 110 * kSec));
  REQUIRE(t.markIncomplete(0, inc));
  REQUIRE(t.confirm(0, failed, mac("02:00:00:00:00:04"), 0));
  REQUIRE(t.setState(0, failed, rtpx::NeighborState::kFailed));

  // Exactly the reachable time: still REACHABLE.
  t.age(130 * kSec, reachable);
  CHECK(t.find(0, a)->state == rtpx::NeighborState::kReachable);

  // One nanosecond past it: STALE, yet still resolves (used while being refreshed).
  t.age(130 * kSec + 1, reachable);
  CHECK(t.find(0, a)->state == rtpx::NeighborState::kStale);
  CHECK(t.find(0, a)->confirmed_ns == 100 * kSec);
  CHECK(t.find(0, b)->state == rtpx::NeighborState::kReachable);
  REQUIRE(t.resolve(0, a).has_value());
  CHECK(t.resolve(0, a)->toString() == "02:00:00:00:00:01");
  // Other states are left alone.
  CHECK(t.find(0, inc)->state == rtpx::NeighborState::kIncomplete);
  CHECK(t.find(0, failed)->state == rtpx::NeighborState::kFailed);

  t.age(200 * kSec, reachable);
  CHECK(t.find(0, b)->state == rtpx::NeighborState::kStale);
  CHECK(t.find(0, inc)->state == rtpx::NeighborState::kIncomplete);
  CHECK(t.find(0, failed)->state == rtpx::NeighborState::kFailed);

  // A new confirmation makes it REACHABLE again.
  REQUIRE(t.confirm(0, a, mac("02:00:00:00:00:01"), 201 * kSec));
  CHECK(t.find(0, a)->state == rtpx::NeighborState::kReachable);
  t.age(202 * kSec, reachable);
  CHECK(t.find(0, a)->state == rtpx::NeighborState::kReachable);
  CHECK(t.size() == 4);
}

TEST_CASE("NeighborTable keys on family, address and port", "[neighbor]") {
  rtpx::NeighborTable t;
  const rtpx::IpAddr v4 = ip("192.0.2.1");
  // Same 16 bytes as the IPv4 key (192.0.2.1 then zeros), but IPv6.
  const rtpx::IpAddr v6 = rtpx::IpAddr::v6(v4.bytes.data());
  REQUIRE(v6.toString() == "c000:201::");
  REQUIRE(t.confirm(0, v4, mac("02:00:00:00:00:04"), 1));
  REQUIRE(t.confirm(0, v6, mac("02:00:00:00:00:06"), 2));
  REQUIRE(t.confirm(1, v4, mac("02:00:00:00:01:04"), 3));
  CHECK(t.size() == 3);
  CHECK(t.resolve(0, v4)->toString() == "02:00:00:00:00:04");
  CHECK(t.resolve(0, v6)->toString() == "02:00:00:00:00:06");
  CHECK(t.resolve(1, v4)->toString() == "02:00:00:00:01:04");
  CHECK_FALSE(t.find(1, v6).has_value());
  CHECK_FALSE(t.find(2, v4).has_value());
  CHECK(t.find(0, v6)->ip.isV6());
  CHECK(t.find(0, v4)->ip.isV4());
  CHECK(t.find(1, v4)->port == 1);

  // Ports above 255 are distinct too (the key covers both port bytes).
  REQUIRE(t.confirm(256, v4, mac("02:00:00:00:02:56"), 4));
  CHECK(t.resolve(256, v4)->toString() == "02:00:00:00:02:56");
  CHECK(t.resolve(0, v4)->toString() == "02:00:00:00:00:04");
  CHECK(t.size() == 4);
}

TEST_CASE("NeighborTable refuses new neighbors once full", "[neighbor]") {
  auto t = std::make_unique<rtpx::NeighborTable>();
  constexpr size_t n = rtpx::NeighborTable::kCapacity;
  for (uint32_t i = 0; i < n; ++i) {
    if (!t->confirm(0, v4Key(i), uniformMac(static_cast<uint8_t>(i)), i)) {
      FAIL("confirm failed at entry " << i);
    }
  }
  CHECK(t->size() == n);

  const rtpx::IpAddr extra = v4Key(static_cast<uint32_t>(n));
  CHECK_FALSE(t->confirm(0, extra, uniformMac(1), 1));
  CHECK_FALSE(t->markIncomplete(0, extra));
  CHECK_FALSE(t->setState(0, extra, rtpx::NeighborState::kFailed));
  CHECK_FALSE(t->find(0, extra).has_value());
  CHECK(t->size() == n);

  // Existing keys can still be updated and found, wherever they sit.
  CHECK(t->confirm(0, v4Key(0), uniformMac(0xab), 99));
  CHECK(t->find(0, v4Key(0))->confirmed_ns == 99);
  CHECK(t->resolve(0, v4Key(0))->toString() == "ab:ab:ab:ab:ab:ab");
  const auto last = t->find(0, v4Key(static_cast<uint32_t>(n - 1)));
  REQUIRE(last.has_value());
  CHECK(last->confirmed_ns == n - 1);
  CHECK(t->markIncomplete(0, v4Key(17)));
  CHECK(t->setState(0, v4Key(18), rtpx::NeighborState::kStale));
  CHECK(t->size() == n);
  CHECK(t->snapshot().size() == n);
}

TEST_CASE("NeighborTable snapshot returns every entry", "[neighbor]") {
  rtpx::NeighborTable t;
  CHECK(t.snapshot().empty());
  REQUIRE(t.confirm(0, ip("192.0.2.1"), mac("02:00:00:00:00:01"), 10));
  REQUIRE(t.confirm(1, ip("2001:db8::1"), mac("02:00:00:00:00:02"), 20));
  REQUIRE(t.markIncomplete(0, ip("192.0.2.9")));
  REQUIRE(t.confirm(2, ip("fe80::1"), mac("02:00:00:00:00:03"), 30));
  REQUIRE(t.setState(2, ip("fe80::1"), rtpx::NeighborState::kFailed));

  auto snap = t.snapshot();
  REQUIRE(snap.size() == 4);
  std::vector<std::tuple<uint16_t, std::string, std::string, rtpx::NeighborState, uint64_t>> got;
  for (const auto& e : snap)
    got.emplace_back(e.port, e.ip.toString(), e.mac.toString(), e.state, e.confirmed_ns);
  std::sort(got.begin(), got.end());
  using S = rtpx::NeighborState;
  const decltype(got) want = {
      {0, "192.0.2.1", "02:00:00:00:00:01", S::kReachable, 10},
      {0, "192.0.2.9", "00:00:00:00:00:00", S::kIncomplete, 0},
      {1, "2001:db8::1", "02:00:00:00:00:02", S::kReachable, 20},
      {2, "fe80::1", "02:00:00:00:00:03", S::kFailed, 30},
  };
  CHECK(got == want);
}

TEST_CASE("NeighborTable readers never observe a torn entry while the writer updates",
          "[neighbor][concurrency]") {
  auto t = std::make_unique<rtpx::NeighborTable>();
  constexpr uint32_t kKeys = 64;
  constexpr uint16_t kPort = 1;
  // Every write of key k at iteration i stores MAC = six bytes of (i & 0xff) and confirmed_ns = i,
  // so any mix of two writes shows up as a MAC that disagrees with itself or with the time.
  for (uint32_t k = 0; k < kKeys; ++k) REQUIRE(t->confirm(kPort, v4Key(k), uniformMac(0), 0));

  std::atomic<bool> stop{false};
  std::atomic<uint64_t> writes{0};
  struct ReaderStats {
    std::atomic<uint64_t> reads{0};
    uint64_t torn = 0, missing = 0, wrong_key = 0, backwards = 0;
  };
  ReaderStats stats[2];

  std::thread writer([&] {
    uint64_t i = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      ++i;
      for (uint32_t k = 0; k < kKeys; ++k)
        t->confirm(kPort, v4Key(k), uniformMac(static_cast<uint8_t>(i)), i);
      writes.store(i, std::memory_order_relaxed);
    }
  });
  auto reader = [&](ReaderStats& s, uint32_t offset) {
    std::vector<uint64_t> last(kKeys, 0);
    uint32_t k = offset;
    while (!stop.load(std::memory_order_relaxed)) {
      k = (k + 7) % kKeys;
      const rtpx::IpAddr key = v4Key(k);
      const auto e = t->find(kPort, key);
      s.reads.store(s.reads.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
      if (!e) {
        ++s.missing;
        continue;
      }
      if (e->port != kPort || e->ip != key || e->state != rtpx::NeighborState::kReachable)
        ++s.wrong_key;
      const uint8_t b = e->mac.bytes[0];
      bool consistent = b == static_cast<uint8_t>(e->confirmed_ns);
      for (uint8_t x : e->mac.bytes) consistent = consistent && x == b;
      if (!consistent) ++s.torn;
      // One writer, so a key's time never goes backwards for a reader.
      if (e->confirmed_ns < last[k]) ++s.backwards;
      last[k] = e->confirmed_ns;
    }
  };
  std::thread r1(reader, std::ref(stats[0]), 0u);
  std::thread r2(reader, std::ref(stats[1]), 31u);

  // About 200 ms; on a loaded machine a little longer until every thread has made progress
  // (bounded, so the test stays under a second).
  const auto start = std::chrono::steady_clock::now();
  auto progressed = [&] {
    return writes.load() >= 100 && stats[0].reads.load() >= 1000 && stats[1].reads.load() >= 1000;
  };
  for (;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    const auto elapsed = std::chrono::steady_clock::now() - start;
    if (elapsed >= std::chrono::milliseconds(200) && progressed()) break;
    if (elapsed >= std::chrono::milliseconds(800)) break;
  }
  stop.store(true);
  writer.join();
  r1.join();
  r2.join();

  for (const auto& s : stats) {
    CHECK(s.reads.load() >= 1000);
    CHECK(s.torn == 0);
    CHECK(s.missing == 0);
    CHECK(s.wrong_key == 0);
    CHECK(s.backwards == 0);
  }
  CHECK(writes.load() >= 100);  // the writer really did overwrite the entries many times
  CHECK(t->size() == kKeys);

  // After the writer stopped, every key holds the last iteration's values.
  const uint64_t final_i = writes.load();
  for (uint32_t k = 0; k < kKeys; ++k) {
    const auto e = t->find(kPort, v4Key(k));
    REQUIRE(e.has_value());
    // The writer only checks `stop` between complete passes over the keys.
    CHECK(e->confirmed_ns == final_i);
    CHECK(e->mac == uniformMac(static_cast<uint8_t>(e->confirmed_ns)));
  }
}

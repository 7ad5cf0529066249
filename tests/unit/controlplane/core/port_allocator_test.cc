#include "controlplane/core/port_allocator.h"

#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <vector>

namespace {

rtpx::PortAllocator make(uint16_t min, uint16_t max) {
  absl::StatusOr<rtpx::PortAllocator> a = rtpx::PortAllocator::create(min, max, "media0");
  INFO(a.status().ToString());
  REQUIRE(a.ok());
  return *std::move(a);
}

std::vector<uint16_t> allocateAll(rtpx::PortAllocator& a) {
  std::vector<uint16_t> out;
  for (;;) {
    absl::StatusOr<uint16_t> p = a.allocate();
    if (!p.ok()) {
      CHECK(p.status().code() == absl::StatusCode::kResourceExhausted);
      break;
    }
    out.push_back(*p);
  }
  return out;
}

}  // namespace

TEST_CASE("PortAllocator hands out even RTP ports with RTCP on the next port", "[ports]") {
  rtpx::PortAllocator a = make(30000, 39999);
  CHECK(a.capacity() == 5000);
  CHECK(a.available() == 5000);
  CHECK(a.firstPort() == 30000);
  const std::vector<uint16_t> ports = allocateAll(a);
  REQUIRE(ports.size() == 5000);
  CHECK(ports.front() == 30000);
  CHECK(ports[1] == 30002);
  CHECK(ports.back() == 39998);  // its RTCP port 39999 is the top of the range
  std::set<uint16_t> seen;
  for (uint16_t p : ports) {
    CHECK(p % 2 == 0);
    CHECK(p >= 30000);
    CHECK(p + 1 <= 39999);
    CHECK(seen.insert(p).second);  // never twice
    CHECK(a.isAllocated(p));
  }
  CHECK(a.available() == 0);
}

TEST_CASE("PortAllocator rounds an odd minimum up and ignores an unpaired top port", "[ports]") {
  rtpx::PortAllocator a = make(30001, 30006);  // pairs 30002/3, 30004/5; 30006 has no 30007
  CHECK(a.firstPort() == 30002);
  CHECK(a.capacity() == 2);
  CHECK(allocateAll(a) == std::vector<uint16_t>{30002, 30004});
}

TEST_CASE("PortAllocator exhaustion is an error that leaks nothing", "[ports]") {
  rtpx::PortAllocator a = make(40000, 40019);  // 10 pairs
  std::vector<uint16_t> first = allocateAll(a);
  REQUIRE(first.size() == 10);
  absl::StatusOr<uint16_t> more = a.allocate();
  REQUIRE_FALSE(more.ok());
  CHECK(more.status().code() == absl::StatusCode::kResourceExhausted);
  const std::string msg(more.status().message());
  CHECK_THAT(msg, Catch::Contains("media0"));
  CHECK_THAT(msg, Catch::Contains("40000-40019"));
  CHECK_THAT(msg, Catch::Contains("port_min"));
  for (uint16_t p : first) REQUIRE(a.release(p).ok());
  CHECK(a.available() == 10);
  std::vector<uint16_t> second = allocateAll(a);
  CHECK(second.size() == 10);
  CHECK(std::set<uint16_t>(second.begin(), second.end()) ==
        std::set<uint16_t>(first.begin(), first.end()));
}

TEST_CASE("PortAllocator reuses released ports last (FIFO)", "[ports]") {
  rtpx::PortAllocator a = make(30000, 30007);  // 4 pairs
  REQUIRE(*a.allocate() == 30000);
  REQUIRE(a.release(30000).ok());
  // 30000 went to the back of the queue: the never-used ports come first.
  CHECK(*a.allocate() == 30002);
  CHECK(*a.allocate() == 30004);
  CHECK(*a.allocate() == 30006);
  CHECK(*a.allocate() == 30000);
  CHECK_FALSE(a.allocate().ok());
}

TEST_CASE("PortAllocator refuses to release what it did not hand out", "[ports]") {
  rtpx::PortAllocator a = make(30000, 30009);
  const uint16_t p = *a.allocate();
  for (uint16_t bad : {uint16_t(30002), uint16_t(p + 1), uint16_t(29998), uint16_t(30010),
                       uint16_t(0), uint16_t(65535)}) {
    INFO(bad);
    const absl::Status st = a.release(bad);
    CHECK(st.code() == absl::StatusCode::kFailedPrecondition);
  }
  CHECK(a.available() == 4);
  REQUIRE(a.release(p).ok());
  const absl::Status twice = a.release(p);  // double free: an error, not a crash
  CHECK(twice.code() == absl::StatusCode::kFailedPrecondition);
  CHECK_THAT(std::string(twice.message()), Catch::Contains("not allocated"));
  CHECK(a.available() == 5);
}

TEST_CASE("PortAllocator rejects ranges without a pair", "[ports]") {
  for (auto [lo, hi] :
       {std::pair<uint16_t, uint16_t>{30000, 30000}, {30001, 30002}, {0, 100}, {40000, 30000}}) {
    INFO(lo << "-" << hi);
    absl::StatusOr<rtpx::PortAllocator> a = rtpx::PortAllocator::create(lo, hi, "media0");
    REQUIRE_FALSE(a.ok());
    CHECK(a.status().code() == absl::StatusCode::kInvalidArgument);
  }
  CHECK(make(65534, 65535).capacity() == 1);
  CHECK(make(2, 65535).capacity() == 32767);
}

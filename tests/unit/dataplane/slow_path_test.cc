// The slow path's pure parts: RFC 7983's first-byte table and the per-flow rate limit. The
// packet path (STUN/DTLS set aside by the relay, datagrams sent from a flow) is tested on the
// relay rig in relay_test.cc ("[slowpath]").
#include "dataplane/slow_path.h"

#include <catch2/catch.hpp>

#include <cstdint>

namespace {

using rtpx::PayloadKind;
using rtpx::SlowPathLimit;

constexpr uint64_t kMs = 1'000'000;

}  // namespace

TEST_CASE("Slow path: the first byte tells RTP/RTCP, STUN and DTLS apart (RFC 7983)",
          "[slowpath]") {
  for (int b = 0; b < 256; ++b) {
    INFO("first byte " << b);
    PayloadKind want = PayloadKind::kUnknown;  // ZRTP 16-19, TURN channels 64-79, the rest
    if (b <= 3) want = PayloadKind::kStun;
    if (b >= 20 && b <= 63) want = PayloadKind::kDtls;
    if (b >= 128 && b <= 191) want = PayloadKind::kRtp;
    CHECK(rtpx::payloadKind(static_cast<uint8_t>(b)) == want);
    // The relay's one-instruction test for media is the same partition.
    CHECK(((b & 0xc0) == 0x80) == (want == PayloadKind::kRtp));
  }
}

TEST_CASE("Slow path: the rate limit admits a burst, then one per interval", "[slowpath]") {
  const SlowPathLimit def;
  CHECK(def.interval_ns == 20 * kMs);
  CHECK(def.tolerance_ns == 19 * 20 * kMs);
  const SlowPathLimit l = SlowPathLimit::of(50, 20);
  CHECK(l.interval_ns == def.interval_ns);
  CHECK(l.tolerance_ns == def.tolerance_ns);

  uint64_t tat = 0;  // a fresh flow
  const uint64_t t0 = 7'000 * kMs;
  int admitted = 0;
  while (l.admit(tat, t0)) ++admitted;
  CHECK(admitted == 20);
  CHECK(tat == t0 + 20 * 20 * kMs);
  // A refused packet changes nothing.
  CHECK_FALSE(l.admit(tat, t0 + 19 * kMs));
  CHECK(tat == t0 + 20 * 20 * kMs);
  CHECK(l.admit(tat, t0 + 20 * kMs));
  CHECK_FALSE(l.admit(tat, t0 + 20 * kMs));
  // Over ten seconds at twice the rate, half gets through (plus what the burst held).
  uint64_t t = t0 + 1000 * kMs;
  tat = 0;
  int in = 0;
  for (int i = 0; i < 1000; ++i, t += 10 * kMs) in += l.admit(tat, t) ? 1 : 0;
  CHECK(in == 500 + 19);

  // One at a time, one per second.
  const SlowPathLimit one = SlowPathLimit::of(1, 1);
  CHECK(one.interval_ns == 1000 * kMs);
  CHECK(one.tolerance_ns == 0);
  tat = 0;
  CHECK(one.admit(tat, t0));
  CHECK_FALSE(one.admit(tat, t0 + 999 * kMs));
  CHECK(one.admit(tat, t0 + 1000 * kMs));
}

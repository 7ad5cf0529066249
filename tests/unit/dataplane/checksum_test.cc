// dataplane/checksum.h against DPDK's own Internet checksum (rte_raw_cksum, a plain 16-bit
// word loop) over random data of every length and alignment, and RFC 1624 incremental updates
// against full recomputation.
#include <catch2/catch.hpp>

#include <rte_ip.h>

#include <cstdint>
#include <random>
#include <vector>

#include "dataplane/checksum.h"

namespace {

std::vector<uint8_t> randomBytes(std::mt19937& rng, size_t n) {
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

}  // namespace

TEST_CASE("Checksum: the same sum as rte_raw_cksum for every length and alignment", "[checksum]") {
  std::mt19937 rng(7);
  for (size_t len = 0; len <= 300; ++len) {
    for (size_t off = 0; off < 8; ++off) {
      auto buf = randomBytes(rng, len + off);
      const uint8_t* p = buf.data() + off;
      INFO("len " << len << " offset " << off);
      CHECK(rtpx::cksumFold(rtpx::cksumAdd(p, len)) == rte_raw_cksum(p, len));
    }
  }
  // All ones: the largest words, where carries pile up.
  std::vector<uint8_t> ones(1500, 0xff);
  for (size_t len : {size_t{1}, size_t{2}, size_t{31}, size_t{64}, size_t{1499}, size_t{1500}})
    CHECK(rtpx::cksumFold(rtpx::cksumAdd(ones.data(), len)) == rte_raw_cksum(ones.data(), len));
  // A sum carried over from an earlier call, as the pseudo header is.
  auto a = randomBytes(rng, 32), b = randomBytes(rng, 181);
  uint32_t ref = __rte_raw_cksum(a.data(), a.size(), 0);
  ref = __rte_raw_cksum(b.data(), b.size(), ref);
  CHECK(rtpx::cksumFold(rtpx::cksumAdd(b.data(), b.size(), rtpx::cksumAdd(a.data(), a.size()))) ==
        __rte_raw_cksum_reduce(ref));
  // Zero data folds to 0, anything else never does.
  std::vector<uint8_t> zeros(64, 0);
  CHECK(rtpx::cksumFold(rtpx::cksumAdd(zeros.data(), zeros.size())) == 0);
}

TEST_CASE("Checksum: an RFC 1624 update equals the checksum computed afresh", "[checksum]") {
  std::mt19937 rng(11);
  for (int round = 0; round < 2000; ++round) {
    // A message whose first 12 bytes (addresses and ports, say) are replaced.
    auto msg = randomBytes(rng, 12 + rng() % 200);
    if (round % 50 == 0) msg.assign(msg.size(), 0xff);
    const uint16_t old_ck = static_cast<uint16_t>(~rte_raw_cksum(msg.data(), msg.size()));
    const uint64_t old_words = rtpx::cksumAdd(msg.data(), 12);
    for (size_t i = 0; i < 12; ++i) msg[i] = static_cast<uint8_t>(rng());
    if (round % 7 == 0) msg[0] = msg[1] = 0;
    const uint16_t fresh = static_cast<uint16_t>(~rte_raw_cksum(msg.data(), msg.size()));
    const uint16_t updated = rtpx::cksumUpdate(old_ck, old_words, rtpx::cksumAdd(msg.data(), 12));
    INFO("round " << round);
    CHECK(updated == fresh);
  }
}

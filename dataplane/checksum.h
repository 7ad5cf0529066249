// The Internet checksum (RFC 1071) on the packet path. DPDK's rte_raw_cksum adds one 16-bit word
// at a time; these add 64-bit words with carry (RFC 1071 §2(C): deferred carries, §2(B): any
// word size), a quarter of the additions, and fold to the same value. The byte order is the memory
// order throughout (RFC 1071 §2(B)): sums and checksums are read and written as stored.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace rtpx {

// Adds `len` bytes at `p` to an unfolded sum. An odd last byte is padded with a zero byte.
// 64-bit words with their carries counted apart (add + adc per word), then the tail in smaller
// words; carries come back in end-around (2^64 - 1 is a multiple of 0xffff).
inline uint64_t cksumAdd(const void* p, size_t len, uint64_t acc = 0) noexcept {
  const auto* b = static_cast<const uint8_t*>(p);
  auto load64 = [](const uint8_t* q) {
    uint64_t w;
    std::memcpy(&w, q, 8);
    return w;
  };
  uint64_t carries = 0;
  for (; len >= 16; b += 16, len -= 16) {
    carries += __builtin_add_overflow(acc, load64(b), &acc);
    carries += __builtin_add_overflow(acc, load64(b + 8), &acc);
  }
  if (len >= 8) {
    carries += __builtin_add_overflow(acc, load64(b), &acc);
    b += 8;
    len -= 8;
  }
  uint64_t tail = carries;
  if (len >= 4) {
    uint32_t w;
    std::memcpy(&w, b, 4);
    tail += w;
    b += 4;
    len -= 4;
  }
  if (len >= 2) {
    uint16_t h;
    std::memcpy(&h, b, 2);
    tail += h;
    b += 2;
    len -= 2;
  }
  if (len != 0) {
    uint16_t h = 0;
    std::memcpy(&h, b, 1);
    tail += h;
  }
  // tail < 2^34: adding it back carries at most once, into a sum that then cannot carry.
  acc += tail;
  acc += acc < tail;
  return acc;
}

// Folds with end-around carry to 16 bits: 0 only when every word added was 0.
inline uint16_t cksumFold(uint64_t acc) noexcept {
  acc = (acc & 0xffffffffu) + (acc >> 32);
  acc = (acc & 0xffffffffu) + (acc >> 32);
  acc = (acc & 0xffffu) + (acc >> 16);
  acc = (acc & 0xffffu) + (acc >> 16);
  return static_cast<uint16_t>(acc);
}

// RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), where m is the folded sum of the words that
// changed and m' of what replaced them. Gives what a full recomputation gives (the sum of a
// message that is not all zeros never folds to +0).
inline uint16_t cksumUpdate(uint16_t old_cksum, uint64_t old_words, uint64_t new_words) noexcept {
  const uint64_t acc = uint64_t{static_cast<uint16_t>(~old_cksum)} +
                       static_cast<uint16_t>(~cksumFold(old_words)) + cksumFold(new_words);
  return static_cast<uint16_t>(~cksumFold(acc));
}

}  // namespace rtpx

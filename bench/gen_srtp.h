// Optional SRTP (RFC 3711, AES_CM_128_HMAC_SHA1_80, one fixed master key for every flow) for
// rtpx-gen: one libsrtp session per flow and direction, created before the traffic starts, so
// the packet path never looks a stream up in a list nor allocates (libsrtp would clone a stream
// on the first packet of each SSRC under a wildcard policy).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct srtp_ctx_t_;

namespace rtpx::gen {

inline constexpr size_t kSrtpKeySaltLen = 30;  // 16-byte key + 14-byte salt
inline constexpr uint16_t kSrtpTagLen = 10;    // HMAC-SHA1-80

// The SDES "inline:" form (RFC 4568): base64 of key || salt, 40 characters.
std::optional<std::vector<uint8_t>> decodeSrtpKey(std::string_view base64);

enum class SrtpResult : uint8_t { kOk, kReplay, kTooOld, kAuthFail, kError };

class SrtpFlows {
 public:
  // Two sessions (protect, unprotect) per flow; flow i's SSRC is ssrcs[i].
  static std::unique_ptr<SrtpFlows> create(const std::vector<uint8_t>& key,
                                           const std::vector<uint32_t>& ssrcs, std::string* error);
  ~SrtpFlows();
  SrtpFlows(const SrtpFlows&) = delete;
  SrtpFlows& operator=(const SrtpFlows&) = delete;

  // In place; `len` (RTP header + payload) grows by kSrtpTagLen.
  bool protect(uint32_t flow, uint8_t* rtp, int* len);
  // In place; `len` shrinks by kSrtpTagLen.
  SrtpResult unprotect(uint32_t flow, uint8_t* rtp, int* len);

 private:
  SrtpFlows() = default;
  std::vector<srtp_ctx_t_*> tx_, rx_;
};

}  // namespace rtpx::gen

#include "bench/gen_srtp.h"

#include <fmt/format.h>
#include <srtp2/srtp.h>

#include <cstring>

namespace rtpx::gen {

std::optional<std::vector<uint8_t>> decodeSrtpKey(std::string_view s) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::vector<uint8_t> out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : s) {
    if (c == '=') break;
    const int v = value(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<uint8_t>(acc >> bits));
    }
  }
  if (out.size() != kSrtpKeySaltLen) return std::nullopt;
  return out;
}

std::unique_ptr<SrtpFlows> SrtpFlows::create(const std::vector<uint8_t>& key,
                                             const std::vector<uint32_t>& ssrcs,
                                             std::string* error) {
  static const srtp_err_status_t init = srtp_init();
  if (init != srtp_err_status_ok) {
    *error = fmt::format("srtp_init: {}", static_cast<int>(init));
    return nullptr;
  }
  std::unique_ptr<SrtpFlows> f(new SrtpFlows());
  std::vector<uint8_t> k = key;  // libsrtp wants a non-const pointer
  for (int dir = 0; dir < 2; ++dir) {
    auto& v = dir == 0 ? f->tx_ : f->rx_;
    v.reserve(ssrcs.size());
    for (uint32_t ssrc : ssrcs) {
      srtp_policy_t p;
      std::memset(&p, 0, sizeof p);
      srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&p.rtp);
      srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&p.rtcp);
      p.ssrc.type = ssrc_specific;
      p.ssrc.value = ssrc;
      p.key = k.data();
      p.window_size = 128;
      srtp_t s = nullptr;
      if (srtp_err_status_t rc = srtp_create(&s, &p); rc != srtp_err_status_ok) {
        *error = fmt::format("srtp_create (flow {} of {}): error {}", v.size(), ssrcs.size(),
                             static_cast<int>(rc));
        return nullptr;
      }
      v.push_back(s);
    }
  }
  return f;
}

SrtpFlows::~SrtpFlows() {
  for (auto* s : tx_) srtp_dealloc(s);
  for (auto* s : rx_) srtp_dealloc(s);
}

bool SrtpFlows::protect(uint32_t flow, uint8_t* rtp, int* len) {
  return srtp_protect(tx_[flow], rtp, len) == srtp_err_status_ok;
}

SrtpResult SrtpFlows::unprotect(uint32_t flow, uint8_t* rtp, int* len) {
  switch (srtp_unprotect(rx_[flow], rtp, len)) {
    case srtp_err_status_ok:
      return SrtpResult::kOk;
    case srtp_err_status_replay_fail:
      return SrtpResult::kReplay;
    case srtp_err_status_replay_old:
      return SrtpResult::kTooOld;
    case srtp_err_status_auth_fail:
      return SrtpResult::kAuthFail;
    default:
      return SrtpResult::kError;
  }
}

}  // namespace rtpx::gen

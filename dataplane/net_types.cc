#include "dataplane/net_types.h"

#include <arpa/inet.h>

#include <cstdio>

namespace rtpx {

std::string MacAddr::toString() const {
  char buf[18];
  std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", bytes[0], bytes[1], bytes[2],
                bytes[3], bytes[4], bytes[5]);
  return buf;
}

std::optional<MacAddr> MacAddr::parse(std::string_view s) {
  if (s.size() != 17) return std::nullopt;
  MacAddr m;
  for (size_t i = 0; i < 6; ++i) {
    if (i > 0 && s[i * 3 - 1] != ':') return std::nullopt;
    unsigned v = 0;
    for (size_t j = 0; j < 2; ++j) {
      char c = s[i * 3 + j];
      v <<= 4;
      if (c >= '0' && c <= '9')
        v |= c - '0';
      else if (c >= 'a' && c <= 'f')
        v |= c - 'a' + 10;
      else if (c >= 'A' && c <= 'F')
        v |= c - 'A' + 10;
      else
        return std::nullopt;
    }
    m.bytes[i] = static_cast<uint8_t>(v);
  }
  return m;
}

std::string IpAddr::toString() const {
  char buf[INET6_ADDRSTRLEN];
  if (family == Family::kV4) return inet_ntop(AF_INET, bytes.data(), buf, sizeof buf);
  if (family == Family::kV6) return inet_ntop(AF_INET6, bytes.data(), buf, sizeof buf);
  return "none";
}

std::optional<IpAddr> IpAddr::parse(std::string_view s) {
  if (s.empty() || s.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  std::string str(s);
  IpAddr a;
  if (inet_pton(AF_INET, str.c_str(), a.bytes.data()) == 1) {
    a.family = Family::kV4;
    return a;
  }
  if (inet_pton(AF_INET6, str.c_str(), a.bytes.data()) == 1) {
    a.family = Family::kV6;
    return a;
  }
  return std::nullopt;
}

bool IpPrefix::contains(const IpAddr& a) const noexcept {
  if (a.family != addr.family) return false;
  unsigned full = length / 8, rest = length % 8;
  if (std::memcmp(a.bytes.data(), addr.bytes.data(), full) != 0) return false;
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (a.bytes[full] & mask) == (addr.bytes[full] & mask);
}

std::string IpPrefix::toString() const {
  return addr.toString() + "/" + std::to_string(length);
}

std::optional<IpPrefix> IpPrefix::parse(std::string_view s) {
  auto slash = s.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto addr = IpAddr::parse(s.substr(0, slash));
  if (!addr) return std::nullopt;
  auto len_str = s.substr(slash + 1);
  if (len_str.empty() || len_str.size() > 3) return std::nullopt;
  unsigned len = 0;
  for (char c : len_str) {
    if (c < '0' || c > '9') return std::nullopt;
    len = len * 10 + (c - '0');
  }
  if (len > (addr->isV4() ? 32u : 128u)) return std::nullopt;
  return IpPrefix{*addr, static_cast<uint8_t>(len)};
}

IpAddr linkLocalFromMac(const MacAddr& mac) {
  uint8_t b[16] = {0xfe, 0x80};
  b[8] = mac.bytes[0] ^ 0x02;
  b[9] = mac.bytes[1];
  b[10] = mac.bytes[2];
  b[11] = 0xff;
  b[12] = 0xfe;
  b[13] = mac.bytes[3];
  b[14] = mac.bytes[4];
  b[15] = mac.bytes[5];
  return IpAddr::v6(b);
}

IpAddr solicitedNodeMulticast(const IpAddr& v6) {
  uint8_t b[16] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff};
  b[13] = v6.bytes[13];
  b[14] = v6.bytes[14];
  b[15] = v6.bytes[15];
  return IpAddr::v6(b);
}

MacAddr multicastMac(const IpAddr& v6) {
  return MacAddr{{0x33, 0x33, v6.bytes[12], v6.bytes[13], v6.bytes[14], v6.bytes[15]}};
}

}  // namespace rtpx

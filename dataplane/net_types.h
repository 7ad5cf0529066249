// Plain address types shared by the dataplane and the control plane. Addresses are kept in
// network byte order, exactly as they sit in packet headers, so the fast path compares and
// copies them without conversion.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace rtpx {

struct MacAddr {
  std::array<uint8_t, 6> bytes{};

  static constexpr MacAddr broadcast() { return MacAddr{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}; }
  bool isMulticast() const noexcept { return (bytes[0] & 0x01) != 0; }
  bool isZero() const noexcept { return bytes == std::array<uint8_t, 6>{}; }
  std::string toString() const;
  static std::optional<MacAddr> parse(std::string_view s);
  auto operator<=>(const MacAddr&) const = default;
};

// Either family in one 16-byte value: IPv4 is stored in the first four bytes.
struct IpAddr {
  enum class Family : uint8_t { kNone = 0, kV4 = 4, kV6 = 6 };
  Family family = Family::kNone;
  std::array<uint8_t, 16> bytes{};

  static IpAddr v4(uint32_t be) {
    IpAddr a;
    a.family = Family::kV4;
    std::memcpy(a.bytes.data(), &be, 4);
    return a;
  }
  static IpAddr v6(const uint8_t* p) {
    IpAddr a;
    a.family = Family::kV6;
    std::memcpy(a.bytes.data(), p, 16);
    return a;
  }
  bool isV4() const noexcept { return family == Family::kV4; }
  bool isV6() const noexcept { return family == Family::kV6; }
  uint32_t v4be() const noexcept {
    uint32_t v;
    std::memcpy(&v, bytes.data(), 4);
    return v;
  }
  std::string toString() const;
  // Accepts dotted quad or RFC 4291 text; nothing else.
  static std::optional<IpAddr> parse(std::string_view s);
  auto operator<=>(const IpAddr&) const = default;
};

struct IpPrefix {
  IpAddr addr;
  uint8_t length = 0;

  bool contains(const IpAddr& a) const noexcept;
  std::string toString() const;
  // "192.0.2.2/24" or "2001:db8::2/64".
  static std::optional<IpPrefix> parse(std::string_view s);
};

// fe80::/64 with the modified EUI-64 interface identifier (RFC 4291 appendix A).
IpAddr linkLocalFromMac(const MacAddr& mac);
// ff02::1:ffXX:XXXX for an address (RFC 4291 §2.7.1).
IpAddr solicitedNodeMulticast(const IpAddr& v6);
// 33:33 + the low 32 bits of an IPv6 multicast address (RFC 2464 §7).
MacAddr multicastMac(const IpAddr& v6);

}  // namespace rtpx

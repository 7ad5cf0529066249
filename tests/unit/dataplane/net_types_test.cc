#include "dataplane/net_types.h"

#include <arpa/inet.h>

#include <catch2/catch.hpp>

#include <array>
#include <string>

namespace {

rtpx::IpAddr ip(const char* s) {
  auto a = rtpx::IpAddr::parse(s);
  INFO(s);
  REQUIRE(a.has_value());
  return *a;
}

rtpx::IpPrefix prefix(const char* s) {
  auto p = rtpx::IpPrefix::parse(s);
  INFO(s);
  REQUIRE(p.has_value());
  return *p;
}

rtpx::MacAddr mac(const char* s) {
  auto m = rtpx::MacAddr::parse(s);
  INFO(s);
  REQUIRE(m.has_value());
  return *m;
}

}  // namespace

TEST_CASE("MacAddr parses colon-separated hex and prints lower case", "[net_types][mac]") {
  const rtpx::MacAddr m = mac("52:54:00:12:34:56");
  CHECK(m.bytes == std::array<uint8_t, 6>{0x52, 0x54, 0x00, 0x12, 0x34, 0x56});
  CHECK(m.toString() == "52:54:00:12:34:56");
  CHECK_FALSE(m.isMulticast());
  CHECK_FALSE(m.isZero());

  const rtpx::MacAddr upper = mac("0A:bC:De:F0:01:9f");
  CHECK(upper.bytes == std::array<uint8_t, 6>{0x0a, 0xbc, 0xde, 0xf0, 0x01, 0x9f});
  CHECK(upper.toString() == "0a:bc:de:f0:01:9f");

  CHECK(mac("00:00:00:00:00:00").isZero());
  CHECK(mac("01:00:5e:00:00:01").isMulticast());
  CHECK(rtpx::MacAddr::broadcast().toString() == "ff:ff:ff:ff:ff:ff");
  CHECK(rtpx::MacAddr::broadcast().isMulticast());
  CHECK(mac("ff:ff:ff:ff:ff:ff") == rtpx::MacAddr::broadcast());
}

TEST_CASE("MacAddr rejects malformed strings", "[net_types][mac]") {
  for (const char* bad :
       {"", "52:54:00:12:34", "52:54:00:12:34:56:78", "52-54-00-12-34-56", "52:54:00:12:34:5g",
        "52:54:00:12:34:567", " 52:54:00:12:34:56", "52:54:00:12:34:56 ", "5254.0012.3456",
        "52:54:0:12:34:56:", "52::54:00:12:34:5", "+2:54:00:12:34:56", "xx:xx:xx:xx:xx:xx"}) {
    INFO("'" << bad << "'");
    CHECK_FALSE(rtpx::MacAddr::parse(bad).has_value());
  }
}

TEST_CASE("IpAddr parses IPv4 and IPv6 text and prints it back", "[net_types][ip]") {
  const rtpx::IpAddr v4 = ip("192.0.2.1");
  CHECK(v4.isV4());
  CHECK_FALSE(v4.isV6());
  CHECK(v4.bytes == std::array<uint8_t, 16>{192, 0, 2, 1});
  CHECK(v4.v4be() == htonl(0xc0000201));
  CHECK(v4.toString() == "192.0.2.1");
  CHECK(rtpx::IpAddr::v4(htonl(0xc0000201)) == v4);

  const rtpx::IpAddr v6 = ip("2001:DB8::1");
  CHECK(v6.isV6());
  CHECK(v6.bytes ==
        std::array<uint8_t, 16>{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1});
  CHECK(v6.toString() == "2001:db8::1");
  CHECK(rtpx::IpAddr::v6(v6.bytes.data()) == v6);

  // Canonical RFC 5952 text on output.
  CHECK(ip("2001:0db8:0000:0000:0000:0000:0000:0001").toString() == "2001:db8::1");
  CHECK(ip("::").toString() == "::");
  CHECK(ip("::ffff:192.0.2.1").isV6());
  CHECK(ip("::ffff:192.0.2.1").toString() == "::ffff:192.0.2.1");
  CHECK(ip("0.0.0.0").toString() == "0.0.0.0");
  CHECK(ip("255.255.255.255").toString() == "255.255.255.255");
  CHECK(rtpx::IpAddr{}.toString() == "none");

  // The family is part of the value: same bytes, different addresses.
  CHECK(rtpx::IpAddr::v6(ip("192.0.2.1").bytes.data()) != ip("192.0.2.1"));
}

TEST_CASE("IpAddr rejects anything but an address", "[net_types][ip]") {
  for (const char* bad :
       {"", "192.0.2", "192.0.2.256", "1.2.3.4.5", "192.0.2.1/24", " 192.0.2.1", "192.0.2.1 ",
        "2001:db8::1::2", "gggg::1", "2001:db8::1/64", "[::1]", "localhost", "1:2:3:4:5:6:7:8:9",
        "0000:0000:0000:0000:0000:ffff:192.000.002.001"}) {
    INFO("'" << bad << "'");
    CHECK_FALSE(rtpx::IpAddr::parse(bad).has_value());
  }
}

TEST_CASE("IpPrefix parses and prints address/length", "[net_types][prefix]") {
  const rtpx::IpPrefix p4 = prefix("192.0.2.2/24");
  CHECK(p4.addr == ip("192.0.2.2"));
  CHECK(p4.length == 24);
  CHECK(p4.toString() == "192.0.2.2/24");

  const rtpx::IpPrefix p6 = prefix("2001:db8::2/64");
  CHECK(p6.addr == ip("2001:db8::2"));
  CHECK(p6.length == 64);
  CHECK(p6.toString() == "2001:db8::2/64");

  for (const char* s :
       {"0.0.0.0/0", "192.0.2.1/32", "::/0", "2001:db8::1/128", "10.0.0.0/8", "fe80::/10"}) {
    INFO(s);
    CHECK(prefix(s).toString() == s);
  }
}

TEST_CASE("IpPrefix rejects bad text and out-of-range lengths", "[net_types][prefix]") {
  for (const char* bad :
       {"192.0.2.2", "192.0.2.2/", "/24", "192.0.2.2/33", "192.0.2.2/-1", "192.0.2.2/2a",
        "192.0.2.2/ 24", "192.0.2.2/1000", "192.0.2.2/24/1", "2001:db8::/129", "2001:db8::/256",
        "foo/24", "192.0.2.300/24", "", "2001:db8::2/64 "}) {
    INFO("'" << bad << "'");
    CHECK_FALSE(rtpx::IpPrefix::parse(bad).has_value());
  }
}

TEST_CASE("IpPrefix::contains honours non-byte-aligned IPv4 lengths", "[net_types][prefix]") {
  const rtpx::IpPrefix p = prefix("10.0.0.0/13");  // 10.0.0.0 - 10.7.255.255
  CHECK(p.contains(ip("10.0.0.0")));
  CHECK(p.contains(ip("10.7.255.255")));
  CHECK_FALSE(p.contains(ip("10.8.0.0")));
  CHECK_FALSE(p.contains(ip("11.0.0.1")));

  // Host bits in the prefix's own address do not matter.
  const rtpx::IpPrefix q = prefix("192.0.2.77/26");  // 192.0.2.64 - 192.0.2.127
  CHECK(q.contains(ip("192.0.2.64")));
  CHECK(q.contains(ip("192.0.2.127")));
  CHECK_FALSE(q.contains(ip("192.0.2.63")));
  CHECK_FALSE(q.contains(ip("192.0.2.128")));

  CHECK(prefix("192.0.2.1/32").contains(ip("192.0.2.1")));
  CHECK_FALSE(prefix("192.0.2.1/32").contains(ip("192.0.2.0")));
  CHECK(prefix("0.0.0.0/0").contains(ip("203.0.113.9")));
  CHECK(prefix("192.0.2.0/31").contains(ip("192.0.2.1")));
  CHECK_FALSE(prefix("192.0.2.0/31").contains(ip("192.0.2.2")));

  // A prefix never contains an address of the other family.
  CHECK_FALSE(prefix("0.0.0.0/0").contains(ip("::")));
  CHECK_FALSE(prefix("::/0").contains(ip("0.0.0.0")));
  CHECK_FALSE(prefix("192.0.2.0/24").contains(rtpx::IpAddr{}));
}

TEST_CASE("IpPrefix::contains honours non-byte-aligned IPv6 lengths", "[net_types][prefix]") {
  const rtpx::IpPrefix p = prefix("2001:db8:abcd:1230::/60");
  CHECK(p.contains(ip("2001:db8:abcd:1230::")));
  CHECK(p.contains(ip("2001:db8:abcd:123f:ffff:ffff:ffff:ffff")));
  CHECK_FALSE(p.contains(ip("2001:db8:abcd:1240::")));
  CHECK_FALSE(p.contains(ip("2001:db8:abcd:122f::1")));

  const rtpx::IpPrefix ll = prefix("fe80::/10");
  CHECK(ll.contains(ip("fe80::1")));
  CHECK(ll.contains(ip("febf::1")));
  CHECK_FALSE(ll.contains(ip("fec0::1")));

  CHECK(prefix("2001:db8::/127").contains(ip("2001:db8::1")));
  CHECK_FALSE(prefix("2001:db8::/127").contains(ip("2001:db8::2")));
  CHECK(prefix("2001:db8::5/128").contains(ip("2001:db8::5")));
  CHECK_FALSE(prefix("2001:db8::5/128").contains(ip("2001:db8::4")));
  CHECK(prefix("::/0").contains(ip("2001:db8::99")));
  CHECK(prefix("2001:db8::2/64").contains(ip("2001:db8::ffff:1")));
  CHECK_FALSE(prefix("2001:db8::2/64").contains(ip("2001:db8:0:1::2")));
}

TEST_CASE("linkLocalFromMac uses the modified EUI-64 identifier", "[net_types][ipv6]") {
  // RFC 4291 appendix A: flip the universal/local bit, insert ff:fe in the middle.
  CHECK(rtpx::linkLocalFromMac(mac("52:54:00:12:34:56")).toString() == "fe80::5054:ff:fe12:3456");
  CHECK(rtpx::linkLocalFromMac(mac("00:1b:21:3a:4f:5e")).toString() == "fe80::21b:21ff:fe3a:4f5e");
  CHECK(rtpx::linkLocalFromMac(mac("02:00:00:00:00:01")).toString() == "fe80::ff:fe00:1");
  const rtpx::IpAddr a = rtpx::linkLocalFromMac(mac("52:54:00:12:34:56"));
  CHECK(a.isV6());
  CHECK(a == ip("fe80::5054:ff:fe12:3456"));
}

TEST_CASE("solicitedNodeMulticast follows RFC 4291 section 2.7.1", "[net_types][ipv6]") {
  // The RFC's own example: 4037::01:800:200E:8C6C → FF02::1:FF0E:8C6C.
  CHECK(rtpx::solicitedNodeMulticast(ip("4037::1:800:200e:8c6c")) == ip("ff02::1:ff0e:8c6c"));
  CHECK(rtpx::solicitedNodeMulticast(ip("2001:db8::2")).toString() == "ff02::1:ff00:2");
  CHECK(rtpx::solicitedNodeMulticast(ip("fe80::5054:ff:fe12:3456")).toString() ==
        "ff02::1:ff12:3456");
  CHECK(rtpx::solicitedNodeMulticast(ip("2001:db8::2")).isV6());
}

TEST_CASE("multicastMac maps the low 32 bits after 33:33 (RFC 2464 section 7)",
          "[net_types][ipv6]") {
  CHECK(rtpx::multicastMac(ip("ff02::1")).toString() == "33:33:00:00:00:01");
  CHECK(rtpx::multicastMac(ip("ff02::1:ff0e:8c6c")).toString() == "33:33:ff:0e:8c:6c");
  CHECK(rtpx::multicastMac(ip("ff02::1:ff00:2")).toString() == "33:33:ff:00:00:02");
  CHECK(rtpx::multicastMac(ip("ff05::1:3")).toString() == "33:33:00:01:00:03");
  CHECK(rtpx::multicastMac(ip("ff02::1")).isMulticast());
}

#include "controlplane/frontend/ng/bencode.h"

#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

namespace rtpx::ng::bencode {
namespace {

constexpr std::int64_t kInt64Max = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t kInt64Min = std::numeric_limits<std::int64_t>::min();

Value decodeOk(std::string_view in) {
  absl::StatusOr<Value> v = decode(in);
  INFO(v.status().ToString());
  REQUIRE(v.ok());
  return *std::move(v);
}

// The whole error message, so a test pins down both what is wrong and the offset.
std::string decodeError(std::string_view in) {
  absl::StatusOr<Value> v = decode(in);
  INFO("input: " << in);
  REQUIRE_FALSE(v.ok());
  CHECK(v.status().code() == absl::StatusCode::kInvalidArgument);
  return std::string(v.status().message());
}

// An offer as kamailio's rtpengine module sends it (keys unsorted, SDP with CRLF).
constexpr std::string_view kOffer =
    "d7:command5:offer7:call-id12:abc@10.0.0.18:from-tag6:ft-12318:transport-protocol7:RTP/AVP"
    "5:flagsl13:trust-address9:symmetrice7:replacel6:origin18:session-connectione"
    "3:sdp36:v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\ne";

TEST_CASE("bencode encodes each type", "[bencode]") {
  CHECK(encode(Value("spam")) == "4:spam");
  CHECK(encode(Value()) == "0:");
  CHECK(encode(Value(0)) == "i0e");
  CHECK(encode(Value(-42)) == "i-42e");
  CHECK(encode(Value(kInt64Max)) == "i9223372036854775807e");
  CHECK(encode(Value(kInt64Min)) == "i-9223372036854775808e");
  CHECK(encode(Value(List{})) == "le");
  CHECK(encode(Value(Dict{})) == "de");
  CHECK(encode(Value(List{"a", 1, List{}})) == "l1:ai1elee");
  std::string out = "cookie ";
  encodeTo(Value(Dict{{"result", "pong"}}), out);
  CHECK(out == "cookie d6:result4:ponge");
}

TEST_CASE("bencode encode sorts dictionary keys by their bytes", "[bencode]") {
  const Dict d{{"sdp", "v=0"}, {"result", "ok"}, {"b", 1}, {"a", 2}, {"\xff", 3}, {"B", 4}};
  // 'B' (0x42) < 'a' (0x61) < 'r' < 's' < 0xff: unsigned bytes, not locale or signed char.
  CHECK(encode(Value(d)) == "d1:Bi4e1:ai2e1:bi1e6:result2:ok3:sdp3:v=01:\xffi3ee");
  // A prefix sorts before the longer key.
  CHECK(encode(Value(Dict{{"ab", 1}, {"a", 2}})) == "d1:ai2e2:abi1ee");
}

TEST_CASE("bencode encode writes the first of duplicate keys only", "[bencode]") {
  const Value v(Dict{{"a", 1}, {"b", 2}, {"a", 3}});
  CHECK(encode(v) == "d1:ai1e1:bi2ee");
  CHECK(*v.find("a")->integer() == 1);
  CHECK(v == Value(Dict{{"b", 2}, {"a", 1}}));
  CHECK_FALSE(v == Value(Dict{{"b", 2}, {"a", 3}}));
  CHECK(decodeOk(encode(v)) == v);
}

TEST_CASE("bencode set replaces or appends, so built replies have unique keys", "[bencode]") {
  Dict reply;
  set(reply, "result", "error");
  set(reply, "sdp", "v=0");
  set(reply, "result", "ok");
  REQUIRE(reply.size() == 2);
  CHECK(reply[0].first == "result");
  CHECK(*reply[0].second.str() == "ok");
  Value& tags = set(reply, "tags", Dict{});
  set(*tags.dict(), "from-tag", "ft");
  set(*tags.dict(), "to-tag", "tt");
  CHECK(encode(Value(reply)) == "d6:result2:ok3:sdp3:v=04:tagsd8:from-tag2:ft6:to-tag2:ttee");
}

TEST_CASE("bencode strings are byte strings", "[bencode]") {
  const std::string bytes("a\0b\r\n\xff e:", 8);
  const std::string enc = encode(Value(bytes));
  CHECK(enc == std::string("8:") + bytes);
  const Value back = decodeOk(enc);
  REQUIRE(back.str() != nullptr);
  CHECK(*back.str() == bytes);
  // Keys too: a NUL and a 0xff byte, and keys differing only after a NUL.
  const Value d(Dict{{std::string("k\0a", 3), 1}, {std::string("k\0b", 3), 2}, {"\xff\xfe", 3}});
  const std::string denc = encode(d);
  CHECK(denc == std::string("d3:k\0ai1e3:k\0bi2e2:\xff\xfei3ee", 25));
  CHECK(decodeOk(denc) == d);
  CHECK(*decodeOk(denc).find(std::string_view("k\0b", 3))->integer() == 2);
}

TEST_CASE("bencode round-trips nested structures", "[bencode]") {
  const Value v(Dict{
      {"command", "offer"},
      {"call-id", "abc@host"},
      {"flags", List{"trust-address", "symmetric"}},
      {"replace", List{"origin", "session-connection"}},
      {"nested", Dict{{"list", List{List{List{}}, Dict{{"x", -1}}, ""}}, {"n", 123456789012}}},
      {"sdp", "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n"},
  });
  const std::string enc = encode(v);
  const Value back = decodeOk(enc);
  CHECK(back == v);
  CHECK(encode(back) == enc);
  REQUIRE(back.find("nested") != nullptr);
  const Value* list = back.find("nested")->find("list");
  REQUIRE(list != nullptr);
  REQUIRE(list->list() != nullptr);
  REQUIRE(list->list()->size() == 3);
  CHECK((*list->list())[1].find("x")->integer() == -1);
  CHECK(back.find("absent") == nullptr);
  CHECK(Value("str").find("x") == nullptr);
}

TEST_CASE("bencode decodes an NG offer with unsorted keys and re-encodes it sorted", "[bencode]") {
  const Value v = decodeOk(kOffer);
  const Dict* d = v.dict();
  REQUIRE(d != nullptr);
  // Decoding keeps the order of the input.
  REQUIRE(d->size() == 7);
  CHECK((*d)[0].first == "command");
  CHECK((*d)[6].first == "sdp");
  CHECK(*v.find("command")->str() == "offer");
  CHECK(*v.find("sdp")->str() == "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\n");
  REQUIRE(v.find("flags")->list() != nullptr);
  CHECK(*v.find("flags")->list() == List{"trust-address", "symmetric"});
  const std::string canonical =
      "d7:call-id12:abc@10.0.0.17:command5:offer5:flagsl13:trust-address9:symmetrice"
      "8:from-tag6:ft-1237:replacel6:origin18:session-connectione"
      "3:sdp36:v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\n18:transport-protocol7:RTP/AVPe";
  CHECK(encode(v) == canonical);
  // Canonical input comes back byte for byte.
  CHECK(encode(decodeOk(canonical)) == canonical);
}

TEST_CASE("bencode dictionaries compare as maps, lists in order", "[bencode]") {
  CHECK(Value(Dict{{"a", 1}, {"b", 2}}) == Value(Dict{{"b", 2}, {"a", 1}}));
  CHECK_FALSE(Value(Dict{{"a", 1}, {"b", 2}}) == Value(Dict{{"a", 1}, {"b", 3}}));
  CHECK_FALSE(Value(Dict{{"a", 1}}) == Value(Dict{{"a", 1}, {"b", 2}}));
  CHECK_FALSE(Value(List{1, 2}) == Value(List{2, 1}));
  CHECK_FALSE(Value(1) == Value("1"));
  CHECK_FALSE(Value(List{}) == Value(Dict{}));
  CHECK_FALSE(Value() == Value(List{}));
}

TEST_CASE("bencode accessors return nothing for another type", "[bencode]") {
  CHECK_FALSE(Value("x").integer().has_value());
  CHECK(Value(1).str() == nullptr);
  CHECK(Value(1).list() == nullptr);
  CHECK(Value(List{}).dict() == nullptr);
  CHECK(Value(Dict{}).list() == nullptr);
  CHECK(Value(1).find("x") == nullptr);
  CHECK(Value(7).integer() == 7);
  CHECK(Value(List{}).isList());
  CHECK(Value(Dict{}).isDict());
  CHECK(Value("").isString());
  CHECK(Value(0).isInt());
}

TEST_CASE("bencode integers at the int64 bounds", "[bencode]") {
  CHECK(decodeOk("i9223372036854775807e").integer() == kInt64Max);
  CHECK(decodeOk("i-9223372036854775808e").integer() == kInt64Min);
  CHECK(decodeOk("i0e").integer() == 0);
  CHECK(decodeOk("i-1e").integer() == -1);
  CHECK(decodeOk(encode(Value(List{kInt64Min, kInt64Max}))) == Value(List{kInt64Min, kInt64Max}));
  CHECK(decodeError("i9223372036854775808e") == "bencode: integer out of range at offset 1");
  CHECK(decodeError("i-9223372036854775809e") == "bencode: integer out of range at offset 2");
  CHECK(decodeError("i18446744073709551616e") == "bencode: number out of range at offset 1");
  CHECK(decodeError("i99999999999999999999999e") == "bencode: number out of range at offset 1");
}

TEST_CASE("bencode rejects malformed input, saying what and where", "[bencode]") {
  // Numbers: no sign but a leading '-' on integers, no leading zero, no "-0", digits only.
  CHECK(decodeError("i-0e") == "bencode: negative zero at offset 2");
  CHECK(decodeError("i03e") == "bencode: leading zero at offset 1");
  CHECK(decodeError("i-03e") == "bencode: negative zero at offset 2");
  CHECK(decodeError("ie") == "bencode: empty number at offset 1");
  CHECK(decodeError("i-e") == "bencode: empty number at offset 2");
  CHECK(decodeError("i+3e") == "bencode: not a digit at offset 1");
  CHECK(decodeError("i1.5e") == "bencode: not a digit at offset 2");
  CHECK(decodeError("i 1e") == "bencode: not a digit at offset 1");
  CHECK(decodeError("i3") == "bencode: missing 'e' at offset 1");
  CHECK(decodeError("i") == "bencode: unexpected end of input at offset 1");
  // Strings.
  CHECK(decodeError("5:abc") == "bencode: string runs past the end of input at offset 2");
  CHECK(decodeError("03:abc") == "bencode: leading zero at offset 0");
  CHECK(decodeError("3abc") == "bencode: missing ':' at offset 0");
  CHECK(decodeError("1a:x") == "bencode: not a digit at offset 1");
  CHECK(decodeError("99999999999999999999999:a") == "bencode: number out of range at offset 0");
  CHECK(decodeError("18446744073709551615:a") ==
        "bencode: string runs past the end of input at offset 21");
  // Anything else.
  CHECK(decodeError("") == "bencode: unexpected end of input at offset 0");
  CHECK(decodeError("-1:a") == "bencode: unexpected byte 0x2d at offset 0");
  CHECK(decodeError("x") == "bencode: unexpected byte 0x78 at offset 0");
  CHECK(decodeError("\xff") == "bencode: unexpected byte 0xff at offset 0");
  CHECK(decodeError("e") == "bencode: unexpected byte 0x65 at offset 0");
  // Lists and dictionaries.
  CHECK(decodeError("l") == "bencode: unexpected end of input at offset 1");
  CHECK(decodeError("li1e") == "bencode: unexpected end of input at offset 4");
  CHECK(decodeError("d") == "bencode: unexpected end of input at offset 1");
  CHECK(decodeError("d1:a") == "bencode: unexpected end of input at offset 4");
  CHECK(decodeError("d1:ae") == "bencode: unexpected byte 0x65 at offset 4");
  CHECK(decodeError("di1ei2ee") == "bencode: dictionary key is not a string at offset 1");
  CHECK(decodeError("dle1:ae") == "bencode: dictionary key is not a string at offset 1");
  // Exactly one value.
  CHECK(decodeError("i1ei2e") == "bencode: trailing bytes after the value at offset 3");
  CHECK(decodeError("4:spam ") == "bencode: trailing bytes after the value at offset 6");
  CHECK(decodeError("l1:ae1") == "bencode: trailing bytes after the value at offset 5");
  CHECK(decodeError(std::string("de\0", 3)) ==
        "bencode: trailing bytes after the value at offset 2");
}

TEST_CASE("bencode rejects duplicate dictionary keys at the second one", "[bencode]") {
  CHECK(decodeError("d1:ai1e1:ai2ee") == "bencode: duplicate dictionary key \"a\" at offset 7");
  CHECK(decodeError("d1:ai1e1:bd1:ai1e1:ai2eee") ==
        "bencode: duplicate dictionary key \"a\" at offset 17");
  // The same key in different dictionaries is fine.
  CHECK(decodeOk("d1:ad1:ai1ee1:bd1:ai2eee") ==
        Value(Dict{{"a", Dict{{"a", 1}}}, {"b", Dict{{"a", 2}}}}));
  // Binary keys are escaped, long ones cut short.
  CHECK(decodeError(std::string("d2:\xff\0i1e2:\xff\0i2ee", 16)) ==
        "bencode: duplicate dictionary key \"\\xff\\x00\" at offset 8");
  const std::string long_key(100, 'k');
  CHECK(decodeError("d100:" + long_key + "i1e100:" + long_key + "i2ee") ==
        "bencode: duplicate dictionary key \"" + std::string(32, 'k') + "\"... at offset 108");
}

// Past 16 entries the decoder looks keys up in a hash set; both paths must find duplicates.
TEST_CASE("bencode finds duplicate keys in large dictionaries", "[bencode]") {
  std::string in = "d";
  for (int i = 0; i < 5000; ++i) {
    const std::string key = std::to_string(i);
    in += std::to_string(key.size()) + ":" + key + "i" + key + "e";
  }
  const Value v = decodeOk(in + "e");
  REQUIRE(v.dict()->size() == 5000);
  CHECK(v.find("4999")->integer() == 4999);
  for (const char* dup : {"0", "15", "16", "4999"}) {
    const std::string key(dup);
    CHECK(decodeError(in + std::to_string(key.size()) + ":" + key + "i0ee") ==
          "bencode: duplicate dictionary key \"" + key + "\" at offset " +
              std::to_string(in.size()));
  }
}

TEST_CASE("bencode bounds nesting at 100 lists or dictionaries", "[bencode]") {
  CHECK(decodeOk(std::string(100, 'l') + std::string(100, 'e')).isList());
  CHECK(decodeError(std::string(101, 'l') + std::string(101, 'e')) ==
        "bencode: nested more than 100 deep at offset 100");
  CHECK(decodeError(std::string(100000, 'l') + std::string(100000, 'e')) ==
        "bencode: nested more than 100 deep at offset 100");
  std::string dicts;
  for (int i = 0; i < 100; ++i) dicts += "d1:a";
  CHECK(decodeOk(dicts + "i0e" + std::string(100, 'e')).isDict());
  CHECK(decodeError(dicts + "de" + std::string(100, 'e')) ==
        "bencode: nested more than 100 deep at offset 400");
}

TEST_CASE("bencode bounds the number of values", "[bencode]") {
  // The list itself and 9,999 integers: 10,000 values.
  std::string in = "l";
  for (int i = 0; i < 9999; ++i) in += "i0e";
  CHECK(decodeOk(in + "e").list()->size() == 9999);
  CHECK(decodeError(in + "i0ee") == "bencode: more than 10000 values at offset 29998");
  // Empty containers count as well: 2 bytes each, 20 KB of "le" is the limit.
  std::string empties = "l";
  for (int i = 0; i < 10000; ++i) empties += "le";
  CHECK(decodeError(empties + "e") == "bencode: more than 10000 values at offset 19999");
  // Keys do not count, their values do.
  std::string dict = "d";
  for (int i = 0; i < 9999; ++i) {
    const std::string key = std::to_string(i);
    dict += std::to_string(key.size()) + ":" + key + "0:";
  }
  CHECK(decodeOk(dict + "e").dict()->size() == 9999);
}

}  // namespace
}  // namespace rtpx::ng::bencode

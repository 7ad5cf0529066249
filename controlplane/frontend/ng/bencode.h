// Bencode, the encoding of rtpengine's NG control protocol: one codec for rtpxd's NG server and
// the bench NG client. A value is a byte string, a 64-bit signed integer, a list or a
// dictionary keyed by byte strings. Strings are bytes, not text (an SDP body may be anything).
//
// Invariants, held by tests/fuzz/bencode_fuzz.cc:
//  - decode(encode(v)) == v for any Value v (dictionaries compare as maps, see operator==);
//  - encode(decode(b)) == b for any canonical input b, i.e. one with dictionary keys sorted by
//    their bytes; decode() also accepts unsorted keys (rtpengine does not sort its replies),
//    and encode() then writes them sorted;
//  - decode() never allocates more than a bounded multiple of its input: it stops at
//    kMaxDepth nested containers and kMaxValues values.
//
// Duplicate keys: decode() rejects them. A Dict built in code is a plain vector and may hold a
// key twice; then the first entry wins everywhere: find() returns it, encode() writes only it
// and operator== looks only at it. set() replaces instead of appending, so replies built with
// it never hold a key twice.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"

namespace rtpx::ng::bencode {

// Limits on untrusted input. A real NG request is a flat dictionary with an SDP body and a few
// short lists (flags, replace, rtcp-mux...), tens of values and two or three levels deep.
inline constexpr int kMaxDepth = 100;             // nested lists and dictionaries
inline constexpr std::size_t kMaxValues = 10000;  // values of any type; keys are not counted

class Value;
using List = std::vector<Value>;
// Entries in the order they were added or decoded; encode() sorts them.
using Dict = std::vector<std::pair<std::string, Value>>;

class Value {
 public:
  Value() = default;  // the empty string
  Value(std::string s) : v_(std::move(s)) {}
  Value(std::string_view s) : v_(std::string(s)) {}
  Value(const char* s) : v_(std::string(s)) {}
  Value(std::int64_t i) : v_(i) {}
  Value(int i) : v_(std::int64_t{i}) {}
  // Bencode has no booleans; rtpengine spells them as strings ("yes"/"no") or as flags.
  Value(bool) = delete;
  Value(List l) : v_(std::move(l)) {}
  Value(Dict d) : v_(std::move(d)) {}

  bool isString() const { return std::holds_alternative<std::string>(v_); }
  bool isInt() const { return std::holds_alternative<std::int64_t>(v_); }
  bool isList() const { return std::holds_alternative<List>(v_); }
  bool isDict() const { return std::holds_alternative<Dict>(v_); }

  // The contents when the value holds that type, else nullptr / nullopt.
  const std::string* str() const { return std::get_if<std::string>(&v_); }
  std::string* str() { return std::get_if<std::string>(&v_); }
  std::optional<std::int64_t> integer() const;
  const List* list() const { return std::get_if<List>(&v_); }
  List* list() { return std::get_if<List>(&v_); }
  const Dict* dict() const { return std::get_if<Dict>(&v_); }
  Dict* dict() { return std::get_if<Dict>(&v_); }

  // The value under `key` when this is a dictionary holding it, else nullptr.
  const Value* find(std::string_view key) const;

  // Dictionaries compare as maps: same keys (the first entry of each), equal values, in any
  // order.
  friend bool operator==(const Value& a, const Value& b);

 private:
  std::variant<std::string, std::int64_t, List, Dict> v_;
};

// The first value under `key` in `d`, or nullptr.
const Value* find(const Dict& d, std::string_view key);

// Sets `key` to `v` in `d`: replaces the first entry with that key, or appends one. Returns
// the stored value, e.g. to fill in a nested dictionary.
Value& set(Dict& d, std::string key, Value v);

// Canonical bencode: dictionary keys sorted by their bytes, the first of duplicate keys only.
// Cannot fail.
std::string encode(const Value& v);
void encodeTo(const Value& v, std::string& out);  // appends to `out`

// Decodes exactly one value spanning all of `in`, strictly: no leading zeros, no "-0",
// integers within int64, no trailing bytes, dictionary keys unique (in any order), at most
// kMaxDepth nested containers and kMaxValues values. Errors are InvalidArgument saying what
// is wrong and where: "bencode: <what> at offset <byte offset>".
absl::StatusOr<Value> decode(std::string_view in);

}  // namespace rtpx::ng::bencode

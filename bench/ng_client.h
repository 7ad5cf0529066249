// A client for rtpengine's NG control protocol, so benchmarks can set calls up on rtpengine the
// way they do on rtpxd over gRPC. NG is one UDP datagram per request and per reply:
//   request: "<cookie> <bencoded dictionary with a "command" key and its arguments>"
//   reply:   "<same cookie> <bencoded dictionary with "result": "ok" | "pong" | "error" ...>"
// rtpengine caches each reply under its cookie, so a retransmission with the same cookie is
// answered from the cache and never runs a command twice.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace rtpx::bench {

// Every failure of the client: a bad address, a socket error, a timeout, a reply that is not
// bencode or not a dictionary, or rtpengine's own "error-reason".
struct NgError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

namespace bencode {

// Malformed bencode on decode, a duplicate dictionary key on encode, or a Value read as the
// wrong type.
struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Value;
using List = std::vector<Value>;
// Keys in any order (rtpengine does not sort its replies); encode() writes them sorted by their
// bytes, as bencode requires. Keys must be unique.
using Dict = std::vector<std::pair<std::string, Value>>;

// One bencode value: a byte string, a 64-bit signed integer, a list or a dictionary.
class Value {
 public:
  Value() = default;  // the empty string
  Value(std::string s) : v_(std::move(s)) {}
  Value(std::string_view s) : v_(std::string(s)) {}
  Value(const char* s) : v_(std::string(s)) {}
  Value(std::int64_t i) : v_(i) {}
  Value(int i) : v_(std::int64_t{i}) {}
  Value(List l) : v_(std::move(l)) {}
  Value(Dict d) : v_(std::move(d)) {}

  bool isString() const { return std::holds_alternative<std::string>(v_); }
  bool isInt() const { return std::holds_alternative<std::int64_t>(v_); }
  bool isList() const { return std::holds_alternative<List>(v_); }
  bool isDict() const { return std::holds_alternative<Dict>(v_); }

  // Throw Error when the value holds another type.
  const std::string& str() const;
  std::int64_t integer() const;
  const List& list() const;
  const Dict& dict() const;
  Dict takeDict() &&;

  // The value under `key` when this is a dictionary holding it, else nullptr.
  const Value* find(std::string_view key) const;

  // Dictionaries compare as maps: key order does not matter.
  friend bool operator==(const Value& a, const Value& b);

 private:
  std::variant<std::string, std::int64_t, List, Dict> v_;
};

// The value under `key` in `d`, or nullptr.
const Value* find(const Dict& d, std::string_view key);

// Throws Error on a duplicate dictionary key.
std::string encode(const Value& v);
void encodeTo(const Value& v, std::string& out);

// Decodes exactly one value spanning all of `in`: strict bencode (no leading zeros, no "-0", no
// trailing bytes, integers within int64), nesting at most 100 deep, dictionary keys in any
// order but unique. Throws Error saying what is wrong and at which offset.
Value decode(std::string_view in);

}  // namespace bencode

// One NG control connection. Thread-compatible: use one client per thread. Each request gets a
// cookie no other client or request uses; a reply whose cookie is not the one awaited (a late
// reply to an earlier, timed-out request) is dropped. On a timeout the request is sent once
// more with the same cookie; a second timeout throws.
class NgClient {
 public:
  // "IPv4:port", "[IPv6]:port" or "hostname:port". Throws NgError on a bad address.
  explicit NgClient(const std::string& addr, int timeout_ms = 2000);
  ~NgClient();
  NgClient(const NgClient&) = delete;
  NgClient& operator=(const NgClient&) = delete;

  // Throws unless rtpengine answers "pong".
  void ping();

  // Return rtpengine's rewritten SDP; throw NgError with "error-reason" (or timeout / malformed
  // reply) on failure. `flags` go into the NG "flags" list as they are (e.g. "trust-address",
  // "symmetric"); anything else can be sent with command().
  std::string offer(const std::string& call_id, const std::string& from_tag, const std::string& sdp,
                    const std::vector<std::string>& flags = {});
  std::string answer(const std::string& call_id, const std::string& from_tag,
                     const std::string& to_tag, const std::string& sdp,
                     const std::vector<std::string>& flags = {});
  // NG "delete" of the whole call.
  void remove(const std::string& call_id);

  // Sends `request` (which must hold "command") and returns the reply dictionary when its
  // "result" is "ok" or "pong"; throws NgError with "error-reason" when it is "error", and on a
  // timeout or a malformed reply.
  bencode::Dict command(bencode::Dict request);

  const std::string& address() const { return addr_; }

 private:
  std::string nextCookie();
  // The bencoded reply body to the datagram `msg` carrying `cookie`.
  std::string exchange(const std::string& msg, const std::string& cookie);
  bool awaitReply(const std::string& cookie, std::string& body);

  std::string addr_;
  int timeout_ms_;
  int fd_ = -1;
  std::string cookie_prefix_;
  std::uint64_t seq_ = 0;
  std::vector<char> buf_;
};

}  // namespace rtpx::bench

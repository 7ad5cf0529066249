#include "bench/ng_client.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <system_error>

namespace rtpx::bench {
namespace bencode {
namespace {

[[noreturn]] void wrongType(const char* want) {
  throw Error(std::string("bencode value is not a ") + want);
}

constexpr int kMaxDepth = 100;

class Decoder {
 public:
  explicit Decoder(std::string_view in) : in_(in) {}

  Value document() {
    Value v = value(0);
    if (pos_ != in_.size()) fail("trailing bytes after the value");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw Error("bencode: " + what + " at offset " + std::to_string(pos_));
  }

  char peek() const {
    if (pos_ >= in_.size()) fail("unexpected end of input");
    return in_[pos_];
  }

  // Digits up to `end` (exclusive) starting at pos_, strict: no sign, no leading zero unless the
  // number is 0, at least one digit.
  std::uint64_t digits(char end) {
    const std::size_t start = pos_;
    const std::size_t stop = in_.find(end, pos_);
    if (stop == std::string_view::npos) fail(std::string("missing '") + end + "'");
    if (stop == start) fail("empty number");
    for (std::size_t i = start; i < stop; ++i)
      if (in_[i] < '0' || in_[i] > '9') {
        pos_ = i;
        fail("not a digit");
      }
    if (in_[start] == '0' && stop - start > 1) fail("leading zero");
    std::uint64_t n = 0;
    const auto [p, ec] = std::from_chars(in_.data() + start, in_.data() + stop, n);
    if (ec != std::errc() || p != in_.data() + stop) fail("number out of range");
    pos_ = stop + 1;
    return n;
  }

  std::string string() {
    const std::uint64_t len = digits(':');
    if (len > in_.size() - pos_) fail("string runs past the end of input");
    std::string s(in_.substr(pos_, len));
    pos_ += len;
    return s;
  }

  std::int64_t integer() {
    ++pos_;  // 'i'
    bool negative = false;
    if (peek() == '-') {
      negative = true;
      ++pos_;
      if (peek() == '0') fail("negative zero");
    }
    const std::uint64_t magnitude = digits('e');
    constexpr std::uint64_t kMax = static_cast<std::uint64_t>(INT64_MAX);
    if (magnitude > kMax + (negative ? 1 : 0)) fail("integer out of range");
    if (!negative) return static_cast<std::int64_t>(magnitude);
    return magnitude == kMax + 1 ? INT64_MIN : -static_cast<std::int64_t>(magnitude);
  }

  Value value(int depth) {
    if (depth > kMaxDepth) fail("nested too deeply");
    const char c = peek();
    if (c == 'i') return integer();
    if (c >= '0' && c <= '9') return string();
    if (c == 'l') {
      ++pos_;
      List l;
      while (peek() != 'e') l.push_back(value(depth + 1));
      ++pos_;
      return l;
    }
    if (c == 'd') {
      ++pos_;
      Dict d;
      while (peek() != 'e') {
        const char k = peek();
        if (k < '0' || k > '9') fail("dictionary key is not a string");
        std::string key = string();
        for (const auto& [existing, v] : d)
          if (existing == key) fail("duplicate dictionary key \"" + key + "\"");
        Value v = value(depth + 1);
        d.emplace_back(std::move(key), std::move(v));
      }
      ++pos_;
      return d;
    }
    fail(std::string("unexpected byte 0x") + "0123456789abcdef"[(c >> 4) & 0xf] +
         "0123456789abcdef"[c & 0xf]);
  }

  std::string_view in_;
  std::size_t pos_ = 0;
};

}  // namespace

const std::string& Value::str() const {
  if (const auto* p = std::get_if<std::string>(&v_)) return *p;
  wrongType("string");
}

std::int64_t Value::integer() const {
  if (const auto* p = std::get_if<std::int64_t>(&v_)) return *p;
  wrongType("integer");
}

const List& Value::list() const {
  if (const auto* p = std::get_if<List>(&v_)) return *p;
  wrongType("list");
}

const Dict& Value::dict() const {
  if (const auto* p = std::get_if<Dict>(&v_)) return *p;
  wrongType("dictionary");
}

Dict Value::takeDict() && {
  if (auto* p = std::get_if<Dict>(&v_)) return std::move(*p);
  wrongType("dictionary");
}

const Value* Value::find(std::string_view key) const {
  const auto* d = std::get_if<Dict>(&v_);
  return d == nullptr ? nullptr : bencode::find(*d, key);
}

const Value* find(const Dict& d, std::string_view key) {
  for (const auto& [k, v] : d)
    if (k == key) return &v;
  return nullptr;
}

// Dictionaries are equal when they hold the same keys with equal values, in any order.
bool operator==(const Value& a, const Value& b) {
  if (a.isDict() && b.isDict()) {
    const Dict& da = a.dict();
    const Dict& db = b.dict();
    if (da.size() != db.size()) return false;
    for (const auto& [k, v] : da) {
      const Value* other = find(db, k);
      if (other == nullptr || !(*other == v)) return false;
    }
    return true;
  }
  return a.v_ == b.v_;
}

void encodeTo(const Value& v, std::string& out) {
  if (v.isString()) {
    const std::string& s = v.str();
    out += std::to_string(s.size());
    out += ':';
    out += s;
  } else if (v.isInt()) {
    out += 'i';
    out += std::to_string(v.integer());
    out += 'e';
  } else if (v.isList()) {
    out += 'l';
    for (const Value& x : v.list()) encodeTo(x, out);
    out += 'e';
  } else {
    const Dict& d = v.dict();
    std::vector<const std::pair<std::string, Value>*> sorted;
    sorted.reserve(d.size());
    for (const auto& kv : d) sorted.push_back(&kv);
    // std::string compares as unsigned bytes (char_traits<char>::lt), which is bencode's order.
    std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->first < b->first; });
    for (std::size_t i = 1; i < sorted.size(); ++i)
      if (sorted[i - 1]->first == sorted[i]->first)
        throw Error("bencode: duplicate dictionary key \"" + sorted[i]->first + "\"");
    out += 'd';
    for (const auto* kv : sorted) {
      encodeTo(Value(kv->first), out);
      encodeTo(kv->second, out);
    }
    out += 'e';
  }
}

std::string encode(const Value& v) {
  std::string out;
  encodeTo(v, out);
  return out;
}

Value decode(std::string_view in) {
  return Decoder(in).document();
}

}  // namespace bencode

namespace {

// rtpengine answers in one datagram; the largest UDP payload is below 64 KiB.
constexpr std::size_t kMaxDatagram = 65536;

std::string errnoText(const char* what) {
  return std::string(what) + ": " + std::strerror(errno);
}

}  // namespace

NgClient::NgClient(const std::string& addr, int timeout_ms)
    : addr_(addr), timeout_ms_(timeout_ms), buf_(kMaxDatagram) {
  if (timeout_ms_ <= 0) throw NgError("NG timeout must be positive");
  const auto colon = addr.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == addr.size())
    throw NgError("bad NG address \"" + addr + "\": want HOST:PORT");
  std::string host = addr.substr(0, colon);
  const std::string port = addr.substr(colon + 1);
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']')
      throw NgError("bad NG address \"" + addr + "\": unbalanced [");
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string::npos) {
    throw NgError("bad NG address \"" + addr + "\": write IPv6 as [ADDR]:PORT");
  }
  unsigned port_num = 0;
  const auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), port_num);
  if (ec != std::errc() || p != port.data() + port.size() || port_num == 0 || port_num > 65535)
    throw NgError("bad NG address \"" + addr + "\": bad port");

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  hints.ai_protocol = IPPROTO_UDP;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  if (const int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0)
    throw NgError("bad NG address \"" + addr + "\": " + gai_strerror(rc));
  std::string last_error = "no address";
  for (const addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    const int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      last_error = errnoText("socket");
      continue;
    }
    // Connected, so the kernel delivers only datagrams from rtpengine's address.
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
      fd_ = fd;
      break;
    }
    last_error = errnoText("connect");
    close(fd);
  }
  freeaddrinfo(res);
  if (fd_ < 0) throw NgError("NG " + addr + ": " + last_error);

  // Unique across clients and processes: the pid, a random word and this client's address.
  std::random_device rd;
  const std::uint64_t r =
      (std::uint64_t{rd()} << 32) ^ rd() ^ reinterpret_cast<std::uintptr_t>(this);
  char prefix[64];
  const int n = std::snprintf(prefix, sizeof prefix, "%x_%llx_", static_cast<unsigned>(getpid()),
                              static_cast<unsigned long long>(r));
  cookie_prefix_.assign(prefix, static_cast<std::size_t>(n));
}

NgClient::~NgClient() {
  if (fd_ >= 0) close(fd_);
}

std::string NgClient::nextCookie() {
  return cookie_prefix_ + std::to_string(++seq_);
}

bool NgClient::awaitReply(const std::string& cookie, std::string& body) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms_);
  for (;;) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd pfd{fd_, POLLIN, 0};
    const int rc = poll(&pfd, 1, static_cast<int>(left));
    if (rc < 0) {
      if (errno == EINTR) continue;
      throw NgError("NG " + addr_ + ": " + errnoText("poll"));
    }
    if (rc == 0) continue;  // the deadline check above ends the wait
    const ssize_t len = recv(fd_, buf_.data(), buf_.size(), 0);
    if (len < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      // ECONNREFUSED: an ICMP port unreachable from an earlier datagram; nobody listens (yet).
      if (errno == ECONNREFUSED) continue;
      throw NgError("NG " + addr_ + ": " + errnoText("recv"));
    }
    const std::string_view msg(buf_.data(), static_cast<std::size_t>(len));
    const auto space = msg.find(' ');
    if (space == std::string_view::npos || msg.substr(0, space) != cookie) continue;  // stale
    body.assign(msg.substr(space + 1));
    return true;
  }
}

std::string NgClient::exchange(const std::string& msg, const std::string& cookie) {
  std::string body;
  for (int attempt = 0; attempt < 2; ++attempt) {
    // EINTR, or a refusal (ICMP port unreachable) left over from an earlier datagram, which is
    // reported once instead of sending: try again.
    for (int tries = 0;; ++tries) {
      if (send(fd_, msg.data(), msg.size(), 0) >= 0) break;
      if ((errno == EINTR || errno == ECONNREFUSED) && tries < 3) continue;
      throw NgError("NG " + addr_ + ": " + errnoText("send"));
    }
    if (awaitReply(cookie, body)) return body;
  }
  throw NgError("NG " + addr_ + ": no reply within " + std::to_string(timeout_ms_) +
                " ms, sent twice");
}

bencode::Dict NgClient::command(bencode::Dict request) {
  const bencode::Value* cmd_value = bencode::find(request, "command");
  if (cmd_value == nullptr || !cmd_value->isString())
    throw NgError("NG request has no \"command\"");
  const std::string cmd = cmd_value->str();
  const bencode::Value req(std::move(request));
  const std::string cookie = nextCookie();
  std::string msg = cookie + ' ';
  try {
    bencode::encodeTo(req, msg);
  } catch (const bencode::Error& e) {
    throw NgError(std::string("NG request: ") + e.what());
  }
  const std::string body = exchange(msg, cookie);
  bencode::Value reply;
  try {
    reply = bencode::decode(body);
  } catch (const bencode::Error& e) {
    throw NgError("NG " + cmd + ": malformed reply: " + e.what());
  }
  if (!reply.isDict()) throw NgError("NG " + cmd + ": malformed reply: not a dictionary");
  const bencode::Value* result = reply.find("result");
  if (result == nullptr || !result->isString())
    throw NgError("NG " + cmd + ": malformed reply: no \"result\"");
  if (result->str() == "ok" || result->str() == "pong") return std::move(reply).takeDict();
  std::string why = result->str();
  if (const bencode::Value* reason = reply.find("error-reason");
      reason != nullptr && reason->isString())
    why = reason->str();
  throw NgError("NG " + cmd + ": " + why);
}

void NgClient::ping() {
  const bencode::Dict reply = command({{"command", "ping"}});
  const std::string& result = bencode::find(reply, "result")->str();
  if (result != "pong") throw NgError("NG ping: result \"" + result + "\", not \"pong\"");
}

namespace {

bencode::Value flagList(const std::vector<std::string>& flags) {
  bencode::List l;
  l.reserve(flags.size());
  for (const auto& f : flags) l.emplace_back(f);
  return l;
}

std::string sdpOf(const bencode::Dict& reply, const char* command) {
  const bencode::Value* sdp = bencode::find(reply, "sdp");
  if (sdp == nullptr || !sdp->isString())
    throw NgError(std::string("NG ") + command + ": malformed reply: no \"sdp\"");
  return sdp->str();
}

}  // namespace

std::string NgClient::offer(const std::string& call_id, const std::string& from_tag,
                            const std::string& sdp, const std::vector<std::string>& flags) {
  bencode::Dict req{
      {"command", "offer"}, {"call-id", call_id}, {"from-tag", from_tag}, {"sdp", sdp}};
  if (!flags.empty()) req.emplace_back("flags", flagList(flags));
  return sdpOf(command(req), "offer");
}

std::string NgClient::answer(const std::string& call_id, const std::string& from_tag,
                             const std::string& to_tag, const std::string& sdp,
                             const std::vector<std::string>& flags) {
  bencode::Dict req{{"command", "answer"},
                    {"call-id", call_id},
                    {"from-tag", from_tag},
                    {"to-tag", to_tag},
                    {"sdp", sdp}};
  if (!flags.empty()) req.emplace_back("flags", flagList(flags));
  return sdpOf(command(req), "answer");
}

void NgClient::remove(const std::string& call_id) {
  command({{"command", "delete"}, {"call-id", call_id}});
}

}  // namespace rtpx::bench

#include "bench/ng_client.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <system_error>
#include <utility>

namespace rtpx::bench {
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
  const std::string cmd = *cmd_value->str();
  const std::string cookie = nextCookie();
  std::string msg = cookie + ' ';
  bencode::encodeTo(bencode::Value(std::move(request)), msg);
  const std::string body = exchange(msg, cookie);
  absl::StatusOr<bencode::Value> decoded = bencode::decode(body);
  if (!decoded.ok())
    throw NgError("NG " + cmd + ": malformed reply: " + std::string(decoded.status().message()));
  bencode::Dict* reply = decoded->dict();
  if (reply == nullptr) throw NgError("NG " + cmd + ": malformed reply: not a dictionary");
  const bencode::Value* result = bencode::find(*reply, "result");
  if (result == nullptr || !result->isString())
    throw NgError("NG " + cmd + ": malformed reply: no \"result\"");
  if (*result->str() == "ok" || *result->str() == "pong") return std::move(*reply);
  std::string why = *result->str();
  if (const bencode::Value* reason = bencode::find(*reply, "error-reason");
      reason != nullptr && reason->isString())
    why = *reason->str();
  throw NgError("NG " + cmd + ": " + why);
}

void NgClient::ping() {
  const bencode::Dict reply = command({{"command", "ping"}});
  const std::string& result = *bencode::find(reply, "result")->str();
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
  return *sdp->str();
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

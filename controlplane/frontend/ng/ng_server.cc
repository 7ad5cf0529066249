#include "controlplane/frontend/ng/ng_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "controlplane/core/str_cat.h"

namespace rtpx::ng {
namespace {

uint64_t monotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// "IPv4:port" / "[IPv6]:port" into a socket address.
absl::Status parseListen(const std::string& listen, sockaddr_storage& sa, socklen_t& len) {
  std::string host, port;
  if (!listen.empty() && listen.front() == '[') {
    const std::size_t close = listen.find(']');
    if (close == std::string::npos || close + 1 >= listen.size() || listen[close + 1] != ':')
      return absl::InvalidArgumentError(cat("ng.listen '", listen, "': expected [IPv6]:port"));
    host = listen.substr(1, close - 1);
    port = listen.substr(close + 2);
  } else {
    const std::size_t colon = listen.rfind(':');
    if (colon == std::string::npos)
      return absl::InvalidArgumentError(cat("ng.listen '", listen, "': expected address:port"));
    host = listen.substr(0, colon);
    port = listen.substr(colon + 1);
  }
  char* end = nullptr;
  const long p = std::strtol(port.c_str(), &end, 10);
  if (port.empty() || *end != '\0' || p < 0 || p > 65535)
    return absl::InvalidArgumentError(cat("ng.listen '", listen, "': bad port"));
  std::memset(&sa, 0, sizeof sa);
  auto* v4 = reinterpret_cast<sockaddr_in*>(&sa);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&sa);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(p));
    len = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(p));
    len = sizeof(sockaddr_in6);
  } else {
    return absl::InvalidArgumentError(
        cat("ng.listen '", listen, "': '", host, "' is not an IPv4 or IPv6 address"));
  }
  return absl::OkStatus();
}

}  // namespace

std::string handleDatagram(std::string_view datagram, NgCommands& commands, ReplyCache& cache,
                           uint64_t now_ns) {
  const std::size_t space = datagram.find(' ');
  if (space == std::string_view::npos || space == 0) return {};  // no cookie: nobody to answer
  const std::string_view cookie = datagram.substr(0, space);
  if (std::optional<std::string> cached = cache.find(cookie)) return *std::move(cached);
  const std::string_view payload = datagram.substr(space + 1);
  bencode::Dict reply;
  if (payload.empty()) {
    reply = errorReply("Invalid data (no payload)");
  } else if (payload.front() != 'd') {
    reply = errorReply("Invalid NG data format: rtpx takes a bencoded dictionary");
  } else {
    absl::StatusOr<bencode::Value> request = bencode::decode(payload);
    if (!request.ok())
      reply = errorReply(cat("Could not decode bencode dictionary: ", request.status().message()));
    else
      reply = commands.handle(*request);
  }
  std::string out(cookie);
  out += ' ';
  bencode::encodeTo(bencode::Value(std::move(reply)), out);
  cache.insert(std::string(cookie), out, now_ns);
  return out;
}

absl::Status NgServer::start(const std::string& listen) {
  sockaddr_storage sa;
  socklen_t len = 0;
  if (absl::Status st = parseListen(listen, sa, len); !st.ok()) return st;
  fd_ = socket(sa.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return absl::InternalError(cat("ng: socket: ", std::strerror(errno)));
  // Room for bursts of requests while a command runs.
  const int buf = 4 << 20;
  setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
  if (bind(fd_, reinterpret_cast<sockaddr*>(&sa), len) != 0) {
    const int err = errno;
    close(fd_);
    fd_ = -1;
    return absl::UnavailableError(cat("ng: cannot bind ", listen, ": ", std::strerror(err)));
  }
  sockaddr_storage bound;
  socklen_t blen = sizeof bound;
  getsockname(fd_, reinterpret_cast<sockaddr*>(&bound), &blen);
  port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                            : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  stop_.store(false);
  thread_ = std::thread([this] { run(); });
  spdlog::info("NG (rtpengine protocol) listening on {} (UDP port {})", listen, port_);
  return absl::OkStatus();
}

void NgServer::stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

void NgServer::run() {
  pthread_setname_np(pthread_self(), "rtpx-ng");
  std::vector<char> buf(65536);
  while (!stop_.load()) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, 200) <= 0) continue;
    sockaddr_storage from;
    socklen_t flen = sizeof from;
    const ssize_t n =
        recvfrom(fd_, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from), &flen);
    if (n <= 0) continue;
    const std::string reply =
        handleDatagram(std::string_view(buf.data(), static_cast<std::size_t>(n)), commands_, cache_,
                       monotonicNs());
    if (reply.empty()) continue;
    if (sendto(fd_, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from), flen) < 0)
      spdlog::warn("ng: reply of {} bytes not sent: {}", reply.size(), std::strerror(errno));
  }
}

}  // namespace rtpx::ng

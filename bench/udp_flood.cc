// udp_flood: a kernel-socket RTP sender and sink for relay measurements on the veth path, where
// the peers of a relay are ordinary kernel programs (rtpx through af_packet, rtpengine through
// its sockets). Sends RTP-shaped datagrams with sendmmsg as fast as it can (or at --pps) for
// --seconds and, in the same process, counts what comes back on its socket.
//   udp_flood --bind 192.0.2.10:4000 --to 192.0.2.2:30000 --seconds 5 [--pps N] [--size 172]
// Prints one JSON line: {"sent":N,"received":M,"seconds":S,"send_pps":..,"recv_pps":..}
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <cstring>
#include <vector>

namespace {

bool parseEndpoint(const std::string& s, sockaddr_storage* out, socklen_t* len) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos) return false;
  std::string host = s.substr(0, colon);
  int port = std::stoi(s.substr(colon + 1));
  if (!host.empty() && host.front() == '[') host = host.substr(1, host.size() - 2);
  std::memset(out, 0, sizeof *out);
  auto* v4 = reinterpret_cast<sockaddr_in*>(out);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(out);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    *len = sizeof(sockaddr_in);
    return true;
  }
  if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    *len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

double now() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"udp_flood — RTP-shaped UDP sender and sink"};
  std::string bind, to;
  double seconds = 5, pps = 0;
  size_t size = 172;
  unsigned batch = 32;
  app.add_option("--bind", bind, "Local address:port")->required();
  app.add_option("--to", to, "Destination address:port (omit to only receive)");
  app.add_option("--seconds", seconds, "Duration");
  app.add_option("--pps", pps, "Packets per second (0: as fast as possible)");
  app.add_option("--size", size, "UDP payload bytes (RTP header included)");
  app.add_option("--batch", batch, "Datagrams per sendmmsg");
  CLI11_PARSE(app, argc, argv);

  sockaddr_storage local{}, dst{};
  socklen_t local_len = 0, dst_len = 0;
  if (!parseEndpoint(bind, &local, &local_len) ||
      (!to.empty() && !parseEndpoint(to, &dst, &dst_len))) {
    fmt::print(stderr, "udp_flood: bad address\n");
    return 2;
  }
  int fd = socket(local.ss_family, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  int buf = 8 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
  if (bind.empty() || ::bind(fd, reinterpret_cast<sockaddr*>(&local), local_len) != 0) {
    fmt::print(stderr, "udp_flood: bind {}: {}\n", bind, std::strerror(errno));
    return 1;
  }
  std::vector<std::vector<uint8_t>> payloads(batch, std::vector<uint8_t>(size, 0x5a));
  std::vector<mmsghdr> msgs(batch);
  std::vector<iovec> iov(batch);
  std::vector<uint8_t> rxbuf(batch * 2048);
  std::vector<mmsghdr> rmsgs(batch);
  std::vector<iovec> riov(batch);
  for (unsigned i = 0; i < batch; ++i) {
    riov[i] = {rxbuf.data() + i * 2048, 2048};
    rmsgs[i].msg_hdr = {};
    rmsgs[i].msg_hdr.msg_iov = &riov[i];
    rmsgs[i].msg_hdr.msg_iovlen = 1;
  }
  uint64_t sent = 0, received = 0;
  uint16_t seq = 0;
  uint32_t ts = 0;
  const double t0 = now(), end = t0 + seconds;
  double t = t0;
  while ((t = now()) < end) {
    if (!to.empty()) {
      uint64_t allowed = pps > 0 ? static_cast<uint64_t>((t - t0) * pps) + 1 : UINT64_MAX;
      unsigned n =
          static_cast<unsigned>(std::min<uint64_t>(batch, allowed > sent ? allowed - sent : 0));
      for (unsigned i = 0; i < n; ++i) {
        auto& p = payloads[i];
        p[0] = 0x80;
        p[1] = 0;
        p[2] = static_cast<uint8_t>(seq >> 8);
        p[3] = static_cast<uint8_t>(seq);
        uint32_t tsn = htonl(ts);
        std::memcpy(&p[4], &tsn, 4);
        ++seq;
        ts += 160;
        iov[i] = {p.data(), p.size()};
        msgs[i].msg_hdr = {};
        msgs[i].msg_hdr.msg_name = &dst;
        msgs[i].msg_hdr.msg_namelen = dst_len;
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
      }
      if (n > 0) {
        int r = sendmmsg(fd, msgs.data(), n, 0);
        if (r > 0) sent += static_cast<uint64_t>(r);
      }
    }
    int r = recvmmsg(fd, rmsgs.data(), batch, MSG_DONTWAIT, nullptr);
    if (r > 0) received += static_cast<uint64_t>(r);
    if (to.empty() && r <= 0) usleep(100);
  }
  // Drain what is still in flight.
  const double drain_end = now() + 0.3;
  while (now() < drain_end) {
    int r = recvmmsg(fd, rmsgs.data(), batch, MSG_DONTWAIT, nullptr);
    if (r > 0)
      received += static_cast<uint64_t>(r);
    else
      usleep(1000);
  }
  const double dt = t - t0;
  fmt::print(
      "{{\"sent\":{},\"received\":{},\"seconds\":{:.3f},\"send_pps\":{:.0f},\"recv_pps\":{:.0f}}}"
      "\n",
      sent, received, dt, sent / dt, received / dt);
  close(fd);
  return 0;
}

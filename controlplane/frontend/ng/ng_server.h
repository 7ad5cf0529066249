// The NG transport: rtpengine's control protocol over UDP, as Kamailio's and OpenSIPS's
// rtpengine modules speak it. Each datagram is "<cookie> <bencoded dictionary>"; the reply is
// "<same cookie> <bencoded dictionary>". Replies are cached by cookie for 30 to 60 s (two
// generations, as rtpengine does), so a retransmitted request is answered from the cache and
// never runs twice; errors are cached too.
#pragma once

#include <absl/status/status.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <thread>

#include "controlplane/core/reply_cache.h"
#include "controlplane/frontend/ng/ng_commands.h"

namespace rtpx::ng {

using ReplyCache = rtpx::ReplyCache;

// The reply to one datagram ("" when none is due: no cookie). Uses and fills `cache`.
std::string handleDatagram(std::string_view datagram, NgCommands& commands, ReplyCache& cache,
                           uint64_t now_ns);

class NgServer {
 public:
  explicit NgServer(NgCommands& commands) : commands_(commands) {}
  ~NgServer() { stop(); }
  NgServer(const NgServer&) = delete;
  NgServer& operator=(const NgServer&) = delete;

  // Binds "IPv4:port" or "[IPv6]:port" (port 0: any) and starts serving on a thread of its own.
  absl::Status start(const std::string& listen);
  void stop();
  uint16_t port() const { return port_; }

 private:
  void run();

  NgCommands& commands_;
  ReplyCache cache_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace rtpx::ng

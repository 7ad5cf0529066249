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
#include <vector>

#include "controlplane/frontend/ng/bencode.h"

namespace rtpx::bench {

// Every failure of the client: a bad address, a socket error, a timeout, a reply that is not
// bencode or not a dictionary, or rtpengine's own "error-reason".
struct NgError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The codec rtpxd's NG server uses too.
namespace bencode = ng::bencode;

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

  // Sends `request` (which must hold "command"; of a key given twice, the first counts) and
  // returns the reply dictionary when its "result" is "ok" or "pong"; throws NgError with
  // "error-reason" when it is "error", and on a timeout or a malformed reply.
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

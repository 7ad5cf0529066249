// rtpengine's NG control protocol, the commands: one decoded request dictionary in, one reply
// dictionary out, mapped onto the session manager's typed options exactly as gRPC's are, so
// that Kamailio's and OpenSIPS's rtpengine modules drive rtpx unmodified.
//
// Replies follow rtpengine 10.5 (docs/api.md lists each command, flag and difference):
//   {"result": "ok" | "pong" | "error" | "load limit", "error-reason"?, "warning"?, ...}
// Error reasons a softswitch acts on are rtpengine's own strings: "Parallel session limit
// reached" and "Ran out of ports" make Kamailio try the next node, as does "load limit" as a
// result. An option rtpx does not implement is never silently ignored: one that changes what
// reaches the wire is an error, one that does not is a warning in the reply (and the log).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "controlplane/core/session_manager.h"
#include "controlplane/frontend/ng/bencode.h"

namespace rtpx::ng {

class NgCommands {
 public:
  explicit NgCommands(SessionManager& sessions) : sessions_(sessions) {}

  // Handles one request (a dictionary holding "command"). Never fails: errors are replies.
  bencode::Dict handle(const bencode::Value& request);

  // Offers refused for the load limits since start (statistics: rejectedsessions).
  uint64_t rejected() const { return rejected_; }

 private:
  bencode::Dict offerOrAnswer(const bencode::Dict& req, bool offer);
  bencode::Dict remove(const bencode::Dict& req);
  bencode::Dict query(const bencode::Dict& req);
  bencode::Dict list(const bencode::Dict& req);
  bencode::Dict statistics();

  SessionManager& sessions_;
  uint64_t rejected_ = 0;
  uint64_t managed_ = 0;  // calls created through NG
};

// Errors as NG replies.
bencode::Dict errorReply(std::string reason);

}  // namespace rtpx::ng

#pragma once

#include <rte_mempool.h>
#include <rte_rcu_qsbr.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "controlplane/core/session_manager.h"
#include "dataplane/flow.h"
#include "dataplane/net_types.h"

namespace rtpx::test {

// A pool of 2047 standard mbufs, created on first use (the EAL is up before any test runs).
rte_mempool* testPool();

// An RCU QSBR variable for `readers` reader threads. With no thread registered, synchronize
// returns at once. Declare it before the tables that use it, so they are destroyed first.
struct Qsbr {
  rte_rcu_qsbr* q = nullptr;

  explicit Qsbr(uint32_t readers);
  ~Qsbr();
  Qsbr(const Qsbr&) = delete;
  Qsbr& operator=(const Qsbr&) = delete;
};

// A flow table of `capacity` flows on socket 0 that reclaims through `qsbr`.
std::unique_ptr<FlowTable> makeFlowTable(uint32_t capacity, rte_rcu_qsbr* qsbr);

// A SessionManager interface `name` on DPDK port `port_id`; a null address is left unset.
SessionInterface makeInterface(std::string name, uint16_t port_id, const char* v4, const char* v6,
                               const char* gw4, const char* gw6);

// media0 on port 0: 192.0.2.2/24 and 2001:db8::2/64, gateways 192.0.2.1 and 2001:db8::1.
std::vector<SessionInterface> oneInterface();

// media0 on port 0 with 192.0.2.2/24 only, and no gateway.
std::vector<SessionInterface> oneIpv4Interface();

// A SessionManager over a real flow table (one QSBR reader, none registered), with the clock
// injected as `now` and a resolver that records what it is asked in `resolved`. Members are
// destroyed in reverse order: the manager, then the table, then the QSBR variable.
struct SessionFixture {
  Qsbr qsbr{1};
  std::unique_ptr<FlowTable> flows;
  uint64_t now = 1000 * 1'000'000'000ull;  // ns, what the manager's clock reads; tests move it
  std::vector<std::pair<uint16_t, IpAddr>> resolved;
  std::unique_ptr<SessionManager> sm;

  explicit SessionFixture(SessionsConfig cfg = {},
                          std::vector<SessionInterface> ifs = oneInterface(),
                          uint32_t capacity = 8192);
  SessionFixture(const SessionFixture&) = delete;
  SessionFixture& operator=(const SessionFixture&) = delete;
};

}  // namespace rtpx::test

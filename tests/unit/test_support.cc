#include "tests/unit/test_support.h"

#include <rte_malloc.h>
#include <catch2/catch.hpp>

namespace rtpx::test {

Qsbr::Qsbr(uint32_t readers) {
  q = static_cast<rte_rcu_qsbr*>(
      rte_zmalloc(nullptr, rte_rcu_qsbr_get_memsize(readers), RTE_CACHE_LINE_SIZE));
  REQUIRE(q != nullptr);
  REQUIRE(rte_rcu_qsbr_init(q, readers) == 0);
}

Qsbr::~Qsbr() {
  rte_free(q);
}

std::unique_ptr<FlowTable> makeFlowTable(uint32_t capacity, rte_rcu_qsbr* qsbr) {
  absl::StatusOr<std::unique_ptr<FlowTable>> t = FlowTable::create(capacity, qsbr, 0);
  INFO(t.status().ToString());
  REQUIRE(t.ok());
  return std::move(*t);
}

SessionInterface makeInterface(std::string name, uint16_t port_id, const char* v4, const char* v6,
                               const char* gw4, const char* gw6) {
  SessionInterface i;
  i.name = std::move(name);
  i.port_id = port_id;
  if (v4) i.ipv4 = IpPrefix::parse(v4);
  if (v6) i.ipv6 = IpPrefix::parse(v6);
  if (gw4) i.gateway4 = IpAddr::parse(gw4);
  if (gw6) i.gateway6 = IpAddr::parse(gw6);
  return i;
}

std::vector<SessionInterface> oneInterface() {
  return {makeInterface("media0", 0, "192.0.2.2/24", "2001:db8::2/64", "192.0.2.1", "2001:db8::1")};
}

std::vector<SessionInterface> oneIpv4Interface() {
  return {makeInterface("media0", 0, "192.0.2.2/24", nullptr, nullptr, nullptr)};
}

SessionFixture::SessionFixture(SessionsConfig cfg, std::vector<SessionInterface> ifs,
                               uint32_t capacity)
    : flows(makeFlowTable(capacity, qsbr.q)) {
  absl::StatusOr<std::unique_ptr<SessionManager>> m = SessionManager::create(
      cfg, std::move(ifs), *flows,
      [this](uint16_t port, const IpAddr& hop) { resolved.emplace_back(port, hop); },
      [this] { return now; });
  INFO(m.status().ToString());
  REQUIRE(m.ok());
  sm = std::move(*m);
}

}  // namespace rtpx::test

// One main for every unit test: the EAL starts once, with no hugepages, no PCI and no devices,
// so tests that need mbufs take them from a real mempool (testPool()).
#define CATCH_CONFIG_RUNNER
#include <rte_eal.h>
#include <rte_mbuf.h>
#include <catch2/catch.hpp>

#include "tests/unit/test_support.h"

namespace rtpx::test {

rte_mempool* testPool() {
  static rte_mempool* pool =
      rte_pktmbuf_pool_create("unit_test_pool", 2047, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
  return pool;
}

}  // namespace rtpx::test

int main(int argc, char** argv) {
  const char* eal_argv[] = {"unit_tests",
                            "--no-huge",
                            "--no-shconf",
                            "-m",
                            "128",
                            "--no-pci",
                            "-l",
                            "0",
                            "--log-level",
                            "lib.eal:error",
                            "--file-prefix",
                            "rtpx_unit",
                            "--no-telemetry"};
  if (rte_eal_init(static_cast<int>(std::size(eal_argv)), const_cast<char**>(eal_argv)) < 0) {
    fprintf(stderr, "unit_tests: rte_eal_init failed\n");
    return 1;
  }
  const int rc = Catch::Session().run(argc, argv);
  rte_eal_cleanup();
  return rc;
}

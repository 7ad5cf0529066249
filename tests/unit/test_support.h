#pragma once

#include <rte_mempool.h>

namespace rtpx::test {

// A pool of 2047 standard mbufs, created on first use (the EAL is up before any test runs).
rte_mempool* testPool();

}  // namespace rtpx::test

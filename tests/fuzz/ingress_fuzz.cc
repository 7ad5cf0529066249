// libFuzzer target: any byte string as a received Ethernet frame through handleIngress.
// Checks that nothing crashes or reads out of bounds (ASan), and that a reply never grows past
// the mbuf or leaves the frame shorter than an Ethernet header.
#include <rte_eal.h>
#include <rte_mbuf.h>

#include <cstdlib>
#include <cstring>

#include "dataplane/ingress.h"

namespace {

rte_mempool* g_pool = nullptr;
rtpx::InterfaceAddrs g_ifc;
rtpx::WorkerCounters g_counters;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* argv[] = {"ingress_fuzz",  "--no-huge", "--no-shconf", "-m",          "64",
                        "--no-pci",      "-l",        "0",           "--log-level", "lib.eal:error",
                        "--no-telemetry"};
  if (rte_eal_init(static_cast<int>(std::size(argv)), const_cast<char**>(argv)) < 0) abort();
  g_pool = rte_pktmbuf_pool_create("fuzz", 63, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
  if (g_pool == nullptr) abort();
  g_ifc.port_id = 0;
  g_ifc.mac = *rtpx::MacAddr::parse("02:00:00:00:00:02");
  g_ifc.ipv4 = rtpx::IpPrefix::parse("192.0.2.2/24");
  g_ifc.ipv6 = rtpx::IpPrefix::parse("2001:db8::2/64");
  g_ifc.ipv6_link_local = rtpx::linkLocalFromMac(g_ifc.mac);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > UINT16_MAX) return 0;
  // The frame lives in a heap buffer of exactly its size, attached to the mbuf as an external
  // buffer, so ASan flags any read or write past the end of the frame.
  auto* buf = static_cast<uint8_t*>(std::malloc(size == 0 ? 1 : size));
  std::memcpy(buf, data, size);
  rte_mbuf_ext_shared_info shinfo{};
  shinfo.free_cb = [](void*, void*) {};
  rte_mbuf_ext_refcnt_set(&shinfo, 1);
  rte_mbuf* m = rte_pktmbuf_alloc(g_pool);
  if (m == nullptr) abort();
  rte_pktmbuf_attach_extbuf(m, buf, 0, static_cast<uint16_t>(size), &shinfo);
  m->data_off = 0;
  m->data_len = static_cast<uint16_t>(size);
  m->pkt_len = static_cast<uint32_t>(size);
  const auto r = rtpx::handleIngress(m, g_ifc, g_counters);
  if (r.verdict == rtpx::Verdict::kTransmit &&
      (rte_pktmbuf_data_len(m) < 14 || rte_pktmbuf_data_len(m) > m->buf_len - m->data_off))
    abort();
  rte_pktmbuf_free(m);
  std::free(buf);
  return 0;
}

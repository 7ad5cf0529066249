// A fuzz target that crashes on purpose: its seed corpus holds the input that aborts it. tools/test
// runs it once and requires tools/fuzz to fail, which proves the fuzz stage can fail at all (it
// once printed a crash and passed).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size >= 6 && std::memcmp(data, "canary", 6) == 0) std::abort();
  return 0;
}

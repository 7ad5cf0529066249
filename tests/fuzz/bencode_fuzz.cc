// libFuzzer target for the bencode codec of the NG control protocol. NG requests arrive as UDP
// datagrams from SIP proxies, i.e. untrusted input. Checked properties
// (controlplane/frontend/ng/bencode.h):
//  1. decode() never crashes, and a rejection is InvalidArgument "bencode: ... at offset N"
//     with N within the input;
//  2. for an accepted value v: decode(encode(v)) == v, and encoding is stable,
//     encode(decode(encode(v))) == encode(v);
//  3. the input was canonical (keys sorted) exactly when encode(v) reproduces it.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "controlplane/frontend/ng/bencode.h"

namespace {

namespace bencode = rtpx::ng::bencode;

void check(bool condition) {
  if (!condition) std::abort();
}

// Whether every dictionary in `v` has its keys in strictly increasing byte order.
bool sortedKeys(const bencode::Value& v) {
  if (const bencode::List* l = v.list()) {
    for (const bencode::Value& x : *l) {
      if (!sortedKeys(x)) return false;
    }
  } else if (const bencode::Dict* d = v.dict()) {
    for (std::size_t i = 0; i < d->size(); ++i) {
      if (i > 0 && !((*d)[i - 1].first < (*d)[i].first)) return false;
      if (!sortedKeys((*d)[i].second)) return false;
    }
  }
  return true;
}

void checkError(const absl::Status& status, std::size_t size) {
  check(status.code() == absl::StatusCode::kInvalidArgument);
  const std::string message(status.message());
  constexpr std::string_view kPrefix = "bencode: ";
  constexpr std::string_view kAt = " at offset ";
  check(message.substr(0, kPrefix.size()) == kPrefix);
  const std::size_t at = message.rfind(kAt);
  check(at != std::string::npos);
  const std::string offset = message.substr(at + kAt.size());
  check(!offset.empty() && offset.find_first_not_of("0123456789") == std::string::npos);
  check(std::strtoull(offset.c_str(), nullptr, 10) <= size);
}

}  // namespace

// NOLINTNEXTLINE(readability-identifier-naming): name fixed by libFuzzer.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<bencode::Value> v = bencode::decode(input);
  if (!v.ok()) {
    checkError(v.status(), size);
    return 0;
  }
  const std::string encoded = bencode::encode(*v);
  check((encoded == input) == sortedKeys(*v));
  absl::StatusOr<bencode::Value> again = bencode::decode(encoded);
  check(again.ok());
  check(*again == *v);
  check(bencode::encode(*again) == encoded);
  // Canonical bytes are never longer: sorting keys does not change the size.
  check(encoded.size() == input.size());
  return 0;
}

// Replies by request key, so that a retransmitted request (the same NG cookie, the same gRPC
// request_id) is answered without running again. Two generations rotated every 30 s (as
// rtpengine's cookie cache), so a reply is remembered 30 to 60 s; each generation is bounded.
// Thread-safe.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace rtpx {

class ReplyCache {
 public:
  static constexpr uint64_t kGenerationNs = 30'000'000'000ull;
  static constexpr std::size_t kMaxPerGeneration = 200'000;

  std::optional<std::string> find(std::string_view key) const;
  void insert(std::string key, std::string reply, uint64_t now_ns);

 private:
  mutable std::mutex mu_;
  std::unordered_map<std::string, std::string> current_, previous_;
  uint64_t current_since_ns_ = 0;
};

}  // namespace rtpx

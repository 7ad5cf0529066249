#include "controlplane/core/reply_cache.h"

namespace rtpx {

std::optional<std::string> ReplyCache::find(std::string_view key) const {
  const std::string k(key);
  std::lock_guard lk(mu_);
  if (auto it = current_.find(k); it != current_.end()) return it->second;
  if (auto it = previous_.find(k); it != previous_.end()) return it->second;
  return std::nullopt;
}

void ReplyCache::insert(std::string key, std::string reply, uint64_t now_ns) {
  std::lock_guard lk(mu_);
  if (now_ns >= current_since_ns_ + kGenerationNs || current_.size() >= kMaxPerGeneration) {
    previous_ = std::move(current_);
    current_.clear();
    current_since_ns_ = now_ns;
  }
  current_.insert_or_assign(std::move(key), std::move(reply));
}

}  // namespace rtpx

#include "upstream/backend.h"

namespace spillway::upstream {

Backend::Backend(uint64_t id, v1::Backend config, common::Url url, std::string api_key)
    : id_(id), config_(std::move(config)), url_(std::move(url)), api_key_(std::move(api_key)) {}

bool Backend::tryAcquire() {
  const int64_t limit = config_.max_concurrency();
  int64_t cur = in_flight_.load(std::memory_order_relaxed);
  do {
    if (limit > 0 && cur >= limit) return false;
  } while (!in_flight_.compare_exchange_weak(cur, cur + 1, std::memory_order_relaxed));
  return true;
}

void Backend::release() { in_flight_.fetch_sub(1, std::memory_order_relaxed); }

}  // namespace spillway::upstream

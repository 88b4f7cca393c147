// The load generator behind spillway-bench, the benchmark suite and (soon)
// the console's traffic drill. Open-loop Poisson arrivals or closed-loop
// clients, a weighted mix of request classes, phases (ramp, steady, burst);
// latency is measured from each request's scheduled arrival, so an
// overloaded server shows up as latency and errors, never as a generator
// that quietly slows down (no coordinated omission).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "sim/latency_histogram.h"
#include "spillway/v1/bench.pb.h"

namespace spillway::sim {

// Results for one request class, or for all of them.
struct ClassReport {
  std::string name;
  uint64_t sent = 0;
  uint64_t ok = 0;                         // 2xx with a complete body (and [DONE] for streams)
  uint64_t degraded = 0;                   // of those, answers marked x-spillway-degraded
  uint64_t retry_after = 0;                // 429/503 answers that carried Retry-After
  uint64_t output_tokens = 0;              // generated tokens received (usage, or stream frames)
  uint64_t prompt_tokens = 0;              // prompt tokens of the requests answered 2xx
  uint64_t full_prompt_tokens = 0;         // of those, full (not degraded) answers': what backends processed
  uint64_t full_output_tokens = 0;         // generated tokens of full answers
  LatencyHistogram full_latency;           // end to end, full (not degraded) answers only, µs
  LatencyHistogram answered_latency;       // end to end, every 2xx answer (full or degraded), µs
  LatencyHistogram refused_latency;        // from scheduled arrival to a 429, µs
  std::map<std::string, uint64_t> errors;  // "503", "429", "transport", "client_overflow", "incomplete_stream", ...
  LatencyHistogram latency;                // end to end, from scheduled arrival, µs
  LatencyHistogram ttft;                   // first content frame (streams) or first byte, µs
  LatencyHistogram frame_gap;              // between stream frames, µs
  uint64_t frames = 0;                     // stream frames received
  uint64_t stalls = 0;                     // gaps > 10x expected_itl_ms
  uint64_t streams_lost = 0;               // streams that ended without [DONE]
  void merge(const ClassReport& o);
};

struct PhaseReport {
  std::string name;
  double duration_s = 0;
  double target_rate = 0;      // open loop; 0 for closed loop
  uint32_t concurrency = 0;    // closed loop
  ClassReport overall;
  std::vector<ClassReport> classes;  // the phase's requests by class
};

struct Report {
  std::string target;
  double duration_s = 0;         // first arrival to last completion
  double achieved_send_rate = 0; // requests sent / sending time
  double throughput = 0;         // ok responses per second
  ClassReport overall;
  std::vector<ClassReport> classes;
  std::vector<PhaseReport> phases;
  uint64_t max_open_connections = 0;
};

// Fills defaults and checks a scenario; errors name the field.
absl::Status validateScenario(v1::Scenario& scenario);

// Loads a scenario YAML file (same mapping and error style as the config).
absl::StatusOr<v1::Scenario> loadScenarioFile(const std::string& path);

// Progress while running, about once a second: (seconds elapsed, sent, ok, errors).
using ProgressFn = std::function<void(double, uint64_t, uint64_t, uint64_t)>;

// Runs the scenario to completion (all phases, then the drain), or until
// `*cancel` turns true (no new requests; those in flight are drained).
absl::StatusOr<Report> runLoad(v1::Scenario scenario, const ProgressFn& progress = {},
                               const std::atomic<bool>* cancel = nullptr);

// Human-readable tables, and the full JSON document.
std::string formatReport(const Report& r);
std::string reportJson(const Report& r);

}  // namespace spillway::sim

// A backend's concurrency limit, learned from how it answers (admission's
// "learned capacity"). Pure arithmetic behind a mutex: no clock of its own
// (callers pass one), no I/O, so tests drive it with a modelled server.
//
// The rule (AIMD on two signals, in the spirit of Envoy's adaptive
// concurrency and Netflix's gradient limiter, simplified for LLM servers
// whose latency is dominated by how many tokens they generate):
//   - Each finished request gives its *waiting time*: what it spent not
//     generating — time to first byte for streams; for whole responses the
//     total less output_tokens × the backend's fastest recent time per token.
//     A server's own queue shows up there, whatever the answer's length.
//   - The baseline is the waiting time of an unloaded server, measured as
//     Envoy does: in a probe the limit drops to `probe_limit` (2) until eight
//     requests dispatched at that concurrency have finished; the smallest of
//     their waits is the baseline, and the limit goes back where it was.
//     Until the first probe (after 2,000 samples and 30 s, then again after
//     as many: about 1 % of a slow backend's throughput, far less of a fast
//     one's) the smallest wait seen is the baseline; any smaller wait
//     lowers it between probes too.
//   - Every round (the limit's worth of samples, at least 4) in which the
//     limit was reached: when even the quickest request of the round waited
//     longer than baseline × tolerance + slack, the server is queueing every
//     request → limit − 1; otherwise → limit + 1 (doubling until the first
//     cut: a slow start). The slack is half the time one slot turns over
//     (mean request time / limit, at least 5 ms): a server that queues
//     delays each request by about that much, scheduling noise by less.
//     Rounds below the limit change nothing: a server we do not fill
//     cannot be queueing because of us, and long prompts are not load.
//   - A backend that reports its own queue (vLLM's num_requests_waiting,
//     SGLang's num_queue_reqs, read by LoadScraper) says it directly: a
//     saturated round in which its queue never emptied → limit − 1, one in
//     which it was empty at least once → limit + 1. The limit converges to
//     what it runs without queueing inside, whatever its latencies look like.
//   - A 429/503 before any byte (the server said it is full) multiplies the
//     limit by backoff_ratio at once, at most once per 100 ms.
// Why not a gradient on latency alone: an LLM request's latency varies 100×
// with its output length, so without the generation time taken out it
// cuts the limit on long answers, not on load. Why the round's minimum: a
// server's queue delays every request it admits, while long prompts delay
// only some — the minimum moves with the first and not the second.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "common/mutex.h"

namespace spillway::upstream {

class AdaptiveLimit {
 public:
  struct Settings {
    uint32_t initial = 8;
    uint32_t min = 1;
    uint32_t max = 1024;
    double tolerance = 2.0;
    double backoff_ratio = 0.75;
    // Probes are at least this far apart (steady clock), however fast the
    // samples come: at 50,000 requests a second 2,000 samples are 40 ms.
    int64_t probe_interval_ms = 30000;
  };

  AdaptiveLimit() { configure(Settings{}); }
  // Applies new settings; the current limit is kept (clamped), except the
  // first time (it starts from `initial`).
  void configure(const Settings& s);

  uint32_t limit() const { return limit_.load(std::memory_order_relaxed); }

  // A finished request: `waiting_ms` as described above, `in_flight` the
  // backend's requests in flight when it was dispatched (this one
  // included), `total_ms` its whole time at the backend.
  // `reported_waiting`: the requests the backend itself reports waiting in
  // its own queue (vLLM's num_requests_waiting, SGLang's num_queue_reqs)
  // when it reported recently, else negative.
  void onSample(double waiting_ms, int64_t in_flight, double total_ms, double reported_waiting = -1);
  // Time per output token of a finished request (ms), for the generation
  // time estimate of non-streams.
  void onTokenRate(double ms_per_token);
  // Both of the above under one lock, skipped (false) when another thread
  // holds it: at high rates a sample more or less changes nothing, and
  // workers never wait on each other here.
  bool tryFinished(double ms_per_token, double waiting_ms, int64_t in_flight, double total_ms,
                   double reported_waiting = -1);
  double fastestMsPerToken() const;
  // The backend refused a request as busy (429/503). `now_ms` any clock.
  void onOverload(int64_t now_ms);

  // For operators and tests.
  double baselineMs() const;
  uint64_t cuts() const { return cuts_.load(std::memory_order_relaxed); }
  bool probing() const;

  static constexpr uint32_t kProbeLimit = 2;
  static constexpr uint32_t kProbeSamples = 8;
  static constexpr uint32_t kProbeEvery = 2000;

 private:
  void setLimit(uint32_t v) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void tokenRateLocked(double ms_per_token) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void sampleLocked(double waiting_ms, int64_t in_flight, double total_ms, double reported_waiting)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  std::atomic<uint32_t> limit_{8};
  std::atomic<uint64_t> cuts_{0};
  std::atomic<double> fastest_ms_per_token_{0};
  mutable common::Mutex mu_;
  Settings settings_ ABSL_GUARDED_BY(mu_);
  bool configured_ ABSL_GUARDED_BY(mu_) = false;
  void startProbe() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool slow_start_ ABSL_GUARDED_BY(mu_) = true;  // doubling until the first cut
  double baseline_ ABSL_GUARDED_BY(mu_) = -1;  // -1 until the first probe ends
  bool probing_ ABSL_GUARDED_BY(mu_) = false;
  uint32_t probe_n_ ABSL_GUARDED_BY(mu_) = 0;
  double probe_min_ ABSL_GUARDED_BY(mu_) = -1;
  uint32_t saved_limit_ ABSL_GUARDED_BY(mu_) = 0;  // the limit to return to after a probe
  uint32_t since_probe_ ABSL_GUARDED_BY(mu_) = 0;
  std::chrono::steady_clock::time_point last_probe_ ABSL_GUARDED_BY(mu_) = std::chrono::steady_clock::now();
  uint32_t round_n_ ABSL_GUARDED_BY(mu_) = 0;
  double round_min_ ABSL_GUARDED_BY(mu_) = -1;
  // The least the backend reported waiting in its own queue this round
  // (negative: no report): when it reports, that decides the round.
  double round_reported_min_ ABSL_GUARDED_BY(mu_) = -1;
  double mean_total_ms_ ABSL_GUARDED_BY(mu_) = 0;  // EWMA of request time at the backend
  bool round_saturated_ ABSL_GUARDED_BY(mu_) = false;
  int64_t last_overload_ms_ ABSL_GUARDED_BY(mu_) = -1000000;
  double tok_now_ ABSL_GUARDED_BY(mu_) = -1;  // windowed min ms/token
  double tok_prev_ ABSL_GUARDED_BY(mu_) = -1;
  uint32_t tok_n_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace spillway::upstream

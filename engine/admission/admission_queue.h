// The gateway queue of one pool: requests beyond the pool's capacity wait
// here, not in the inference servers' own queues.
//
//   - strict priority between classes (critical, standard, sheddable);
//   - inside a class, fairness between tenants by tokens served: the Virtual
//     Token Counter (Sheng et al., "Fairness in Serving Large Language
//     Models", OSDI 2024). Each tenant's counter grows by
//     input_weight × prompt tokens when its request is dispatched and by
//     output_weight × generated tokens when it ends; the backlogged tenant
//     with the smallest counter goes next; a tenant that becomes backlogged
//     is lifted to the smallest backlogged counter, so idle time is not
//     banked;
//   - a latency objective per request: one whose predicted wait does not
//     fit it is shed at once (429, deadline), not after waiting; one that
//     was admitted is served — its class's timeout is the only late drop;
//   - work-conserving: dispatch() runs when a backend slot frees (the
//     gateway's release hook) and on the engine's tick (back-offs ending,
//     limits rising), never by polling from the waiters;
//   - when full, the lowest class is shed first.
//
// The queue belongs to a pool's model and outlives config applies (the
// engine hands it from one routing table to the next), so waiters are not
// stranded by an apply. Thread-safe: one mutex; the fast path (nobody
// waiting, tryAdmit) takes it only to charge a named tenant's counter.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "admission/priority.h"
#include "balance/balancer.h"
#include "common/asio_types.h"
#include "common/mutex.h"
#include "upstream/backend.h"

namespace spillway::admission {

struct QueueSettings {
  uint32_t max_queue = 1024;
  std::array<std::chrono::milliseconds, kPriorities> timeout{std::chrono::milliseconds(30000),
                                                             std::chrono::milliseconds(15000),
                                                             std::chrono::milliseconds(5000)};
  double input_weight = 1;
  double output_weight = 2;
  // The order inside a tenant's share of a class: shortest expected first
  // (with aging: a request is passed only by requests that arrived less
  // than `aging` after it; zero: half the request's objective; and the
  // pool's last free slot kept from long requests), or arrival order.
  bool shortest_first = true;
  std::chrono::milliseconds aging{0};
  // The classes' latency objectives (admission.<class>.objective_ms), for
  // views and metrics: each request carries its own (ctx.objective).
  std::array<std::chrono::milliseconds, kPriorities> objective{std::chrono::milliseconds(5000),
                                                               std::chrono::milliseconds(2000),
                                                               std::chrono::milliseconds(1000)};
};

class AdmissionQueue {
 public:
  using Clock = std::chrono::steady_clock;

  // What one request asks for.
  struct Ask {
    Priority priority = Priority::kStandard;
    std::string_view tenant;
    double input_tokens = 0;        // for the tenant's counter
    // The class's queue timeout: a request still waiting then is refused
    // (429 deadline). A safety net: the objective decides at the door.
    Clock::time_point deadline;
    // Its latency objective's last moment to get a slot (zero: none): a
    // newcomer whose predicted wait ends later is refused at once; one
    // admitted but still waiting then leaves the queue with
    // Ticket::objective_passed — the caller answers it degraded, or asks
    // again with `requeue` to wait on (admitted means served, not refused
    // late).
    Clock::time_point objective_deadline{};
    balance::PickContext pick;      // the balancer's inputs (spans stay valid while waiting)
    // Back in the queue (a backend refused it, or its objective passed):
    // ahead of its tenant's others, and never refused for the prediction.
    bool requeue = false;
    // Generated tokens expected (max_tokens); negative: unknown, the
    // tenant's recent answers' length is used.
    double expected_output = -1;
    // The request's latency objective (shortest_first's default aging is
    // half of it); zero: none.
    std::chrono::milliseconds objective{0};
  };
  // The answer: a backend slot (the caller must release() it), or a drop.
  struct Ticket {
    upstream::BackendPtr backend;
    DropReason dropped = DropReason::kNone;
    uint32_t retry_after_seconds = 0;  // with a drop: the estimated drain time
    bool queued = false;               // waited in the queue (not the fast path)
    bool objective_passed = false;     // left the queue at Ask::objective_deadline (no slot, no drop)
    bool queue_moved = false;          // with objective_passed: slots were handed out while it waited
    Clock::duration waited{};
  };

  struct Stats {
    std::array<uint64_t, kPriorities> depth{};
    std::array<uint64_t, kDropReasons> drops{};
    uint64_t dispatched = 0;       // handed a slot after waiting
    uint64_t admitted = 0;         // every slot handed out (fast path included)
    double service_rate = 0;       // slots handed out per second, recent
    double oldest_wait_seconds = 0;
    std::vector<std::pair<std::string, double>> tenant_counters;  // VTC, largest first (at most 20)
    std::vector<std::pair<std::string, uint64_t>> tenant_sheds;   // requests turned away, most first (at most 20)
    std::array<double, kPriorities> objective_seconds{};  // the classes' configured objectives
    std::array<double, kPriorities> predicted_wait{};   // seconds a newcomer of each class would wait now
    std::array<uint64_t, kPriorities> objective_met{};  // requests answered in full inside their objective
    std::array<uint64_t, kPriorities> objective_total{};
    std::array<double, 2> service_seconds{};  // recent service time: non-streams, streams
  };

  explicit AdmissionQueue(QueueSettings settings = {});
  ~AdmissionQueue();  // destroys the coroutines of requests still waiting
  AdmissionQueue(const AdmissionQueue&) = delete;
  AdmissionQueue& operator=(const AdmissionQueue&) = delete;
  void configure(const QueueSettings& settings);

  // The fast path, without a coroutine: a slot when nobody waits and one is
  // free (or a no_backend drop when nothing can serve); nullopt when the
  // request has to wait (then acquire()).
  std::optional<Ticket> tryAdmit(balance::Balancer& balancer, std::span<const upstream::BackendPtr> backends,
                                 const Ask& ask);
  // Whether requests waited recently (since the last tick or the one
  // before): fairness then counts every slot handed out, so callers
  // should name their tenant.
  bool contended() const {
    return waiting() > 0 || enqueued_since_tick_.load(std::memory_order_relaxed) ||
           contended_.load(std::memory_order_relaxed);
  }
  // Waits for a slot in `backends` (picked by `balancer`) or a drop.
  common::Awaitable<Ticket> acquire(balance::Balancer& balancer, std::span<const upstream::BackendPtr> backends,
                                    const Ask& ask);
  // Hands free slots to waiters, best first. Call when a slot frees or
  // capacity may have grown. Cheap when nobody waits.
  void dispatch(balance::Balancer& balancer, std::span<const upstream::BackendPtr> backends);
  // Once a second (any clock): updates the service rate; drops every waiter
  // with no_backend when no backend of the pool can come back.
  void tick(Clock::time_point now, std::span<const upstream::BackendPtr> backends);
  // A request of `tenant` ended having generated `output_tokens`.
  void chargeOutput(Priority priority, std::string_view tenant, uint32_t output_tokens);
  // Counts a drop decided elsewhere (rate limits, degradation) in stats,
  // for `tenant` too when named.
  void countDrop(DropReason r, std::string_view tenant = {});
  // A request was turned away for want of time (at the door, at its
  // objective, queue full) — shed or answered degraded; and whether any was
  // since the last call (degradation's signal, once a second). Drops for
  // deadline or queue_full (countDrop included) note it themselves.
  void noteTurnedAway() { turned_away_.store(true, std::memory_order_relaxed); }
  bool turnedAwaySinceLastAsked() { return turned_away_.exchange(false, std::memory_order_relaxed); }
  // Takes back a drop the queue counted (the request was answered degraded
  // instead of being shed).
  void uncountDrop(DropReason r, std::string_view tenant = {});

  size_t waiting() const { return waiting_.load(std::memory_order_relaxed); }
  // Requests waiting per class (what stats() reports as depth, without its
  // tenant lists: for metrics and views read on every scrape).
  std::array<uint64_t, kPriorities> depths() const;
  // Age of the oldest waiting request (degradation's signal); 0 when none.
  double oldestWaitSeconds() const;
  Stats stats() const;

  // Retry-After for a shed request: the time to drain the queue at the
  // current service rate, 1..60 s.
  uint32_t drainSeconds() const;

  // Latency objectives. The pool's recent service time, from a backend slot
  // to the first token (streams) or the whole answer (others): an EWMA of
  // answered requests, 0 before the first.
  void observeService(bool stream, double seconds);
  double serviceSeconds(bool stream) const {
    return service_[stream ? 1 : 0].load(std::memory_order_relaxed);
  }
  // A request of class `p` ended: answered in full inside its objective, or not.
  void countObjective(Priority p, bool met);
  // The class's configured objective, in seconds.
  double objectiveSeconds(Priority p) const;
  // {met, total} for class `p` since the queue was made.
  std::pair<uint64_t, uint64_t> objectiveCounts(Priority p) const {
    const int c = static_cast<int>(p);
    const uint64_t total = objective_total_[c].load(std::memory_order_relaxed);
    return {std::min(total, objective_met_[c].load(std::memory_order_relaxed)), total};
  }
  // What a newcomer of class `p` would wait now: the requests of its class
  // and those above at the pool's service rate, or its own class's queue at
  // the rate that class is being served, whichever is longer (infinity
  // while the classes above take every slot; 0 when none wait).
  double predictedWaitSeconds(Priority p) const;

 private:
  struct Waiter;
  using WaiterPtr = std::shared_ptr<Waiter>;
  struct Tenant {
    double counter = 0;
    std::deque<WaiterPtr> waiting;
    // How fast this tenant's queue drains (fairness gives it its share, not
    // the class's): slots handed to it, its rate per tick, and whether it
    // was starved (waiters over a whole tick, none served).
    uint64_t served = 0, served_at_tick = 0;
    double rate = 0;
    bool backlogged_at_tick = false, starved = false;
    double output_tokens = -1;  // EWMA of its answers' generated tokens; negative: none yet
  };
  struct Class {
    std::unordered_map<std::string, Tenant> tenants;
    std::vector<Tenant*> backlogged;
    size_t size = 0;
    // Fairness counter units charged to its tenants (in all), at the last
    // tick, and per second (EWMA): how fast a lagging tenant catches up.
    double charged = 0, charged_at_tick = 0, charge_rate = 0;
  };

  // Under mu_: the tenant whose front waiter goes next, skipping waiters
  // whose placement is `blocked` (all its slots taken); null when none.
  Tenant* nextTenant(int cls, std::span<const void* const> blocked = {}) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void remove(const WaiterPtr& w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  struct Wakeups;
  void dispatchLocked(balance::Balancer& balancer, std::span<const upstream::BackendPtr> backends, Wakeups& wake)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void drop(const WaiterPtr& w, DropReason r, Wakeups& wake) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Resumes the waiters taken into `wake` (after mu_).
  static void wakeAll(Wakeups& wake);
  // A waiter's deadline passed: resume it to look (its worker's sweep).
  void resume(Waiter& w);
  // A waiter's worker shut down while it slept: out of the queue, its
  // coroutine destroyed.
  void abandon(Waiter& w);
  void pruneTenants(Class& c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // shortest_first: a request costlier than kLongCost x the mean is long,
  // and long ones do not take the pool's last free slot (pools of at least
  // kMinSlotsToReserve slots, all limited).
  static constexpr double kLongCost = 1.5;
  static constexpr int64_t kMinSlotsToReserve = 4;
  // The pool's free slots, or -1 when none is kept (a backend without a
  // limit, or too few slots).
  static int64_t reservableFreeSlots(std::span<const upstream::BackendPtr> backends);
  // Puts `w` in its tenant's queue: first when requeued; else in arrival
  // order, or by its shortest-first key.
  void place(Tenant& t, const WaiterPtr& w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void countTenantShed(std::string_view tenant) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A drop in the reason counters (and, for want of time, noteTurnedAway).
  void tallyDrop(DropReason r);
  // When a waiter stops waiting: its objective's deadline, else its timeout.
  static Clock::time_point wakeAt(const Ask& ask);

  mutable common::Mutex mu_;
  QueueSettings settings_ ABSL_GUARDED_BY(mu_);
  std::array<Class, kPriorities> classes_ ABSL_GUARDED_BY(mu_);
  std::unordered_map<std::string, uint64_t> tenant_sheds_ ABSL_GUARDED_BY(mu_);  // bounded, see countTenantShed
  std::atomic<size_t> waiting_{0};
  std::atomic<uint64_t> admitted_{0};
  std::atomic<uint64_t> dispatched_{0};
  std::array<std::atomic<uint64_t>, kDropReasons> drops_{};
  // Slots per second, an EWMA over ticks (0.85 / 0.15: a time constant of
  // about 6 s, so the bursts of a pool whose answers outlast a tick do not
  // read as a stall). The class and tenant rates below use the same.
  std::atomic<double> rate_{0};
  std::array<std::atomic<double>, 2> service_{};  // seconds: non-streams, streams (EWMA)
  // Slots handed to each class (fast path and queue), and per tick: each
  // class's recent rate, and whether it was starved (waiters over a whole
  // tick, none served: the classes above take every slot).
  std::array<std::atomic<uint64_t>, kPriorities> admitted_class_{};
  std::array<uint64_t, kPriorities> admitted_class_at_tick_ ABSL_GUARDED_BY(mu_){};
  std::array<double, kPriorities> class_rate_ ABSL_GUARDED_BY(mu_){};
  std::array<bool, kPriorities> backlogged_at_tick_ ABSL_GUARDED_BY(mu_){};
  std::array<bool, kPriorities> starved_ ABSL_GUARDED_BY(mu_){};
  // Under mu_: the predicted wait of a newcomer of class `cls` with
  // `ahead` requests in front of it, `own` of them of its own class, and of
  // those `mine` of its own tenant `tenant` (null: unknown); infinity when
  // its class or its tenant is starved.
  double predictLocked(int cls, size_t ahead, size_t own, const Tenant* tenant = nullptr, size_t mine = 0) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::array<std::atomic<uint64_t>, kPriorities> objective_met_{};
  std::array<std::atomic<uint64_t>, kPriorities> objective_total_{};
  std::atomic<bool> enqueued_since_tick_{false};
  std::atomic<bool> turned_away_{false};
  std::atomic<bool> contended_{false};
  uint64_t admitted_at_tick_ ABSL_GUARDED_BY(mu_) = 0;
  Clock::time_point last_tick_ ABSL_GUARDED_BY(mu_){};
  double mean_cost_ ABSL_GUARDED_BY(mu_) = 0;  // EWMA of enqueued requests' expected cost (shortest_first's scale)
};

// True when some backend of the pool is out only for a while (ejected,
// backing off, at its limit) rather than down or drained: waiting can help.
bool canRecover(std::span<const upstream::BackendPtr> backends);

}  // namespace spillway::admission

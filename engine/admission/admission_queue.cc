#include "admission/admission_queue.h"
#include "common/coarse_deadline.h"
#include "common/mutex.h"

#include <algorithm>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <cmath>
#include <limits>

namespace spillway::admission {

namespace net = boost::asio;

// The suspended acquire() is resumed by posting its completion handler to
// its own worker: no timer (an Asio timer costs a timerfd_settime whenever
// it becomes its worker's earliest, and a cancel one more trip through the
// scheduler). The deadline is a CoarseDeadline (a store; checked on the
// worker's 100 ms sweep).
using ResumeHandler =
    net::async_result<std::decay_t<decltype(common::kUseAwaitable)>, void()>::handler_type;

struct AdmissionQueue::Waiter {
  Waiter(AdmissionQueue& q, net::io_context& io) : queue(&q), deadline(io, &Waiter::expired, &Waiter::abandoned, this) {}
  enum class State { kWaiting, kGranted, kDropped };
  // Its deadline passed (on its worker): resume it to find out.
  static void expired(void* self) {
    auto* w = static_cast<Waiter*>(self);
    if (AdmissionQueue* q = w->queue.load(std::memory_order_acquire)) q->resume(*w);
  }
  // Its worker shut down while it waited: it will never run again.
  static void abandoned(void* self) {
    auto* w = static_cast<Waiter*>(self);
    if (AdmissionQueue* q = w->queue.load(std::memory_order_acquire)) q->abandon(*w);
  }

  // Null once the queue is gone (its destructor let go of the waiter).
  std::atomic<AdmissionQueue*> queue;
  // Armed, disarmed and destroyed on the waiter's worker (or after it stopped).
  common::CoarseDeadline deadline;
  // Under the queue's mu_: the suspended acquire() while it sleeps; whoever
  // takes it posts it. (It owns the coroutine, which owns this waiter: the
  // queue's destructor and abandon() break that cycle.)
  std::optional<ResumeHandler> handler;
  Ask ask;
  int cls = 1;
  Tenant* tenant = nullptr;
  State state = State::kWaiting;
  upstream::BackendPtr backend;
  DropReason reason = DropReason::kNone;
  Clock::time_point enqueued;
  uint64_t admitted_before = 0;  // the queue's slots handed out when it came
  double key = 0;  // shortest_first's place: arrival (seconds) pushed back for a long request
  bool long_job = false;  // shortest_first: costlier than kLongCost x the mean (kept off the last free slot)
};

// The handlers of waiters granted or dropped under mu_, posted after it.
struct AdmissionQueue::Wakeups {
  std::vector<ResumeHandler> handlers;
  // Takes w's handler (if it sleeps); under mu_.
  void take(Waiter& w) {
    if (!w.handler) return;
    handlers.push_back(std::move(*w.handler));
    w.handler.reset();
  }
};

bool canRecover(std::span<const upstream::BackendPtr> backends) {
  for (const auto& b : backends) {
    if (b->healthy() && !b->draining()) return true;
  }
  return false;
}

AdmissionQueue::AdmissionQueue(QueueSettings settings) : settings_(settings) {}

void AdmissionQueue::configure(const QueueSettings& settings) {
  common::MutexLock lock(mu_);
  settings_ = settings;
}

uint32_t AdmissionQueue::drainSeconds() const {
  const double rate = rate_.load(std::memory_order_relaxed);
  const double n = static_cast<double>(waiting()) + 1;
  if (rate <= 0) return 1;
  return static_cast<uint32_t>(std::clamp(std::ceil(n / rate), 1.0, 60.0));
}

void AdmissionQueue::observeService(bool stream, double seconds) {
  auto& s = service_[stream ? 1 : 0];
  const double old = s.load(std::memory_order_relaxed);
  // Racing writers may lose a sample: an estimate, not a count.
  s.store(old <= 0 ? seconds : 0.9 * old + 0.1 * seconds, std::memory_order_relaxed);
}

void AdmissionQueue::countObjective(Priority p, bool met) {
  const int c = static_cast<int>(p);
  if (met) objective_met_[c].fetch_add(1, std::memory_order_relaxed);
  objective_total_[c].fetch_add(1, std::memory_order_relaxed);
}

double AdmissionQueue::objectiveSeconds(Priority p) const {
  common::MutexLock lock(mu_);
  return std::chrono::duration<double>(settings_.objective[static_cast<int>(p)]).count();
}

double AdmissionQueue::predictLocked(int cls, size_t ahead, size_t own, const Tenant* tenant, size_t mine) const {
  const double rate = rate_.load(std::memory_order_relaxed);
  if (rate <= 0) return 0;  // no measure yet
  // Every slot is taken (or it would not wait): with nobody ahead, the next
  // one to free; behind `ahead` others, theirs first.
  double wait = static_cast<double>(ahead + 1) / rate;
  // Strict priority: a class gets what the classes above leave. Its own
  // queue drains at the rate it is being served, which is what the pool's
  // rate overstates while the classes above take most of it.
  if (own > 0) {
    if (starved_[cls]) return std::numeric_limits<double>::infinity();
    // (Only a rate measured while the class had a queue says how fast its
    // queue drains: an idle class's rate is its arrivals, or stale.)
    if (backlogged_at_tick_[cls] && class_rate_[cls] > 0) {
      wait = std::max(wait, static_cast<double>(own + 1) / class_rate_[cls]);
    }
  }
  // Fairness inside the class: a tenant over its share waits for its own
  // backlog, and then its turn, at the rate fairness serves it, however fast
  // the class moves; and a tenant whose counter is ahead of backlogged ones
  // waits until their counters catch up with it — what they lack, in all,
  // at the class's charge rate.
  if (tenant) {
    const Class& c = classes_[cls];
    double behind = 0;
    for (const Tenant* o : c.backlogged) {
      if (o != tenant) behind += std::max(0.0, tenant->counter - o->counter);
    }
    if (behind > 0 && c.charge_rate > 0) wait = std::max(wait, behind / c.charge_rate);
    if (mine > 0 && tenant->starved) return std::numeric_limits<double>::infinity();
    if (tenant->backlogged_at_tick && tenant->rate > 0) {
      wait = std::max(wait, static_cast<double>(mine + 1) / tenant->rate);
    }
  }
  return wait;
}

double AdmissionQueue::predictedWaitSeconds(Priority p) const {
  if (waiting() == 0) return 0;
  common::MutexLock lock(mu_);
  size_t ahead = 0;
  for (int c = 0; c <= static_cast<int>(p); ++c) ahead += classes_[c].size;
  return predictLocked(static_cast<int>(p), ahead, classes_[static_cast<int>(p)].size);
}

AdmissionQueue::Tenant* AdmissionQueue::nextTenant(int cls, std::span<const void* const> blocked) {
  Tenant* best = nullptr;
  auto isBlocked = [&](const void* p) { return std::find(blocked.begin(), blocked.end(), p) != blocked.end(); };
  for (Tenant* t : classes_[cls].backlogged) {
    if (!blocked.empty() && (isBlocked(t) || isBlocked(t->waiting.front()->ask.pick.only.data()))) continue;
    if (!best || t->counter < best->counter) best = t;
  }
  return best;
}

void AdmissionQueue::remove(const WaiterPtr& w) {
  Class& c = classes_[w->cls];
  auto& dq = w->tenant->waiting;
  auto it = std::find(dq.begin(), dq.end(), w);
  if (it == dq.end()) return;
  dq.erase(it);
  --c.size;
  waiting_.fetch_sub(1, std::memory_order_relaxed);
  if (dq.empty()) std::erase(c.backlogged, w->tenant);
}

void AdmissionQueue::countTenantShed(std::string_view tenant) {
  if (tenant.empty()) return;
  auto it = tenant_sheds_.find(std::string(tenant));
  if (it != tenant_sheds_.end()) {
    ++it->second;
  } else if (tenant_sheds_.size() < 4096) {  // beyond that, only tenants already seen are counted
    tenant_sheds_.emplace(std::string(tenant), 1);
  }
}

void AdmissionQueue::tallyDrop(DropReason r) {
  drops_[static_cast<int>(r)].fetch_add(1, std::memory_order_relaxed);
  if (r == DropReason::kDeadline || r == DropReason::kQueueFull) noteTurnedAway();
}

void AdmissionQueue::countDrop(DropReason r, std::string_view tenant) {
  tallyDrop(r);
  if (tenant.empty()) return;
  common::MutexLock lock(mu_);
  countTenantShed(tenant);
}

void AdmissionQueue::uncountDrop(DropReason r, std::string_view tenant) {
  drops_[static_cast<int>(r)].fetch_sub(1, std::memory_order_relaxed);
  if (tenant.empty()) return;
  common::MutexLock lock(mu_);
  auto it = tenant_sheds_.find(std::string(tenant));
  if (it != tenant_sheds_.end() && it->second > 0) --it->second;
}

void AdmissionQueue::drop(const WaiterPtr& w, DropReason r, Wakeups& wake) {
  countTenantShed(w->ask.tenant);
  remove(w);
  w->state = Waiter::State::kDropped;
  w->reason = r;
  tallyDrop(r);
  wake.take(*w);
}

void AdmissionQueue::wakeAll(Wakeups& wake) {
  // Each resumes on its own worker (its handler's executor).
  for (auto& h : wake.handlers) net::post(std::move(h));
  wake.handlers.clear();
}

void AdmissionQueue::resume(Waiter& w) {
  Wakeups wake;
  {
    common::MutexLock lock(mu_);
    wake.take(w);
  }
  wakeAll(wake);  // posted, not run: this is the sweeper's tick
}

void AdmissionQueue::abandon(Waiter& w) {
  Wakeups dead;
  WaiterPtr keep;  // the queue's reference, released after the handler (and with it the coroutine)
  {
    common::MutexLock lock(mu_);
    dead.take(w);
    if (w.state == Waiter::State::kWaiting && w.tenant) {
      auto& dq = w.tenant->waiting;
      if (auto it = std::find_if(dq.begin(), dq.end(), [&](const WaiterPtr& p) { return p.get() == &w; }); it != dq.end()) {
        keep = *it;
        remove(keep);
      }
    }
  }
  dead.handlers.clear();  // destroys the coroutine (and what it holds) outside the lock
}

AdmissionQueue::~AdmissionQueue() {
  // Waiters still asleep: their coroutines are destroyed (each owns its
  // waiter; Asio unwinds them on their worker, or when it shuts down), and
  // their deadlines no longer call back here.
  Wakeups dead;
  {
    common::MutexLock lock(mu_);
    for (Class& c : classes_) {
      for (auto& [name, t] : c.tenants) {
        for (auto& w : t.waiting) {
          w->queue.store(nullptr, std::memory_order_release);
          dead.take(*w);
        }
        t.waiting.clear();
      }
      c.backlogged.clear();
      c.size = 0;
    }
    waiting_.store(0, std::memory_order_relaxed);
  }
  dead.handlers.clear();
}

void AdmissionQueue::dispatchLocked(balance::Balancer& balancer, std::span<const upstream::BackendPtr> backends,
                                    Wakeups& wake) {
  int64_t free_slots = settings_.shortest_first ? reservableFreeSlots(backends) : -1;
  for (int cls = 0; cls < kPriorities; ++cls) {
    // Placements (GPU instances) whose slots are all taken, and tenants
    // whose next request is kept off the last free slot: their waiters
    // wait, others of the class (and of the classes below) still go.
    std::vector<const void*> blocked;
    while (classes_[cls].size > 0) {
      Tenant* t = nextTenant(cls, blocked);
      if (!t) break;
      WaiterPtr w = t->waiting.front();
      if (free_slots == 1 && w->long_job) {
        // shortest_first keeps the pool's last free slot for a shorter
        // request: long requests that take every slot as it frees start
        // and end together, and a short one then waits for a whole long
        // answer (head-of-line blocking that no order can undo).
        blocked.push_back(t);
        continue;
      }
      auto pick = balancer.pick(backends, w->ask.pick);
      if (pick.outcome == balance::PickOutcome::kAllBusy) {
        if (w->ask.pick.only.empty()) return;  // the whole pool is busy
        blocked.push_back(w->ask.pick.only.data());
        continue;
      }
      if (pick.outcome == balance::PickOutcome::kNoHealthyBackend) {
        // Everyone this request may still use is out. With backends it
        // already tried excluded, it has nowhere to go: let it report that.
        // Otherwise they come back (back-off, ejection ending): wait.
        if (w->ask.pick.skip.empty()) return;
        drop(w, DropReason::kNoBackend, wake);
        continue;
      }
      remove(w);
      t->counter += settings_.input_weight * w->ask.input_tokens;
      classes_[cls].charged += settings_.input_weight * w->ask.input_tokens;
      ++t->served;
      w->state = Waiter::State::kGranted;
      w->backend = std::move(pick.backend);
      admitted_.fetch_add(1, std::memory_order_relaxed);
      admitted_class_[cls].fetch_add(1, std::memory_order_relaxed);
      dispatched_.fetch_add(1, std::memory_order_relaxed);
      if (free_slots > 0) --free_slots;
      wake.take(*w);
    }
  }
}

int64_t AdmissionQueue::reservableFreeSlots(std::span<const upstream::BackendPtr> backends) {
  int64_t total = 0, free = 0;
  for (const auto& b : backends) {
    if (!b->available()) continue;
    const int64_t limit = b->concurrencyLimit();
    if (limit <= 0) return -1;  // unlimited: nothing to keep
    total += limit;
    free += std::max<int64_t>(0, limit - b->inFlight());
  }
  // A pool of few slots cannot spare one.
  return total >= kMinSlotsToReserve ? free : -1;
}

void AdmissionQueue::dispatch(balance::Balancer& balancer, std::span<const upstream::BackendPtr> backends) {
  if (waiting() == 0) return;
  Wakeups wake;
  {
    common::MutexLock lock(mu_);
    dispatchLocked(balancer, backends, wake);
  }
  wakeAll(wake);
}

void AdmissionQueue::place(Tenant& t, const WaiterPtr& w) {
  if (w->ask.requeue) {
    t.waiting.push_front(w);
    return;
  }
  if (!settings_.shortest_first) {
    t.waiting.push_back(w);
    return;
  }
  // The expected cost in the fairness counter's units: prompt tokens and
  // the tokens it will generate (max_tokens, else what the tenant's
  // answers have been generating).
  const double output = w->ask.expected_output >= 0 ? w->ask.expected_output : std::max(0.0, t.output_tokens);
  const double cost = settings_.input_weight * w->ask.input_tokens + settings_.output_weight * output;
  mean_cost_ = mean_cost_ <= 0 ? cost : 0.95 * mean_cost_ + 0.05 * cost;
  w->long_job = cost > kLongCost * mean_cost_;
  // Its arrival time, pushed back by a share of the aging bound that grows
  // with its cost (half of it at the mean cost): a request is passed only
  // by requests that arrived less than `aging` after it, so none starves.
  using Seconds = std::chrono::duration<double>;
  const double aging = settings_.aging.count() > 0     ? Seconds(settings_.aging).count()
                       : w->ask.objective.count() > 0 ? Seconds(w->ask.objective).count() / 2
                                                      : 1.0;
  const double share = cost + mean_cost_ > 0 ? cost / (cost + mean_cost_) : 0.5;
  w->key = std::chrono::duration<double>(w->enqueued.time_since_epoch()).count() + aging * share;
  auto it = t.waiting.end();
  while (it != t.waiting.begin()) {
    const Waiter& before = **std::prev(it);
    if (before.ask.requeue || before.key <= w->key) break;  // requeued ones stay first
    --it;
  }
  t.waiting.insert(it, w);
}

void AdmissionQueue::pruneTenants(Class& c) {
  if (c.tenants.size() < 4096) return;
  // Tenants with nothing waiting whose counter is at or below every
  // backlogged one would be lifted on return anyway: forgetting them
  // changes nothing.
  double floor = std::numeric_limits<double>::infinity();
  for (Tenant* t : c.backlogged) floor = std::min(floor, t->counter);
  for (auto it = c.tenants.begin(); it != c.tenants.end();) {
    it = it->second.waiting.empty() && it->second.counter <= floor ? c.tenants.erase(it) : std::next(it);
  }
}

std::optional<AdmissionQueue::Ticket> AdmissionQueue::tryAdmit(balance::Balancer& balancer,
                                                               std::span<const upstream::BackendPtr> backends,
                                                               const Ask& ask) {
  // Nobody waits, so nobody is overtaken.
  if (waiting() > 0) return std::nullopt;
  Ticket ticket;
  auto pick = balancer.pick(backends, ask.pick);
  if (pick.outcome == balance::PickOutcome::kPicked) {
    admitted_.fetch_add(1, std::memory_order_relaxed);
    admitted_class_[static_cast<int>(ask.priority)].fetch_add(1, std::memory_order_relaxed);
    ticket.backend = std::move(pick.backend);
    // Fairness counts this slot too while the pool is contended: a tenant
    // must not gain by arriving when the queue happens to be empty. Not
    // while it is idle: service nobody else wanted is not banked against a
    // tenant either (a tenant of long prompts served alone through a quiet
    // hour was otherwise that hour's tokens ahead when the overload came,
    // and refused through all of it).
    if (ask.input_tokens > 0 && !ask.tenant.empty() && contended()) {
      common::MutexLock lock(mu_);
      Class& c = classes_[static_cast<int>(ask.priority)];
      pruneTenants(c);
      c.tenants[std::string(ask.tenant)].counter += settings_.input_weight * ask.input_tokens;
      c.charged += settings_.input_weight * ask.input_tokens;
    }
    return ticket;
  }
  if (pick.outcome == balance::PickOutcome::kNoHealthyBackend && (!ask.pick.skip.empty() || !canRecover(backends))) {
    countDrop(DropReason::kNoBackend);
    ticket.dropped = DropReason::kNoBackend;
    return ticket;
  }
  return std::nullopt;
}

AdmissionQueue::Clock::time_point AdmissionQueue::wakeAt(const Ask& ask) {
  return ask.objective_deadline != Clock::time_point{} ? std::min(ask.objective_deadline, ask.deadline) : ask.deadline;
}

common::Awaitable<AdmissionQueue::Ticket> AdmissionQueue::acquire(balance::Balancer& balancer,
                                                                  std::span<const upstream::BackendPtr> backends,
                                                                  const Ask& ask) {
  if (auto now = tryAdmit(balancer, backends, ask)) co_return std::move(*now);
  Ticket ticket;
  enqueued_since_tick_.store(true, std::memory_order_relaxed);

  const auto now = Clock::now();
  auto w = std::make_shared<Waiter>(*this, (co_await net::this_coro::executor).context());
  w->ask = ask;
  w->cls = static_cast<int>(ask.priority);
  w->enqueued = now;
  w->admitted_before = admitted_.load(std::memory_order_relaxed);
  Wakeups wake;
  {
    common::MutexLock lock(mu_);
    // Shed at once what cannot make its deadline at the current rate. Ahead
    // of it: every request of the classes above, and in its own class about
    // its tenant's share — fairness serves the backlogged tenants in turn,
    // so a tenant with a long backlog waits for it, not for everyone's.
    // A request placed on some GPU instances waits only behind the
    // classes above that are placed on the same ones.
    size_t ahead = 0;
    for (int c = 0; c < w->cls; ++c) {
      if (ask.pick.only.empty()) {
        ahead += classes_[c].size;
        continue;
      }
      for (const Tenant* t : classes_[c].backlogged) {
        for (const auto& o : t->waiting) ahead += o->ask.pick.only.data() == ask.pick.only.data() ? 1 : 0;
      }
    }
    size_t own_ahead = 0, mine = 0;
    const Tenant* tenant = nullptr;
    {
      const Class& own = classes_[w->cls];
      auto it = own.tenants.find(std::string(ask.tenant));
      if (it != own.tenants.end()) tenant = &it->second;
      mine = tenant ? tenant->waiting.size() : 0;
      const size_t tenants = own.backlogged.size() + (mine == 0 ? 1 : 0);
      own_ahead = std::min(own.size, (mine + 1) * tenants);
      ahead += own_ahead;
    }
    // A placed request's own class rate is the pool's, not its instances':
    // it is predicted from what is ahead of it alone.
    const bool pool_wide = ask.pick.only.empty();
    const double predicted = predictLocked(w->cls, ahead, pool_wide ? own_ahead : 0, pool_wide ? tenant : nullptr, mine);
    // Decided here, once: a request admitted is served (or leaves at its
    // objective to be degraded), never refused for a prediction later.
    const double left = std::chrono::duration<double>(wakeAt(ask) - now).count();
    DropReason refuse = DropReason::kNone;
    if (ask.deadline <= now || (!ask.requeue && (left <= 0 || predicted > left))) {
      refuse = DropReason::kDeadline;
    } else if (waiting() >= settings_.max_queue) {
      // Full: push out the newest waiter of a lower class, else refuse.
      refuse = DropReason::kQueueFull;
      for (int c = kPriorities - 1; c > w->cls; --c) {
        Class& lc = classes_[c];
        if (lc.size == 0) continue;
        WaiterPtr victim;
        for (Tenant* t : lc.backlogged) {
          if (!victim || t->waiting.back()->enqueued > victim->enqueued) victim = t->waiting.back();
        }
        drop(victim, DropReason::kQueueFull, wake);
        refuse = DropReason::kNone;
        break;
      }
    }
    if (refuse != DropReason::kNone) {
      tallyDrop(refuse);
      countTenantShed(ask.tenant);
      ticket.dropped = refuse;
    } else {
      Class& c = classes_[w->cls];
      pruneTenants(c);
      Tenant& t = c.tenants[std::string(ask.tenant)];
      if (t.waiting.empty()) {
        // VTC's lift: a tenant returning from idle starts level with the
        // least-served backlogged tenant, so idle time is not banked.
        double floor = -1;
        for (Tenant* o : c.backlogged) floor = floor < 0 ? o->counter : std::min(floor, o->counter);
        if (floor >= 0) t.counter = std::max(t.counter, floor);
        c.backlogged.push_back(&t);
      }
      w->tenant = &t;
      place(t, w);
      ++c.size;
      waiting_.fetch_add(1, std::memory_order_relaxed);
      dispatchLocked(balancer, backends, wake);
    }
  }
  if (ticket.dropped != DropReason::kNone) {
    ticket.retry_after_seconds = drainSeconds();
    wakeAll(wake);
    co_return ticket;
  }
  wakeAll(wake);  // (not w itself: it has no handler yet)
  // Sleeps until granted, dropped or its deadline (unless that happened
  // during its own enqueue: then it is posted at once).
  w->deadline.expiresAt(wakeAt(ask));
  co_await net::async_initiate<decltype(common::kUseAwaitable), void()>(
      [this, &w](ResumeHandler handler) {
        {
          common::MutexLock lock(mu_);
          if (w->state == Waiter::State::kWaiting) {
            w->handler.emplace(std::move(handler));
            return;
          }
        }
        net::post(std::move(handler));
      },
      common::kUseAwaitable);
  w->deadline.disarm();
  common::MutexLock lock(mu_);
  const auto woke = Clock::now();
  ticket.queued = true;
  ticket.waited = woke - w->enqueued;
  if (w->state == Waiter::State::kWaiting) {
    if (woke < ask.deadline) {
      // Its objective passed without a slot: the caller decides (degrade,
      // or wait on); not a drop.
      remove(w);
      ticket.objective_passed = true;
      ticket.queue_moved = admitted_.load(std::memory_order_relaxed) != w->admitted_before;
      co_return ticket;
    }
    // The class's timeout passed first.
    Wakeups none;  // (w is awake)
    drop(w, DropReason::kDeadline, none);
  }
  if (w->state == Waiter::State::kGranted) {
    ticket.backend = std::move(w->backend);
  } else {
    ticket.dropped = w->reason;
    ticket.retry_after_seconds = drainSeconds();
  }
  co_return ticket;
}

void AdmissionQueue::tick(Clock::time_point now, std::span<const upstream::BackendPtr> backends) {
  Wakeups wake;
  {
    common::MutexLock lock(mu_);
    const uint64_t admitted = admitted_.load(std::memory_order_relaxed);
    const double secs = last_tick_ == Clock::time_point{} ? 0 : std::chrono::duration<double>(now - last_tick_).count();
    // Only a tick in which requests waited measures how fast the pool
    // serves: otherwise what it handed out is what arrived, and a quiet
    // spell would read as a slow pool (refusing the next burst at the door).
    const bool busy = enqueued_since_tick_.load(std::memory_order_relaxed) || waiting() > 0;
    if (secs > 0 && busy) {
      const double sample = static_cast<double>(admitted - admitted_at_tick_) / secs;
      const double old = rate_.load(std::memory_order_relaxed);
      rate_.store(old <= 0 ? sample : 0.85 * old + 0.15 * sample, std::memory_order_relaxed);
    }
    const uint64_t pool_served = admitted - admitted_at_tick_;
    for (int c = 0; c < kPriorities; ++c) {
      const uint64_t n = admitted_class_[c].load(std::memory_order_relaxed);
      const uint64_t served = n - admitted_class_at_tick_[c];
      // (Likewise a class's and a tenant's rates: measured while they had a queue.)
      if (secs > 0 && (backlogged_at_tick_[c] || classes_[c].size > 0)) {
        const double sample = static_cast<double>(served) / secs;
        class_rate_[c] = class_rate_[c] <= 0 ? sample : 0.85 * class_rate_[c] + 0.15 * sample;
      }
      // Starved: waiting over the whole tick while others took slots (at
      // least two: one freed slot going elsewhere is chance, and a pool
      // whose answers outlast a tick frees none).
      const bool backlogged = classes_[c].size > 0;
      starved_[c] = secs > 0 && served == 0 && backlogged && backlogged_at_tick_[c] && pool_served >= 2;
      backlogged_at_tick_[c] = backlogged;
      admitted_class_at_tick_[c] = n;
      if (secs > 0 && busy) {
        Class& k = classes_[c];
        const double sample = (k.charged - k.charged_at_tick) / secs;
        k.charge_rate = k.charge_rate <= 0 ? sample : 0.85 * k.charge_rate + 0.15 * sample;
      }
      classes_[c].charged_at_tick = classes_[c].charged;
      for (auto& [name, t] : classes_[c].tenants) {
        const uint64_t got = t.served - t.served_at_tick;
        if (secs > 0 && (t.backlogged_at_tick || !t.waiting.empty())) {
          const double sample = static_cast<double>(got) / secs;
          t.rate = t.rate <= 0 ? sample : 0.85 * t.rate + 0.15 * sample;
        }
        // Over its share: nothing while its class served at least two
        // requests for every backlogged tenant.
        t.starved = secs > 0 && got == 0 && !t.waiting.empty() && t.backlogged_at_tick &&
                    served >= 2 * std::max<size_t>(1, classes_[c].backlogged.size());
        t.backlogged_at_tick = !t.waiting.empty();
        t.served_at_tick = t.served;
      }
    }
    last_tick_ = now;
    admitted_at_tick_ = admitted;
    contended_.store(enqueued_since_tick_.exchange(false, std::memory_order_relaxed) || waiting() > 0,
                     std::memory_order_relaxed);
    if (waiting() > 0 && !canRecover(backends)) {
      for (auto& c : classes_) {
        while (c.size > 0) {
          Tenant* t = c.backlogged.front();
          drop(t->waiting.front(), DropReason::kNoBackend, wake);
        }
      }
    }
  }
  wakeAll(wake);
}

void AdmissionQueue::chargeOutput(Priority priority, std::string_view tenant, uint32_t output_tokens) {
  if (output_tokens == 0 || tenant.empty()) return;
  common::MutexLock lock(mu_);
  Class& c = classes_[static_cast<int>(priority)];
  auto it = c.tenants.find(std::string(tenant));
  if (it == c.tenants.end()) return;
  Tenant& t = it->second;
  if (contended()) {  // (as the fast path's charge: not for service nobody else wanted)
    t.counter += settings_.output_weight * output_tokens;
    c.charged += settings_.output_weight * output_tokens;
  }
  t.output_tokens = t.output_tokens < 0 ? output_tokens : 0.8 * t.output_tokens + 0.2 * output_tokens;
}

double AdmissionQueue::oldestWaitSeconds() const {
  if (waiting() == 0) return 0;
  common::MutexLock lock(mu_);
  const auto now = Clock::now();
  double oldest = 0;
  for (const Class& c : classes_) {
    for (const Tenant* t : c.backlogged) {
      // In arrival order the front is the oldest; shortest-first reorders.
      for (const auto& w : t->waiting) oldest = std::max(oldest, std::chrono::duration<double>(now - w->enqueued).count());
    }
  }
  return oldest;
}

std::array<uint64_t, kPriorities> AdmissionQueue::depths() const {
  std::array<uint64_t, kPriorities> out{};
  common::MutexLock lock(mu_);
  for (int c = 0; c < kPriorities; ++c) out[c] = classes_[c].size;
  return out;
}

AdmissionQueue::Stats AdmissionQueue::stats() const {
  Stats s;
  s.oldest_wait_seconds = oldestWaitSeconds();
  common::MutexLock lock(mu_);
  for (int c = 0; c < kPriorities; ++c) {
    s.depth[c] = classes_[c].size;
    for (const auto& [name, t] : classes_[c].tenants) s.tenant_counters.emplace_back(name, t.counter);
  }
  std::sort(s.tenant_counters.begin(), s.tenant_counters.end(),
            [](const auto& a, const auto& b) { return a.second > b.second; });
  if (s.tenant_counters.size() > 20) s.tenant_counters.resize(20);
  s.tenant_sheds.assign(tenant_sheds_.begin(), tenant_sheds_.end());
  std::sort(s.tenant_sheds.begin(), s.tenant_sheds.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  if (s.tenant_sheds.size() > 20) s.tenant_sheds.resize(20);
  for (int r = 0; r < kDropReasons; ++r) s.drops[r] = drops_[r].load(std::memory_order_relaxed);
  s.dispatched = dispatched_.load(std::memory_order_relaxed);
  s.admitted = admitted_.load(std::memory_order_relaxed);
  s.service_rate = rate_.load(std::memory_order_relaxed);
  for (int c = 0; c < kPriorities; ++c) {
    s.objective_seconds[c] = std::chrono::duration<double>(settings_.objective[c]).count();
    s.objective_met[c] = objective_met_[c].load(std::memory_order_relaxed);
    s.objective_total[c] = objective_total_[c].load(std::memory_order_relaxed);
  }
  s.service_seconds = {serviceSeconds(false), serviceSeconds(true)};
  lock.unlock();
  for (int c = 0; c < kPriorities; ++c) s.predicted_wait[c] = predictedWaitSeconds(static_cast<Priority>(c));
  return s;
}

}  // namespace spillway::admission

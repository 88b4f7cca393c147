#include "admission_queue_test.h"

#include <QtTest>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <cmath>
#include <deque>
#include <map>
#include <thread>

#include "admission/admission_queue.h"
#include "balance/balancer.h"

using namespace spillway;
using namespace spillway::admission;
namespace net = boost::asio;

namespace {

upstream::BackendPtr makeBackend(const std::string& name, uint32_t max_concurrency) {
  v1::Backend c;
  c.set_name(name);
  c.set_weight(1);
  c.set_max_concurrency(max_concurrency);
  return std::make_shared<upstream::Backend>(0, c, common::Url{}, "");
}

balance::BalancerPtr leastOutstanding() {
  v1::Balancing s;
  s.set_policy(v1::LEAST_OUTSTANDING);
  return std::move(*balance::makeBalancer(balance::effectiveBalancing(s, {}), 7));
}

// Runs queue acquisitions as coroutines on a private io_context and records
// who got what, in order.
struct QueueHarness {
  net::io_context io;
  AdmissionQueue queue;
  balance::BalancerPtr lb = leastOutstanding();
  std::vector<upstream::BackendPtr> pool;
  std::deque<std::string> tenants;  // stable storage for Ask::tenant
  struct Got {
    std::string tag;
    AdmissionQueue::Ticket ticket;
  };
  std::vector<Got> got;

  explicit QueueHarness(uint32_t n_slots, QueueSettings s = {}) : queue(s) { pool.push_back(makeBackend("b", n_slots)); }

  std::deque<std::vector<const upstream::Backend*>> placements;  // stable storage for Ask::pick.only
  double expected_output = -1;  // the next asks' Ask::expected_output
  // The next asks' Ask::objective_deadline, from now (zero: none), and Ask::requeue.
  std::chrono::milliseconds objective_wait{0};
  bool requeue = false;
  void ask(const std::string& tag, Priority p, const std::string& tenant, double tokens = 0,
           std::chrono::milliseconds timeout = std::chrono::milliseconds(60000),
           std::vector<const upstream::Backend*> only = {}) {
    tenants.push_back(tenant);
    placements.push_back(std::move(only));
    AdmissionQueue::Ask a;
    a.pick.only = placements.back();
    a.priority = p;
    a.tenant = tenants.back();
    a.input_tokens = tokens;
    a.expected_output = expected_output;
    a.deadline = AdmissionQueue::Clock::now() + timeout;
    if (objective_wait.count() > 0) a.objective_deadline = AdmissionQueue::Clock::now() + objective_wait;
    a.requeue = requeue;
    net::co_spawn(
        io.get_executor(),
        [this, tag, a]() -> common::Awaitable<void> {
          auto t = co_await queue.acquire(*lb, pool, a);
          got.push_back({tag, std::move(t)});
        },
        net::detached);
    io.poll();
    io.restart();
  }
  // Frees one slot of backend `i` and lets the queue hand it on.
  void release(size_t i = 0) {
    pool[i]->release();
    queue.dispatch(*lb, pool);
    io.poll();
    io.restart();
  }
  std::vector<std::string> tags() const {
    std::vector<std::string> t;
    for (const auto& g : got) t.push_back(g.tag);
    return t;
  }
};

// Ticks, hands out four slots of the standard class to waiting requests,
// ticks a second later: the queue's service rate is then 4 per second (a
// rate is measured only while requests wait).
void serveFourInASecond(QueueHarness& h) {
  h.ask("fast-hold", Priority::kStandard, "t");
  const auto t0 = AdmissionQueue::Clock::now();
  h.queue.tick(t0, h.pool);
  for (int i = 0; i < 4; ++i) h.ask("fast", Priority::kStandard, "t");
  for (int i = 0; i < 5; ++i) h.release();
  h.queue.tick(t0 + std::chrono::seconds(1), h.pool);
}

}  // namespace

void AdmissionQueueTest::queueServesClassesInStrictPriority() {
  QueueHarness h(1);
  h.ask("first", Priority::kStandard, "t");  // takes the only slot
  h.ask("shed", Priority::kSheddable, "t");
  h.ask("std", Priority::kStandard, "t");
  h.ask("crit", Priority::kCritical, "t");
  QCOMPARE(h.tags(), std::vector<std::string>{"first"});
  QCOMPARE(h.queue.waiting(), size_t{3});
  QVERIFY(!h.got[0].ticket.queued);
  for (int i = 0; i < 3; ++i) h.release();
  QCOMPARE(h.tags(), (std::vector<std::string>{"first", "crit", "std", "shed"}));
  for (size_t i = 1; i < h.got.size(); ++i) {
    QVERIFY(h.got[i].ticket.backend != nullptr);
    QVERIFY(h.got[i].ticket.queued);
  }
  QCOMPARE(h.queue.stats().dispatched, uint64_t{3});
}

void AdmissionQueueTest::queuePlacedWaitersDoNotHoldBackOthers() {
  // Two GPU instances with one slot each: critical placed on the first,
  // sheddable on the second (gpu.placement).
  QueueHarness h(1);
  h.pool.push_back(makeBackend("gpu1", 1));
  const std::vector<const upstream::Backend*> crit{h.pool[0].get()}, shed{h.pool[1].get()};
  h.ask("crit-1", Priority::kCritical, "t", 0, std::chrono::milliseconds(60000), crit);
  h.ask("crit-2", Priority::kCritical, "t", 0, std::chrono::milliseconds(60000), crit);  // its instance is full: waits
  QCOMPARE(h.queue.waiting(), size_t{1});
  // A strict-priority queue would hold this behind crit-2; its own instance is free.
  h.ask("shed-1", Priority::kSheddable, "t", 0, std::chrono::milliseconds(60000), shed);
  QCOMPARE(h.tags(), (std::vector<std::string>{"crit-1", "shed-1"}));
  QCOMPARE(h.got[1].ticket.backend->name(), "gpu1");
  h.ask("shed-2", Priority::kSheddable, "t", 0, std::chrono::milliseconds(60000), shed);
  QCOMPARE(h.queue.waiting(), size_t{2});
  // The sheddable instance frees first: shed-2 goes, crit-2 still waits for its own.
  h.release(1);
  QCOMPARE(h.tags(), (std::vector<std::string>{"crit-1", "shed-1", "shed-2"}));
  h.release(0);
  QCOMPARE(h.tags(), (std::vector<std::string>{"crit-1", "shed-1", "shed-2", "crit-2"}));
  QCOMPARE(h.got[3].ticket.backend->name(), "b");
  // Unplaced waiters keep strict priority over the whole pool.
  h.ask("std", Priority::kStandard, "t");
  h.ask("crit-3", Priority::kCritical, "t");
  h.release(1);
  QCOMPARE(h.got.back().tag, "crit-3");
}

void AdmissionQueueTest::queueSharesFairlyByTokensBetweenTenants() {
  QueueHarness h(1);
  h.ask("hold", Priority::kStandard, "x");
  // A greedy tenant with 10× the prompt of the others, both backlogged.
  for (int i = 0; i < 20; ++i) h.ask("G", Priority::kStandard, "greedy", 1000);
  for (int i = 0; i < 20; ++i) h.ask("s", Priority::kStandard, "small", 100);
  for (int i = 0; i < 22; ++i) h.release();
  std::string order;
  for (size_t i = 1; i < h.got.size(); ++i) order += h.got[i].tag;
  // By tokens, not requests: the small tenant gets about ten requests per
  // greedy one while both wait.
  const auto first22 = order.substr(0, 22);
  const auto greedy = std::count(first22.begin(), first22.end(), 'G');
  QVERIFY2(greedy >= 1 && greedy <= 3, qPrintable(QString::fromStdString(order)));
  // VTC's bound: the backlogged tenants' counters never drift apart by more
  // than one request's charge.
  auto counters = h.queue.stats().tenant_counters;
  std::map<std::string, double> c(counters.begin(), counters.end());
  QVERIFY2(std::abs(c["greedy"] - c["small"]) <= 1000, qPrintable(QString::fromStdString(order)));
}

void AdmissionQueueTest::queueShedsLowestClassWhenFull() {
  QueueSettings s;
  s.max_queue = 2;
  QueueHarness h(1, s);
  h.ask("hold", Priority::kStandard, "t");
  h.ask("s1", Priority::kSheddable, "t");
  h.ask("s2", Priority::kSheddable, "t");
  h.ask("d1", Priority::kStandard, "t");  // full: pushes out the newest sheddable
  QCOMPARE(h.tags(), (std::vector<std::string>{"hold", "s2"}));
  QCOMPARE(h.got[1].ticket.dropped, DropReason::kQueueFull);
  QVERIFY(h.got[1].ticket.retry_after_seconds >= 1);
  h.ask("s3", Priority::kSheddable, "t");  // nothing lower to push out: refused
  QCOMPARE(h.got.back().tag, std::string("s3"));
  QCOMPARE(h.got.back().ticket.dropped, DropReason::kQueueFull);
  h.release();
  h.release();
  QCOMPARE(h.tags(), (std::vector<std::string>{"hold", "s2", "s3", "d1", "s1"}));
  QCOMPARE(h.queue.stats().drops[static_cast<int>(DropReason::kQueueFull)], uint64_t{2});
  // Counted per tenant too (the Admission page's "turned away").
  const auto sheds = h.queue.stats().tenant_sheds;
  QCOMPARE(sheds.size(), size_t{1});
  QCOMPARE(sheds[0], (std::pair<std::string, uint64_t>{"t", 2}));
}

void AdmissionQueueTest::queueShedsWhatCannotMeetItsDeadline() {
  QueueHarness h(1);
  serveFourInASecond(h);
  QVERIFY(std::abs(h.queue.stats().service_rate - 4) < 1e-9);
  h.got.clear();
  h.ask("hold", Priority::kStandard, "t");
  for (int i = 0; i < 8; ++i) h.ask("wait", Priority::kStandard, "t");  // 2 s of work at 4/s
  QCOMPARE(h.got.size(), size_t{1});
  // 8 ahead at 4 per second: a 1.5 s deadline cannot be met — shed now.
  h.ask("hopeless", Priority::kStandard, "t", 0, std::chrono::milliseconds(1500));
  QCOMPARE(h.got.back().tag, std::string("hopeless"));
  QCOMPARE(h.got.back().ticket.dropped, DropReason::kDeadline);
  QCOMPARE(h.got.back().ticket.retry_after_seconds, 3u);  // (8 + 1) / 4, rounded up
  // Another tenant is not behind t's backlog (fairness takes turns): it
  // waits, with about one of t's requests ahead of it.
  h.ask("light", Priority::kStandard, "other", 0, std::chrono::milliseconds(1500));
  QCOMPARE(h.got.back().tag, std::string("hopeless"));
  // A critical request does not count the standard ones ahead of it.
  h.ask("crit", Priority::kCritical, "t", 0, std::chrono::milliseconds(1500));
  QCOMPARE(h.got.back().tag, std::string("hopeless"));
  h.release();
  QCOMPARE(h.got.back().tag, std::string("crit"));
}

void AdmissionQueueTest::queuePredictsWaitsAndCountsObjectives() {
  QueueSettings settings;
  settings.objective = {std::chrono::milliseconds(4000), std::chrono::milliseconds(1500),
                        std::chrono::milliseconds(750)};
  QueueHarness h(1, settings);
  QCOMPARE(h.queue.objectiveSeconds(Priority::kStandard), 1.5);
  QCOMPARE(h.queue.predictedWaitSeconds(Priority::kSheddable), 0.0);  // nobody waits
  serveFourInASecond(h);
  h.ask("hold", Priority::kStandard, "t");
  h.ask("c", Priority::kCritical, "t");
  for (int i = 0; i < 3; ++i) h.ask("s", Priority::kStandard, "t");
  for (int i = 0; i < 4; ++i) h.ask("x", Priority::kSheddable, "t");
  // A newcomer waits behind its class and those above, then for a slot to
  // free, at 4 per second.
  QCOMPARE(h.queue.predictedWaitSeconds(Priority::kCritical), 0.5);
  QCOMPARE(h.queue.predictedWaitSeconds(Priority::kStandard), 1.25);
  QCOMPARE(h.queue.predictedWaitSeconds(Priority::kSheddable), 2.25);
  QCOMPARE(h.queue.stats().predicted_wait[2], 2.25);
  // The service time is an average of what answers took, per kind.
  h.queue.observeService(true, 0.2);
  QCOMPARE(h.queue.serviceSeconds(true), 0.2);
  h.queue.observeService(true, 1.2);
  QVERIFY(std::abs(h.queue.serviceSeconds(true) - 0.3) < 1e-9);
  QCOMPARE(h.queue.serviceSeconds(false), 0.0);
  h.queue.countObjective(Priority::kStandard, true);
  h.queue.countObjective(Priority::kStandard, false);
  h.queue.countObjective(Priority::kSheddable, false);
  QCOMPARE(h.queue.objectiveCounts(Priority::kStandard), std::make_pair(uint64_t{1}, uint64_t{2}));
  QCOMPARE(h.queue.objectiveCounts(Priority::kSheddable), std::make_pair(uint64_t{0}, uint64_t{1}));
  QCOMPARE(h.queue.stats().objective_total[0], uint64_t{0});
  for (int i = 0; i < 9; ++i) h.release();  // let everyone through
}

void AdmissionQueueTest::queueRefusesAtOnceWhatAStarvedClassCannotServe() {
  QueueHarness h(1);
  const auto t0 = AdmissionQueue::Clock::now();
  h.queue.tick(t0, h.pool);
  h.ask("hold", Priority::kStandard, "t");
  h.ask("batch-1", Priority::kSheddable, "b");  // a minute to wait: no deadline decides this
  for (int i = 0; i < 3; ++i) {  // the standard class takes every slot that frees
    h.ask("std", Priority::kStandard, "t");
    h.release();
  }
  QCOMPARE(h.queue.depths()[2], uint64_t{1});
  h.queue.tick(t0 + std::chrono::seconds(1), h.pool);
  QVERIFY(!std::isinf(h.queue.predictedWaitSeconds(Priority::kSheddable)));  // waiting, not yet for a whole tick
  h.queue.tick(t0 + std::chrono::seconds(2), h.pool);
  // A whole tick in which nobody was served is no sign: answers may simply
  // outlast a tick.
  QVERIFY(!std::isinf(h.queue.predictedWaitSeconds(Priority::kSheddable)));
  for (int i = 0; i < 3; ++i) {
    h.ask("std", Priority::kStandard, "t");
    h.release();
  }
  h.queue.tick(t0 + std::chrono::seconds(3), h.pool);  // the standard class took three slots; sheddable none
  QVERIFY(std::isinf(h.queue.predictedWaitSeconds(Priority::kSheddable)));
  // A whole tick backlogged and nothing served: a sheddable newcomer is
  // refused now, not after waiting out its minute.
  const size_t before = h.got.size();
  h.ask("batch-2", Priority::kSheddable, "b");
  QCOMPARE(h.got.size(), before + 1);
  QCOMPARE(h.got.back().tag, std::string("batch-2"));
  QCOMPARE(h.got.back().ticket.dropped, DropReason::kDeadline);
  QVERIFY(!h.got.back().ticket.queued);
  // The standard class is not starved: its newcomer waits for the slot.
  h.ask("std-2", Priority::kStandard, "t");
  QCOMPARE(h.got.size(), before + 1);
  h.release();
  QCOMPARE(h.got.back().tag, std::string("std-2"));
  h.release();
  QCOMPARE(h.got.back().tag, std::string("batch-1"));  // served once the standard class lets it
  h.release();
}

void AdmissionQueueTest::queueRefusesAtOnceWhatATenantOverItsShareWillNotGet() {
  QueueHarness h(1);
  const auto t0 = AdmissionQueue::Clock::now();
  h.queue.tick(t0, h.pool);
  h.ask("hold", Priority::kStandard, "a");
  for (int i = 0; i < 3; ++i) h.ask("g", Priority::kStandard, "g", 1000);  // a greedy tenant: 1,000 tokens a request
  // Tenant a keeps one small request waiting; each freed slot goes to
  // whoever fairness says: g twice (while a's counter is lifted to g's),
  // then a every time.
  auto round = [&] {
    h.ask("a", Priority::kStandard, "a", 1);
    h.release();
  };
  h.release();
  round();
  round();
  QCOMPARE(h.tags(), (std::vector<std::string>{"hold", "g", "g", "a"}));
  h.queue.tick(t0 + std::chrono::seconds(1), h.pool);
  for (int i = 0; i < 4; ++i) round();
  QCOMPARE(h.tags().back(), std::string("a"));
  QCOMPARE(h.queue.depths()[1], uint64_t{2});  // one of a's, one of g's
  h.queue.tick(t0 + std::chrono::seconds(2), h.pool);  // g: waiting a whole tick, nothing served
  const size_t before = h.got.size();
  h.ask("g-late", Priority::kStandard, "g", 1000);
  QCOMPARE(h.got.size(), before + 1);
  QCOMPARE(h.got.back().tag, std::string("g-late"));
  QCOMPARE(h.got.back().ticket.dropped, DropReason::kDeadline);
  // The class and tenant a are moving: a's next request waits as usual.
  h.ask("a-next", Priority::kStandard, "a", 1);
  QCOMPARE(h.got.size(), before + 1);
  for (int i = 0; i < 4; ++i) h.release();
  QCOMPARE(h.got.back().tag, std::string("g"));  // served last, but served
  QCOMPARE(h.queue.waiting(), size_t{0});
}

void AdmissionQueueTest::queueServesShortestFirstWithAgingOrInArrivalOrder() {
  for (const bool sjf : {true, false}) {
    QueueSettings s;
    s.shortest_first = sjf;
    QueueHarness h(1, s);
    h.ask("hold", Priority::kStandard, "t");
    auto ask = [&](const std::string& tag, double output) {
      h.expected_output = output;
      h.ask(tag, Priority::kStandard, "t", 100);
    };
    ask("long-1", 1000);
    ask("short-1", 10);
    ask("short-2", 10);
    ask("long-2", 1000);
    for (int i = 0; i < 5; ++i) h.release();
    const std::vector<std::string> expect =
        sjf ? std::vector<std::string>{"hold", "short-1", "short-2", "long-1", "long-2"}
            : std::vector<std::string>{"hold", "long-1", "short-1", "short-2", "long-2"};
    QCOMPARE(h.tags(), expect);
  }
  // Aging: a long request is passed only by requests that arrived less than
  // `aging` after it. With a 1 ms bound, a short one arriving later waits.
  QueueSettings s;
  s.aging = std::chrono::milliseconds(1);
  QueueHarness h(1, s);
  h.ask("hold", Priority::kStandard, "t");
  h.expected_output = 4000;
  h.ask("long", Priority::kStandard, "t", 100);
  std::this_thread::sleep_for(std::chrono::milliseconds(5));  // time passes beyond the bound (not a wait for an event)
  h.expected_output = 1;
  h.ask("short", Priority::kStandard, "t", 1);
  h.release();
  h.release();
  QCOMPARE(h.tags(), (std::vector<std::string>{"hold", "long", "short"}));
  h.release();
}

void AdmissionQueueTest::shortestFirstKeepsTheLastFreeSlotFromLongRequests() {
  for (bool sjf : {true, false}) {
    QueueSettings s;
    s.shortest_first = sjf;
    QueueHarness h(4, s);
    for (int i = 0; i < 4; ++i) h.ask("hold", Priority::kStandard, "t");
    auto ask = [&](const std::string& tag, double max_tokens) {
      h.expected_output = max_tokens;
      h.ask(tag, Priority::kStandard, "t", 10);
    };
    for (int i = 0; i < 4; ++i) ask("short", 8);  // the mean cost: short ones
    ask("long", 1000);
    for (int i = 0; i < 4; ++i) h.release();  // the shorts take the holds' slots
    QCOMPARE(h.got.size(), size_t{8});
    h.release();  // one slot frees: the last free one
    if (sjf) {
      // Kept for a shorter request: the long one waits, the slot stays free...
      QCOMPARE(h.queue.waiting(), size_t{1});
      QCOMPARE(h.pool[0]->inFlight(), int64_t{3});
      ask("short-2", 8);  // ...and a short one takes it at once
      QCOMPARE(h.got.back().tag, std::string("short-2"));
      h.release();
      h.release();  // two free: the long one takes one of them
      QCOMPARE(h.got.back().tag, std::string("long"));
      QCOMPARE(h.pool[0]->inFlight(), int64_t{3});
    } else {
      QCOMPARE(h.got.back().tag, std::string("long"));  // arrival order keeps nothing back
      QCOMPARE(h.pool[0]->inFlight(), int64_t{4});
    }
    while (h.pool[0]->inFlight() > 0) h.release();
  }
}

namespace {
// A request that waits holding `keep`: destroyed with its coroutine.
common::Awaitable<void> waitHolding(AdmissionQueue& q, balance::Balancer& lb, std::span<const upstream::BackendPtr> pool,
                                    AdmissionQueue::Ask a, std::shared_ptr<int> keep) {
  co_await q.acquire(lb, pool, a);
}
}  // namespace

void AdmissionQueueTest::sleepingWaitersGoWithTheirWorkerOrTheQueue() {
  // A sleeping waiter's coroutine is owned by its stored handler, which the
  // waiter holds: whichever goes first, its worker or the queue, destroys it
  // (and neither calls into the other once gone).
  for (int order : {0, 1, 2}) {  // the worker first; the queue first, then the worker runs or shuts down
    const bool worker_first = order == 0;
    auto io = std::make_unique<net::io_context>();
    auto queue = std::make_unique<AdmissionQueue>();
    auto lb = leastOutstanding();
    std::vector<upstream::BackendPtr> pool{makeBackend("b", 1)};
    QVERIFY(pool[0]->tryAcquire());  // every request waits
    auto held = std::make_shared<int>(0);
    std::weak_ptr<int> watch = held;
    AdmissionQueue::Ask a;
    a.tenant = "t";
    a.deadline = AdmissionQueue::Clock::now() + std::chrono::hours(1);
    net::co_spawn(*io, waitHolding(*queue, *lb, pool, a, std::move(held)), net::detached);
    io->poll();
    QCOMPARE(queue->waiting(), size_t{1});
    QVERIFY(!watch.expired());
    if (worker_first) {
      io.reset();  // shuts its services down: the deadline sweeper abandons the waiter
      QVERIFY(watch.expired());
      QCOMPARE(queue->waiting(), size_t{0});
      queue.reset();
    } else {
      queue.reset();  // its coroutine is unwound on its worker (Asio posts that)
      if (order == 1) {
        io->poll();
        QVERIFY(watch.expired());
      }
      io.reset();  // (order 2: unwound as it shuts down; its deadline no longer calls the queue)
      QVERIFY(watch.expired());
    }
  }
}

void AdmissionQueueTest::queueWaiterTimesOutAtItsDeadline() {
  QueueHarness h(1);
  h.ask("hold", Priority::kStandard, "t");
  h.ask("late", Priority::kStandard, "t", 0, std::chrono::milliseconds(20));
  QCOMPARE(h.got.size(), size_t{1});
  h.io.run();  // returns once the waiter's deadline timer has fired and it left
  QCOMPARE(h.got.size(), size_t{2});
  QCOMPARE(h.got[1].ticket.dropped, DropReason::kDeadline);
  QVERIFY(h.got[1].ticket.waited >= std::chrono::milliseconds(20));
  QCOMPARE(h.queue.waiting(), size_t{0});
  h.release();  // the freed slot finds nobody waiting and nothing breaks
  QCOMPARE(h.pool[0]->inFlight(), int64_t{0});
}

void AdmissionQueueTest::queueDecidesAtTheDoorAndLetsTheCallerDecideAtTheObjective() {
  QueueHarness h(1);
  serveFourInASecond(h);
  h.got.clear();
  h.ask("hold", Priority::kStandard, "t");
  for (int i = 0; i < 4; ++i) h.ask("wait", Priority::kStandard, "t");  // 1.25 s to a newcomer's slot at 4/s
  // Its objective leaves 1 s to wait: refused at the door, counted.
  h.objective_wait = std::chrono::milliseconds(1000);
  h.ask("refused", Priority::kStandard, "t");
  QCOMPARE(h.got.back().tag, std::string("refused"));
  QCOMPARE(h.got.back().ticket.dropped, DropReason::kDeadline);
  QVERIFY(!h.got.back().ticket.queued);
  QCOMPARE(h.queue.stats().drops[static_cast<int>(DropReason::kDeadline)], uint64_t{1});
  // Back in the queue (after a busy answer, or its objective passed), the
  // prediction no longer refuses it: it was admitted once.
  h.requeue = true;
  h.ask("back", Priority::kStandard, "t");
  QCOMPARE(h.got.back().tag, std::string("refused"));
  QCOMPARE(h.queue.waiting(), size_t{5});
  // One admitted whose objective passes without a slot leaves the queue
  // without a drop: the caller answers it degraded or waits on.
  h.requeue = false;
  h.objective_wait = std::chrono::milliseconds(300);
  h.ask("crit", Priority::kCritical, "t");  // nobody ahead: 0.25 s to the next slot fits
  QCOMPARE(h.queue.waiting(), size_t{6});
  while (h.got.back().tag != "crit") h.io.run_one();  // its objective passes; no slot frees
  h.io.restart();
  QVERIFY(h.got.back().ticket.objective_passed);
  QVERIFY(!h.got.back().ticket.queue_moved);  // every slot held since it came: the caller refuses it
  QVERIFY(!h.got.back().ticket.backend);
  QCOMPARE(h.got.back().ticket.dropped, DropReason::kNone);
  QVERIFY(h.got.back().ticket.waited >= std::chrono::milliseconds(300));
  QCOMPARE(h.queue.waiting(), size_t{5});
  QCOMPARE(h.queue.stats().drops[static_cast<int>(DropReason::kDeadline)], uint64_t{1});
  // The requeued one goes first of its tenant's.
  h.release();
  QCOMPARE(h.got.back().tag, std::string("back"));
  for (int i = 0; i < 5; ++i) h.release();
  QCOMPARE(h.queue.waiting(), size_t{0});

  // While slots are handed out (to others), its objective passing says the
  // queue moved: the caller lets it wait on.
  QueueHarness m(1);
  serveFourInASecond(m);
  m.got.clear();
  m.ask("hold", Priority::kStandard, "t");
  m.ask("c1", Priority::kCritical, "t");
  m.objective_wait = std::chrono::milliseconds(600);
  m.ask("s", Priority::kStandard, "t");  // one ahead and a slot to free: 0.5 s at 4/s fits
  m.release();
  QCOMPARE(m.got.back().tag, std::string("c1"));
  while (m.got.back().tag != "s") m.io.run_one();
  m.io.restart();
  QVERIFY(m.got.back().ticket.objective_passed);
  QVERIFY(m.got.back().ticket.queue_moved);
  m.release();
}

void AdmissionQueueTest::idleServiceIsNotBankedAgainstATenant() {
  QueueHarness h(1);
  auto counterOf = [&](const std::string& tenant) {
    for (const auto& [name, c] : h.queue.stats().tenant_counters) {
      if (name == tenant) return c;
    }
    return 0.0;
  };
  // Nobody else wants the pool: a long prompt served alone costs g nothing
  // in fairness, nor does its answer.
  h.ask("alone", Priority::kStandard, "g", 2000);
  h.release();
  h.queue.chargeOutput(Priority::kStandard, "g", 100);
  QCOMPARE(counterOf("g"), 0.0);
  // Contended (a request waited since the last tick): the fast path's slot
  // counts, and so does the answer.
  h.ask("hold", Priority::kStandard, "a");
  h.ask("wait", Priority::kStandard, "b");
  h.release();
  h.release();
  h.ask("busy", Priority::kStandard, "g", 2000);
  h.release();
  h.queue.chargeOutput(Priority::kStandard, "g", 100);
  QCOMPARE(counterOf("g"), 2000.0 + 2 * 100);
}

void AdmissionQueueTest::aQuietSpellDoesNotReadAsASlowPool() {
  QueueHarness h(1);
  serveFourInASecond(h);
  // Half a minute with nobody waiting: what the pool handed out then was
  // what arrived, not what it can serve.
  auto t = AdmissionQueue::Clock::now() + std::chrono::seconds(2);
  for (int i = 0; i < 30; ++i) h.queue.tick(t += std::chrono::seconds(1), h.pool);
  QVERIFY(std::abs(h.queue.stats().service_rate - 4) < 1e-9);
  // So the next burst is predicted at 4 a second, not refused at the door.
  h.got.clear();
  h.ask("hold", Priority::kStandard, "t");
  h.objective_wait = std::chrono::milliseconds(1000);
  h.ask("next", Priority::kStandard, "t");  // 0.25 s to a slot
  QCOMPARE(h.got.size(), size_t{1});
  QCOMPARE(h.queue.waiting(), size_t{1});
  h.release();
  h.release();
}

void AdmissionQueueTest::queuePredictsATenantsTurnFromItsFairnessLead() {
  QueueHarness h(1);
  h.ask("warm-hold", Priority::kStandard, "h");
  const auto t0 = AdmissionQueue::Clock::now();
  h.queue.tick(t0, h.pool);
  // A second of service to waiting requests: a, b and g (ten times the
  // prompt) — the class's counters grow by 2,300 a second.
  for (auto [tenant, tokens] : {std::pair{"a", 100.0}, {"b", 100.0}, {"g", 2000.0}, {"a", 100.0}}) {
    h.ask("warm", Priority::kStandard, tenant, tokens);
  }
  for (int i = 0; i < 5; ++i) h.release();
  h.queue.tick(t0 + std::chrono::seconds(1), h.pool);
  h.got.clear();
  h.ask("hold", Priority::kStandard, "a", 100);
  h.ask("b1", Priority::kStandard, "b", 100);  // b waits, its counter the least (100)
  h.objective_wait = std::chrono::milliseconds(700);
  // g is 1,900 ahead of b: its turn comes once b caught up, 1900 / 2300 s
  // from now — past its 0.7 s, though only one request is ahead of it.
  h.ask("g1", Priority::kStandard, "g", 2000);
  QCOMPARE(h.got.back().tag, std::string("g1"));
  QCOMPARE(h.got.back().ticket.dropped, DropReason::kDeadline);
  // a is 200 ahead: it waits.
  h.ask("a1", Priority::kStandard, "a", 100);
  QCOMPARE(h.got.back().tag, std::string("g1"));
  QCOMPARE(h.queue.waiting(), size_t{2});
  h.release();
  h.release();
  QCOMPARE(h.tags(), (std::vector<std::string>{"hold", "g1", "b1", "a1"}));
  h.release();
}

void AdmissionQueueTest::queueDropsWaitersWhenNoBackendCanReturn() {
  QueueHarness h(1);
  h.ask("hold", Priority::kStandard, "t");
  h.ask("w1", Priority::kStandard, "t");
  h.ask("w2", Priority::kCritical, "t");
  h.pool[0]->setHealthy(false);  // down (health checks), not just busy
  h.queue.tick(AdmissionQueue::Clock::now(), h.pool);
  h.io.poll();
  QCOMPARE(h.got.size(), size_t{3});
  QCOMPARE(h.got[1].ticket.dropped, DropReason::kNoBackend);
  QCOMPARE(h.got[2].ticket.dropped, DropReason::kNoBackend);
  h.ask("new", Priority::kStandard, "t");  // and newcomers are told at once
  QCOMPARE(h.got.back().ticket.dropped, DropReason::kNoBackend);
}

QTEST_APPLESS_MAIN(AdmissionQueueTest)

#include "admission_test.h"

#include <QtTest>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <map>
#include <random>
#include <thread>

#include "admission/admission_queue.h"
#include "admission/authenticate.h"
#include "common/sha256.h"
#include "admission/degradation.h"
#include "admission/gcra.h"
#include "admission/rate_limit.h"
#include "config/config_loader.h"
#include "config/validate.h"
#include "openai/openai.h"
#include "pipeline/request_context.h"
#include "pipeline/route_table.h"
#include "support/test_config.h"
#include "upstream/adaptive_limit.h"

using namespace spillway;
using namespace spillway::admission;
namespace net = boost::asio;

namespace {

constexpr int64_t kSec = 1'000'000'000;

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
    a.deadline = AdmissionQueue::Clock::now() + timeout;
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

}  // namespace

void AdmissionTest::gcraBurstThenRefill() {
  Gcra g(10, kSec);  // 10 per second, all at once
  int64_t t = 100 * kSec;
  for (int i = 0; i < 10; ++i) QVERIFY(g.take(1, t).allowed);
  auto refused = g.take(1, t);
  QVERIFY(!refused.allowed);
  QCOMPARE(refused.remaining, 0.0);
  QVERIFY(std::abs(refused.retry_after_seconds - 0.1) < 1e-6);  // one unit refills in 100 ms
  QVERIFY(std::abs(refused.reset_seconds - 1.0) < 1e-6);        // full again in 1 s
  QVERIFY(!g.take(1, t + kSec / 10 - 1).allowed);
  QVERIFY(g.take(1, t + kSec / 10).allowed);
  // A cost bigger than what refilled waits for the difference.
  auto big = g.take(5, t + kSec / 10);
  QVERIFY(!big.allowed);
  QVERIFY(std::abs(big.retry_after_seconds - 0.5) < 1e-6);
  // After a full period it is all there again.
  auto full = g.peek(t + 10 * kSec);
  QCOMPARE(full.remaining, 10.0);
  QVERIFY(g.idle(t + 10 * kSec));
}

void AdmissionTest::gcraIsExactUnderConcurrency() {
  Gcra g(1000, 60 * kSec);
  const int64_t t = 5 * kSec;  // one instant: no refill while the threads race
  std::atomic<int> allowed{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      for (int k = 0; k < 500; ++k) {
        if (g.take(1, t).allowed) allowed.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  QCOMPARE(allowed.load(), 1000);  // 4,000 tries, exactly the limit let through
}

void AdmissionTest::gcraRefundsAndDebt() {
  Gcra g(100, 60 * kSec);
  const int64_t t = 10 * kSec;
  QVERIFY(g.take(100, t).allowed);
  QVERIFY(!g.take(1, t).allowed);
  g.adjust(-40, t);  // 40 estimated units were not used
  QCOMPARE(g.peek(t).remaining, 40.0);
  g.adjust(+90, t);  // more than estimated: the bucket goes into debt
  QCOMPARE(g.peek(t).remaining, 0.0);
  QVERIFY(!g.take(1, t + 30 * kSec).allowed);  // 50 units of debt take 30 s to clear
  QVERIFY(g.take(1, t + 31 * kSec).allowed);
}

void AdmissionTest::rateLimitsAreAllOrNothing() {
  v1::Limits limits;
  limits.mutable_global()->set_requests_per_minute(3);
  limits.mutable_per_key()->set_requests_per_minute(100);
  RateLimiter rl(limits);
  const int64_t t = kSec;
  RateLimiter::Ask a;
  a.key = "alice";
  a.model = "m";
  for (int i = 0; i < 3; ++i) QVERIFY(rl.check(a, t).allowed);
  auto r = rl.check(a, t);
  QVERIFY(!r.allowed);
  QVERIFY(r.retry_after_seconds > 19 && r.retry_after_seconds <= 20);  // one of 3 per minute refills in 20 s
  QCOMPARE(rl.refused(), uint64_t{1});
  // The refusal took nothing from alice's own bucket: 97 left, not 96.
  bool found = false;
  for (const auto& u : rl.usage(t, 10)) {
    if (u.scope == "key:alice") {
      found = true;
      QCOMPARE(u.requests_remaining, 97.0);
    }
  }
  QVERIFY(found);
  // The tightest bucket is the one the headers report.
  QCOMPARE(r.requests.limit, 3.0);
}

void AdmissionTest::tokensAreReconciledWithUsage() {
  v1::Limits limits;
  limits.mutable_per_model()->set_tokens_per_minute(1000);
  RateLimiter rl(limits);
  const int64_t t = kSec;
  RateLimiter::Ask a;
  a.model = "m";
  a.tokens = 600;  // prompt estimate + max_tokens
  auto first = rl.check(a, t);
  QVERIFY(first.allowed);
  QCOMPARE(first.tokens.remaining, 400.0);
  QVERIFY(!rl.check(a, t).allowed);  // another 600 does not fit
  // The answer used 150 tokens in all: 450 come back.
  RateLimiter::reconcile(first.charge, 150, t);
  auto second = rl.check(a, t);
  QVERIFY(second.allowed);
  QCOMPARE(second.tokens.remaining, 250.0);
  // A stream that ran over its estimate is charged the difference.
  RateLimiter::reconcile(second.charge, 700, t);
  QCOMPARE(rl.usage(t, 5).front().tokens_remaining, 150.0);
}

void AdmissionTest::keysResolveTenantAndPriority() {
  const std::string hash = common::sha256Hex("sk-alice");
  auto config = testing::configFromYaml(testing::engineYaml(testing::kTwoInstantSims,
                                                            "limits:\n  require_key: true\n  keys:\n    - {name: alice, sha256: " + hash +
                                                                ", priority: critical}\n"));
  config::applyDefaults(config);
  AuthenticateStage auth(config);
  QVERIFY(auth.find("sk-alice") != nullptr);
  QCOMPARE(auth.find("sk-alice")->tenant, std::string("alice"));
  QVERIFY(auth.find("sk-mallory") == nullptr);

  pipeline::RequestContext ok;
  ok.start = pipeline::RequestContext::Clock::now();
  ok.caller.api_key = "sk-alice";
  QCOMPARE(auth.process(ok), pipeline::Verdict::kContinue);
  QCOMPARE(ok.caller.tenant, std::string("alice"));
  QCOMPARE(ok.caller.priority, Priority::kCritical);
  QCOMPARE(std::chrono::duration_cast<std::chrono::milliseconds>(ok.deadline - ok.start).count(),
           int64_t{30000});  // the critical class's timeout

  pipeline::RequestContext lowered;  // the header may lower a key's class, never raise it
  lowered.caller.api_key = "sk-alice";
  lowered.caller.priority = Priority::kSheddable;
  lowered.caller.priority_from_header = true;
  auth.process(lowered);
  QCOMPARE(lowered.caller.priority, Priority::kSheddable);

  // Without require_key, other callers are open access (tenant: their address).
  auto open = testing::configFromYaml(testing::engineYaml(
      testing::kTwoInstantSims, "limits:\n  keys:\n    - {name: alice, sha256: " + hash + "}\n"));
  config::applyDefaults(open);
  AuthenticateStage open_auth(open);
  pipeline::RequestContext stranger;
  stranger.caller.api_key = "sk-mallory";
  QCOMPARE(open_auth.process(stranger), pipeline::Verdict::kContinue);
  QVERIFY(!stranger.caller.key_known);

  for (std::string token : {"sk-mallory", ""}) {
    pipeline::RequestContext bad;
    bad.caller.api_key = token;
    QCOMPARE(auth.process(bad), pipeline::Verdict::kAnswered);
    QCOMPARE(bad.error->status, 401);
    QCOMPARE(bad.error->code, std::string(token.empty() ? "" : "invalid_api_key"));
  }
}

// A modelled server with `slots` sequence slots and a FIFO queue: with the
// gateway dispatching on release and `limit` requests in flight, every
// request waits (limit - slots) / slots service times in its queue.
void AdmissionTest::poolClassIsARouteRule() {
  auto config = testing::configFromYaml(testing::engineYaml(
      testing::kTwoInstantSims, "limits:\n  keys:\n    - {name: ops, sha256: " + common::sha256Hex("sk-ops") +
                                    ", priority: critical}\n    - {name: web, sha256: " + common::sha256Hex("sk-web") +
                                    "}\n"));
  config::applyDefaults(config);
  AuthenticateStage auth(config);
  pipeline::RouteTable table;
  pipeline::PoolRoute batch, chat, plain;
  batch.model = "batch";
  batch.priority = Priority::kSheddable;
  chat.model = "chat";
  chat.priority = Priority::kCritical;
  plain.model = "plain";
  table.pools.emplace("batch", std::move(batch));
  table.pools.emplace("chat", std::move(chat));
  table.pools.emplace("plain", std::move(plain));
  auto ask = [&](const std::string& model, const std::string& key, std::optional<Priority> header) {
    pipeline::RequestContext ctx;
    ctx.start = pipeline::RequestContext::Clock::now();
    ctx.routes = &table;
    ctx.parsed.model = model;
    ctx.caller.api_key = key;
    if (header) {
      ctx.caller.priority = *header;
      ctx.caller.priority_from_header = true;
    }
    auth.process(ctx);
    return ctx;
  };
  QCOMPARE(ask("batch", "sk-ops", {}).caller.priority, Priority::kSheddable);  // the rule lowers even a critical key
  QCOMPARE(ask("chat", "", {}).caller.priority, Priority::kCritical);          // open access gets the pool's class
  QCOMPARE(ask("chat", "sk-web", {}).caller.priority, Priority::kStandard);    // a lower key class stays
  QCOMPARE(ask("chat", "", Priority::kStandard).caller.priority, Priority::kStandard);    // the header lowers it
  QCOMPARE(ask("batch", "", Priority::kCritical).caller.priority, Priority::kSheddable);  // never raises it
  QCOMPARE(ask("plain", "", Priority::kCritical).caller.priority, Priority::kCritical);   // no rule: as before
  // The deadline follows the class the rule gave.
  auto b = ask("batch", "sk-ops", {});
  QCOMPARE(std::chrono::duration_cast<std::chrono::milliseconds>(b.deadline - b.start).count(), int64_t{5000});
  // A class that does not exist is a config error at its field.
  auto loaded = config::loadYaml(
      testing::engineYaml(testing::kTwoInstantSims, "pools:\n  - {model: m, backends: [a], priority: urgent}\n"), "t.yaml");
  QCOMPARE(loaded.errors.size(), size_t{1});
  QCOMPARE(loaded.errors[0].path, std::string("pools[0].priority"));
  QVERIFY(loaded.errors[0].line > 0);  // located in the file
}

void AdmissionTest::learnedLimitConvergesFromAboveAndBelow() {
  const uint32_t n_slots = 6;
  for (uint32_t initial : {1u, 40u}) {
    upstream::AdaptiveLimit l;
    l.configure({initial, 1, 256, 2.0, 0.75, /*probe_interval_ms=*/0});
    std::mt19937 rng(initial);
    std::uniform_real_distribution<double> prefill(100, 300);  // long and short prompts
    const double service_ms = 2000;
    for (int i = 0; i < 6000; ++i) {
      const uint32_t limit = l.limit();
      const double queued = limit > n_slots ? (limit - n_slots) * service_ms / n_slots : 0;
      l.onSample(prefill(rng) + queued, limit, prefill(rng) + queued + service_ms);
    }
    // Ends at the slot count or just above it (one or two requests waiting
    // in the server's queue keep its slots busy: harmless, and where the
    // noise of long prompts hides a short wait); never below it.
    QVERIFY2(l.limit() >= n_slots && l.limit() <= n_slots + 2,
             qPrintable(QString("from %1: limit %2").arg(initial).arg(l.limit())));
    QVERIFY2(l.baselineMs() >= 100 && l.baselineMs() < 200, qPrintable(QString::number(l.baselineMs())));
  }
}

void AdmissionTest::learnedLimitCutsOnOverloadOncePerBurst() {
  upstream::AdaptiveLimit l;
  l.configure({8, 1, 256, 2.0, 0.5});
  for (int i = 0; i < 8; ++i) l.onSample(10, 1, 100);  // a baseline
  QVERIFY(!l.probing());
  QCOMPARE(l.limit(), 8u);
  l.onOverload(1000);
  QCOMPARE(l.limit(), 4u);
  l.onOverload(1050);  // the same burst of refusals
  QCOMPARE(l.limit(), 4u);
  l.onOverload(1200);
  QCOMPARE(l.limit(), 2u);
  l.onOverload(1400);
  l.onOverload(1600);
  QCOMPARE(l.limit(), 1u);  // never below min
  QCOMPARE(l.cuts(), uint64_t{4});
}

void AdmissionTest::learnedLimitIgnoresSlowRequestsBelowTheLimit() {
  // Light load with long prompts mixed in (slow first tokens that are not
  // queueing): the limit stays where it was.
  upstream::AdaptiveLimit l;
  l.configure({8, 1, 256, 2.0, 0.75});
  for (int i = 0; i < 8; ++i) l.onSample(60, 1, 800);  // 60 ms unloaded
  std::mt19937 rng(3);
  for (int i = 0; i < 1500; ++i) l.onSample(rng() % 2 ? 60 : 600, 1 + rng() % 4, 1200);
  QCOMPARE(l.limit(), 8u);
  QCOMPARE(l.cuts(), uint64_t{0});
  // Scheduling noise of a few ms on a full backend is not queueing either:
  // the slack is half a slot's turnover (800 ms / 8 / 2 = 50 ms).
  for (int i = 0; i < 64; ++i) l.onSample(60 * 2 + 40, 8, 800);
  QCOMPARE(l.cuts(), uint64_t{0});
  QVERIFY(l.limit() > 8u);
}

void AdmissionTest::queueServesClassesInStrictPriority() {
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

void AdmissionTest::queuePlacedWaitersDoNotHoldBackOthers() {
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

void AdmissionTest::queueSharesFairlyByTokensBetweenTenants() {
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

void AdmissionTest::queueShedsLowestClassWhenFull() {
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

void AdmissionTest::queueShedsWhatCannotMeetItsDeadline() {
  QueueHarness h(1);
  const auto t0 = AdmissionQueue::Clock::now();
  h.queue.tick(t0, h.pool);
  for (int i = 0; i < 4; ++i) {  // 4 slots handed out in one second
    h.ask("fast", Priority::kStandard, "t");
    h.release();
  }
  h.queue.tick(t0 + std::chrono::seconds(1), h.pool);
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

void AdmissionTest::queueWaiterTimesOutAtItsDeadline() {
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

void AdmissionTest::queueDropsWaitersWhenNoBackendCanReturn() {
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

void AdmissionTest::degradationFollowsErrorRateAndBackendsOut() {
  v1::Degradation s;
  s.set_automatic(true);
  s.add_wait_thresholds_ms(2000);
  s.add_error_rate_thresholds(0.5);
  for (double t : {0.5, 1.0}) s.add_unavailable_thresholds(t);
  s.set_min_dwell_ms(1000);
  s.set_exit_ratio(0.5);
  PoolDegradation d;
  int64_t now = 1'000'000;
  // The error rate from running totals: nothing on the first call, then the
  // share of what finished in between.
  QCOMPARE(d.errorRateSince(100, 10), 0.0);
  QCOMPARE(d.errorRateSince(200, 60), 0.5);
  QCOMPARE(d.errorRateSince(200, 60), 0.0);  // nothing finished: no signal
  QVERIFY(d.evaluate(s, DegradationSignals{0, 0.6, 0}, now));  // half failing: level 1 at once
  QCOMPARE(d.automaticLevel(), 1);
  QVERIFY(!d.evaluate(s, DegradationSignals{0, 0.3, 0}, now += 2000));  // 0.3 >= 0.5 × 0.5: holds
  QVERIFY(d.evaluate(s, DegradationSignals{0, 0.2, 0}, now += 2000));   // calm: down
  QCOMPARE(d.automaticLevel(), 0);
  // Every backend out of rotation: level 2 (the highest signal wins).
  QVERIFY(d.evaluate(s, DegradationSignals{0, 0.6, 1.0}, now += 1000));
  QCOMPARE(d.automaticLevel(), 2);
  QVERIFY(!d.evaluate(s, DegradationSignals{0, 0, 0.5}, now += 2000));  // 0.5 is not below 1.0 × 0.5
  QVERIFY(d.evaluate(s, DegradationSignals{0, 0, 0.4}, now += 2000));
  QCOMPARE(d.automaticLevel(), 1);
  QVERIFY(!d.evaluate(s, DegradationSignals{0, 0, 0.4}, now += 2000));  // level 1's threshold is 0.5: 0.4 holds
  QVERIFY(d.evaluate(s, DegradationSignals{0, 0, 0}, now += 2000));
  QCOMPARE(d.automaticLevel(), 0);
  // Thresholds out of range or not rising are config errors at their field.
  auto loaded = config::loadYaml(testing::engineYaml(testing::kTwoInstantSims,
                                                     "degradation: {error_rate_thresholds: [0.5, 0.2]}\n"),
                                 "t.yaml");
  QCOMPARE(loaded.errors.size(), size_t{1});
  QCOMPARE(loaded.errors[0].path, std::string("degradation.error_rate_thresholds[1]"));
}

void AdmissionTest::degradationHasHysteresisAndDwell() {
  v1::Degradation s;
  s.set_automatic(true);
  for (uint32_t t : {1000u, 3000u, 6000u}) s.add_wait_thresholds_ms(t);
  s.set_min_dwell_ms(5000);
  s.set_exit_ratio(0.5);
  PoolDegradation d;
  int64_t now = 1'000'000;
  QVERIFY(!d.evaluate(s, 500, now));
  QVERIFY(d.evaluate(s, 1100, now += 1000));  // over the first threshold: up at once
  QCOMPARE(d.level(), 1);
  // Hovering around the threshold for a minute changes nothing.
  for (int i = 0; i < 60; ++i) QVERIFY(!d.evaluate(s, i % 2 ? 1100 : 900, now += 1000));
  QCOMPARE(d.changes(), uint64_t{1});
  QVERIFY(d.evaluate(s, 7000, now += 1000));  // straight to 3
  QCOMPARE(d.level(), 3);
  QVERIFY(!d.evaluate(s, 100, now += 1000));  // calm, but the dwell is not over
  QVERIFY(d.evaluate(s, 100, now += 5000));   // one step down at a time
  QCOMPARE(d.level(), 2);
  QVERIFY(!d.evaluate(s, 100, now += 1000));
  QVERIFY(d.evaluate(s, 100, now += 5000));
  QVERIFY(d.evaluate(s, 100, now += 5000));
  QCOMPARE(d.level(), 0);
}

void AdmissionTest::degradationPinOverridesAndReleases() {
  v1::Degradation s;  // automatic off
  PoolDegradation d;
  QVERIFY(!d.evaluate(s, 1e9, 0));
  QCOMPARE(d.level(), 0);
  d.pin(2);
  QCOMPARE(d.level(), 2);
  QCOMPARE(d.pinned(), 2);
  d.pin(-1);
  QCOMPARE(d.level(), 0);
}

void AdmissionTest::degradationAppliesByClass() {
  QCOMPARE(classLevel(1, Priority::kSheddable), 1);
  QCOMPARE(classLevel(1, Priority::kStandard), 0);
  QCOMPARE(classLevel(1, Priority::kCritical), 0);
  QCOMPARE(classLevel(3, Priority::kSheddable), 3);
  QCOMPARE(classLevel(3, Priority::kStandard), 2);
  QCOMPARE(classLevel(3, Priority::kCritical), 1);
}

void AdmissionTest::rewriteCapsTokensAddsInstructionAndSwapsModel() {
  openai::Rewrite rw;
  rw.model = "small";
  rw.max_tokens_cap = 64;
  rw.system_instruction = "Answer briefly.";
  auto out = openai::rewriteRequest(
      R"({"model":"big", "max_tokens": 500, "temperature":0.2,"messages":[{"role":"user","content":"hi"}]})", rw);
  QVERIFY(out.ok());
  QCOMPARE(QString::fromStdString(*out),
           QString(R"({"model":"small","max_tokens":64,"temperature":0.2,"messages":[{"role":"system","content":)"
                   R"("Answer briefly."},{"role":"user","content":"hi"}]})"));
  // A smaller max_tokens stays; a missing one is added.
  rw = {};
  rw.max_tokens_cap = 64;
  QCOMPARE(QString::fromStdString(*openai::rewriteRequest(R"({"model":"m","max_tokens":10})", rw)),
           QString(R"({"model":"m","max_tokens":10})"));
  QCOMPARE(QString::fromStdString(*openai::rewriteRequest(R"({"model":"m"})", rw)),
           QString(R"({"model":"m","max_tokens":64})"));
  QVERIFY(!openai::rewriteRequest("[1,2]", rw).ok());
}

QTEST_APPLESS_MAIN(AdmissionTest)

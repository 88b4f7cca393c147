#include "attempt_loop_test.h"

#include <QtTest>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <deque>

#include "common/io_pool.h"
#include "common/strings.h"
#include "common/url.h"
#include "config/config_loader.h"
#include "config/validate.h"
#include "metrics/registry.h"
#include "pipeline/attempt_loop.h"
#include "pipeline/route_table.h"
#include "pipeline/slot_source.h"
#include "sim/sim_server.h"
#include "support/recording_channel.h"
#include "upstream/backend_events.h"

using namespace spillway;
using spillway::testing::Recorded;
using spillway::testing::RecordingChannel;

namespace {

// What the scripted slot source gives, attempt by attempt.
enum class Slot { kBusyBackend, kOkBackend, kNobodyElse, kAnswered };

// Admission replaced by a script: the test says which backend each attempt
// gets, or that nobody else can take the request, or that admission
// answers it.
class ScriptedSlots final : public pipeline::SlotSource {
 public:
  explicit ScriptedSlots(std::deque<Slot> script) : script_(std::move(script)) {}
  std::optional<pipeline::SlotResult> tryNow(pipeline::RequestContext& ctx, const balance::PickContext&,
                                             const pipeline::EarlierAttempts&) override {
    const Slot next = script_.empty() ? Slot::kNobodyElse : script_.front();
    if (!script_.empty()) script_.pop_front();
    ++asked;
    switch (next) {
      case Slot::kNobodyElse:
        return pipeline::SlotResult{pipeline::SlotResult::Kind::kNobodyElse, nullptr};
      case Slot::kAnswered:
        ctx.error = openai::ApiError{429, "queue full", "rate_limit_error", "", "rate_limit_exceeded"};
        ctx.drop = pipeline::DropReason::kQueueFull;
        return pipeline::SlotResult{pipeline::SlotResult::Kind::kAnswered, nullptr};
      case Slot::kBusyBackend:
      case Slot::kOkBackend: {
        upstream::BackendPtr b = ctx.pool->backends[next == Slot::kBusyBackend ? 0 : 1];
        if (!b->tryAcquire()) qFatal("the backend refused a slot");
        return pipeline::SlotResult{pipeline::SlotResult::Kind::kBackend, std::move(b)};
      }
    }
    return std::nullopt;
  }
  common::Awaitable<pipeline::SlotResult> wait(pipeline::RequestContext& ctx, const balance::PickContext& pick,
                                               const pipeline::EarlierAttempts& earlier) override {
    co_return *tryNow(ctx, pick, earlier);
  }
  bool mayRequeue(const pipeline::RequestContext&) const override { return false; }
  bool requeueAfterBusy(pipeline::RequestContext&, upstream::Backend&) override { return false; }
  bool answerInsteadOfBusy(pipeline::RequestContext&, uint32_t) override { return false; }

  int asked = 0;

 private:
  std::deque<Slot> script_;
};

// A sink that notes its tag when the answer's head passes, then relays.
class TaggingSink final : public upstream::ResponseSink {
 public:
  TaggingSink(upstream::ResponseSink& next, std::vector<std::string>& log, std::string tag)
      : next_(next), log_(log), tag_(std::move(tag)) {}
  common::Awaitable<bool> sendWhole(const upstream::ResponseHead& head, std::string_view body) override {
    log_.push_back(tag_);
    co_return co_await next_.sendWhole(head, body);
  }
  common::Awaitable<bool> sendHead(const upstream::ResponseHead& head) override {
    log_.push_back(tag_);
    co_return co_await next_.sendHead(head);
  }
  common::Awaitable<bool> sendBody(std::string_view bytes) override { co_return co_await next_.sendBody(bytes); }
  common::Awaitable<bool> sendEnd() override { co_return co_await next_.sendEnd(); }
  common::Awaitable<void> abort(std::string_view event) override { co_await next_.abort(event); }
  bool started() const override { return next_.started(); }

 private:
  upstream::ResponseSink& next_;
  std::vector<std::string>& log_;
  std::string tag_;
};

class TaggingStage final : public pipeline::Stage {
 public:
  TaggingStage(std::vector<std::string>& log, std::string tag) : log_(log), tag_(std::move(tag)) {}
  std::string_view name() const override { return "tagging"; }
  upstream::ResponseSink& wrapSink(pipeline::RequestContext&, upstream::ResponseSink& next,
                                   pipeline::SinkChain& chain) override {
    return chain.add<TaggingSink>(next, log_, tag_);
  }

 private:
  std::vector<std::string>& log_;
  std::string tag_;
};

// A sink that ends the answer for a policy of its own, as the token meter
// does at an empty bucket: it flags the request and takes no more.
class CuttingSink final : public upstream::ResponseSink {
 public:
  explicit CuttingSink(bool& cut) : cut_(cut) {}
  common::Awaitable<bool> sendWhole(const upstream::ResponseHead&, std::string_view) override {
    cut_ = true;
    co_return false;
  }
  common::Awaitable<bool> sendHead(const upstream::ResponseHead&) override {
    cut_ = true;
    co_return false;
  }
  common::Awaitable<bool> sendBody(std::string_view) override { co_return false; }
  common::Awaitable<bool> sendEnd() override { co_return false; }
  common::Awaitable<void> abort(std::string_view) override { co_return; }
  bool started() const override { return false; }

 private:
  bool& cut_;
};

class CuttingStage final : public pipeline::Stage {
 public:
  std::string_view name() const override { return "cutting"; }
  upstream::ResponseSink& wrapSink(pipeline::RequestContext& ctx, upstream::ResponseSink&,
                                   pipeline::SinkChain& chain) override {
    return chain.add<CuttingSink>(ctx.cut_by_sink);
  }
};

v1::SimProfile simProfile(bool busy) {
  v1::SimProfile p;
  p.set_profile("instant");
  if (busy) {
    p.mutable_failures()->set_rate(1);
    p.mutable_failures()->set_kind(v1::HTTP_429);
    p.mutable_failures()->set_retry_after_seconds(7);
  }
  if (!config::fillSimDefaults(p).ok()) qFatal("bad sim profile");
  return p;
}

constexpr std::string_view kConfig = R"(
backends:
  - {name: busy, url: "http://127.0.0.1:1", models: [m]}
  - {name: ok, url: "http://127.0.0.1:1", models: [m]}
pools:
  - {model: m, backends: [busy, ok]}
)";

// Two simulated backends on loopback — "busy" answers every request 429
// with Retry-After: 7, "ok" answers it — and the routing table over them.
struct Fixture {
  explicit Fixture(std::deque<Slot> script) {
    sim_io.start();
    auto cfg = config::loadEffectiveConfig(kConfig, "attempt_loop_test.yaml");
    if (!cfg.ok()) qFatal("config: %s", std::string(cfg.status().message()).c_str());
    routes.config = *cfg;
    routes.retry_after_text = "1";
    for (int i = 0; i < 2; ++i) {
      auto& sim = sims.emplace_back(std::make_unique<sim::SimServer>(sim_io, simProfile(i == 0),
                                                                     std::vector<std::string>{"m"}, cfg->backends(i).name()));
      if (!sim->listen("127.0.0.1", 0).ok()) qFatal("sim listen failed");
      auto url = common::parseUrl(common::strCat("http://127.0.0.1:", sim->port()));
      routes.backends.push_back(std::make_shared<upstream::Backend>(i + 1, cfg->backends(i), *url, ""));
    }
    pipeline::PoolRoute& pool = routes.pools["m"];
    pool.id = 100;
    pool.model = "m";
    pool.backends = routes.backends;
    pool.retry_budget = std::make_unique<pipeline::RetryBudget>(100, 10);
    auto scripted = std::make_unique<ScriptedSlots>(std::move(script));
    scripted_slots = scripted.get();
    pool.slot_source = std::move(scripted);
    const auto& u = routes.config.upstream();
    routes.outliers = std::make_unique<upstream::OutlierDetector>(u.outlier_detection(), u.slow_start_ms(),
                                                                  u.busy_cooldown_ms(),
                                                                  std::make_shared<upstream::BackendEvents>());
  }
  ~Fixture() {
    for (auto& s : sims) s->stop();
    sim_io.stop();
  }

  // Runs the loop for a fresh request to completion.
  pipeline::AttemptEnd run(pipeline::RequestContext& ctx) {
    ctx.routes = &routes;
    ctx.pool = &routes.pools["m"];
    ctx.channel = &channel;
    ctx.start = std::chrono::steady_clock::now();
    const upstream::ExchangeRequest request{
        .method = "POST", .target = "/v1/chat/completions", .body = kBody, .busy_retry_after = "1"};
    std::optional<pipeline::AttemptEnd> end;
    {
      upstream::ConnectionPools connections;  // closed before the io_context goes
      boost::asio::co_spawn(
          io, [&]() -> common::Awaitable<void> { end = co_await loop.run(ctx, request, connections); },
          boost::asio::detached);
      io.run();
      io.restart();
    }
    if (!end) qFatal("the attempt loop did not finish");
    return std::move(*end);
  }

  static constexpr std::string_view kBody = R"({"model":"m","messages":[{"role":"user","content":"hi"}]})";
  common::IoPool sim_io{1};
  std::vector<std::unique_ptr<sim::SimServer>> sims;
  pipeline::RouteTable routes;
  ScriptedSlots* scripted_slots = nullptr;
  boost::asio::io_context io;
  metrics::Registry registry;
  upstream::TlsContexts tls;
  pipeline::AttemptLoop loop{registry, tls};
  RecordingChannel channel;
};

}  // namespace

void AttemptLoopTest::aRefusalIsRetriedOnAnotherBackend() {
  Fixture f({Slot::kBusyBackend, Slot::kOkBackend});
  pipeline::RequestContext ctx;
  const pipeline::AttemptEnd end = f.run(ctx);
  QCOMPARE(end.kind, pipeline::AttemptEnd::Kind::kRelayed);
  QVERIFY(end.keep_connection);
  QCOMPARE(ctx.status, 200);
  QCOMPARE(f.channel.recorded.status, 200);  // the client saw only the good answer
  QVERIFY(f.channel.recorded.body.find("\"choices\"") != std::string::npos);
  QCOMPARE(ctx.attempts, 2u);
  QCOMPARE(ctx.retries, 1u);
  QCOMPARE(ctx.tried.size(), size_t{1});
  QCOMPARE(ctx.tried[0]->name(), std::string("busy"));
  QCOMPARE(ctx.backend->name(), std::string("ok"));
  QVERIFY(f.registry.render().find("spillway_upstream_retries_total{backend=\"ok\",reason=\"another_backend\"} 1") !=
          std::string::npos);
  // Both slots were given back.
  QCOMPARE(f.routes.backends[0]->inFlight(), int64_t{0});
  QCOMPARE(f.routes.backends[1]->inFlight(), int64_t{0});
}

void AttemptLoopTest::theHeldRefusalIsRelayedWhenNobodyElseCanTakeIt() {
  Fixture f({Slot::kBusyBackend, Slot::kNobodyElse});
  pipeline::RequestContext ctx;
  const pipeline::AttemptEnd end = f.run(ctx);
  QCOMPARE(end.kind, pipeline::AttemptEnd::Kind::kHeld);
  QCOMPARE(end.held.status, 429);
  QCOMPARE(end.held.retry_after_seconds, 7u);  // the backend's own Retry-After
  QCOMPARE(end.held.backend, std::string("busy"));
  QVERIFY(!end.held.body.empty());
  QCOMPARE(ctx.status, 429);
  QCOMPARE(f.channel.recorded.status, 0);  // nothing was written: the gateway relays it
  QCOMPARE(ctx.attempts, 1u);
}

void AttemptLoopTest::stagesWrapTheAnswerEarliestFirst() {
  Fixture f({Slot::kOkBackend});
  std::vector<std::string> log;
  f.routes.stages.push_back(std::make_unique<TaggingStage>(log, "first"));
  f.routes.stages.push_back(std::make_unique<TaggingStage>(log, "second"));
  pipeline::RequestContext ctx;
  const pipeline::AttemptEnd end = f.run(ctx);
  QCOMPARE(end.kind, pipeline::AttemptEnd::Kind::kRelayed);
  QCOMPARE(log, (std::vector<std::string>{"first", "second"}));
  QCOMPARE(f.channel.recorded.status, 200);
}

void AttemptLoopTest::aSinkThatCutsTheAnswerEndsTheRequest() {
  Fixture f({Slot::kOkBackend, Slot::kOkBackend});
  f.routes.stages.push_back(std::make_unique<CuttingStage>());
  pipeline::RequestContext ctx;
  const pipeline::AttemptEnd end = f.run(ctx);
  QCOMPARE(end.kind, pipeline::AttemptEnd::Kind::kRelayed);
  QVERIFY(!end.keep_connection);  // the upstream was not read to its end
  QCOMPARE(ctx.status, 429);
  QCOMPARE(ctx.drop, pipeline::DropReason::kRateLimited);
  QCOMPARE(ctx.attempts, 1u);  // never retried elsewhere
  QCOMPARE(f.scripted_slots->asked, 1);
}

void AttemptLoopTest::aSlotSourceAnswerEndsTheLoopWithoutAnAttempt() {
  Fixture f({Slot::kAnswered});
  pipeline::RequestContext ctx;
  const pipeline::AttemptEnd end = f.run(ctx);
  QCOMPARE(end.kind, pipeline::AttemptEnd::Kind::kAnswer);
  QVERIFY(ctx.error.has_value());
  QCOMPARE(ctx.error->status, 429);
  QCOMPARE(ctx.attempts, 0u);
  QVERIFY(!ctx.backend);
}

QTEST_APPLESS_MAIN(AttemptLoopTest)

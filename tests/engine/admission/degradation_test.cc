#include "degradation_test.h"

#include <QtTest>

#include "admission/admission_queue.h"
#include "admission/degradation.h"
#include "config/validate.h"
#include "pipeline/request_context.h"
#include "pipeline/route_table.h"
#include "config/config_loader.h"
#include "openai/openai.h"
#include "support/test_config.h"

using namespace spillway;
using namespace spillway::admission;

void DegradationTest::degradationFollowsErrorRateAndBackendsOut() {
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

void DegradationTest::degradationHasHysteresisAndDwell() {
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

void DegradationTest::refusalsHoldLevelOneAtLeast() {
  v1::Degradation s;
  s.set_automatic(true);
  for (uint32_t t : {1000u, 3000u}) s.add_wait_thresholds_ms(t);
  s.set_min_dwell_ms(5000);
  s.set_exit_ratio(0.5);
  PoolDegradation d;
  int64_t now = 1'000'000;
  // The first refusal raises the level at once, not at the next evaluation.
  QVERIFY(d.raiseForRefusal(s, now));
  QCOMPARE(d.level(), 1);
  QVERIFY(!d.raiseForRefusal(s, now));  // already there
  // While the queue keeps turning requests away, the level stays, however
  // short the waits; it steps down once the refusals stop (and the dwell
  // is over).
  DegradationSignals sig;
  sig.refusing = true;
  for (int i = 0; i < 10; ++i) QVERIFY(!d.evaluate(s, sig, now += 1000));
  QCOMPARE(d.level(), 1);
  sig.refusing = false;
  QVERIFY(d.evaluate(s, sig, now += 1000));
  QCOMPARE(d.level(), 0);
  // A refusing pool with no other signal evaluates to 1 too; from 2 it may
  // step down to 1, not below.
  sig.refusing = true;
  QVERIFY(d.evaluate(s, sig, now += 1000));
  QCOMPARE(d.level(), 1);
  sig.oldest_wait_ms = 3500;
  QVERIFY(d.evaluate(s, sig, now += 1000));
  QCOMPARE(d.level(), 2);
  sig.oldest_wait_ms = 0;
  QVERIFY(d.evaluate(s, sig, now += 6000));
  QCOMPARE(d.level(), 1);
  QVERIFY(!d.evaluate(s, sig, now += 6000));
  // Not automatic, or pinned: a refusal changes nothing.
  PoolDegradation manual;
  v1::Degradation off;
  QVERIFY(!manual.raiseForRefusal(off, now));
  QCOMPARE(manual.level(), 0);
  manual.pin(0);
  QVERIFY(!manual.raiseForRefusal(s, now));
  QCOMPARE(manual.level(), 0);
}

void DegradationTest::degradationPinOverridesAndReleases() {
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

void DegradationTest::automaticLevelsDegradeOnlyWhatTheFleetCannotServe() {
  auto config = testing::configFromYaml(testing::engineYaml(testing::kTwoInstantSims, R"(degradation:
  max_tokens_cap: 8
  default_answers:
    - {model: m, text: "Busy; a short answer for now."}
)"));
  config::applyDefaults(config);
  DegradeStage stage(config);
  pipeline::RouteTable table;
  pipeline::PoolRoute pool;
  pool.model = "m";
  pool.queue = std::make_shared<AdmissionQueue>();
  auto level = std::make_shared<PoolDegradation>();
  pool.degradation = level;
  table.config = config;
  table.pools.emplace("m", std::move(pool));
  const pipeline::PoolRoute& m = table.pools.at("m");
  auto request = [&] {
    auto ctx = std::make_unique<pipeline::RequestContext>();
    ctx->routes = &table;
    ctx->pool = &m;
    ctx->caller.priority = Priority::kSheddable;  // gets the pool's level as it is
    ctx->body = R"({"model":"m","max_tokens":100,"messages":[{"role":"user","content":"hi"}]})";
    ctx->parsed.model = "m";
    ctx->parsed.max_tokens = 100;
    return ctx;
  };
  // Automatic level 1 with nobody waiting: the full answer (the queue's
  // shed path gives level 1's answer to what it cannot serve in time).
  v1::Degradation automatic;
  automatic.set_automatic(true);
  automatic.add_wait_thresholds_ms(100);
  automatic.add_wait_thresholds_ms(200);
  QVERIFY(level->evaluate(automatic, 150, 1000));
  QCOMPARE(level->level(), 1);
  auto one = request();
  QCOMPARE(stage.process(*one), pipeline::Verdict::kContinue);
  QCOMPARE(one->degraded, uint8_t{0});
  // Automatic level 2 with nobody waiting: not rewritten either.
  QVERIFY(level->evaluate(automatic, 250, 2000));
  QCOMPARE(level->level(), 2);
  auto two = request();
  QCOMPARE(stage.process(*two), pipeline::Verdict::kContinue);
  QCOMPARE(two->degraded, uint8_t{0});
  QVERIFY(two->rewritten_body.empty());
  // The operator's pin applies to every request, idle fleet or not.
  level->pin(1);
  auto pinned = request();
  QCOMPARE(stage.process(*pinned), pipeline::Verdict::kAnswered);
  QCOMPARE(pinned->degraded, uint8_t{1});
  level->pin(2);
  auto pinned2 = request();
  QCOMPARE(stage.process(*pinned2), pipeline::Verdict::kContinue);
  QCOMPARE(pinned2->degraded, uint8_t{2});
  QVERIFY(pinned2->rewritten_body.find("\"max_tokens\":8") != std::string::npos);
  // A caller that parses the answer (tools, response_format) gets neither a
  // rewrite nor a canned text, pinned or not: served as it came, or shed.
  for (int pin : {2, 1}) {
    level->pin(pin);
    auto structured = request();
    structured->parsed.structured = true;
    QCOMPARE(stage.process(*structured), pipeline::Verdict::kContinue);
    QCOMPARE(structured->degraded, uint8_t{0});
    QVERIFY(structured->rewritten_body.empty());
    QVERIFY(!answerDegraded(*structured));
  }
}

void DegradationTest::degradationAppliesByClass() {
  QCOMPARE(classLevel(1, Priority::kSheddable), 1);
  QCOMPARE(classLevel(1, Priority::kStandard), 0);
  QCOMPARE(classLevel(1, Priority::kCritical), 0);
  QCOMPARE(classLevel(3, Priority::kSheddable), 3);
  QCOMPARE(classLevel(3, Priority::kStandard), 2);
  QCOMPARE(classLevel(3, Priority::kCritical), 1);
}

void DegradationTest::rewriteCapsTokensAddsInstructionAndSwapsModel() {
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

QTEST_APPLESS_MAIN(DegradationTest)

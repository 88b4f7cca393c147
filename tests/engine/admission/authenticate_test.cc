#include "authenticate_test.h"

#include <QtTest>

#include "admission/authenticate.h"
#include "common/sha256.h"
#include "config/config_loader.h"
#include "config/validate.h"
#include "pipeline/request_context.h"
#include "pipeline/route_table.h"
#include "support/test_config.h"

using namespace spillway;
using namespace spillway::admission;

void AuthenticateTest::keysResolveTenantAndPriority() {
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
           int64_t{30000});  // the critical class's timeout; its 5 s objective decides at the queue's door
  QCOMPARE(ok.objective.count(), 5000);

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

void AuthenticateTest::poolClassIsARouteRule() {
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
  // The timeout and objective follow the class the rule gave (sheddable: 5 s, 1 s).
  auto b = ask("batch", "sk-ops", {});
  QCOMPARE(std::chrono::duration_cast<std::chrono::milliseconds>(b.deadline - b.start).count(), int64_t{5000});
  QCOMPARE(b.objective.count(), 1000);
  // A class that does not exist is a config error at its field.
  auto loaded = config::loadYaml(
      testing::engineYaml(testing::kTwoInstantSims, "pools:\n  - {model: m, backends: [a], priority: urgent}\n"), "t.yaml");
  QCOMPARE(loaded.errors.size(), size_t{1});
  QCOMPARE(loaded.errors[0].path, std::string("pools[0].priority"));
  QVERIFY(loaded.errors[0].line > 0);  // located in the file
}

void AuthenticateTest::objectivesComeFromTheClassAndTightenByHeader() {
  auto config = testing::configFromYaml(testing::engineYaml(
      testing::kTwoInstantSims, "admission:\n  standard: {queue_timeout_ms: 15000, objective_ms: 2500}\n"));
  config::applyDefaults(config);
  AuthenticateStage auth(config);
  auto ask = [&](std::vector<std::pair<std::string, std::string>> headers) {
    static boost::beast::http::fields fields;
    fields = {};
    for (const auto& [k, v] : headers) fields.insert(k, v);
    pipeline::RequestContext ctx;
    ctx.start = pipeline::RequestContext::Clock::now();
    ctx.headers = &fields;
    const auto verdict = auth.process(ctx);
    return std::make_pair(verdict, ctx);
  };
  auto ms = [](const pipeline::RequestContext& c) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(c.deadline - c.start).count();
  };
  auto [v0, plain] = ask({});
  QCOMPARE(plain.objective.count(), 2500);
  QCOMPARE(ms(plain), int64_t{15000});  // the wait's bound stays the class's timeout
  auto [v1, tight] = ask({{"x-spillway-slo-ttft-ms", "300"}});
  QCOMPARE(tight.objective.count(), 300);
  QCOMPARE(ms(tight), int64_t{15000});
  auto [v2, llmd] = ask({{"x-llm-d-slo-ttft-ms", "700"}});
  QCOMPARE(llmd.objective.count(), 700);
  auto [v3, relaxed] = ask({{"x-spillway-slo-ttft-ms", "60000"}});  // never relaxes the class's
  QCOMPARE(relaxed.objective.count(), 2500);
  auto [v4, both] = ask({{"x-spillway-slo-ttft-ms", "900"}, {"x-llm-d-slo-ttft-ms", "400"}});  // the tighter
  QCOMPARE(both.objective.count(), 400);
  auto [v5, timeout] = ask({{"x-spillway-timeout-ms", "100"}});  // a shorter wait, the same objective
  QCOMPARE(timeout.objective.count(), 2500);
  QCOMPARE(ms(timeout), int64_t{100});
  for (const char* bad : {"soon", "0", "-5", "12ms"}) {
    auto [verdict, ctx] = ask({{"x-spillway-slo-ttft-ms", bad}});
    QCOMPARE(verdict, pipeline::Verdict::kAnswered);
    QCOMPARE(ctx.error->status, 400);
    QCOMPARE(ctx.error->param, std::string("x-spillway-slo-ttft-ms"));
  }
}

QTEST_APPLESS_MAIN(AuthenticateTest)

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

QTEST_APPLESS_MAIN(AuthenticateTest)

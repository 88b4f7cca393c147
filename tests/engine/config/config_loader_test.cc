// Config loading: YAML mapped onto the schema, every validation error with
// its field path and file:line:column, defaults, and the embedded default.
#include "config_loader_test.h"

#include <QtTest>

#include <filesystem>
#include <fstream>
#include <set>

#include "google/protobuf/descriptor.h"

#include "config/config_loader.h"
#include "config/validate.h"
#include "spillway/v1/options.pb.h"

using namespace spillway;

namespace {

std::vector<std::string> messages(const config::LoadResult& r) {
  std::vector<std::string> out;
  for (const auto& e : r.errors) out.push_back(e.toString());
  return out;
}

bool anyContains(const config::LoadResult& r, const std::string& needle) {
  for (const auto& m : messages(r)) {
    if (m.find(needle) != std::string::npos) return true;
  }
  return false;
}

std::string dump(const config::LoadResult& r) { return config::formatErrors(r.errors); }

const char* kValid = R"(server:
  listen: 127.0.0.1:9000
backends:
  - name: a
    url: http://127.0.0.1:8001
    models: [m1]
    weight: 3
  - name: b
    url: https://api.example.com/v1
    models: [m1, m2]
    api_key_env: SPILLWAY_TEST_KEY
pools:
  - model: m1
    backends: [b, a]
)";

}  // namespace

void ConfigLoaderTest::loadsValidConfig() {
  auto r = config::loadYaml(kValid, "x.yaml");
  QVERIFY2(r.ok(), dump(r).c_str());
  QCOMPARE(r.config.server().listen(), "127.0.0.1:9000");
  QCOMPARE(r.config.backends_size(), 2);
  QCOMPARE(r.config.backends(0).weight(), 3u);
  QCOMPARE(r.config.backends(1).models_size(), 2);
  QCOMPARE(r.config.pools(0).backends(0), "b");
}

void ConfigLoaderTest::embeddedDefaultIsValid() {
  auto r = config::loadYaml(config::defaultConfigYaml(), "default.yaml");
  QVERIFY2(r.ok(), dump(r).c_str());
  QCOMPARE(r.config.backends_size(), 3);
  config::applyDefaults(r.config);
  QCOMPARE(r.config.pools_size(), 2);  // derived: spillway-small, spillway-large
}

void ConfigLoaderTest::reportsFieldPathAndPosition() {
  const char* yaml = R"(backends:
  - name: a
    url: http://127.0.0.1:8001
    models: [m]
  - name: b
    url: htp://127.0.0.1:8002
    models: [m]
)";
  auto r = config::loadYaml(yaml, "default.yaml");
  QCOMPARE(r.errors.size(), size_t{1});
  QCOMPARE(r.errors[0].toString(),
           std::string("default.yaml:6:10: backends[1].url: unsupported scheme \"htp\" (expected http, https or sim)"));
}

void ConfigLoaderTest::reportsEveryErrorAtOnce() {
  const char* yaml = R"(server:
  listen: nowhere
  threads: 1000
backends:
  - name: a
    url: http://h:1
    models: []
  - name: a
    url: ""
    models: [m]
    sim:
      profile: warp
pools:
  - model: m
    backends: [ghost, a]
  - model: m
    backends: []
)";
  auto r = config::loadYaml(yaml, "c.yaml");
  QVERIFY(anyContains(r, "c.yaml:2:11: server.listen: expected \"HOST:PORT\""));
  QVERIFY(anyContains(r, "server.threads: must be at most 256"));
  QVERIFY(anyContains(r, "backends[0].models: at least one model is required"));
  QVERIFY(anyContains(r, "backends[1].name: duplicate backend name \"a\""));
  QVERIFY(anyContains(r, "backends[1].url: is required"));
  QVERIFY(anyContains(r, "backends[1].sim.profile: unknown profile \"warp\""));
  QVERIFY(anyContains(r, "pools[0].backends[0]: no backend named \"ghost\""));
  QVERIFY(anyContains(r, "pools[1].model: duplicate pool for model \"m\""));
  QVERIFY(anyContains(r, "pools[1].backends: at least one backend is required"));
  QVERIFY2(r.errors.size() >= 9, dump(r).c_str());
}

void ConfigLoaderTest::unknownKeySuggestsTheNearestField() {
  const char* yaml = R"(backends:
  - name: a
    urll: http://h:1
    models: [m]
)";
  auto r = config::loadYaml(yaml, "f.yaml");
  QVERIFY2(anyContains(r, "f.yaml:3:5: backends[0].urll: unknown field \"urll\" (did you mean \"url\"?)"),
           dump(r).c_str());
}

void ConfigLoaderTest::unknownKeyWithoutNearMatchListsFields() {
  auto r = config::loadYaml("server:\n  zzzzzzzz: 1\nbackends: []\n", "f.yaml");
  QVERIFY2(anyContains(r, "unknown field \"zzzzzzzz\"; valid fields: listen, threads"), dump(r).c_str());
}

void ConfigLoaderTest::typeErrors() {
  const char* yaml = R"(server:
  threads: many
  max_body_bytes: -5
upstream:
  health_check: yes
backends:
  - name: a
    url: sim://a
    models: m
    tls_insecure_skip_verify: perhaps
    sim:
      failures:
        rate: lots
        kind: explode
)";
  auto r = config::loadYaml(yaml, "t.yaml");
  QVERIFY(anyContains(r, "t.yaml:2:12: server.threads: expected a non-negative integer, got \"many\""));
  QVERIFY(anyContains(r, "server.max_body_bytes: expected a non-negative integer, got \"-5\""));
  QVERIFY(anyContains(r, "upstream.health_check: expected a mapping of HealthCheck fields, got a scalar"));
  QVERIFY(anyContains(r, "backends[0].models: expected a list, got a scalar"));
  QVERIFY(anyContains(r, "backends[0].tls_insecure_skip_verify: expected true or false, got \"perhaps\""));
  QVERIFY(anyContains(r, "backends[0].sim.failures.rate: expected a number, got \"lots\""));
  QVERIFY(anyContains(r, "backends[0].sim.failures.kind: unknown value \"explode\"; expected one of: http_500"));
}

void ConfigLoaderTest::yamlSyntaxErrorIsLocated() {
  auto r = config::loadYaml("backends:\n  - name: [a\n", "s.yaml");
  QCOMPARE(r.errors.size(), size_t{1});
  QVERIFY2(r.errors[0].line > 0, dump(r).c_str());
  QVERIFY(r.errors[0].toString().rfind("s.yaml:", 0) == 0);
}

void ConfigLoaderTest::rangeChecks() {
  const char* yaml = R"(server:
  max_body_bytes: 10
  header_timeout_ms: 99999999
backends:
  - name: "bad name!"
    url: http://h:0
    models: [m]
    weight: 20000
    sim: {profile: fast}
  - name: s
    url: sim://s
    models: [m]
    sim:
      min_output_tokens: 50
      max_output_tokens: 10
      failures: {rate: 1.5}
    health_check: {path: health}
)";
  auto r = config::loadYaml(yaml, "r.yaml");
  QVERIFY(anyContains(r, "server.max_body_bytes: must be at least 1024"));
  QVERIFY(anyContains(r, "server.header_timeout_ms: must be at most 3600000"));
  QVERIFY(anyContains(r, "backends[0].name: \"bad name!\" may only hold"));
  QVERIFY(anyContains(r, "backends[0].url: port 0 is not valid"));
  QVERIFY(anyContains(r, "backends[0].weight: must be at most 10000"));
  QVERIFY(anyContains(r, "backends[0].sim: only sim:// backends take simulator settings"));
  QVERIFY(anyContains(r, "backends[1].sim.min_output_tokens: must not exceed max_output_tokens"));
  QVERIFY(anyContains(r, "backends[1].sim.failures.rate: must be between 0 and 1"));
  QVERIFY(anyContains(r, "backends[1].health_check.path: must start with '/'"));
}

void ConfigLoaderTest::controlSectionIsValidated() {
  const std::string yaml = R"(control:
  listen: 0.0.0.0:50051
  tls_cert_file: /etc/cert.pem
  tokens:
    - {name: ops, sha256: ABCDEF, role: admin}
    - {name: ops, sha256: 0000000000000000000000000000000000000000000000000000000000000000, role: viewer}
backends:
  - {name: a, url: "sim://a", models: [m]}
)";
  auto r = config::loadYaml(yaml, "ctl.yaml");
  // TLS is required off loopback; a certificate needs its key.
  QVERIFY(anyContains(r, "control.listen: a non-loopback control address needs TLS"));
  QVERIFY(anyContains(r, "control.tls_key_file: tls_cert_file and tls_key_file go together"));
  QVERIFY(anyContains(r, "control.tokens[0].sha256: must be 64 lower-case hex digits"));
  QVERIFY(anyContains(r, "control.tokens[0].role: must be \"viewer\" or \"operator\", got \"admin\""));
  QVERIFY(anyContains(r, "control.tokens[1].name: duplicate token name \"ops\""));
}

void ConfigLoaderTest::balancingAndResilienceAreValidated() {
  const std::string yaml = R"(upstream:
  balancing: {policy: fastest}
  retry: {max_attempts: 11}
  load_metrics: {path: metrics}
backends:
  - {name: a, url: "sim://a", models: [m]}
pools:
  - model: m
    backends: [a]
    balancing: {policy: consistent_hash, cookie_name: "bad cookie", load_factor: 1000}
)";
  auto r = config::loadYaml(yaml, "b.yaml");
  QVERIFY(anyContains(r, "b.yaml:2:23: upstream.balancing.policy: unknown value \"fastest\"; expected one of: "
                         "round_robin, weighted_random, latency_weighted, least_outstanding, consistent_hash, "
                         "prefix_affinity"));
  QVERIFY(anyContains(r, "upstream.retry.max_attempts: must be at most 10"));
  QVERIFY(anyContains(r, "upstream.load_metrics.path: must start with '/' or be \"none\""));
  QVERIFY(anyContains(r, "pools[0].balancing.cookie_name: \"bad cookie\" may only hold letters, digits, '-' and '_'"));
  QVERIFY(anyContains(r, "b.yaml:10:82: pools[0].balancing.load_factor: must be between 0 and 100"));
}

void ConfigLoaderTest::everyTimeoutIsBounded() {
  // Bounds live on the fields ((spillway.v1.range)); a timeout added without
  // one would accept a typo of a week. Walk the whole schema.
  namespace pb = google::protobuf;
  std::vector<const pb::Descriptor*> todo = {v1::Config::descriptor()};
  std::set<const pb::Descriptor*> seen;
  int timeouts = 0;
  while (!todo.empty()) {
    const pb::Descriptor* d = todo.back();
    todo.pop_back();
    if (!seen.insert(d).second) continue;
    for (int i = 0; i < d->field_count(); ++i) {
      const pb::FieldDescriptor* f = d->field(i);
      if (f->message_type()) todo.push_back(f->message_type());
      const std::string& n = f->name();
      if (n.size() < 3 || n.compare(n.size() - 3, 3, "_ms") != 0) continue;
      ++timeouts;
      QVERIFY2(f->options().HasExtension(v1::range) && f->options().GetExtension(v1::range).has_max(),
               (f->full_name() + " has no (range) max").c_str());
    }
  }
  QVERIFY(timeouts >= 12);
  // And the bound is enforced where the field is nested deepest.
  auto r = config::loadYaml("backends:\n  - {name: a, url: sim://a, models: [m], health_check: {interval_ms: 4000000}}\n",
                            "t.yaml");
  QVERIFY(anyContains(r, "t.yaml:2:70: backends[0].health_check.interval_ms: must be at most 3600000"));
}

void ConfigLoaderTest::poolMustNameBackendsThatServeTheModel() {
  const char* yaml = R"(backends:
  - {name: a, url: "http://h:1", models: [x]}
pools:
  - {model: y, backends: [a]}
)";
  auto r = config::loadYaml(yaml, "p.yaml");
  QVERIFY2(anyContains(r, "pools[0].backends[0]: backend \"a\" does not list model \"y\""), dump(r).c_str());
}

void ConfigLoaderTest::routesAndEndpointsAreValidated() {
  const char* yaml = R"(backends:
  - {name: a, url: "http://h:1", models: [x]}
pools:
  - {model: x, backends: [a], endpoints: [embeddings, chat]}
api:
  passthrough_routes: [/v1/rerank, rerank, /v1/embeddings, /v1/rerank, "/x?y=1"]
)";
  auto r = config::loadYaml(yaml, "r.yaml");
  QVERIFY2(anyContains(r, "pools[0].endpoints[1]: unknown endpoint \"chat\""), dump(r).c_str());
  QVERIFY2(anyContains(r, "api.passthrough_routes[1]: must be a path starting with \"/\""), dump(r).c_str());
  QVERIFY2(anyContains(r, "api.passthrough_routes[2]: \"/v1/embeddings\" is a route the gateway serves itself"),
           dump(r).c_str());
  QVERIFY2(anyContains(r, "api.passthrough_routes[3]: duplicate route"), dump(r).c_str());
  QVERIFY2(anyContains(r, "api.passthrough_routes[4]"), dump(r).c_str());
  // Defaults: vLLM's extra routes; disable_passthrough leaves none.
  auto ok = config::loadYaml("backends:\n  - {name: a, url: \"sim://a\", models: [m]}\n", "");
  config::applyDefaults(ok.config);
  QCOMPARE(ok.config.api().passthrough_routes_size(), 7);
  QCOMPARE(ok.config.api().response_affinity_ttl_seconds(), 86400u);
  auto none = config::loadYaml("backends:\n  - {name: a, url: \"sim://a\", models: [m]}\napi: {disable_passthrough: true}\n", "");
  config::applyDefaults(none.config);
  QCOMPARE(none.config.api().passthrough_routes_size(), 0);
}

void ConfigLoaderTest::defaultsFillEveryZeroField() {
  auto r = config::loadYaml("backends:\n  - {name: a, url: \"sim://a\", models: [m]}\n  - {name: b, url: \"http://h:1\", models: [m], connect_timeout_ms: 50}\n", "");
  QVERIFY2(r.ok(), dump(r).c_str());
  config::applyDefaults(r.config);
  const auto& c = r.config;
  QCOMPARE(c.server().listen(), "127.0.0.1:8080");
  QCOMPARE(c.server().max_body_bytes(), uint64_t{4 << 20});
  QCOMPARE(c.backends(0).weight(), 1u);
  QCOMPARE(c.backends(0).connect_timeout_ms(), 2000u);
  QCOMPARE(c.backends(1).connect_timeout_ms(), 50u);  // override kept
  QCOMPARE(c.backends(0).health_check().path(), "/healthz");
  QCOMPARE(c.backends(1).health_check().path(), "/health");
  QCOMPARE(c.backends(0).sim().profile(), "default");
  QVERIFY(c.backends(0).sim().max_num_seqs() > 0);
  QVERIFY(!c.backends(1).has_sim());
  QCOMPARE(c.pools_size(), 1);
  QCOMPARE(c.pools(0).backends_size(), 2);
}

void ConfigLoaderTest::apiKeyFromEnvironmentWins() {
  v1::Backend b;
  b.set_api_key("inline");
  b.set_api_key_env("SPILLWAY_TEST_KEY_X");
  QCOMPARE(config::resolveApiKey(b), "inline");
  qputenv("SPILLWAY_TEST_KEY_X", "from-env");
  QCOMPARE(config::resolveApiKey(b), "from-env");
  qunsetenv("SPILLWAY_TEST_KEY_X");
}

void ConfigLoaderTest::missingFileIsOneClearError() {
  auto r = config::loadYamlFile("/nonexistent/spillway.yaml");
  QCOMPARE(r.errors.size(), size_t{1});
  QVERIFY(r.errors[0].toString().find("/nonexistent/spillway.yaml: cannot read file") == 0);
}

void ConfigLoaderTest::loadsFromFile() {
  QTemporaryDir dir;
  std::string path = dir.filePath("c.yaml").toStdString();
  std::ofstream(path) << kValid;
  auto r = config::loadYamlFile(path);
  QVERIFY2(r.ok(), dump(r).c_str());
  QCOMPARE(r.config.backends(1).name(), "b");
}

// docs/config.md is generated from the proto comments; this keeps it from
// falling behind the schema.
void ConfigLoaderTest::everyFieldIsDocumented() {
  QFile f(QString(SPILLWAY_SOURCE_DIR) + "/docs/config.md");
  QVERIFY(f.open(QIODevice::ReadOnly));
  const std::string doc = f.readAll().toStdString();
  std::vector<const google::protobuf::Descriptor*> todo{v1::Config::descriptor()};
  std::set<const google::protobuf::Descriptor*> seen;
  while (!todo.empty()) {
    const auto* d = todo.back();
    todo.pop_back();
    if (!seen.insert(d).second) continue;
    QVERIFY2(doc.find("## " + d->name() + "\n") != std::string::npos, d->name().c_str());
    for (int i = 0; i < d->field_count(); ++i) {
      const auto* field = d->field(i);
      std::string row = "| `" + field->name() + "` |";
      QVERIFY2(doc.find(row) != std::string::npos,
               (d->name() + "." + field->name() + " missing: run docs/tools/gen_config_md.py").c_str());
      if (field->message_type()) todo.push_back(field->message_type());
    }
  }
}

QTEST_APPLESS_MAIN(ConfigLoaderTest)

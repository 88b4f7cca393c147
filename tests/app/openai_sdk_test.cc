// The official OpenAI Node SDK, unmodified but for base_url, against the
// gateway: the compatibility promise tested with a real client.
#include "openai_sdk_test.h"

#include <QtTest>

#include <QProcess>
#include <QStandardPaths>

#include "engine.h"
#include "admission/authenticate.h"
#include "common/sha256.h"
#include "support/test_config.h"

using namespace spillway;
using namespace spillway::testing;

void OpenAiSdkTest::officialSdkWorksUnmodified() {
  const QString node = QStandardPaths::findExecutable("node");
  const QString sdk_dir = QString(SPILLWAY_SOURCE_DIR) + "/tests/sdk";
  QVERIFY2(!node.isEmpty(), "node is installed by installer/debian-deps.sh");
  QVERIFY2(QFile::exists(sdk_dir + "/node_modules/openai/package.json"),
           "the SDK is installed by installer/sdk-deps.sh (make test runs it)");
  auto engine = Engine::start(configFromYaml(engineYaml(R"(  - name: sim-a
    url: sim://a
    models: [spillway-small]
    sim: {profile: instant, min_output_tokens: 10, max_output_tokens: 10}
  - name: sim-b
    url: sim://b
    models: [spillway-small]
    sim: {profile: fast}
)",
                                                        "limits:\n  keys:\n    - {name: limited, sha256: " +
                                                            common::sha256Hex("sk-sdk-limited") +
                                                            ", limits: {requests_per_minute: 1}}\n    - {name: patient, "
                                                            "sha256: " +
                                                            common::sha256Hex("sk-sdk-patient") +
                                                            ", limits: {requests_per_second: 1}}\n")));
  QVERIFY(engine.ok());
  // A second engine that requires keys and whose only backend is drained:
  // 401 for a missing or unknown key, 503 no_backend for a known one.
  auto strict = Engine::start(configFromYaml(engineYaml(R"(  - name: sim-a
    url: sim://a
    models: [spillway-small]
    sim: {profile: instant}
)",
                                                        "limits:\n  require_key: true\n  keys:\n    - {name: strict, sha256: " +
                                                            common::sha256Hex("sk-sdk-strict") + "}\n")));
  QVERIFY(strict.ok());
  QVERIFY((*strict)->setBackendDrained("sim-a", true, "test").ok());
  QProcess p;
  p.setWorkingDirectory(sdk_dir);
  p.setProcessChannelMode(QProcess::MergedChannels);
  p.start(node, {"check.mjs", QString::fromStdString((*engine)->url()), "spillway-small",
                 QString::fromStdString((*strict)->url())});
  QVERIFY(p.waitForFinished(60000));
  const QString out = p.readAll();
  qInfo().noquote() << out;
  QCOMPARE(p.exitCode(), 0);
  QVERIFY(out.contains("all SDK checks passed"));
  // Two refusals at least: the limited key's, and the patient key's first try.
  QVERIFY((*engine)->admission().rate_limited >= 2);
}

QTEST_APPLESS_MAIN(OpenAiSdkTest)

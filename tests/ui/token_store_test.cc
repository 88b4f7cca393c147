#include "token_store_test.h"

#include <QtTest>

#include <QFile>
#include <QTemporaryDir>

#include "ui/token_store.h"

using spillway::ui::TokenStore;

void TokenStoreTest::fileStoreIsPrivateToTheUser() {
  QTemporaryDir dir;
  TokenStore store(dir.filePath("sub/tokens.json"), /*use_keyring=*/false);
  QCOMPARE(store.save("east", "tok-east"), TokenStore::Where::kFile);
  QCOMPARE(store.save("west", "tok-west"), TokenStore::Where::kFile);
  QFile f(store.file());
  QVERIFY(f.exists());
  QCOMPARE(f.permissions() & (QFile::ReadGroup | QFile::ReadOther | QFile::WriteGroup | QFile::WriteOther),
           QFileDevice::Permissions());
  QCOMPARE(store.load("east"), "tok-east");
  store.remove("east");
  QCOMPARE(store.load("east"), "");
  QCOMPARE(store.load("west"), "tok-west");
}

void TokenStoreTest::withoutAKeyringTokensGoToTheFile() {
  if (qEnvironmentVariableIsSet("SPILLWAY_TEST_KEYRING")) QSKIP("a keyring is running here");
  // No Secret Service can answer on a bus that does not exist.
  QTemporaryDir dir;
  qputenv("DBUS_SESSION_BUS_ADDRESS", QString("unix:path=%1/no-bus").arg(dir.path()).toUtf8());
  TokenStore store(dir.filePath("tokens.json"));
  QCOMPARE(store.save("east", "tok-east"), TokenStore::Where::kFile);
  QCOMPARE(store.load("east"), "tok-east");
  QVERIFY(QFile::exists(store.file()));
}

void TokenStoreTest::keyringKeepsTokensOutOfTheFile() {
  if (!qEnvironmentVariableIsSet("SPILLWAY_TEST_KEYRING")) QSKIP("runs under tests/ui/with_keyring.sh");
  QTemporaryDir dir;
  // A token that was in the file before the keyring was available moves out of it.
  TokenStore file_only(dir.filePath("tokens.json"), false);
  file_only.save("east", "old");
  TokenStore store(dir.filePath("tokens.json"));
  QCOMPARE(store.save("east", "tok-east"), TokenStore::Where::kKeyring);
  QCOMPARE(store.load("east"), "tok-east");
  QCOMPARE(file_only.load("east"), "");  // not in the file any more
  store.remove("east");
  QCOMPARE(store.load("east"), "");
}

QTEST_GUILESS_MAIN(TokenStoreTest)

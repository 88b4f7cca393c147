#include "ui/token_store.h"

#include <qt6keychain/keychain.h>

#include <QDir>
#include <atomic>
#include <QEventLoop>
#include <QFile>
#include <QFileInfo>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTimer>

namespace spillway::ui {

namespace {

constexpr const char* kService = "spillway-fleet";

// Set once a keyring is found missing (no service, or no answer in time), so
// later calls in this process go straight to the file instead of waiting again.
std::atomic<bool> keyring_missing{false};

// Runs a keyring job to completion (at most 5 s); true when it succeeded.
bool run(QKeychain::Job& job) {
  if (keyring_missing.load()) return false;
  job.setAutoDelete(false);
  bool finished = false;
  QEventLoop loop;
  QObject::connect(&job, &QKeychain::Job::finished, &loop, [&] {
    finished = true;
    loop.quit();
  });
  QTimer::singleShot(5000, &loop, &QEventLoop::quit);
  job.start();
  if (!finished) loop.exec(QEventLoop::ExcludeUserInputEvents);
  if (!finished || job.error() == QKeychain::NoBackendAvailable || job.error() == QKeychain::NotImplemented) {
    keyring_missing = true;
  }
  return finished && job.error() == QKeychain::NoError;
}

QJsonObject readFile(const QString& path) {
  QFile f(path);
  if (!f.open(QIODevice::ReadOnly)) return {};
  return QJsonDocument::fromJson(f.readAll()).object();
}

void writeFile(const QString& path, const QJsonObject& tokens) {
  QDir().mkpath(QFileInfo(path).path());
  QFile f(path);
  // Restrict before writing, so a token never sits in a readable file.
  if (!f.open(QIODevice::WriteOnly | QIODevice::Truncate)) return;
  f.setPermissions(QFile::ReadOwner | QFile::WriteOwner);
  f.write(QJsonDocument(tokens).toJson());
}

}  // namespace

TokenStore::TokenStore(QString file, bool use_keyring) : file_(std::move(file)), use_keyring_(use_keyring) {}

TokenStore::Where TokenStore::save(const QString& name, const QString& token) {
  QJsonObject tokens = readFile(file_);
  if (use_keyring_) {
    QKeychain::WritePasswordJob job(kService);
    job.setKey(name);
    job.setTextData(token);
    if (run(job)) {
      if (tokens.contains(name)) {
        tokens.remove(name);
        writeFile(file_, tokens);
      }
      return Where::kKeyring;
    }
  }
  tokens.insert(name, token);
  writeFile(file_, tokens);
  return Where::kFile;
}

QString TokenStore::load(const QString& name) const {
  if (use_keyring_) {
    QKeychain::ReadPasswordJob job(kService);
    job.setKey(name);
    if (run(job)) return job.textData();
  }
  return readFile(file_).value(name).toString();
}

void TokenStore::remove(const QString& name) {
  if (use_keyring_) {
    QKeychain::DeletePasswordJob job(kService);
    job.setKey(name);
    run(job);
  }
  QJsonObject tokens = readFile(file_);
  if (tokens.contains(name)) {
    tokens.remove(name);
    writeFile(file_, tokens);
  }
}

}  // namespace spillway::ui

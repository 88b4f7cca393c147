// The SQLite store: migrations, config versions, audit log, metrics and
// usage rollups and retention, and crash safety under kill -9.
// The test class is declared here so that moc reads only this header: its
// lexer does not understand raw string literals, which the fixtures use.
#pragma once

#include <QObject>

class StoreTest : public QObject {
  Q_OBJECT
 private slots:
  void migratesAFreshFileAndReopens();
  void refusesANewerSchema();
  void configVersionsAndActivation();
  void auditLogFilters();
  void metricsRollUpAndStayBounded();
  void queriesPickTheRightResolution();
  void usageAddsUpAcrossResolutionsAndRestarts();
  void survivesKill9DuringWrites();
};

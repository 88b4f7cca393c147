// Config loading: YAML mapped onto the schema, every validation error with
// its field path and file:line:column, defaults, and the embedded default.
// The test class is declared here so that moc reads only this header: its
// lexer does not understand raw string literals, which the fixtures use.
#pragma once

#include <QObject>

class ConfigLoaderTest : public QObject {
  Q_OBJECT
 private slots:
  void loadsValidConfig();
  void embeddedDefaultIsValid();
  void reportsFieldPathAndPosition();
  void reportsEveryErrorAtOnce();
  void unknownKeySuggestsTheNearestField();
  void unknownKeyWithoutNearMatchListsFields();
  void typeErrors();
  void yamlSyntaxErrorIsLocated();
  void rangeChecks();
  void everyTimeoutIsBounded();
  void poolMustNameBackendsThatServeTheModel();
  void controlSectionIsValidated();
  void balancingAndResilienceAreValidated();
  void routesAndEndpointsAreValidated();
  void defaultsFillEveryZeroField();
  void apiKeyFromEnvironmentWins();
  void missingFileIsOneClearError();
  void loadsFromFile();
  void everyFieldIsDocumented();
};

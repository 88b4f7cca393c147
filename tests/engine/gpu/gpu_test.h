// The GPU core without a GPU: the MIG catalog and placement rules, both
// `nvidia-smi -L` forms (with malformed input), the NVML reader against a
// fake libnvidia-ml.so.1 built beside the test (missing library, missing
// symbol, NOT_SUPPORTED answers), instance selectors, and the layout
// planner (the article's A100 case; a property test that every layout it
// emits keeps the rules and that it finds its own score's optimum, checked
// against brute force).
#pragma once

#include <QObject>

class GpuTest : public QObject {
  Q_OBJECT
 private slots:
  void catalogKnowsTheModelsAndTheirDriverNames();
  void layoutRulesRejectBadPlacements();
  void firstFitPlacesLargerFirstAndSaysWhatDoesNotFit();
  void parsesNvidiaSmiNewAndOldForms();
  void nvidiaSmiMalformedLinesAreErrorsWithLineNumbers();
  void nvmlReadsGpusAndMigDevicesFromTheFake();
  void nvmlProfileTableMatchesTheCatalog();
  void nvmlNotSupportedAnswersAreUnknownNotErrors();
  void nvmlMissingLibrarySymbolOrDriverIsSaidPlainly();
  void selectorsMatchUuidIndexProfileAndName();
  void plannerPrintsTheArticleLayout();
  void plannerLayoutsAreValidAndOptimalForRandomMixes();
  void plannerRefusesDemandsThatCannotFit();
  void parsesDemandAndGpuArguments();
};

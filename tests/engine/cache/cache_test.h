// The cache's parts on their own: key canonicalisation, the memory tier's
// TTL and byte budget (injected clock), the SQLite tier across a reopen
// with its Bloom filter rebuilt (no false negatives), expiry and size cap,
// purges, replay between JSON and SSE, and the Redis tier against a real
// redis-server, killed and restarted.
#pragma once

#include <QObject>

class CacheTest : public QObject {
  Q_OBJECT
 private slots:
  void keyIgnoresOrderWhitespaceAndNumberSpelling();
  void keyAppliesOpenAiDefaults();
  void keyChangesWithEveryParameterThatChangesTheAnswer();
  void keyChangesWithScope();
  void embeddingInputsAreKeyedOneByOne();
  void memoryTierServesFreshThenStaleThenNothing();
  void memoryTierEvictsLeastRecentlyUsedBeyondBudget();
  void memoryTierPurgesByModelAndTenant();
  void diskTierSurvivesReopenWithoutFalseNegatives();
  void diskTierExpiresAndKeepsToItsSizeCap();
  void diskTierPurgeRebuildsTheBloomFilter();
  void bloomFilterFalsePositiveRateNearTarget();
  void replayTurnsJsonIntoAnEquivalentStream();
  void replayTurnsAStreamIntoJsonWithToolCalls();
  void replayLeavesOutUsageUnlessAsked();
  void coalescerHasOneLeaderPerKey();
  void redisTierSharesEntriesAndSurvivesARestart();
};

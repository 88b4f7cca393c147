// The access log, trace context, usage per tenant (counters, the SQLite
// history, the event ring) through a real engine: each line's
// fields against requests whose outcome the test knows, a full queue that
// drops instead of waiting, the reopen logrotate needs, and the trace
// context a stub upstream receives.
// The test class is declared here so that moc reads only this header: its
// lexer does not understand raw string literals, which the fixtures use.
#pragma once

#include <QObject>

class AccessLogTest : public QObject {
  Q_OBJECT
 private slots:
  void linesSayWhatHappened();
  void usagePerTenantMatchesWhatClientsCounted();
  void usageHistoryAndEventsOutliveARestart();
  void textFormatAndSampling();
  void aFullQueueDropsAndNeverWaits();
  void reopenFollowsLogrotate();
  void traceContextReachesTheUpstream();
};

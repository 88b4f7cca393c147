// The Responses API's owner map and the sink that learns from answers,
// without sockets: split reads, usage, the first output delta, bounds.
#pragma once

#include <QObject>

class ResponseAffinityTest : public QObject {
  Q_OBJECT
 private slots:
  void streamIsReadAcrossSplitReads();
  void jsonAnswerNamesItsOwnerAndDeleteForgets();
  void ownersExpireAndAreBounded();
};

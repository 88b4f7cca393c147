// A backend that misbehaves on purpose, on a real loopback socket: it
// hangs before the first byte, stops mid-stream, answers something that is
// not HTTP, sends a 10 MB header, or an endless body (cut at
// upstream.max_response_bytes). The client sees an OpenAI-style error
// (or, mid-stream, an SSE error event) within the configured timeout — never
// a hang, never a crash — and the gateway keeps serving.
#pragma once

#include <QObject>

class UpstreamFaultsTest : public QObject {
  Q_OBJECT
 private slots:
  void hangBeforeTheFirstByteIsA504();
  void hangMidStreamEndsWithAnErrorEvent();
  void invalidHttpIsA502();
  void tenMegabyteHeaderIsA502();
  void endlessStreamIsCutWithAnErrorEvent();
  void endlessBodyEndsBrokenNeverComplete();
  void announcedHugeBodyIsA502();
};

// The access log: one line per request when it completes, for the operator
// asking "who sent this, to which model, and what happened to it?".
//
// AccessLog is the writer, one per engine (it outlives config applies): a
// bounded queue and a thread that writes batches to a file (appended; "-"
// is stdout, what container log collectors read) every 100 ms, or as soon
// as 4,096 lines wait: a request costs its line's formatting and a queue
// push, not a thread wake-up or a write. A full queue drops the
// line and counts it (spillway_access_log_dropped_total): a request never
// waits for the disk. reopen() (SIGUSR1) closes and reopens the file after
// logrotate moved it.
//
// AccessLogObserver is the completion observer the routing snapshot holds
// when access_log.path is set: it formats the request's line (JSON, or
// logfmt with format: text) on the request's thread and hands it over.
// access_log.sample_successes logs that share of 2xx/3xx answers; errors,
// sheds and degraded answers are always logged. Fields: docs/operations.md.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <memory>
#include <string>
#include <thread>

#include "common/mutex.h"
#include "metrics/registry.h"
#include "pipeline/completion.h"

namespace spillway::observe {

class AccessLog {
 public:
  explicit AccessLog(metrics::Registry& registry);
  ~AccessLog();  // writes what is queued, then stops
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  // Where lines go ("" : nowhere; "-" : stdout) and how many may wait. A new
  // path is opened at once (an error is logged and lines are dropped until
  // a reopen succeeds).
  void configure(const std::string& path, size_t max_queued);
  // Queues one line (without its newline); false when it was dropped.
  bool push(std::string line);
  // Reopens the file (SIGUSR1, after logrotate).
  void reopen();
  // Blocks until every line queued so far is written (tests, shutdown).
  void flush();

  uint64_t written() const { return written_.value(); }
  uint64_t dropped() const { return dropped_.value(); }

 private:
  void run();
  void openLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  common::Mutex mu_;
  common::CondVar wake_;     // lines queued, a reopen, stop
  common::CondVar drained_;  // the queue went empty
  std::deque<std::string> queue_ ABSL_GUARDED_BY(mu_);
  size_t max_queued_ ABSL_GUARDED_BY(mu_) = 65536;
  std::string path_ ABSL_GUARDED_BY(mu_);
  std::FILE* file_ ABSL_GUARDED_BY(mu_) = nullptr;  // stdout for "-"
  bool reopen_ ABSL_GUARDED_BY(mu_) = false;
  bool flush_ ABSL_GUARDED_BY(mu_) = false;    // flush() waits: write now
  bool writing_ ABSL_GUARDED_BY(mu_) = false;  // a batch is out of the queue, not yet written
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  metrics::Counter& written_;
  metrics::Counter& dropped_;
  std::thread thread_;
};

struct AccessLogFormat {
  bool json = true;              // else logfmt ("text")
  double sample_successes = 1;   // share of 2xx/3xx logged
};

class AccessLogObserver final : public pipeline::CompletionObserver {
 public:
  AccessLogObserver(std::shared_ptr<AccessLog> log, AccessLogFormat format)
      : log_(std::move(log)), format_(format) {}
  void onComplete(const pipeline::RequestContext& ctx) override;

 private:
  std::shared_ptr<AccessLog> log_;
  const AccessLogFormat format_;
};

// The line for one request (no newline), as the observer writes it.
std::string accessLogLine(const pipeline::RequestContext& ctx, bool json);

}  // namespace spillway::observe

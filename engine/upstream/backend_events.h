// A bounded log of what happened to backends without an operator: automatic
// ejections and their return, back-offs after 429/503, connect failures that
// took one out. The console lists them; the newest `capacity` are kept.
// Thread-safe (a mutex, taken only when something happens and by readers).
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "common/mutex.h"

namespace spillway::upstream {

struct BackendEvent {
  int64_t ts_ms = 0;    // wall clock
  std::string backend;
  std::string kind;     // "ejected", "backed_off"
  std::string reason;   // e.g. "5 failures in a row (last: answered HTTP 500)"
  int64_t until_ms = 0; // when it returns
};

class BackendEvents {
 public:
  explicit BackendEvents(size_t capacity = 256) : capacity_(capacity) {}
  void add(BackendEvent e) {
    common::MutexLock lock(mu_);
    events_.push_back(std::move(e));
    while (events_.size() > capacity_) events_.pop_front();
  }
  // Oldest first.
  std::vector<BackendEvent> list() const {
    common::MutexLock lock(mu_);
    return {events_.begin(), events_.end()};
  }

 private:
  const size_t capacity_;
  mutable common::Mutex mu_;
  std::deque<BackendEvent> events_ ABSL_GUARDED_BY(mu_);
};

}  // namespace spillway::upstream

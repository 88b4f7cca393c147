// Coalescing: identical cacheable requests in flight together share one
// upstream call. The first (the leader) goes upstream; its answer is copied
// into a Flight as it arrives, and every later caller of the same key (a
// waiter) reads the Flight at its own pace — live, chunk by chunk, when it
// asked for the same form as the leader (stream or not, usage or not), or
// replayed in its own form once the answer is complete.
//
// The Flight keeps the whole answer (it is stored in the cache anyway), up
// to cache.max_entry_bytes: the upstream is never slowed by a waiter, and a
// slow waiter only lags on its own copy. An answer that grows past the cap,
// an error, or a leader that fails ends the flight as failed: waiters that
// have not sent anything yet go upstream themselves (one of them leads
// again); those already streaming end their stream with an SSE error
// event. No waiter hangs: each wait is bounded by the request's deadline.
//
// Thread-safe: leader and waiters run on different worker threads; a waiter
// is woken by cancelling its own timer on its own executor.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "cache/cache_key.h"
#include "cache/replay.h"
#include "common/asio_types.h"
#include "common/mutex.h"

namespace spillway::cache {

class Flight {
 public:
  enum class State { kRunning, kDone, kFailed };

  Flight(Wanted leader_form, size_t max_bytes) : form_(leader_form), max_bytes_(max_bytes) {}

  // --- the leader's side --------------------------------------------------
  void begin(std::string_view content_type);
  // False when the answer grew past the cap (the flight failed).
  bool append(std::string_view bytes);
  void finish();
  void fail();

  // --- a waiter's side ----------------------------------------------------
  const Wanted& form() const { return form_; }
  struct View {
    State state = State::kRunning;
    bool began = false;
    std::string content_type;
    std::string bytes;  // data[from, ...)
  };
  // What arrived after `from`, waiting until something did, the flight
  // ended, or `deadline` passed (then state kRunning with no bytes).
  common::Awaitable<View> next(size_t from, std::chrono::steady_clock::time_point deadline);
  State state() const;
  size_t waiters() const;
  void addWaiter();

 private:
  void wakeLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Wanted form_;
  const size_t max_bytes_;
  mutable common::Mutex mu_;
  State state_ ABSL_GUARDED_BY(mu_) = State::kRunning;
  bool began_ ABSL_GUARDED_BY(mu_) = false;
  std::string content_type_ ABSL_GUARDED_BY(mu_);
  std::string data_ ABSL_GUARDED_BY(mu_);
  size_t waiters_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::shared_ptr<common::SteadyTimer>> sleeping_ ABSL_GUARDED_BY(mu_);
};

using FlightPtr = std::shared_ptr<Flight>;

class Coalescer {
 public:
  struct Joined {
    FlightPtr flight;
    bool leader = false;
  };
  // The flight for `key`: a new one led by the caller, or the one in the air.
  Joined join(const CacheKey& key, const Wanted& form, size_t max_bytes);
  // The leader is done with `flight` (ended, or never began: then failed).
  void leave(const CacheKey& key, const FlightPtr& flight);
  size_t inFlight() const;

 private:
  mutable common::Mutex mu_;
  std::unordered_map<CacheKey, FlightPtr, CacheKeyHash> flights_ ABSL_GUARDED_BY(mu_);
};

}  // namespace spillway::cache

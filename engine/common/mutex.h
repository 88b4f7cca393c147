// The engine's mutex, lock and condition variable: std::mutex and
// std::condition_variable with the annotations clang's thread-safety
// analysis checks (-Wthread-safety; tests/thread_safety). Shared state says
// which mutex guards it with ABSL_GUARDED_BY(mu_), and functions that
// expect a lock held say ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_): the compiler
// checks what comments used to promise. GCC ignores the annotations; the
// code is the same std::mutex underneath.
//
//   common::Mutex mu_;
//   int count_ ABSL_GUARDED_BY(mu_) = 0;
//   void bump() { common::MutexLock lock(mu_); ++count_; }
//
// A wait predicate runs under the lock but is a lambda of its own to the
// analysis: it says so with mu_.assertHeld().
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "absl/base/thread_annotations.h"

namespace spillway::common {

class ABSL_LOCKABLE Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }
  bool tryLock() ABSL_EXCLUSIVE_TRYLOCK_FUNCTION(true) { return mu_.try_lock(); }
  // Tells the analysis that the caller holds this mutex (wait predicates).
  void assertHeld() const ABSL_ASSERT_EXCLUSIVE_LOCK() {}

 private:
  friend class MutexLock;
  std::mutex mu_;
};

// Holds a Mutex for its scope; unlock() and lock() drop and retake it in
// the middle (around work that must not hold it).
class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex& mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : lock_(mu.mu_) {}
  ~MutexLock() ABSL_UNLOCK_FUNCTION() {}
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

  void unlock() ABSL_UNLOCK_FUNCTION() { lock_.unlock(); }
  void lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { lock_.lock(); }

 private:
  friend class CondVar;
  std::unique_lock<std::mutex> lock_;
};

// std::condition_variable over a MutexLock.
class CondVar {
 public:
  void notify_one() { cv_.notify_one(); }
  void notify_all() { cv_.notify_all(); }
  template <typename Predicate>
  void wait(MutexLock& lock, Predicate done) {
    cv_.wait(lock.lock_, done);
  }
  // True when `done` holds (false: the time ran out first).
  template <typename Rep, typename Period, typename Predicate>
  bool wait_for(MutexLock& lock, std::chrono::duration<Rep, Period> timeout, Predicate done) {
    return cv_.wait_for(lock.lock_, timeout, done);
  }

 private:
  std::condition_variable cv_;
};

}  // namespace spillway::common

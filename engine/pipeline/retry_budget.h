// A pool's retry budget (Envoy's retry budgets, Finagle's RetryBudget):
// retries in progress may be at most `percent` of the pool's active
// requests, or `min_retries`, whichever is more — so a failing fleet is
// not hit with a multiple of its load. Thread-safe, lock-free.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>

namespace spillway::pipeline {

class RetryBudget {
 public:
  RetryBudget(uint32_t percent, uint32_t min_retries) : percent_(percent), min_(min_retries) {}

  // A request enters / leaves the pool.
  void requestStarted() { active_.fetch_add(1, std::memory_order_relaxed); }
  void requestEnded() { active_.fetch_sub(1, std::memory_order_relaxed); }

  // Reserves a retry; false when the budget is spent. A true must be
  // matched by retryEnded().
  bool tryStartRetry() {
    const int64_t active = active_.load(std::memory_order_relaxed);
    const int64_t limit = std::max<int64_t>(min_, active * percent_ / 100);
    int64_t cur = retries_.load(std::memory_order_relaxed);
    do {
      if (cur >= limit) return false;
    } while (!retries_.compare_exchange_weak(cur, cur + 1, std::memory_order_relaxed));
    return true;
  }
  void retryEnded() { retries_.fetch_sub(1, std::memory_order_relaxed); }

  int64_t active() const { return active_.load(std::memory_order_relaxed); }
  int64_t retries() const { return retries_.load(std::memory_order_relaxed); }

 private:
  const uint32_t percent_;
  const uint32_t min_;
  std::atomic<int64_t> active_{0};
  std::atomic<int64_t> retries_{0};

 public:
  // One request in the pool for as long as it lives, and the retry it
  // holds (at most one at a time).
  class Scope {
   public:
    explicit Scope(RetryBudget& b) : b_(b) { b_.requestStarted(); }
    ~Scope() {
      if (retrying_) b_.retryEnded();
      b_.requestEnded();
    }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;
    // Reserves a retry (ending the previous one); false when the budget is spent.
    bool startRetry() {
      if (retrying_) b_.retryEnded();
      retrying_ = b_.tryStartRetry();
      return retrying_;
    }

   private:
    RetryBudget& b_;
    bool retrying_ = false;
  };
};

}  // namespace spillway::pipeline

// One thread running queued tasks in order — the home of a tier's
// connection (SQLite, Redis), so the request path never blocks on it. The
// queue is bounded for work that may be skipped (a slow tier is skipped and
// counted, never waited on); `every` runs between tasks at most once per
// period and when idle that long (maintenance). Thread-safe.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <future>
#include <thread>

#include "common/mutex.h"

namespace spillway::cache {

class TaskThread {
 public:
  explicit TaskThread(size_t max_pending, std::chrono::milliseconds period = std::chrono::minutes(1),
                      std::function<void()> every = {});
  ~TaskThread();  // runs what is queued, then joins
  TaskThread(const TaskThread&) = delete;
  TaskThread& operator=(const TaskThread&) = delete;

  // Queues a task; a droppable one is refused (false) when the queue is full.
  bool post(std::function<void()> task, bool droppable);
  // Runs `f` on the thread and waits for its result.
  template <typename F>
  auto call(F f) -> decltype(f()) {
    std::packaged_task<decltype(f())()> task(std::move(f));
    auto result = task.get_future();
    auto shared = std::make_shared<decltype(task)>(std::move(task));
    post([shared] { (*shared)(); }, false);
    return result.get();
  }
  size_t pending() const;

 private:
  void run();

  const size_t max_pending_;
  const std::chrono::milliseconds period_;
  std::function<void()> every_;
  mutable common::Mutex mu_;
  common::CondVar cv_;
  std::deque<std::function<void()>> tasks_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace spillway::cache

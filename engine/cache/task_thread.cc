#include "cache/task_thread.h"
#include "common/mutex.h"

namespace spillway::cache {

TaskThread::TaskThread(size_t max_pending, std::chrono::milliseconds period, std::function<void()> every)
    : max_pending_(max_pending), period_(period), every_(std::move(every)), thread_([this] { run(); }) {}

TaskThread::~TaskThread() {
  {
    common::MutexLock lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

bool TaskThread::post(std::function<void()> task, bool droppable) {
  {
    common::MutexLock lock(mu_);
    if (droppable && tasks_.size() >= max_pending_) return false;
    tasks_.push_back(std::move(task));
  }
  cv_.notify_one();
  return true;
}

size_t TaskThread::pending() const {
  common::MutexLock lock(mu_);
  return tasks_.size();
}

void TaskThread::run() {
  auto last = std::chrono::steady_clock::now();
  for (;;) {
    std::function<void()> task;
    {
      common::MutexLock lock(mu_);
      cv_.wait_for(lock, period_, [&] {
        mu_.assertHeld();
        return stop_ || !tasks_.empty();
      });
      if (!tasks_.empty()) {
        task = std::move(tasks_.front());
        tasks_.pop_front();
      } else if (stop_) {
        return;  // tasks queued before the stop ran first: no waiter is left hanging
      }
    }
    if (task) task();
    if (every_ && std::chrono::steady_clock::now() - last >= period_) {
      last = std::chrono::steady_clock::now();
      every_();
    }
  }
}

}  // namespace spillway::cache

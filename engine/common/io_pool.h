// A fixed set of worker threads, each running its own io_context. Work that
// belongs to one connection stays on one thread, so per-connection and
// per-worker state (upstream connection pools, metric shards) needs no locks.
#pragma once

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <memory>
#include <thread>
#include <vector>

namespace spillway::common {

class IoPool {
 public:
  // threads == 0 means one per hardware thread.
  explicit IoPool(unsigned threads);
  ~IoPool();  // stops and joins
  IoPool(const IoPool&) = delete;
  IoPool& operator=(const IoPool&) = delete;

  void start();
  // Stops every io_context (pending handlers are abandoned) and joins.
  void stop();

  // Destruction shuts down every context's services before destroying any
  // context: a pending coroutine on one context may own an I/O object of
  // another (an acceptor on context 0 kept alive by a session on context 1),
  // and that object must die while its own context still exists.

  size_t size() const { return contexts_.size(); }
  boost::asio::io_context& context(size_t i) { return *contexts_[i]; }
  // Round-robin choice of a context for a new connection. Thread-safe.
  size_t nextIndex();

 private:
  // io_context with its protected shutdown() reachable.
  class Context : public boost::asio::io_context {
   public:
    using io_context::io_context;
    void shutdownServices() { shutdown(); }
  };
  using Guard = boost::asio::executor_work_guard<boost::asio::io_context::executor_type>;
  std::vector<std::unique_ptr<Context>> contexts_;
  std::vector<Guard> guards_;
  std::vector<std::thread> threads_;
  std::atomic<size_t> next_{0};
};

}  // namespace spillway::common

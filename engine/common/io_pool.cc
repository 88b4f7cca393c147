#include "common/io_pool.h"

namespace spillway::common {

IoPool::IoPool(unsigned threads) {
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  for (unsigned i = 0; i < threads; ++i) {
    contexts_.push_back(std::make_unique<Context>(1));
  }
}

IoPool::~IoPool() {
  stop();
  for (auto& ctx : contexts_) ctx->shutdownServices();  // destroys pending handlers
  contexts_.clear();
}

void IoPool::start() {
  if (!threads_.empty()) return;
  for (auto& ctx : contexts_) {
    guards_.emplace_back(ctx->get_executor());
    threads_.emplace_back([c = ctx.get()] { c->run(); });
  }
}

void IoPool::stop() {
  guards_.clear();
  for (auto& ctx : contexts_) ctx->stop();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

size_t IoPool::nextIndex() { return next_.fetch_add(1, std::memory_order_relaxed) % contexts_.size(); }

}  // namespace spillway::common

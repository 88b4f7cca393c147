#include "cache/coalescer.h"
#include "common/mutex.h"

#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>

namespace spillway::cache {

void Flight::wakeLocked() {
  for (auto& t : sleeping_) {
    boost::asio::post(t->get_executor(), [t] { t->cancel(); });
  }
  sleeping_.clear();
}

void Flight::begin(std::string_view content_type) {
  common::MutexLock lock(mu_);
  began_ = true;
  content_type_ = std::string(content_type);
  wakeLocked();
}

bool Flight::append(std::string_view bytes) {
  common::MutexLock lock(mu_);
  if (state_ != State::kRunning) return false;
  if (data_.size() + bytes.size() > max_bytes_) {
    state_ = State::kFailed;
    data_.clear();
    data_.shrink_to_fit();
    wakeLocked();
    return false;
  }
  data_.append(bytes);
  wakeLocked();
  return true;
}

void Flight::finish() {
  common::MutexLock lock(mu_);
  if (state_ == State::kRunning) state_ = State::kDone;
  wakeLocked();
}

void Flight::fail() {
  common::MutexLock lock(mu_);
  if (state_ == State::kRunning) state_ = State::kFailed;
  wakeLocked();
}

Flight::State Flight::state() const {
  common::MutexLock lock(mu_);
  return state_;
}

size_t Flight::waiters() const {
  common::MutexLock lock(mu_);
  return waiters_;
}

void Flight::addWaiter() {
  common::MutexLock lock(mu_);
  ++waiters_;
}

common::Awaitable<Flight::View> Flight::next(size_t from, std::chrono::steady_clock::time_point deadline) {
  auto timer = std::make_shared<common::SteadyTimer>(co_await boost::asio::this_coro::executor);
  for (;;) {
    {
      common::MutexLock lock(mu_);
      if (state_ != State::kRunning || data_.size() > from || std::chrono::steady_clock::now() >= deadline) {
        View v;
        v.state = state_;
        v.began = began_;
        v.content_type = content_type_;
        if (state_ != State::kFailed && data_.size() > from) v.bytes = data_.substr(from);
        co_return v;
      }
      sleeping_.push_back(timer);
    }
    // Woken by a cancel posted to this executor: it runs only after this
    // coroutine suspends below, so a wake-up between unlock and wait is
    // not lost.
    timer->expires_at(deadline);
    boost::system::error_code ec;
    co_await timer->async_wait(boost::asio::redirect_error(common::kUseAwaitable, ec));
  }
}

Coalescer::Joined Coalescer::join(const CacheKey& key, const Wanted& form, size_t max_bytes) {
  common::MutexLock lock(mu_);
  auto& slot = flights_[key];
  if (slot && slot->state() == Flight::State::kRunning) {
    slot->addWaiter();
    return {slot, false};
  }
  slot = std::make_shared<Flight>(form, max_bytes);
  return {slot, true};
}

void Coalescer::leave(const CacheKey& key, const FlightPtr& flight) {
  flight->fail();  // no-op when it finished
  common::MutexLock lock(mu_);
  auto it = flights_.find(key);
  if (it != flights_.end() && it->second == flight) flights_.erase(it);
}

size_t Coalescer::inFlight() const {
  common::MutexLock lock(mu_);
  return flights_.size();
}

}  // namespace spillway::cache

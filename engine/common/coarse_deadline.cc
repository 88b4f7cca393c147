#include "common/coarse_deadline.h"


namespace spillway::common {

namespace net = boost::asio;

CoarseDeadline::CoarseDeadline(TcpSocket& socket)
    : socket_(socket), sweeper_(net::use_service<DeadlineSweeper>(socket.get_executor().context())) {}

CoarseDeadline::~CoarseDeadline() { disarm(); }

void CoarseDeadline::expiresAfter(std::chrono::steady_clock::duration d) {
  fired_ = false;
  sweeper_.arm(*this, Clock::now() + d);
}

void CoarseDeadline::disarm() {
  if (listed_) sweeper_.unlink(*this);
}

DeadlineSweeper::DeadlineSweeper(net::execution_context& ctx)
    : service(ctx), io_(static_cast<net::io_context&>(ctx)), timer_(io_.get_executor()) {}

DeadlineSweeper::~DeadlineSweeper() = default;

size_t DeadlineSweeper::armed() const { return armed_; }

void DeadlineSweeper::shutdown() {
  shut_ = true;
  timer_.cancel();
}

void DeadlineSweeper::arm(CoarseDeadline& d, CoarseDeadline::Clock::time_point at) {
  d.at_ = at;
  if (!d.listed_) {
    d.listed_ = true;
    d.prev_ = nullptr;
    d.next_ = head_;
    if (head_) head_->prev_ = &d;
    head_ = &d;
    ++armed_;
  }
  if (!ticking_ && !shut_) startTick();
}

void DeadlineSweeper::unlink(CoarseDeadline& d) {
  if (d.prev_) d.prev_->next_ = d.next_;
  else head_ = d.next_;
  if (d.next_) d.next_->prev_ = d.prev_;
  d.prev_ = d.next_ = nullptr;
  d.listed_ = false;
  --armed_;
}

void DeadlineSweeper::startTick() {
  ticking_ = true;
  timer_.expires_after(CoarseDeadline::kTick);
  timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) tick();
  });
}

void DeadlineSweeper::tick() {
  ticking_ = false;
  if (shut_) return;
  const auto now = CoarseDeadline::Clock::now();
  for (CoarseDeadline* d = head_; d;) {
    CoarseDeadline* next = d->next_;
    if (d->at_ <= now) {
      unlink(*d);
      d->fired_ = true;
      boost::system::error_code ec;
      d->socket_.cancel(ec);  // completes its pending operations with operation_aborted
    }
    d = next;
  }
  if (head_) startTick();
}

}  // namespace spillway::common

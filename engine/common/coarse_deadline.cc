#include "common/coarse_deadline.h"


namespace spillway::common {

namespace net = boost::asio;

CoarseDeadline::CoarseDeadline(TcpSocket& socket)
    : socket_(&socket), sweeper_(net::use_service<DeadlineSweeper>(socket.get_executor().context())) {}

CoarseDeadline::CoarseDeadline(net::io_context& io, Call fire, Call abandon, void* arg)
    : fire_(fire), abandon_(abandon), arg_(arg), sweeper_(net::use_service<DeadlineSweeper>(io)) {}

CoarseDeadline::~CoarseDeadline() { disarm(); }

void CoarseDeadline::expiresAt(Clock::time_point at) {
  fired_ = false;
  sweeper_.arm(*this, at);
}

void CoarseDeadline::disarm() {
  if (listed_) sweeper_.unlink(*this);
}

DeadlineSweeper::DeadlineSweeper(net::execution_context& ctx)
    : service(ctx), timer_(static_cast<net::io_context&>(ctx).get_executor()) {}

DeadlineSweeper::~DeadlineSweeper() = default;

size_t DeadlineSweeper::armed() const { return armed_; }

void DeadlineSweeper::shutdown() {
  shut_ = true;
  timer_.cancel();
  // From the head each time: an abandoned call may destroy other deadlines
  // (they unlink themselves).
  while (head_) {
    CoarseDeadline* d = head_;
    unlink(*d);
    if (d->abandon_) d->abandon_(d->arg_);
  }
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
      if (d->socket_) {
        boost::system::error_code ec;
        d->socket_->cancel(ec);  // completes its pending operations with operation_aborted
      } else {
        d->fire_(d->arg_);
      }
    }
    d = next;
  }
  if (head_) startTick();
}

}  // namespace spillway::common

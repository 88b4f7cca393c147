// Deadlines for the request path that cost no system call to set. An Asio
// timer per operation costs a timerfd_settime whenever its deadline becomes
// the earliest, and a posted completion (one more trip through the
// scheduler, often an extra epoll_wait) every time it is cancelled — four of
// each per proxied request at one connection (docs/benchmarks.md, "Hot
// path"). Timeouts of seconds do not need that precision: here arming is a
// store, and one timer per io_context ticks every kTick while any deadline
// is armed, cancelling the socket operations of those that passed — so a
// deadline fires up to kTick late.
//
// One io_context, one thread (common::IoPool): a deadline is armed, disarmed
// and destroyed on the thread that runs its socket's io_context (or while
// that io_context is not running), which is also where the tick cancels —
// so the list needs no lock, as the socket itself needs none.
#pragma once

#include <boost/asio/execution_context.hpp>
#include <chrono>

#include "common/asio_types.h"

namespace spillway::common {

class DeadlineSweeper;

class CoarseDeadline {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::milliseconds kTick{100};

  // The socket whose pending operations are cancelled when the deadline
  // passes; it must outlive this object.
  explicit CoarseDeadline(TcpSocket& socket);
  // Or a call: `fire(arg)` when the deadline passes, on the io_context's
  // thread (it must not destroy other deadlines of that io_context: post
  // what might); `abandon(arg)` instead when the io_context shuts down
  // with the deadline armed (already disarmed then; may destroy anything).
  using Call = void (*)(void* arg);
  CoarseDeadline(boost::asio::io_context& io, Call fire, Call abandon, void* arg);
  ~CoarseDeadline();
  CoarseDeadline(const CoarseDeadline&) = delete;
  CoarseDeadline& operator=(const CoarseDeadline&) = delete;

  // (Re)arms: the socket's operations pending after `d` are cancelled
  // (operation_aborted) and fired() turns true. Clears fired().
  void expiresAfter(std::chrono::steady_clock::duration d) { expiresAt(Clock::now() + d); }
  void expiresAt(Clock::time_point at);
  void disarm();
  // Whether the deadline passed since it was last armed: an
  // operation_aborted then means "timed out".
  bool fired() const { return fired_; }
  // What callers of a socket operation it bounds do with its result: an
  // operation_aborted after the deadline passed becomes beast's timeout.
  void nameTimeout(boost::system::error_code& ec) const {
    if (ec == boost::asio::error::operation_aborted && fired_) ec = boost::beast::error::timeout;
  }

 private:
  friend class DeadlineSweeper;
  TcpSocket* socket_ = nullptr;
  Call fire_ = nullptr;
  Call abandon_ = nullptr;
  void* arg_ = nullptr;
  DeadlineSweeper& sweeper_;
  Clock::time_point at_{};
  bool fired_ = false;
  bool listed_ = false;
  CoarseDeadline* prev_ = nullptr;
  CoarseDeadline* next_ = nullptr;
};

// The io_context service behind CoarseDeadline: the armed deadlines (an
// intrusive list) and the tick. At shutdown it disarms every deadline (so
// those destroyed later leave it alone) and abandons the calls'.
class DeadlineSweeper : public boost::asio::execution_context::service {
 public:
  using key_type = DeadlineSweeper;
  static inline boost::asio::execution_context::id id;

  explicit DeadlineSweeper(boost::asio::execution_context& ctx);
  ~DeadlineSweeper() override;

  // Armed deadlines now (tests and metrics).
  size_t armed() const;

 private:
  friend class CoarseDeadline;
  void shutdown() override;
  void arm(CoarseDeadline& d, CoarseDeadline::Clock::time_point at);
  void unlink(CoarseDeadline& d);
  void startTick();
  void tick();

  CoarseDeadline* head_ = nullptr;
  size_t armed_ = 0;
  bool ticking_ = false;
  bool shut_ = false;
  SteadyTimer timer_;
};

}  // namespace spillway::common

#include "coarse_deadline_test.h"

#include <QtTest>

#include <array>
#include <boost/asio/connect.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <memory>
#include <optional>

#include "common/asio_types.h"
#include "common/coarse_deadline.h"

namespace net = boost::asio;
using spillway::common::CoarseDeadline;
using spillway::common::DeadlineSweeper;
using spillway::common::TcpAcceptor;
using spillway::common::TcpSocket;
using namespace std::chrono_literals;

namespace {

// A connected loopback pair: `ours` is read from, `peer` writes.
struct Pair {
  explicit Pair(net::io_context& io) : ours(io.get_executor()), peer(io.get_executor()) {
    TcpAcceptor acceptor(io.get_executor(), {net::ip::make_address("127.0.0.1"), 0});
    peer.connect(acceptor.local_endpoint());
    acceptor.accept(ours);
  }
  TcpSocket ours;
  TcpSocket peer;
};

// A read on `s` whose outcome lands in `result`.
struct Read {
  std::array<char, 16> buf{};
  std::optional<boost::system::error_code> result;
  size_t n = 0;
  void start(TcpSocket& s) {
    s.async_read_some(net::buffer(buf), [this](boost::system::error_code ec, size_t got) {
      result = ec;
      n = got;
    });
  }
};

// Runs handlers until `done` holds (bounded: a hang fails instead of
// blocking the suite).
template <typename Pred>
bool runUntil(net::io_context& io, Pred done) {
  const auto give_up = std::chrono::steady_clock::now() + 30s;
  while (!done()) {
    if (std::chrono::steady_clock::now() > give_up) return false;
    io.run_one_for(100ms);
  }
  return true;
}

}  // namespace

void CoarseDeadlineTest::passedDeadlineCancelsThePendingRead() {
  net::io_context io(1);
  Pair p(io);
  CoarseDeadline deadline(p.ours);
  Read r;
  r.start(p.ours);
  deadline.expiresAfter(20ms);
  QVERIFY(!deadline.fired());
  QCOMPARE(net::use_service<DeadlineSweeper>(io).armed(), size_t{1});
  QVERIFY(runUntil(io, [&] { return r.result.has_value(); }));
  QCOMPARE(*r.result, boost::system::error_code(net::error::operation_aborted));
  QVERIFY(deadline.fired());
  QCOMPARE(net::use_service<DeadlineSweeper>(io).armed(), size_t{0});
  // Nothing armed: the tick stopped, so the io_context runs out of work.
  io.restart();
  io.run_for(5s);
  QVERIFY(io.stopped());
  // Re-arming clears fired().
  deadline.expiresAfter(1h);
  QVERIFY(!deadline.fired());
  deadline.disarm();
}

void CoarseDeadlineTest::disarmedOrPushedBackDeadlineLeavesTheReadAlone() {
  net::io_context io(1);
  Pair a(io), b(io), c(io);
  CoarseDeadline da(a.ours), db(b.ours), dc(c.ours);
  Read ra, rb, rc;
  ra.start(a.ours);
  rb.start(b.ours);
  rc.start(c.ours);
  da.expiresAfter(20ms);
  db.expiresAfter(20ms);
  dc.expiresAfter(20ms);
  db.disarm();
  dc.expiresAfter(1h);  // pushed back before it passed
  // `a`'s deadline passing means the sweeper ran after b's and c's first
  // deadlines too.
  QVERIFY(runUntil(io, [&] { return ra.result.has_value(); }));
  QCOMPARE(*ra.result, boost::system::error_code(net::error::operation_aborted));
  QVERIFY(!rb.result && !rc.result);
  QVERIFY(!db.fired() && !dc.fired());
  // Their reads still work.
  net::write(b.peer, net::buffer("hi", 2));
  net::write(c.peer, net::buffer("yo", 2));
  QVERIFY(runUntil(io, [&] { return rb.result.has_value() && rc.result.has_value(); }));
  QVERIFY(!*rb.result && !*rc.result);
  QCOMPARE(rb.n, size_t{2});
  QCOMPARE(net::use_service<DeadlineSweeper>(io).armed(), size_t{1});  // c's, an hour out
}

void CoarseDeadlineTest::destroyedDeadlineLeavesTheList() {
  net::io_context io(1);
  Pair a(io), b(io);
  auto& sweeper = net::use_service<DeadlineSweeper>(io);
  {
    CoarseDeadline gone(a.ours);
    gone.expiresAfter(10ms);
    QCOMPARE(sweeper.armed(), size_t{1});
  }
  QCOMPARE(sweeper.armed(), size_t{0});
  // The sweeper still works for the others (the list was not left pointing
  // at the destroyed one).
  CoarseDeadline kept(b.ours);
  Read rb;
  rb.start(b.ours);
  kept.expiresAfter(10ms);
  QVERIFY(runUntil(io, [&] { return rb.result.has_value(); }));
  QVERIFY(kept.fired());
}

QTEST_APPLESS_MAIN(CoarseDeadlineTest)

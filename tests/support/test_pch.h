// The precompiled header of the tests that link the whole engine
// (spillway_add_test): what nearly all of them parse — Qt Test, Asio, Beast,
// the config messages. Parsing these was half of each test's compile time
// (README, "Build time"). Only headers from outside the project's sources
// that change rarely belong here: editing one rebuilds every such test.
#pragma once

#include <QObject>
#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>

#include <utility>  // before asio/awaitable.hpp, which uses std::exchange
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

#include <future>
#include <map>
#include <set>
#include <thread>

#include "absl/status/statusor.h"
#include "spillway/v1/config.pb.h"

#include "observe/access_log.h"

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cmath>
#include <chrono>
#include <cstring>
#include <ctime>
#include <random>
#include <vector>

#include "common/clock.h"
#include "common/json_writer.h"
#include "common/strings.h"
#include "pipeline/identify.h"
#include "pipeline/request_context.h"
#include "pipeline/route_table.h"

namespace spillway::observe {

AccessLog::AccessLog(metrics::Registry& registry)
    : written_(registry.counter("spillway_access_log_lines_total",
                                "Access log lines written, by outcome (written; dropped: the writer's queue was full).",
                                {"outcome"})
                   .with({"written"})),
      dropped_(registry.counter("spillway_access_log_lines_total", "", {"outcome"}).with({"dropped"})),
      thread_([this] { run(); }) {}

AccessLog::~AccessLog() {
  {
    common::MutexLock lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
  common::MutexLock lock(mu_);
  if (file_ && file_ != stdout) std::fclose(file_);
}

void AccessLog::openLocked() {
  if (file_ && file_ != stdout) std::fclose(file_);
  file_ = nullptr;
  if (path_.empty()) return;
  if (path_ == "-") {
    file_ = stdout;
    return;
  }
  file_ = std::fopen(path_.c_str(), "a");
  if (!file_) spdlog::error("access log: cannot open {}: {}; lines are dropped until it opens", path_, std::strerror(errno));
}

void AccessLog::configure(const std::string& path, size_t max_queued) {
  common::MutexLock lock(mu_);
  max_queued_ = std::max<size_t>(1, max_queued);
  if (path == path_ && (file_ || path.empty())) return;
  path_ = path;
  openLocked();
}

namespace {

constexpr size_t kBatchLines = 4096;                     // a batch this large is written at once
constexpr auto kWriteInterval = std::chrono::milliseconds(100);  // else what waits is written this often

}  // namespace

bool AccessLog::push(std::string line) {
  bool wake = false;
  {
    common::MutexLock lock(mu_);
    if (queue_.size() >= max_queued_ || path_.empty()) {
      dropped_.inc();
      return false;
    }
    queue_.push_back(std::move(line));
    wake = queue_.size() == kBatchLines;
  }
  if (wake) wake_.notify_one();
  return true;
}

void AccessLog::reopen() {
  {
    common::MutexLock lock(mu_);
    reopen_ = true;
  }
  wake_.notify_one();
}

void AccessLog::flush() {
  common::MutexLock lock(mu_);
  flush_ = true;
  wake_.notify_one();
  drained_.wait(lock, [this] {
    mu_.assertHeld();
    return (queue_.empty() && !writing_) || stop_;
  });
}

void AccessLog::run() {
  std::vector<std::string> batch;
  common::MutexLock lock(mu_);
  for (;;) {
    wake_.wait_for(lock, kWriteInterval, [this] {
      mu_.assertHeld();
      return stop_ || reopen_ || flush_ || queue_.size() >= kBatchLines;
    });
    flush_ = false;
    if (reopen_) {
      reopen_ = false;
      openLocked();
    }
    if (queue_.empty() && stop_) break;
    if (queue_.empty()) {
      drained_.notify_all();
      continue;
    }
    batch.assign(std::make_move_iterator(queue_.begin()), std::make_move_iterator(queue_.end()));
    queue_.clear();
    std::FILE* f = file_;
    writing_ = true;
    lock.unlock();
    // The file is only replaced by this thread (reopen) or configure(),
    // which closes it under the lock: write outside it, so requests never
    // wait on the disk. configure() while a batch is out is rare (an apply
    // changing the path) and at worst loses that batch to the old file.
    for (const auto& line : batch) {
      if (f) {
        std::fwrite(line.data(), 1, line.size(), f);
        std::fputc('\n', f);
      }
    }
    if (f) std::fflush(f);
    if (f) written_.inc(batch.size());
    else dropped_.inc(batch.size());
    batch.clear();
    lock.lock();
    writing_ = false;
    if (queue_.empty()) drained_.notify_all();
  }
  drained_.notify_all();
}

namespace {

using Clock = std::chrono::steady_clock;

std::string isoTime(int64_t ms) {
  const std::time_t s = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&s, &tm);
  char buf[80];  // room for any int the compiler imagines; 24 are used
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
  return buf;
}

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// One field in either format: JSON members, or logfmt key=value (values
// with spaces, quotes or '=' quoted).
class Fields {
 public:
  explicit Fields(bool json) : json_(json) {
    if (json_) j_.beginObject();
  }
  Fields& text(std::string_view key, std::string_view v) {
    if (json_) {
      j_.key(key);
      v.empty() ? j_.null() : j_.value(v);
    } else if (!v.empty()) {
      sep();
      out_.append(key).push_back('=');
      if (v.find_first_of(" \"=") == std::string_view::npos) {
        out_.append(v);
      } else {
        common::appendJsonString(out_, v);
      }
    }
    return *this;
  }
  // Milliseconds to the microsecond.
  Fields& number(std::string_view key, double v) {
    v = std::round(v * 1000) / 1000;
    if (json_) {
      j_.key(key).value(v);
    } else {
      sep();
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.3f", v);
      std::string s = buf;
      while (s.back() == '0') s.pop_back();
      if (s.back() == '.') s.pop_back();
      common::strAppend(&out_, key, "=", s);
    }
    return *this;
  }
  Fields& integer(std::string_view key, int64_t v) { return plain(key, v, std::to_string(v)); }
  Fields& boolean(std::string_view key, bool v) { return plain(key, v, v ? "true" : "false"); }
  std::string take() {
    if (json_) {
      j_.endObject();
      return j_.take();
    }
    return std::move(out_);
  }

 private:
  // A value JSON writes as itself and logfmt as `text`.
  template <typename T>
  Fields& plain(std::string_view key, T v, std::string_view text) {
    if (json_) {
      j_.key(key).value(v);
    } else {
      sep();
      common::strAppend(&out_, key, "=", text);
    }
    return *this;
  }
  void sep() {
    if (!out_.empty()) out_.push_back(' ');
  }
  const bool json_;
  common::JsonWriter j_;
  std::string out_;
};

}  // namespace

std::string accessLogLine(const pipeline::RequestContext& ctx, bool json) {
  const auto now = Clock::now();
  std::optional<Clock::time_point> first = ctx.first_token ? ctx.first_token : ctx.first_byte;
  Fields f(json);
  f.text("time", isoTime(common::wallClockMs()));
  f.text("client", pipeline::clientAddressOf(ctx));
  f.text("tenant", ctx.caller.tenant);
  f.text("method", ctx.method);
  f.text("path", openai::targetPath(ctx.target));
  f.text("route", openai::endpointName(ctx.parsed.endpoint));
  f.text("model", ctx.parsed.model);
  f.text("pool", ctx.pool ? std::string_view(ctx.pool->model) : std::string_view());
  f.text("backend", ctx.backend ? std::string_view(ctx.backend->name()) : std::string_view());
  f.integer("attempts", ctx.attempts);
  f.integer("status", ctx.status);
  f.text("drop_reason", ctx.drop == pipeline::DropReason::kNone ? std::string_view() : pipeline::dropReasonName(ctx.drop));
  f.text("error_code", ctx.error ? std::string_view(ctx.error->code) : std::string_view());
  f.integer("degraded", ctx.degraded);
  f.text("cache", pipeline::addedHeader(ctx, "x-spillway-cache"));
  f.text("cache_tier", pipeline::addedHeader(ctx, "x-spillway-cache-tier"));
  f.text("class", pipeline::priorityName(ctx.caller.priority));
  f.number("queue_ms", ms(ctx.queue_wait));
  if (first) f.number("ttft_ms", ms(*first - ctx.start));
  f.number("total_ms", ms(now - ctx.start));
  f.integer("prompt_tokens_est", ctx.prompt_tokens_estimate);
  f.integer("completion_tokens", ctx.output_tokens);
  f.integer("bytes_in", static_cast<int64_t>(ctx.body.size()));
  f.boolean("stream", ctx.parsed.stream);
  f.text("trace_id", ctx.trace.trace_id);
  return f.take();
}

void AccessLogObserver::onComplete(const pipeline::RequestContext& ctx) {
  const bool routine = ctx.status < 400 && ctx.drop == pipeline::DropReason::kNone && ctx.degraded == 0;
  if (routine && format_.sample_successes < 1) {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    if (std::uniform_real_distribution<double>(0, 1)(rng) >= format_.sample_successes) return;
  }
  log_->push(accessLogLine(ctx, format_.json));
}

}  // namespace spillway::observe

#include "cache/redis_tier.h"

#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <charconv>

#include "common/strings.h"

namespace spillway::cache {

namespace {

// Value layout: "S1 FORM CREATED EXPIRES\n" then the body.
std::string encode(const Entry& e) {
  std::string out = common::strCat("S1 ", static_cast<int>(e.form), " ", e.created_ms, " ", e.expires_ms, "\n");
  out.append(e.body);
  return out;
}

bool decode(std::string_view v, Entry& e) {
  const size_t nl = v.find('\n');
  if (v.substr(0, 3) != "S1 " || nl == std::string_view::npos) return false;
  std::string_view head = v.substr(3, nl - 3);
  int form = 0;
  const char* p = head.data();
  const char* end = head.data() + head.size();
  auto r = std::from_chars(p, end, form);
  if (r.ec != std::errc() || form < 0 || form > 2) return false;
  r = std::from_chars(r.ptr + 1, end, e.created_ms);
  if (r.ec != std::errc()) return false;
  r = std::from_chars(r.ptr + 1, end, e.expires_ms);
  if (r.ec != std::errc()) return false;
  e.form = static_cast<Form>(form);
  e.body = std::string(v.substr(nl + 1));
  return true;
}

// MATCH patterns treat *?[]\ specially.
std::string globEscape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

}  // namespace

RedisTier::RedisTier(Settings settings)
    : settings_(std::move(settings)),
      link_(settings_.link, "cache",
            "the Redis tier is skipped until it answers again") {
  thread_ = std::make_unique<TaskThread>(4096);
}

RedisTier::~RedisTier() {
  thread_.reset();
  if (ctx_) redisFree(ctx_);
}

std::string RedisTier::address() const { return link_.address(); }

std::string RedisTier::redisKey(const CacheKey& key, std::string_view model, std::string_view tenant) const {
  return common::strCat(settings_.key_prefix, model, ":", tenant, ":", key.hex());
}

redisContext* RedisTier::connection() {
  if (ctx_) return ctx_;
  ctx_ = link_.connect();
  if (ctx_) link_.answered();
  return ctx_;
}

void RedisTier::failed(const std::string& why) {
  errors_.fetch_add(1, std::memory_order_relaxed);
  if (ctx_) {
    redisFree(ctx_);
    ctx_ = nullptr;
  }
  link_.failed(why);
}

Found RedisTier::lookupOnThread(const CacheKey& key, const std::string& model, const std::string& tenant,
                                int64_t now_ms) {
  redisContext* c = connection();
  if (!c) {
    skipped_.fetch_add(1, std::memory_order_relaxed);
    return {};
  }
  lookups_.fetch_add(1, std::memory_order_relaxed);
  const std::string k = redisKey(key, model, tenant);
  auto* reply = static_cast<redisReply*>(redisCommand(c, "GET %b", k.data(), k.size()));
  if (!reply) {
    failed(c->errstr);
    return {};
  }
  Found out;
  if (reply->type == REDIS_REPLY_STRING) {
    auto e = std::make_shared<Entry>();
    e->key = key;
    e->model = model;
    e->tenant = tenant;
    if (decode(std::string_view(reply->str, reply->len), *e) && now_ms < e->expires_ms + settings_.grace_ms) {
      hits_.fetch_add(1, std::memory_order_relaxed);
      const bool stale = now_ms >= e->expires_ms;
      out = Found{std::move(e), stale};
    }
  }
  freeReplyObject(reply);
  return out;
}

common::Awaitable<Found> RedisTier::find(CacheKey key, const std::string& model, const std::string& tenant,
                                         int64_t now_ms) {
  auto initiate = [this, key, model, tenant, now_ms](auto handler) {
    auto h = std::make_shared<decltype(handler)>(std::move(handler));
    auto reply = [h](Found f) {
      auto ex = boost::asio::get_associated_executor(*h);
      boost::asio::post(ex, [h, f = std::move(f)]() mutable { (*h)(std::move(f)); });
    };
    if (!thread_->post([=, this] { reply(lookupOnThread(key, model, tenant, now_ms)); }, true)) {
      skipped_.fetch_add(1, std::memory_order_relaxed);
      reply(Found{});
    }
  };
  co_return co_await boost::asio::async_initiate<decltype(common::kUseAwaitable), void(Found)>(initiate,
                                                                                               common::kUseAwaitable);
}

Found RedisTier::findNow(const CacheKey& key, const std::string& model, const std::string& tenant, int64_t now_ms) {
  return thread_->call([&] { return lookupOnThread(key, model, tenant, now_ms); });
}

void RedisTier::put(EntryPtr entry) {
  const bool queued = thread_->post([this, entry] {
    redisContext* c = connection();
    if (!c) {
      skipped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    const std::string k = redisKey(entry->key, entry->model, entry->tenant);
    const std::string v = encode(*entry);
    const int64_t ttl = std::max<int64_t>(1, entry->expires_ms - entry->created_ms + settings_.grace_ms);
    auto* reply = static_cast<redisReply*>(redisCommand(c, "SET %b %b PX %lld", k.data(), k.size(), v.data(), v.size(),
                                                        static_cast<long long>(ttl)));
    if (!reply) {
      failed(c->errstr);
      return;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
      errors_.fetch_add(1, std::memory_order_relaxed);
    } else {
      writes_.fetch_add(1, std::memory_order_relaxed);
    }
    freeReplyObject(reply);
  }, true);
  if (!queued) skipped_.fetch_add(1, std::memory_order_relaxed);
}

uint64_t RedisTier::purge(const std::string& model, const std::string& tenant) {
  return thread_->call([&]() -> uint64_t {
    redisContext* c = connection();
    if (!c) return 0;
    const std::string pattern = common::strCat(globEscape(settings_.key_prefix), model.empty() ? "*" : globEscape(model),
                                               ":", tenant.empty() ? "*" : globEscape(tenant), ":*");
    uint64_t deleted = 0;
    std::string cursor = "0";
    do {
      auto* reply = static_cast<redisReply*>(
          redisCommand(c, "SCAN %s MATCH %b COUNT 1000", cursor.c_str(), pattern.data(), pattern.size()));
      if (!reply) {
        failed(c->errstr);
        return deleted;
      }
      if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) {
        freeReplyObject(reply);
        return deleted;
      }
      cursor.assign(reply->element[0]->str, reply->element[0]->len);
      const redisReply* keys = reply->element[1];
      for (size_t i = 0; i < keys->elements; ++i) {
        auto* del = static_cast<redisReply*>(redisCommand(c, "UNLINK %b", keys->element[i]->str, keys->element[i]->len));
        if (del) {
          if (del->type == REDIS_REPLY_INTEGER) deleted += static_cast<uint64_t>(del->integer);
          freeReplyObject(del);
        }
      }
      freeReplyObject(reply);
    } while (cursor != "0");
    return deleted;
  });
}

RedisTier::Stats RedisTier::stats() const {
  return {lookups_.load(), hits_.load(), writes_.load(), errors_.load(), skipped_.load()};
}

}  // namespace spillway::cache

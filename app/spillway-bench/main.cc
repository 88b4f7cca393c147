// spillway-bench: the load generator. Runs a scenario file, or a quick
// single-class load from flags, against any OpenAI-compatible server, prints
// a table and optionally writes the full JSON report.
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <boost/program_options.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <random>
#include <thread>
#include <unistd.h>

#include "common/process.h"
#include "common/url.h"
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include "admission/admission_queue.h"
#include "admission/gcra.h"
#include "admission/rate_limit.h"
#include "admission/redis_limiter.h"
#include "balance/balancer.h"
#include "balance/random.h"
#include "cache/cache_key.h"
#include "cache/disk_tier.h"
#include "cache/memory_tier.h"
#include "sim/load_generator.h"
#include "upstream/backend.h"

namespace po = boost::program_options;
using namespace spillway;

namespace {

// Opens N keep-alive connections, makes one request on each, and holds them
// idle: for measuring what idle clients cost the server.
int runIdle(const std::string& target, unsigned connections, unsigned hold_ms) {
  auto url = common::parseUrl(target);
  if (!url.ok()) {
    std::cerr << "spillway-bench idle: --target: " << url.status().message() << "\n";
    return 2;
  }
  namespace net = boost::asio;
  net::io_context ioc;
  net::ip::tcp::resolver resolver(ioc);
  auto eps = resolver.resolve(url->host, std::to_string(url->port));
  std::vector<net::ip::tcp::socket> socks;
  std::string req = "GET /healthz HTTP/1.1\r\nHost: " + url->hostHeader() + "\r\n\r\n";
  unsigned ok = 0;
  for (unsigned i = 0; i < connections; ++i) {
    net::ip::tcp::socket s(ioc);
    boost::system::error_code ec;
    net::connect(s, eps, ec);
    if (ec) break;
    net::write(s, net::buffer(req), ec);
    net::streambuf head;
    net::read_until(s, head, "\r\n\r\n", ec);
    if (!ec) ++ok;
    socks.push_back(std::move(s));
  }
  std::printf("{\"idle_connections\": %u, \"answered\": %u}\n", static_cast<unsigned>(socks.size()), ok);
  std::fflush(stdout);
  std::this_thread::sleep_for(std::chrono::milliseconds(hold_ms));  // holding them idle is the point
  return ok == connections ? 0 : 1;
}

// Times balance::Balancer::pick (plus the release) per policy and pool size,
// on one thread: the cost a request pays for its pick. Medians of 5 reps.
int runPick(const std::string& json_file, unsigned iterations) {
  const v1::BalancingPolicy policies[] = {v1::ROUND_ROBIN,       v1::WEIGHTED_RANDOM, v1::LATENCY_WEIGHTED,
                                          v1::LEAST_OUTSTANDING, v1::CONSISTENT_HASH, v1::PREFIX_AFFINITY};
  std::string json = "{\"pick_ns\": {";
  std::printf("%-18s %10s %10s %10s   (ns per pick + release, median of 5)\n", "policy", "4", "16", "64");
  bool first_policy = true;
  for (auto policy : policies) {
    const std::string name(balance::policyName(policy));
    std::printf("%-18s", name.c_str());
    json += std::string(first_policy ? "" : ", ") + "\"" + name + "\": {";
    first_policy = false;
    bool first_size = true;
    for (int n : {4, 16, 64}) {
      std::vector<upstream::BackendPtr> pool;
      for (int i = 0; i < n; ++i) {
        v1::Backend c;
        c.set_name("backend-" + std::to_string(i));
        c.set_weight(1 + i % 3);
        auto b = std::make_shared<upstream::Backend>(i + 1, c, common::Url{}, "");
        b->recordOutcome(false, 0.5 + 0.01 * i, 50);  // latency samples for latency_weighted
        for (int k = 0; k < i % 4; ++k) b->tryAcquire();  // some load for the load-aware ones
        pool.push_back(std::move(b));
      }
      v1::Balancing settings;
      settings.set_policy(policy);
      auto lb = std::move(*balance::makeBalancer(balance::effectiveBalancing(settings, {}), 7));
      // 8 prefix groups of 16 blocks; 1,024 affinity keys.
      std::vector<std::vector<uint64_t>> groups(8);
      for (uint64_t g = 0; g < 8; ++g) {
        for (uint64_t k = 0; k < 16; ++k) groups[g].push_back(balance::mix64(g * 1000 + k + 1));
      }
      std::vector<double> reps;
      for (int rep = 0; rep < 5; ++rep) {
        const auto t0 = std::chrono::steady_clock::now();
        for (unsigned i = 0; i < iterations; ++i) {
          balance::PickContext ctx;
          ctx.hash_key = balance::mix64(i & 1023);
          ctx.has_hash_key = true;
          ctx.prefix_blocks = groups[i & 7];
          auto r = lb->pick(pool, ctx);
          if (r.backend) r.backend->release();
        }
        const auto ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
        reps.push_back(ns / iterations);
      }
      std::sort(reps.begin(), reps.end());
      std::printf(" %10.0f", reps[2]);
      char one[64];
      std::snprintf(one, sizeof one, "%s\"%d\": %.1f", first_size ? "" : ", ", n, reps[2]);
      json += one;
      first_size = false;
    }
    json += "}";
    std::printf("\n");
  }
  json += "}}\n";
  if (!json_file.empty()) {
    std::ofstream out(json_file);
    out << json;
    if (!out) {
      std::cerr << "spillway-bench pick: cannot write " << json_file << "\n";
      return 1;
    }
  }
  return 0;
}

// Admission's costs on one thread (medians of 5 reps): a GCRA decision, a
// rate-limit check over three scopes, a request through the gateway queue
// (enqueued behind a full backend, then dispatched when a slot frees), and,
// with --redis, the shared limiter's round trip (p50/p99).
int runAdmission(const std::string& json_file, unsigned iterations, const std::string& redis) {
  using Clock = std::chrono::steady_clock;
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  auto ns = [](Clock::duration d, unsigned n) { return std::chrono::duration<double, std::nano>(d).count() / n; };
  // GCRA: one bucket that never refuses (huge), so every call does the full update.
  std::vector<double> gcra, check, queue;
  for (int rep = 0; rep < 5; ++rep) {
    admission::Gcra g(1e12, 60'000'000'000);
    const auto t0 = Clock::now();
    int64_t now = 1;
    for (unsigned i = 0; i < iterations; ++i) g.take(1, now += 1000);
    gcra.push_back(ns(Clock::now() - t0, iterations));

    v1::Limits limits;
    limits.mutable_global()->set_requests_per_second(1000000000);
    limits.mutable_per_key()->set_requests_per_minute(1000000000);
    limits.mutable_per_model()->set_tokens_per_minute(4000000000000ull);
    admission::RateLimiter rl(limits);
    admission::RateLimiter::Ask ask;
    ask.key = "tenant-a";
    ask.model = "m";
    ask.tokens = 300;
    const auto t1 = Clock::now();
    for (unsigned i = 0; i < iterations; ++i) rl.check(ask, now += 1000);
    check.push_back(ns(Clock::now() - t1, iterations));

    // The queue: one backend with one slot, held; each request waits, then
    // gets the slot handed over by dispatch() when the previous one frees it.
    boost::asio::io_context io;
    v1::Backend bc;
    bc.set_name("b");
    bc.set_weight(1);
    bc.set_max_concurrency(1);
    std::vector<upstream::BackendPtr> pool{std::make_shared<upstream::Backend>(1, bc, common::Url{}, "")};
    v1::Balancing bs;
    bs.set_policy(v1::LEAST_OUTSTANDING);
    auto lb = std::move(*balance::makeBalancer(balance::effectiveBalancing(bs, {}), 1));
    admission::AdmissionQueue q;
    pool[0]->tryAcquire();  // the slot is taken: every request below queues
    const unsigned n = std::max(1u, iterations / 10);
    unsigned done = 0;
    const auto t2 = Clock::now();
    for (unsigned i = 0; i < n; ++i) {
      admission::AdmissionQueue::Ask a;
      a.tenant = i % 2 ? "a" : "b";
      a.input_tokens = 100;
      a.deadline = Clock::now() + std::chrono::hours(1);
      boost::asio::co_spawn(
          io.get_executor(),
          [&, a]() -> common::Awaitable<void> {
            auto t = co_await q.acquire(*lb, pool, a);
            if (t.backend) ++done;
          },
          boost::asio::detached);
      io.poll();  // enqueued behind the held slot
      pool[0]->release();
      q.dispatch(*lb, pool);  // hands the slot to the waiter
      io.poll();              // the waiter wakes with it
      io.restart();
    }
    queue.push_back(ns(Clock::now() - t2, n));
    if (done != n) {
      std::cerr << "spillway-bench admission: " << done << " of " << n << " waiters were served\n";
      return 1;
    }
  }
  std::printf("gcra decision           %8.1f ns\n", median(gcra));
  std::printf("rate-limit check (3)    %8.1f ns\n", median(check));
  std::printf("queue admit + dispatch  %8.1f ns   (enqueue behind a full backend, dispatch on release, wake)\n",
              median(queue));
  std::string json = "{\"gcra_ns\": " + std::to_string(median(gcra)) +
                     ", \"rate_limit_check_ns\": " + std::to_string(median(check)) +
                     ", \"queue_admit_dispatch_ns\": " + std::to_string(median(queue));
  if (!redis.empty()) {
    auto hp = common::parseHostPort(redis);
    if (!hp.ok()) {
      std::cerr << "spillway-bench admission: --redis: " << hp.status().message() << "\n";
      return 2;
    }
    admission::RedisLimiter r({{hp->host, hp->port, std::chrono::milliseconds(1000)}, "bench:"});
    std::vector<admission::RedisLimiter::Bucket> buckets{{"g:rps", 1e9, 1000000, 1}, {"k:a:rpm", 1e9, 60000000, 1},
                                                        {"m:m:tpm", 1e12, 60000000, 300}};
    std::vector<double> us;
    const unsigned n = std::max(100u, iterations / 100);
    for (unsigned i = 0; i < n; ++i) {
      const auto t = Clock::now();
      if (!r.take(buckets)) {
        std::cerr << "spillway-bench admission: Redis at " << redis << " did not answer\n";
        return 1;
      }
      us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t).count());
    }
    std::sort(us.begin(), us.end());
    const double p50 = us[us.size() / 2], p99 = us[us.size() * 99 / 100];
    std::printf("redis limiter take      p50 %6.1f us   p99 %6.1f us   (3 buckets, loopback)\n", p50, p99);
    json += ", \"redis_take_p50_us\": " + std::to_string(p50) + ", \"redis_take_p99_us\": " + std::to_string(p99);
  }
  json += "}\n";
  if (!json_file.empty()) {
    std::ofstream out(json_file);
    out << json;
    if (!out) return 1;
  }
  return 0;
}

// The cache's costs: a key (canonical form + xxh3-128) for a typical chat
// request, a memory-tier hit, and disk-tier lookups with `entries` rows
// (~300-byte answers): hits through the tier's own thread as the request
// path makes them (post, SQLite read, hand back), p50/p99, and misses the
// Bloom filter answers.
int runCache(const std::string& json_file, unsigned entries, unsigned lookups, std::string dir) {
  using Clock = std::chrono::steady_clock;
  auto pct = [](std::vector<double> v, double p) {
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
  };
  const std::string body =
      R"({"model":"m","temperature":0,"max_tokens":128,"messages":[{"role":"system","content":"You are a helpful )"
      R"(assistant."},{"role":"user","content":"What is the capital of France, and why is it famous?"}]})";
  const unsigned n_keys = 200000;
  auto t0 = Clock::now();
  uint64_t sink = 0;
  for (unsigned i = 0; i < n_keys; ++i) {
    auto c = cache::canonicalRequest(body);
    sink += cache::makeKey({"m", "", openai::Endpoint::kChatCompletions, "tenant"}, c->text).lo;
  }
  const double key_ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / n_keys;

  cache::MemoryTier mem(256ull << 20);
  auto entry = [](uint64_t i) {
    auto e = std::make_shared<cache::Entry>();
    e->key = {i * 0x9e3779b97f4a7c15ull + 7, (i + 1) * 0xbf58476d1ce4e5b9ull};  // spread over the shards
    e->model = "m";
    e->body = std::string(300, static_cast<char>('a' + i % 26));
    e->created_ms = 0;
    e->expires_ms = 4'000'000'000'000;
    return e;
  };
  std::vector<cache::CacheKey> keys;
  for (uint64_t i = 0; i < 100000; ++i) {
    mem.put(entry(i));
    keys.push_back(entry(i)->key);
  }
  t0 = Clock::now();
  for (unsigned i = 0; i < n_keys; ++i) sink += mem.get(keys[i % keys.size()], 1, 0).entry->body.size();
  const double mem_ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / n_keys;

  const bool temp = dir.empty();
  if (temp) dir = std::filesystem::temp_directory_path() / ("spillway-bench-cache-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (std::filesystem::path(dir) / "cache.db").string();
  double fill_s = 0, hit_p50 = 0, hit_p99 = 0, miss_p99 = 0;
  uint64_t db_bytes = 0;
  {
    cache::DiskTier::Settings s;
    s.max_bytes = 64ull << 30;
    s.max_pending = 1u << 30;  // the fill queues everything
    auto tier = cache::DiskTier::open(path, s);
    if (!tier.ok()) {
      std::cerr << "spillway-bench cache: " << tier.status().message() << "\n";
      return 1;
    }
    const auto f0 = Clock::now();
    for (uint64_t i = 0; i < entries; ++i) (*tier)->put(entry(i));
    (*tier)->flush();
    fill_s = std::chrono::duration<double>(Clock::now() - f0).count();
    std::mt19937_64 rng(1);
    std::vector<double> hit_us, miss_us;
    for (unsigned i = 0; i < lookups; ++i) {
      const auto key = entry(rng() % entries)->key;
      const auto t = Clock::now();
      auto f = (*tier)->findNow(key, 1, 0);
      hit_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t).count());
      if (!f) {
        std::cerr << "spillway-bench cache: a stored key was not found\n";
        return 1;
      }
    }
    for (unsigned i = 0; i < lookups; ++i) {
      const cache::CacheKey key{rng(), rng()};
      const auto t = Clock::now();
      sink += (*tier)->findNow(key, 1, 0) ? 1 : 0;
      miss_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t).count());
    }
    hit_p50 = pct(hit_us, 0.5);
    hit_p99 = pct(hit_us, 0.99);
    miss_p99 = pct(miss_us, 0.99);
    db_bytes = (*tier)->stats().bytes;
  }
  if (temp) std::filesystem::remove_all(dir);
  std::printf("cache key (canonical + xxh3)  %8.0f ns   (a %zu-byte chat request)\n", key_ns, body.size());
  std::printf("memory tier hit               %8.0f ns\n", mem_ns);
  std::printf("disk tier: %u entries (%.0f MB of answers) written in %.1f s\n", entries, db_bytes / 1e6, fill_s);
  std::printf("disk tier hit                 p50 %6.1f us   p99 %6.1f us   (through the tier's thread)\n", hit_p50,
              hit_p99);
  std::printf("disk tier miss (Bloom)        p99 %6.2f us\n", miss_p99);
  if (sink == 42) std::printf(" \n");  // keeps the loops from being optimised away
  if (!json_file.empty()) {
    std::ofstream out(json_file);
    out << "{\"key_ns\": " << key_ns << ", \"memory_hit_ns\": " << mem_ns << ", \"disk_entries\": " << entries
        << ", \"disk_fill_seconds\": " << fill_s << ", \"disk_hit_p50_us\": " << hit_p50
        << ", \"disk_hit_p99_us\": " << hit_p99 << ", \"disk_bloom_miss_p99_us\": " << miss_p99 << "}\n";
    if (!out) return 1;
  }
  return 0;
}

// Parses a subcommand's flags (argv[1] is its name). Returns an exit code
// when the program should stop (--help: 0, a bad flag: 2).
std::optional<int> parseSubcommand(const char* name, const po::options_description& o, int argc, char** argv) {
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc - 1, argv + 1, o), vm);
    if (vm.count("help")) {
      std::cout << o << "\n";
      return 0;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "spillway-bench " << name << ": " << e.what() << "\n";
    return 2;
  }
  return std::nullopt;
}

}  // namespace

int main(int argc, char** argv) {
  common::raiseOpenFileLimit();
  if (argc > 1 && std::string(argv[1]) == "idle") {
    po::options_description o("spillway-bench idle: hold N idle keep-alive connections\n\nOptions");
    std::string target;
    unsigned n = 1000, hold = 5000;
    o.add_options()("help,h", "show this help")("target", po::value(&target)->required(), "http://HOST:PORT")(
        "connections", po::value(&n)->default_value(n), "connections to open")(
        "hold-ms", po::value(&hold)->default_value(hold), "how long to hold them");
    if (auto code = parseSubcommand("idle", o, argc, argv)) return *code;
    return runIdle(target, n, hold);
  }
  if (argc > 1 && std::string(argv[1]) == "pick") {
    po::options_description o("spillway-bench pick: time each balancing policy's pick\n\nOptions");
    std::string json_file;
    unsigned iterations = 200000;
    o.add_options()("help,h", "show this help")("json", po::value(&json_file), "write the numbers as JSON to FILE")(
        "iterations", po::value(&iterations)->default_value(iterations), "picks per measurement");
    if (auto code = parseSubcommand("pick", o, argc, argv)) return *code;
    return runPick(json_file, std::max(1u, iterations));
  }

  if (argc > 1 && std::string(argv[1]) == "admission") {
    po::options_description o("spillway-bench admission: time admission control's decisions\n\nOptions");
    std::string json_file, redis;
    unsigned iterations = 200000;
    o.add_options()("help,h", "show this help")("json", po::value(&json_file), "write the numbers as JSON to FILE")(
        "iterations", po::value(&iterations)->default_value(iterations), "decisions per measurement")(
        "redis", po::value(&redis), "HOST:PORT of a Redis to time the shared limiter against");
    if (auto code = parseSubcommand("admission", o, argc, argv)) return *code;
    return runAdmission(json_file, std::max(10u, iterations), redis);
  }

  if (argc > 1 && std::string(argv[1]) == "cache") {
    po::options_description o("spillway-bench cache: time the cache's key, memory tier and disk tier\n\nOptions");
    std::string json_file, dir;
    unsigned entries = 1000000, lookups = 20000;
    o.add_options()("help,h", "show this help")("json", po::value(&json_file), "write the numbers as JSON to FILE")(
        "entries", po::value(&entries)->default_value(entries), "entries in the disk tier")(
        "lookups", po::value(&lookups)->default_value(lookups), "timed lookups")(
        "dir", po::value(&dir), "directory for the SQLite file (default: a temporary one, removed after)");
    if (auto code = parseSubcommand("cache", o, argc, argv)) return *code;
    return runCache(json_file, std::max(1000u, entries), std::max(100u, lookups), dir);
  }

  po::options_description opts(
      "spillway-bench: load generator for OpenAI-compatible servers\n\n"
      "Usage: spillway-bench --scenario FILE [--target URL] [--json FILE]\n"
      "       spillway-bench --target URL --model M (--rate R | --concurrency C) [options]\n"
      "       spillway-bench idle --target URL --connections N --hold-ms MS\n"
      "       spillway-bench pick [--json FILE]   (balancing policies' pick cost)\n"
      "       spillway-bench admission [--json FILE] [--redis HOST:PORT]   (admission's decision costs)\n"
      "       spillway-bench cache [--json FILE] [--entries N]   (cache key, memory and disk tier costs)\n\nOptions");
  std::string scenario_file, target, json_file, model, endpoint = "chat";
  double rate = 0;
  unsigned concurrency = 0, duration_ms = 5000, threads = 1, max_tokens = 0, prompt_tokens = 8, itl = 0,
           max_connections = 0;
  opts.add_options()
      ("help,h", "show this help")
      ("scenario", po::value(&scenario_file), "scenario YAML (classes, phases); see docs/benchmarks.md")
      ("target", po::value(&target), "base URL; overrides the scenario's")
      ("json", po::value(&json_file), "write the full report as JSON to FILE")
      ("model", po::value(&model), "quick mode: model to request")
      ("endpoint", po::value(&endpoint)->default_value(endpoint), "quick mode: chat or completions")
      ("rate", po::value(&rate), "quick mode: open-loop Poisson arrivals per second")
      ("concurrency", po::value(&concurrency), "quick mode: closed-loop clients instead of --rate")
      ("duration-ms", po::value(&duration_ms)->default_value(duration_ms), "quick mode: how long to send")
      ("stream", "quick mode: request streams")
      ("max-tokens", po::value(&max_tokens), "quick mode: max_tokens to send")
      ("prompt-tokens", po::value(&prompt_tokens)->default_value(prompt_tokens), "quick mode: prompt length")
      ("expected-itl-ms", po::value(&itl), "quick mode: stall threshold is 10x this")
      ("threads", po::value(&threads), "generator threads")
      ("max-connections", po::value(&max_connections), "most connections at once")
      ("time-scale", po::value<double>(), "multiply every phase duration (e.g. 0.1 for a quick smoke run)")
      ("deterministic", "quick mode: send temperature 0 (cacheable)")
      ("distinct-prompts", po::value<unsigned>(), "quick mode: each prompt is one of N fixed questions")
      ("zipf-s", po::value<double>(), "quick mode: with --distinct-prompts, Zipf exponent of their popularity (0: uniform)")
      ("unique-prompts", "quick mode: every prompt different (cache misses)")
      ("quiet", "no progress line");
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(opts).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "spillway-bench: " << e.what() << "\n\n" << opts << "\n";
    return 2;
  }
  if (vm.count("help") || argc == 1) {
    std::cout << opts << "\n";
    return 0;
  }

  v1::Scenario scenario;
  if (!scenario_file.empty()) {
    auto s = sim::loadScenarioFile(scenario_file);
    if (!s.ok()) {
      std::cerr << s.status().message();
      return 2;
    }
    scenario = *s;
  } else {
    auto* c = scenario.add_classes();
    c->set_name(model);
    c->set_model(model);
    c->set_endpoint(endpoint);
    c->set_stream(vm.count("stream") > 0);
    c->set_max_tokens(max_tokens);
    c->set_prompt_tokens_min(prompt_tokens);
    c->set_prompt_tokens_max(prompt_tokens);
    c->set_expected_itl_ms(itl);
    c->set_deterministic(vm.count("deterministic") > 0);
    if (vm.count("distinct-prompts")) c->set_distinct_prompts(vm["distinct-prompts"].as<unsigned>());
    if (vm.count("zipf-s")) c->set_zipf_s(vm["zipf-s"].as<double>());
    if (vm.count("unique-prompts")) c->set_prefix_groups(1);  // no shared words: the rest is unique per request
    auto* p = scenario.add_phases();
    p->set_name("steady");
    p->set_duration_ms(duration_ms);
    p->set_rate(rate);
    p->set_concurrency(concurrency);
  }
  if (!target.empty()) scenario.set_target(target);
  if (vm.count("threads")) scenario.set_threads(threads);
  if (vm.count("max-connections")) scenario.set_max_connections(max_connections);
  if (vm.count("time-scale")) {
    const double k = vm["time-scale"].as<double>();
    if (k <= 0) {
      std::cerr << "spillway-bench: --time-scale must be positive\n";
      return 2;
    }
    for (auto& p : *scenario.mutable_phases()) p.set_duration_ms(std::max<uint32_t>(1, static_cast<uint32_t>(p.duration_ms() * k)));
  }

  const bool quiet = vm.count("quiet") > 0;
  auto report = sim::runLoad(scenario, [&](double t, uint64_t sent, uint64_t ok, uint64_t failed) {
    if (!quiet) std::fprintf(stderr, "\r%6.1fs  sent %llu  ok %llu  failed %llu   ", t,
                             static_cast<unsigned long long>(sent), static_cast<unsigned long long>(ok),
                             static_cast<unsigned long long>(failed));
  });
  if (!quiet) std::fprintf(stderr, "\n");
  if (!report.ok()) {
    std::cerr << "spillway-bench: " << report.status().message() << "\n";
    return 2;
  }
  std::cout << sim::formatReport(*report);
  if (!json_file.empty()) {
    std::ofstream out(json_file);
    out << sim::reportJson(*report) << "\n";
    if (!out) {
      std::cerr << "spillway-bench: cannot write " << json_file << "\n";
      return 1;
    }
  }
  return 0;
}

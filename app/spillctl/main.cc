// spillctl: the command line over the Spillway control plane (gRPC).
#include <google/protobuf/util/json_util.h>

#include <boost/program_options.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iterator>
#include <iostream>
#include <sstream>

#include "control/auth.h"
#include "control/grpc_client.h"
#include "control/pool_policy.h"
#include "control/tls.h"
#include "gpu/planner.h"

namespace po = boost::program_options;
using namespace spillway;

namespace {

const char* kUsage = R"(spillctl: control a running Spillway engine over gRPC

Usage: spillctl [options] COMMAND [ARGS]

Commands:
  status                          version, uptime, config version, readiness
  config get                      the running config (JSON, which is valid YAML)
  config validate FILE            check a YAML config; every error with file:line:column
  config diff FILE                what applying FILE would change
  config apply FILE               apply it (--comment, --base VERSION, --dry-run)
  config history                  versions with author, time, comment
  config rollback VERSION         make an earlier version active again
  backends                        backend states
  drain NAME | undrain NAME       take a backend out of rotation, or back in
  eject NAME [SECONDS]            out of rotation for SECONDS (default 30), then a slow start
  readmit NAME                    end an ejection now (with the slow start)
  weight NAME N|default           override the balancing weight (0..10000), or drop the override
  pools                           each pool's balancing policy and its score per backend
  routes                          the routes served: the API's, the passthrough routes
                                  (api.passthrough_routes), and each pool's endpoints
  balance MODEL POLICY            switch a pool's policy (a config change: validated, diffed,
                                  audited, undoable with config rollback): round_robin,
                                  weighted_random, latency_weighted, least_outstanding,
                                  consistent_hash, prefix_affinity
  events                          automatic ejections and back-offs, with their reasons
  admission                       queues per class, sheds by reason, degradation levels,
                                  learned limits, top tenants, rate-limit scopes nearest their limit
  degrade MODEL LEVEL|auto        pin a pool's degradation level (0-3), or release the pin
  cache                           the response cache: tiers, hits, misses, coalescing, Bloom filter
  cache lookup FILE               where the answer to the request in FILE is cached (--tenant T,
                                  --completions for /v1/completions bodies; FILE "-" reads stdin)
  cache purge                     drop a model's and/or tenant's entries (--model M, --tenant T)
  cache flush                     drop every entry of every tier
  gpu list                        GPUs, MIG instances with their backends, classes and load, workers
  gpu plan                        propose MIG layouts for a demand mix: --demand NAME:PRIORITY:GB:SHARE
                                  (repeatable), --gpu MODEL[xN] (repeatable; default: the engine's
                                  GPUs), --alternatives N; prints nvidia-smi commands, a mig-parted
                                  config and the gpu config section (never applies anything)
  audit                           the audit log (--action PREFIX, --actor NAME, --limit N)
  usage                           requests, tokens, sheds and cache hits per tenant and model,
                                  with each one's share of the fleet's requests and sheds
                                  (--since 1h|30m|2d, --tenant T, --model M; --events N adds the
                                  newest N refused, failed or degraded requests with trace ids)
  fleet                           the replicas registered with this one in the fleet's Redis: each
                                  one's address, control plane, config versions, last heartbeat;
                                  what backends and limits are divided by; flags a replica on
                                  another fleet config version
  history SERIES                  recorded points (--minutes N): requests_per_second,
                                  error_rate, latency_p50_seconds, latency_p99_seconds,
                                  ttft_p95_seconds, in_flight
  watch                           live table (--interval-ms, --count N)
  hash-token [TOKEN]              SHA-256 for control.tokens[].sha256 (reads stdin without TOKEN)

Connection settings come from flags, else SPILLCTL_ADDR, SPILLCTL_TOKEN,
SPILLCTL_TOKEN_FILE, SPILLCTL_CA, SPILLCTL_SERVER_NAME, else
~/.config/spillway/spillctl.conf (lines "addr = ...", "token_file = ...",
"ca = ...", "server_name = ..."), else 127.0.0.1:50051 in plaintext.

Options)";

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::map<std::string, std::string> configFile() {
  std::map<std::string, std::string> out;
  std::string home = env("HOME");
  if (home.empty()) return out;
  std::ifstream in(home + "/.config/spillway/spillctl.conf");
  std::string line;
  while (std::getline(in, line)) {
    auto eq = line.find('=');
    if (eq == std::string::npos || line[0] == '#') continue;
    auto trim = [](std::string s) {
      s.erase(0, s.find_first_not_of(" \t"));
      s.erase(s.find_last_not_of(" \t\r") + 1);
      return s;
    };
    out[trim(line.substr(0, eq))] = trim(line.substr(eq + 1));
  }
  return out;
}

std::string json(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions o;
  o.add_whitespace = true;
  o.preserve_proto_field_names = true;
  o.always_print_primitive_fields = true;  // a stable shape for scripts
  (void)google::protobuf::util::MessageToJsonString(m, &out, o);
  return out;
}

std::string when(int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  char b[32];
  std::strftime(b, sizeof b, "%Y-%m-%d %H:%M:%S", std::localtime(&t));
  return b;
}

int fail(const absl::Status& s) {
  std::cerr << "spillctl: " << s.message() << "\n";
  switch (s.code()) {
    case absl::StatusCode::kInvalidArgument: return 3;
    case absl::StatusCode::kFailedPrecondition: return 4;
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kPermissionDenied: return 5;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded: return 6;
    default: return 1;
  }
}

absl::StatusOr<v1::ConfigSource> readSource(const std::string& file) {
  auto text = control::readFile(file);
  if (!text.ok()) return text.status();
  v1::ConfigSource s;
  s.set_yaml(*text);
  s.set_file(file);
  return s;
}

void printBackends(const v1::BackendList& l) {
  std::printf("%-20s %-12s %-7s %9s %7s %7s %9s %6s %9s %7s %5s  %s\n", "BACKEND", "STATE", "WEIGHT", "IN-FLIGHT",
              "OPEN", "IDLE", "REQUESTS", "FAIL%", "EWMA-MS", "MS/TOK", "EJECT", "URL");
  for (const auto& b : l.backends()) {
    const std::string weight = std::to_string(b.effective_weight()) + "/" +
                               std::to_string(b.weight_overridden() ? b.weight_override() : b.configured_weight()) +
                               (b.weight_overridden() ? "*" : "");
    const double fail = b.requests_total() ? 100.0 * static_cast<double>(b.failures_total()) /
                                                 static_cast<double>(b.requests_total())
                                           : 0.0;
    std::printf("%-20s %-12s %-7s %9lld %7lld %7lld %9llu %6.1f %9.1f %7.1f %5llu  %s\n", b.name().c_str(),
                b.state().c_str(), weight.c_str(), static_cast<long long>(b.in_flight()),
                static_cast<long long>(b.open_connections()), static_cast<long long>(b.idle_connections()),
                static_cast<unsigned long long>(b.requests_total()), fail, b.ewma_latency_seconds() * 1000,
                b.ewma_ms_per_token(), static_cast<unsigned long long>(b.ejections_total()), b.url().c_str());
    if (!b.last_error().empty()) std::printf("%20s last error: %s\n", "", b.last_error().c_str());
  }
}

void printApplied(const v1::ApplyConfigResponse& r, bool dry_run) {
  for (const auto& l : r.diff()) std::cout << l << "\n";
  for (const auto& n : r.notes()) std::cout << "note: " << n << "\n";
  if (dry_run) std::cout << "dry run: nothing applied\n";
  else if (r.diff().empty()) std::cout << "no changes; still config v" << r.version() << "\n";
  else std::cout << "applied: now config v" << r.version() << "\n";
}

void printPools(const v1::BackendList& l) {
  std::printf("%-24s %-18s %8s %8s  %s\n", "POOL", "POLICY", "ACTIVE", "RETRYING", "BACKEND=SCORE ...");
  for (const auto& p : l.pools()) {
    std::string scores;
    for (int i = 0; i < p.backends_size(); ++i) {
      char one[160];
      std::snprintf(one, sizeof one, "%s%s=%.3g", i ? " " : "", p.backends(i).c_str(), i < p.scores_size() ? p.scores(i) : 0.0);
      scores += one;
    }
    std::printf("%-24s %-18s %8lld %8lld  %s\n", p.model().c_str(), p.policy().c_str(),
                static_cast<long long>(p.active_requests()), static_cast<long long>(p.retries_in_progress()), scores.c_str());
  }
}

std::string bytesText(uint64_t b) {
  char buf[32];
  if (b >= (1ull << 30)) std::snprintf(buf, sizeof buf, "%.1f GiB", b / double(1ull << 30));
  else if (b >= (1ull << 20)) std::snprintf(buf, sizeof buf, "%.1f MiB", b / double(1ull << 20));
  else if (b >= 1024) std::snprintf(buf, sizeof buf, "%.1f KiB", b / 1024.0);
  else std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(b));
  return buf;
}

void printGpus(const v1::GpuState& s) {
  std::printf("inventory: %s%s%s\n", s.source().c_str(), s.detail().empty() ? "" : " - ", s.detail().c_str());
  for (const auto& g : s.gpus()) {
    std::printf("GPU %u  %s  %s  %s  MIG %s%s", g.index(), g.name().c_str(), g.uuid().c_str(),
                bytesText(g.memory_total_bytes()).c_str(), g.mig_enabled() ? "on" : "off",
                g.mig_pending() ? " (change pending reset)" : "");
    if (g.utilization() >= 0) std::printf("  util %.0f %%", 100 * g.utilization());
    if (g.temperature_c() >= 0) std::printf("  %.0f C", g.temperature_c());
    if (g.power_watts() >= 0) std::printf("  %.0f W", g.power_watts());
    std::printf("  in flight %lld\n", static_cast<long long>(g.in_flight()));
    for (const auto& b : g.backends()) std::printf("  whole GPU: %s\n", b.c_str());
    for (const auto& i : g.instances()) {
      std::string backends, classes;
      for (const auto& b : i.backends()) backends += (backends.empty() ? "" : ",") + b;
      for (const auto& c : i.classes()) classes += (classes.empty() ? "" : ",") + c;
      std::printf("  %-11s %-40s gi %u ci %u  %2u SMs  %-24s %-24s in flight %lld/%lld  queued %lld\n",
                  i.profile().c_str(), i.uuid().c_str(), i.gpu_instance_id(), i.compute_instance_id(), i.sm_count(),
                  backends.empty() ? "-" : backends.c_str(), classes.empty() ? "any class" : classes.c_str(),
                  static_cast<long long>(i.in_flight()), static_cast<long long>(i.capacity()),
                  static_cast<long long>(i.queued()));
    }
  }
  if (s.workers_size() > 0) std::printf("workers:\n");
  for (const auto& w : s.workers()) {
    std::printf("  %-24s %-10s pid %-7d port %-5u restarts %u%s%s\n", w.backend().c_str(), w.state().c_str(), w.pid(),
                w.port(), w.restarts(), w.last_error().empty() ? "" : "  ", w.last_error().c_str());
  }
}

void printCache(const v1::CacheState& c) {
  if (!c.enabled()) std::printf("the cache is OFF (cache.disabled)\n\n");
  const uint64_t answered = c.hits_total() + c.misses_total() + c.coalesced_total() + c.stale_total();
  std::printf("mode %s, scope %s: %llu hits, %llu misses, %llu coalesced, %llu stale, %llu bypassed",
              c.mode().c_str(), c.scope().c_str(), static_cast<unsigned long long>(c.hits_total()),
              static_cast<unsigned long long>(c.misses_total()), static_cast<unsigned long long>(c.coalesced_total()),
              static_cast<unsigned long long>(c.stale_total()), static_cast<unsigned long long>(c.bypass_total()));
  if (answered) std::printf(" (hit ratio %.1f %%)", 100.0 * c.hits_total() / answered);
  std::printf("\n\n%-8s %-8s %10s %11s %10s %10s %8s %8s  %s\n", "TIER", "STATE", "ENTRIES", "BYTES", "HITS",
              "EVICTED", "ERRORS", "SKIPPED", "WHERE");
  for (const auto& t : c.tiers()) {
    std::printf("%-8s %-8s %10llu %11s %10llu %10llu %8llu %8llu  %s\n", t.tier().c_str(), t.enabled() ? "on" : "off",
                static_cast<unsigned long long>(t.entries()), bytesText(t.bytes()).c_str(),
                static_cast<unsigned long long>(t.hits_total()), static_cast<unsigned long long>(t.evictions_total()),
                static_cast<unsigned long long>(t.errors_total()), static_cast<unsigned long long>(t.skipped_total()),
                t.detail().empty() ? "-" : t.detail().c_str());
  }
  if (c.bloom_bits()) {
    std::printf("\nBloom filter: %s, expected false positives %.4f %%, %llu disk lookups avoided\n",
                bytesText(c.bloom_bits() / 8).c_str(), 100.0 * c.bloom_false_positive_rate(),
                static_cast<unsigned long long>(c.bloom_skips_total()));
  }
  std::printf("coalesced upstream calls in the air: %llu\n", static_cast<unsigned long long>(c.flights()));
  const uint64_t items = c.embedding_item_hits_total() + c.embedding_item_misses_total();
  if (items) {
    std::printf("embedding inputs: %llu from the cache, %llu sent upstream (hit ratio %.1f %%)\n",
                static_cast<unsigned long long>(c.embedding_item_hits_total()),
                static_cast<unsigned long long>(c.embedding_item_misses_total()),
                100.0 * c.embedding_item_hits_total() / items);
  }
}

// What the gateway serves: its own routes, the passthrough routes, and each
// pool's endpoints (from the running config).
void printRoutes(const v1::Config& cfg) {
  std::printf("%-34s %s\n", "ROUTE", "WHAT");
  std::printf("%-34s %s\n", "GET /v1/models", "every pool's model");
  std::printf("%-34s %s\n", "POST /v1/chat/completions", "chat_completions: cached when deterministic");
  std::printf("%-34s %s\n", "POST /v1/completions", "completions: cached when deterministic");
  std::printf("%-34s %s\n", "POST /v1/embeddings", "embeddings: cached per input");
  std::printf("%-34s %s\n", "POST /v1/responses", "responses: previous_response_id goes to its backend");
  std::printf("%-34s %s\n", "GET|DELETE /v1/responses/{id}", "responses: to the backend that stores it");
  for (const auto& r : cfg.api().passthrough_routes()) {
    std::printf("%-34s %s\n", ("POST " + r).c_str(), "passthrough: relayed unchanged to the named model's pool");
  }
  std::printf("\n%-24s %-16s %s\n", "POOL", "OWNED BY", "ENDPOINTS");
  for (const auto& p : cfg.pools()) {
    std::string endpoints;
    for (const auto& e : p.endpoints()) endpoints += (endpoints.empty() ? "" : ", ") + e;
    std::printf("%-24s %-16s %s\n", p.model().c_str(), p.owned_by().empty() ? "spillway" : p.owned_by().c_str(),
                endpoints.empty() ? "all" : endpoints.c_str());
  }
}

std::string fmtSeconds(double s) {
  char b[32];
  if (s < 1) std::snprintf(b, sizeof b, "%.0f ms", s * 1000);
  else std::snprintf(b, sizeof b, "%.2f s", s);
  return b;
}

std::string fmtPercent(double share) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f %%", share * 100);
  return b;
}

void printAdmission(const v1::AdmissionState& a, const v1::BackendList* backends) {
  if (!a.enabled()) std::printf("admission is OFF (admission.disabled): requests go straight to the backends\n\n");
  std::printf("%-24s %8s %8s %9s %9s %10s %7s  %s\n", "POOL", "CRITICAL", "STANDARD", "SHEDDABLE", "RATE/S",
              "OLDEST", "LEVEL", "SHED BY REASON");
  for (const auto& p : a.pools()) {
    uint64_t depth[3] = {0, 0, 0};
    for (int i = 0; i < p.classes_size() && i < 3; ++i) depth[i] = p.classes(i).depth();
    std::string shed;
    for (const auto& [reason, n] : p.shed()) shed += (shed.empty() ? "" : " ") + reason + "=" + std::to_string(n);
    std::string level = std::to_string(p.degradation_level()) + (p.pinned_level() >= 0 ? " pin" : "");
    std::printf("%-24s %8llu %8llu %9llu %9.1f %9.1fs %7s  %s\n", p.model().c_str(),
                static_cast<unsigned long long>(depth[0]), static_cast<unsigned long long>(depth[1]),
                static_cast<unsigned long long>(depth[2]), p.service_rate(), p.oldest_wait_seconds(), level.c_str(),
                shed.empty() ? "-" : shed.c_str());
  }
  std::printf("\n%-24s %-10s %10s %14s %12s %9s\n", "POOL", "CLASS", "OBJECTIVE", "PREDICTED WAIT", "ATTAINMENT",
              "REQUESTS");
  for (const auto& p : a.pools()) {
    for (const auto& c : p.classes()) {
      const std::string wait = std::isinf(c.predicted_wait_seconds()) ? std::string("unknown")
                                                                      : fmtSeconds(c.predicted_wait_seconds());
      const std::string attained =
          c.objective_total() ? fmtPercent(static_cast<double>(c.objective_met()) / static_cast<double>(c.objective_total()))
                              : std::string("-");
      std::printf("%-24s %-10s %10s %14s %12s %9llu\n", p.model().c_str(), c.name().c_str(),
                  fmtSeconds(c.objective_seconds()).c_str(), wait.c_str(), attained.c_str(),
                  static_cast<unsigned long long>(c.objective_total()));
    }
    auto service = [](double s) { return s > 0 ? fmtSeconds(s) : std::string("-"); };  // none answered yet
    std::printf("%-24s service time: %s to the first token (streams), %s to the whole answer\n", "",
                service(p.service_seconds_stream()).c_str(), service(p.service_seconds_whole()).c_str());
  }
  if (backends) {
    std::printf("\n%-24s %9s %8s %12s\n", "BACKEND", "LIMIT", "IN FLIGHT", "BASELINE");
    for (const auto& b : backends->backends()) {
      const std::string limit = b.concurrency_limit() ? std::to_string(b.concurrency_limit()) + (b.limit_learned() ? " learned" : "") : "none";
      std::printf("%-24s %9s %8lld %10.0fms\n", b.name().c_str(), limit.c_str(), static_cast<long long>(b.in_flight()),
                  b.limit_baseline_ms() < 0 ? 0.0 : b.limit_baseline_ms());
    }
  }
  bool tenants = false;
  for (const auto& p : a.pools()) {
    for (const auto& t : p.tenants()) {
      if (!tenants) std::printf("\n%-24s %-24s %14s\n", "POOL", "TENANT", "VIRTUAL TOKENS");
      tenants = true;
      std::printf("%-24s %-24s %14.0f\n", p.model().c_str(), t.tenant().c_str(), t.virtual_tokens());
    }
  }
  bool shed = false;
  for (const auto& p : a.pools()) {
    for (const auto& t : p.shed_tenants()) {
      if (!shed) std::printf("\n%-24s %-24s %14s\n", "POOL", "TENANT", "TURNED AWAY");
      shed = true;
      std::printf("%-24s %-24s %14llu\n", p.model().c_str(), t.tenant().c_str(),
                  static_cast<unsigned long long>(t.shed_total()));
    }
  }
  if (!a.limits().empty()) {
    std::printf("\n%-32s %20s %22s   (%llu refused since the limits were set)\n", "RATE LIMIT SCOPE", "REQUESTS LEFT",
                "TOKENS LEFT", static_cast<unsigned long long>(a.rate_limited_total()));
    for (const auto& l : a.limits()) {
      auto pair = [](double left, double limit) {
        return limit > 0 ? std::to_string(static_cast<long long>(left)) + "/" + std::to_string(static_cast<long long>(limit))
                         : std::string("-");
      };
      std::printf("%-32s %20s %22s\n", l.scope().c_str(), pair(l.requests_remaining(), l.requests_limit()).c_str(),
                  pair(l.tokens_remaining(), l.tokens_limit()).c_str());
    }
  }
}

void printEvents(const v1::BackendList& l) {
  if (l.events().empty()) {
    std::printf("no automatic ejections or back-offs since start\n");
    return;
  }
  for (const auto& e : l.events()) {
    std::printf("%s  %-20s %-11s until %s  %s\n", when(e.ts_ms()).c_str(), e.backend().c_str(), e.kind().c_str(),
                when(e.until_ms()).c_str(), e.reason().c_str());
  }
}

}  // namespace

// "90s", "30m", "1h", "2d" (a bare number is minutes) in milliseconds.
absl::StatusOr<int64_t> parseSince(const std::string& text) {
  size_t used = 0;
  int64_t n = 0;
  try {
    n = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  const std::string unit = text.substr(used);
  const int64_t scale = unit == "s" ? 1000 : unit == "m" || unit.empty() ? 60000 : unit == "h" ? 3600000
                        : unit == "d" ? 86400000 : 0;
  if (used == 0 || n <= 0 || scale == 0) {
    return absl::InvalidArgumentError("--since: \"" + text + "\" is not a duration such as 90s, 30m, 1h or 2d");
  }
  return n * scale;
}

void printUsage(const v1::UsageReport& r) {
  int64_t requests = 0, shed = 0;
  for (const auto& u : r.rows()) {
    requests += u.requests();
    shed += u.shed();
  }
  auto share = [](int64_t part, int64_t whole) { return whole ? 100.0 * static_cast<double>(part) / static_cast<double>(whole) : 0.0; };
  std::printf("%s .. %s\n", when(r.since_ms()).c_str(), when(r.until_ms()).c_str());
  std::printf("%-20s %-24s %10s %7s %12s %12s %8s %7s %10s\n", "TENANT", "MODEL", "REQUESTS", "SHARE", "PROMPT_TOK",
              "COMPL_TOK", "SHED", "OF_SHED", "CACHE_HITS");
  for (const auto& u : r.rows()) {
    std::printf("%-20s %-24s %10lld %6.1f%% %12lld %12lld %8lld %6.1f%% %10lld\n", u.tenant().c_str(),
                u.model().c_str(), static_cast<long long>(u.requests()), share(u.requests(), requests),
                static_cast<long long>(u.prompt_tokens()), static_cast<long long>(u.completion_tokens()),
                static_cast<long long>(u.shed()), share(u.shed(), shed), static_cast<long long>(u.cache_hits()));
  }
  if (r.rows().empty()) std::printf("(no requests in this range)\n");
  if (r.events().empty()) return;
  std::printf("\n%-19s %-16s %-20s %-17s %6s %-22s %-14s %s\n", "WHEN", "TENANT", "MODEL", "ROUTE", "STATUS",
              "REASON", "BACKEND", "TRACE_ID");
  for (const auto& e : r.events()) {
    std::printf("%-19s %-16s %-20s %-17s %6d %-22s %-14s %s\n", when(e.ts_ms()).c_str(), e.tenant().c_str(),
                e.model().c_str(), e.route().c_str(), e.status(), e.reason().c_str(),
                e.backend().empty() ? "-" : e.backend().c_str(), e.trace_id().c_str());
  }
}

void printFleet(const v1::FleetState& f) {
  if (!f.enabled()) {
    std::printf("no fleet: this replica runs alone (set fleet.redis_address, or limits.redis / cache.redis)\n");
    return;
  }
  std::printf("replica %s, Redis %s (%s), config from %s, fleet config v%lld (newest in Redis: %s)\n",
              f.replica_id().c_str(), f.redis_address().c_str(), f.redis_up() ? "up" : "DOWN",
              f.config_source().c_str(), static_cast<long long>(f.fleet_version()),
              f.published_version() < 0 ? "none" : std::to_string(f.published_version()).c_str());
  std::printf("backends' configured concurrency and (while Redis is down) rate limits divided by %u (%s)\n",
              f.replicas(), f.counted() ? "replicas live in the registry" : "fleet.replicas or the last count read");
  std::printf("%-28s %-26s %-22s %8s %7s %-19s %s\n", "REPLICA", "URL", "CONTROL", "VERSION", "FLEET_V", "SEEN",
              "NOTE");
  for (const auto& m : f.members()) {
    std::string note;
    if (m.id() == f.replica_id()) note = "this one";
    if (m.fleet_version() != f.fleet_version()) note += std::string(note.empty() ? "" : "; ") + "OTHER FLEET VERSION";
    if (!m.limits_redis_up()) note += std::string(note.empty() ? "" : "; ") + "limits local";
    std::printf("%-28s %-26s %-22s %8lld %7lld %-19s %s\n", m.id().c_str(), m.url().c_str(),
                m.control().empty() ? "-" : m.control().c_str(), static_cast<long long>(m.config_version()),
                static_cast<long long>(m.fleet_version()), when(m.seen_ms()).c_str(), note.c_str());
  }
  if (f.members().empty()) std::printf("(the registry could not be read)\n");
  std::printf("configs: %llu published, %llu followed, %llu failed to follow, %llu not published, %llu refilled\n",
              static_cast<unsigned long long>(f.published()), static_cast<unsigned long long>(f.followed()),
              static_cast<unsigned long long>(f.follow_failures()),
              static_cast<unsigned long long>(f.publish_failures()), static_cast<unsigned long long>(f.refills()));
}

int main(int argc, char** argv) {
  po::options_description opts(kUsage);
  std::string addr, token, token_file, ca, server_name, cert, key, comment, action, actor;
  int64_t base = 0;
  unsigned limit = 50, minutes = 10, interval_ms = 1000, count = 0, timeout_ms = 10000;
  std::vector<std::string> args;
  std::string model, tenant;
  std::vector<std::string> gpu_specs, demand_specs;
  unsigned alternatives = 3, events = 0;
  std::string since = "1h";
  opts.add_options()
      ("help,h", "show this help")
      ("version", "print the version and exit")
      ("addr", po::value(&addr), "engine control address HOST:PORT")
      ("token", po::value(&token), "bearer token")
      ("token-file", po::value(&token_file), "file holding the bearer token")
      ("ca", po::value(&ca), "PEM certificate(s) to trust; implies TLS")
      ("tls", "use TLS with the system's trusted roots")
      ("server-name", po::value(&server_name), "name expected in the engine's certificate")
      ("cert", po::value(&cert), "client certificate (mutual TLS)")
      ("key", po::value(&key), "client key (mutual TLS)")
      ("timeout-ms", po::value(&timeout_ms)->default_value(timeout_ms), "per-call deadline")
      ("json", "print JSON instead of tables")
      ("comment", po::value(&comment), "config apply/rollback: why")
      ("base", po::value(&base), "config apply/rollback: refuse if the running version is not this")
      ("dry-run", "config apply: validate and diff only")
      ("limit", po::value(&limit)->default_value(limit), "history/audit: how many")
      ("action", po::value(&action), "audit: action prefix, e.g. config.")
      ("actor", po::value(&actor), "audit: only this actor")
      ("minutes", po::value(&minutes)->default_value(minutes), "history: how far back")
      ("interval-ms", po::value(&interval_ms)->default_value(interval_ms), "watch: refresh interval")
      ("count", po::value(&count)->default_value(count), "watch: stop after N snapshots (0 = until Ctrl-C)")
      ("model", po::value(&model), "cache purge, usage: the model")
      ("tenant", po::value(&tenant), "cache lookup/purge, usage: the tenant (API key name or client address)")
      ("since", po::value(&since)->default_value(since), "usage: how far back (90s, 30m, 1h, 2d)")
      ("events", po::value(&events)->default_value(events), "usage: also the newest N refused/failed/degraded requests")
      ("completions", "cache lookup: FILE is a /v1/completions body")
      ("gpu", po::value(&gpu_specs)->composing(), "gpu plan: GPU model, optionally xCOUNT (repeatable)")
      ("demand", po::value(&demand_specs)->composing(), "gpu plan: NAME:PRIORITY:MEMORY_GB:SHARE (repeatable)")
      ("alternatives", po::value(&alternatives)->default_value(alternatives), "gpu plan: layouts to show")
      ("args", po::value(&args), "command and arguments");
  po::positional_options_description pos;
  pos.add("args", -1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(opts).positional(pos).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "spillctl: " << e.what() << "\n";
    return 2;
  }
  if (vm.count("version")) {
    std::cout << "spillctl " << SPILLWAY_VERSION << "\n";
    return 0;
  }
  if (vm.count("help") || args.empty()) {
    std::cout << opts << "\n";
    return args.empty() && !vm.count("help") ? 2 : 0;
  }
  const bool as_json = vm.count("json") > 0;
  const std::string cmd = args[0];
  const std::string sub = args.size() > 1 ? args[1] : "";

  if (cmd == "hash-token") {
    std::string t = sub;
    if (t.empty()) std::getline(std::cin, t);
    std::cout << control::TokenAuthority::sha256Hex(t) << "\n";
    return 0;
  }

  auto file = configFile();
  auto pick = [&](std::string flag, const char* env_name, const char* file_key) {
    if (!flag.empty()) return flag;
    if (auto e = env(env_name); !e.empty()) return e;
    auto it = file.find(file_key);
    return it == file.end() ? std::string() : it->second;
  };
  control::GrpcClientOptions o;
  o.address = pick(addr, "SPILLCTL_ADDR", "addr");
  if (o.address.empty()) o.address = "127.0.0.1:50051";
  o.token = pick(token, "SPILLCTL_TOKEN", "token");
  if (o.token.empty()) {
    std::string tf = pick(token_file, "SPILLCTL_TOKEN_FILE", "token_file");
    if (!tf.empty()) {
      auto t = control::readTokenFile(tf);
      if (!t.ok()) return fail(t.status());
      o.token = *t;
    }
  }
  o.ca_file = pick(ca, "SPILLCTL_CA", "ca");
  o.server_name = pick(server_name, "SPILLCTL_SERVER_NAME", "server_name");
  o.tls = vm.count("tls") > 0;
  o.client_cert_file = cert;
  o.client_key_file = key;
  o.timeout = std::chrono::milliseconds(timeout_ms);
  auto client = control::GrpcEngineClient::connect(o);
  if (!client.ok()) return fail(client.status());
  auto& c = **client;

  if (cmd == "status") {
    auto s = c.status();
    if (!s.ok()) return fail(s.status());
    if (as_json) {
      std::cout << json(*s);
    } else {
      std::printf("spillway %s, up %.0f s, config v%lld, %s, backends %u/%u available, serving %s\n",
                  s->version().c_str(), s->uptime_ms() / 1000.0, static_cast<long long>(s->config_version()),
                  s->ready() ? "ready" : "NOT READY", s->backends_available(), s->backends_total(),
                  s->listen_url().c_str());
      const auto& o = s->overload();
      const unsigned long long refused =
          o.refused_connections() + o.refused_per_client() + o.refused_requests() + o.refused_memory();
      std::printf("gateway limits: %lld/%lld connections, %lld active requests%s%s%s; refused %llu "
                  "(connections %llu, per client %llu, requests %llu, memory %llu)\n",
                  static_cast<long long>(o.open_connections()), static_cast<long long>(o.max_connections()),
                  static_cast<long long>(o.active_requests()),
                  o.max_active_requests() ? ("/" + std::to_string(o.max_active_requests())).c_str() : "",
                  o.memory_budget_bytes()
                      ? (", memory " + std::to_string(o.memory_bytes() >> 20) + "/" +
                         std::to_string(o.memory_budget_bytes() >> 20) + " MiB").c_str()
                      : "",
                  o.keep_alive_off() ? ", NEAR LIMIT (keep-alive off)" : "", refused,
                  static_cast<unsigned long long>(o.refused_connections()),
                  static_cast<unsigned long long>(o.refused_per_client()),
                  static_cast<unsigned long long>(o.refused_requests()),
                  static_cast<unsigned long long>(o.refused_memory()));
      if (!s->metrics_url().empty()) std::printf("metrics: %s/metrics\n", s->metrics_url().c_str());
      if (const auto& t = s->tls(); t.enabled()) {
        std::printf("front TLS: %s, expires in %.0f days%s%s%s\n", t.subject().c_str(),
                    (t.not_after_unix() - static_cast<double>(std::time(nullptr))) / 86400.0,
                    t.client_certificates_required() ? ", client certificates required"
                    : t.client_certificates()        ? ", client certificates accepted"
                                                     : "",
                    t.last_error().empty() ? "" : "; LAST RELOAD FAILED: ", t.last_error().c_str());
      } else {
        std::printf("front TLS: off (plain HTTP)\n");
      }
    }
    return 0;
  }
  if (cmd == "config") {
    if (sub == "get") {
      auto v = c.getConfig();
      if (!v.ok()) return fail(v.status());
      if (as_json) std::cout << json(*v);
      else std::cout << "# config version " << v->version() << "\n" << json(v->config());
      return 0;
    }
    if (sub == "history") {
      auto l = c.listConfigVersions(limit);
      if (!l.ok()) return fail(l.status());
      if (as_json) {
        std::cout << json(*l);
        return 0;
      }
      for (const auto& v : l->versions()) {
        std::printf("%s v%-4lld %s  %-12s %s\n", v.active() ? "*" : " ", static_cast<long long>(v.id()),
                    when(v.created_ms()).c_str(), v.author().c_str(), v.comment().c_str());
        std::istringstream diff(v.diff());
        for (std::string line; std::getline(diff, line);) std::printf("            %s\n", line.c_str());
      }
      return 0;
    }
    if (sub == "rollback") {
      if (args.size() < 3) return fail(absl::InvalidArgumentError("usage: spillctl config rollback VERSION"));
      v1::RollbackRequest r;
      r.set_version(std::atoll(args[2].c_str()));
      r.set_comment(comment);
      r.set_base_version(base);
      auto res = c.rollback(r);
      if (!res.ok()) return fail(res.status());
      if (as_json) std::cout << json(*res);
      else std::printf("rolled back: now config v%lld\n", static_cast<long long>(res->version()));
      return 0;
    }
    if (sub == "validate" || sub == "diff" || sub == "apply") {
      if (args.size() < 3) return fail(absl::InvalidArgumentError("usage: spillctl config " + sub + " FILE"));
      auto src = readSource(args[2]);
      if (!src.ok()) return fail(src.status());
      if (sub == "validate") {
        auto r = c.validateConfig(*src);
        if (!r.ok()) return fail(r.status());
        if (as_json) std::cout << json(*r);
        else if (r->valid()) std::cout << args[2] << ": ok\n";
        for (const auto& e : r->errors()) {
          if (!as_json) std::cerr << e << "\n";
        }
        return r->valid() ? 0 : 3;
      }
      if (sub == "diff") {
        auto r = c.diffConfig(*src);
        if (!r.ok()) return fail(r.status());
        if (as_json) std::cout << json(*r);
        else if (r->lines().empty()) std::cout << "no changes against v" << r->against_version() << "\n";
        else for (const auto& l : r->lines()) std::cout << l << "\n";
        return 0;
      }
      v1::ApplyConfigRequest req;
      *req.mutable_source() = *src;
      req.set_comment(comment);
      req.set_base_version(base);
      req.set_dry_run(vm.count("dry-run") > 0);
      auto r = c.applyConfig(req);
      if (!r.ok()) return fail(r.status());
      if (as_json) {
        std::cout << json(*r);
        return 0;
      }
      printApplied(*r, req.dry_run());
      return 0;
    }
    return fail(absl::InvalidArgumentError("unknown config command \"" + sub + "\" (get, validate, diff, apply, history, rollback)"));
  }
  if (cmd == "backends" || cmd == "drain" || cmd == "undrain" || cmd == "eject" || cmd == "readmit" ||
      cmd == "weight") {
    absl::StatusOr<v1::BackendList> l;
    const std::string arg = args.size() > 2 ? args[2] : "";
    if (cmd == "backends") {
      l = c.listBackends();
    } else if (cmd == "eject" || cmd == "readmit") {
      if (sub.empty()) return fail(absl::InvalidArgumentError("usage: spillctl " + cmd + " NAME"));
      v1::EjectBackendRequest r;
      r.set_name(sub);
      if (cmd == "eject") {
        char* end = nullptr;
        const double seconds = arg.empty() ? 30 : std::strtod(arg.c_str(), &end);
        if (!arg.empty() && (end == arg.c_str() || *end != '\0' || seconds <= 0 || seconds > 86400)) {
          return fail(absl::InvalidArgumentError("eject: SECONDS must be a number in (0, 86400], got \"" + arg + "\""));
        }
        r.set_duration_ms(static_cast<uint32_t>(seconds * 1000));
      }
      l = c.ejectBackend(r);
    } else if (cmd == "weight") {
      if (sub.empty() || arg.empty()) return fail(absl::InvalidArgumentError("usage: spillctl weight NAME N|default"));
      v1::SetBackendWeightRequest r;
      r.set_name(sub);
      if (arg == "default") {
        r.set_clear(true);
      } else {
        char* end = nullptr;
        const long w = std::strtol(arg.c_str(), &end, 10);
        if (end == arg.c_str() || *end != '\0' || w < 0 || w > 10000) {
          return fail(absl::InvalidArgumentError("weight: N must be an integer in 0..10000 or \"default\", got \"" + arg + "\""));
        }
        r.set_weight(static_cast<uint32_t>(w));
      }
      l = c.setBackendWeight(r);
    } else {
      if (sub.empty()) return fail(absl::InvalidArgumentError("usage: spillctl " + cmd + " NAME"));
      l = c.setBackendDrained(sub, cmd == "drain");
    }
    if (!l.ok()) return fail(l.status());
    if (as_json) {
      std::cout << json(*l);
    } else {
      printBackends(*l);
      std::printf("\n");
      printPools(*l);
    }
    return 0;
  }
  if (cmd == "routes") {
    auto v = c.getConfig();
    if (!v.ok()) return fail(v.status());
    if (as_json) std::cout << json(v->config().api());
    else printRoutes(v->config());
    return 0;
  }
  if (cmd == "pools" || cmd == "events") {
    auto l = c.listBackends();
    if (!l.ok()) return fail(l.status());
    if (as_json) std::cout << json(*l);
    else if (cmd == "pools") printPools(*l);
    else printEvents(*l);
    return 0;
  }
  if (cmd == "admission") {
    auto a = c.getAdmission();
    if (!a.ok()) return fail(a.status());
    if (as_json) {
      std::cout << json(*a);
      return 0;
    }
    auto l = c.listBackends();
    printAdmission(*a, l.ok() ? &*l : nullptr);
    return 0;
  }
  if (cmd == "degrade") {
    const std::string level = args.size() > 2 ? args[2] : "";
    int n = -2;
    if (level == "auto") n = -1;
    else if (level.size() == 1 && level[0] >= '0' && level[0] <= '3') n = level[0] - '0';
    if (sub.empty() || n == -2) return fail(absl::InvalidArgumentError("usage: spillctl degrade MODEL 0|1|2|3|auto"));
    v1::PinDegradationRequest r;
    r.set_model(sub);
    r.set_level(n);
    auto a = c.pinDegradation(r);
    if (!a.ok()) return fail(a.status());
    if (as_json) {
      std::cout << json(*a);
      return 0;
    }
    for (const auto& p : a->pools()) {
      if (p.model() != sub) continue;
      if (p.pinned_level() >= 0) std::printf("%s: degradation pinned at level %d\n", sub.c_str(), p.pinned_level());
      else std::printf("%s: degradation automatic, level %d now\n", sub.c_str(), p.degradation_level());
    }
    return 0;
  }
  if (cmd == "gpu") {
    if (sub.empty() || sub == "list") {
      auto g = c.listGpus();
      if (!g.ok()) return fail(g.status());
      if (as_json) std::cout << json(*g);
      else printGpus(*g);
      return 0;
    }
    if (sub == "plan") {
      v1::PlanLayoutRequest r;
      for (const auto& spec : gpu_specs) {
        std::string m;
        uint32_t n = 1;
        if (auto err = gpu::parseGpus(spec, m, n); !err.empty()) return fail(absl::InvalidArgumentError("--gpu: " + err));
        auto* g = r.add_gpus();
        g->set_model(m);
        g->set_count(n);
      }
      for (const auto& spec : demand_specs) {
        gpu::Demand d;
        if (auto err = gpu::parseDemand(spec, d); !err.empty()) return fail(absl::InvalidArgumentError("--demand: " + err));
        auto* m = r.add_demands();
        m->set_name(d.name);
        m->set_priority(d.priority);
        m->set_memory_gb(d.memory_gb);
        m->set_share(d.share);
      }
      if (r.demands_size() == 0) {
        return fail(absl::InvalidArgumentError("gpu plan needs at least one --demand NAME:PRIORITY:MEMORY_GB:SHARE"));
      }
      r.set_alternatives(alternatives);
      auto p = c.planLayout(r);
      if (!p.ok()) return fail(p.status());
      if (as_json) std::cout << json(*p);
      else std::cout << p->text();
      return 0;
    }
    return fail(absl::InvalidArgumentError("usage: spillctl gpu list | gpu plan --demand ... [--gpu MODEL[xN]]"));
  }
  if (cmd == "cache") {
    if (sub.empty() || sub == "stats") {
      auto s = c.getCache();
      if (!s.ok()) return fail(s.status());
      if (as_json) std::cout << json(*s);
      else printCache(*s);
      return 0;
    }
    if (sub == "lookup") {
      const std::string path = args.size() > 2 ? args[2] : "";
      if (path.empty()) return fail(absl::InvalidArgumentError("usage: spillctl cache lookup FILE|- [--tenant T]"));
      std::string body;
      if (path == "-") {
        body.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
      } else {
        auto text = control::readFile(path);
        if (!text.ok()) return fail(text.status());
        body = *text;
      }
      v1::LookupCacheRequest r;
      r.set_body(body);
      r.set_tenant(tenant);
      r.set_completions(vm.count("completions") > 0);
      auto l = c.lookupCache(r);
      if (!l.ok()) return fail(l.status());
      if (as_json) {
        std::cout << json(*l);
        return 0;
      }
      std::printf("key %s (%s)\n", l->key().c_str(),
                  l->cacheable() ? "cacheable" : "not cacheable under cache.mode without x-spillway-cache: on");
      if (!l->found()) {
        std::printf("not cached\n");
      } else {
        std::printf("cached in %s: %s, %s, %s\n", l->tier().c_str(), l->form().c_str(), bytesText(l->bytes()).c_str(),
                    l->stale() ? "STALE (past its TTL, within the grace)" : "fresh");
      }
      return 0;
    }
    if (sub == "purge" || sub == "flush") {
      v1::PurgeCacheRequest r;
      if (sub == "purge") {
        if (model.empty() && tenant.empty()) {
          return fail(absl::InvalidArgumentError("usage: spillctl cache purge --model M and/or --tenant T (or: cache flush)"));
        }
        r.set_model(model);
        r.set_tenant(tenant);
      } else {
        r.set_all(true);
      }
      auto p = c.purgeCache(r);
      if (!p.ok()) return fail(p.status());
      if (as_json) std::cout << json(*p);
      else std::printf("%llu entries removed\n", static_cast<unsigned long long>(p->purged()));
      return 0;
    }
    return fail(absl::InvalidArgumentError("unknown cache command \"" + sub + "\" (stats, lookup, purge, flush)"));
  }
  if (cmd == "balance") {
    const std::string policy = args.size() > 2 ? args[2] : "";
    if (sub.empty() || policy.empty()) return fail(absl::InvalidArgumentError("usage: spillctl balance MODEL POLICY"));
    auto req = control::poolPolicyChange(c, sub, policy);
    if (!req.ok()) return fail(absl::Status(req.status().code(), "balance: " + std::string(req.status().message())));
    if (!comment.empty()) req->set_comment(comment);
    req->set_dry_run(vm.count("dry-run") > 0);
    auto r = c.applyConfig(*req);
    if (!r.ok()) return fail(r.status());
    printApplied(*r, req->dry_run());
    return 0;
  }
  if (cmd == "audit") {
    v1::ListAuditEventsRequest r;
    r.set_action_prefix(action);
    r.set_actor(actor);
    r.set_limit(limit);
    auto l = c.listAuditEvents(r);
    if (!l.ok()) return fail(l.status());
    if (as_json) {
      std::cout << json(*l);
      return 0;
    }
    for (const auto& e : l->events()) {
      std::printf("%s  %-18s %-18s %-10s %-28s %s\n", when(e.ts_ms()).c_str(), e.actor().c_str(), e.action().c_str(),
                  e.target().c_str(), e.outcome().c_str(), e.detail().c_str());
    }
    return 0;
  }
  if (cmd == "usage") {
    auto back = parseSince(since);
    if (!back.ok()) return fail(back.status());
    v1::GetUsageRequest r;
    const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch()).count();
    r.set_since_ms(now - *back);
    r.set_until_ms(now);
    r.set_tenant(tenant);
    r.set_model(model);
    r.set_events_limit(events);
    auto u = c.getUsage(r);
    if (!u.ok()) return fail(u.status());
    if (as_json) std::cout << json(*u);
    else printUsage(*u);
    return 0;
  }
  if (cmd == "fleet") {
    auto f = c.getFleet();
    if (!f.ok()) return fail(f.status());
    if (as_json) std::cout << json(*f);
    else printFleet(*f);
    return 0;
  }
  if (cmd == "history") {
    if (sub.empty()) return fail(absl::InvalidArgumentError("usage: spillctl history SERIES"));
    v1::QueryHistoryRequest r;
    r.set_series(sub);
    const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch()).count();
    r.set_from_ms(now - int64_t{minutes} * 60000);
    r.set_to_ms(now);
    auto h = c.queryHistory(r);
    if (!h.ok()) return fail(h.status());
    if (as_json) std::cout << json(*h);
    else for (const auto& p : h->points()) std::printf("%s  %g\n", when(p.ts_ms()).c_str(), p.value());
    return 0;
  }
  if (cmd == "watch") {
    unsigned seen = 0;
    auto st = c.watch(std::chrono::milliseconds(interval_ms), [&](const v1::MetricsSnapshot& s) {
      if (as_json) {
        std::cout << json(s) << std::flush;
      } else {
        std::printf("\033[2J\033[H%s  %.1f req/s  errors %.2f%%  p50 %.1f ms  p99 %.1f ms  TTFT p95 %.1f ms  in-flight %lld\n\n",
                    when(s.ts_ms()).c_str(), s.requests_per_second(), s.error_rate() * 100,
                    s.latency_p50_seconds() * 1e3, s.latency_p99_seconds() * 1e3, s.ttft_p95_seconds() * 1e3,
                    static_cast<long long>(s.in_flight()));
        v1::BackendList l;
        *l.mutable_backends() = s.backends();
        printBackends(l);
        std::fflush(stdout);
      }
      return count == 0 || ++seen < count;
    });
    return st.ok() ? 0 : fail(st);
  }
  return fail(absl::InvalidArgumentError("unknown command \"" + cmd + "\"; see spillctl --help"));
}

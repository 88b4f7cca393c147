#include "control/local_client.h"

#include <algorithm>

#include "common/clock.h"
#include "common/mutex.h"
#include "config/config_loader.h"
#include "config/diff.h"
#include "config/validate.h"
#include "control/gpu_messages.h"
#include "pipeline/priority.h"

namespace spillway::control {

LocalEngineClient::LocalEngineClient(Engine& engine, std::string actor)
    : engine_(engine), actor_(std::move(actor)), previous_(engine.totals()) {}

v1::Config LocalEngineClient::redacted(v1::Config c) {
  for (auto& b : *c.mutable_backends()) {
    if (!b.api_key().empty()) b.set_api_key("");
  }
  return c;
}

namespace {

v1::CacheState cacheState(Engine& e) {
  const CacheStatus c = e.cache();
  v1::CacheState out;
  out.set_enabled(c.enabled);
  out.set_mode(c.mode);
  out.set_scope(c.scope);
  for (const auto& t : c.tiers) {
    auto* p = out.add_tiers();
    p->set_tier(t.tier);
    p->set_enabled(t.enabled);
    p->set_entries(t.entries);
    p->set_bytes(t.bytes);
    p->set_hits_total(t.hits);
    p->set_evictions_total(t.evictions);
    p->set_errors_total(t.errors);
    p->set_skipped_total(t.skipped);
    p->set_detail(t.detail);
  }
  out.set_hits_total(c.hits);
  out.set_misses_total(c.misses);
  out.set_bypass_total(c.bypasses);
  out.set_coalesced_total(c.coalesced);
  out.set_stale_total(c.stale);
  out.set_stores_total(c.stores);
  out.set_bloom_skips_total(c.bloom_skips);
  out.set_bloom_false_positive_rate(c.bloom_fp_estimate);
  out.set_bloom_bits(c.bloom_bits);
  out.set_flights(c.flights);
  out.set_embedding_item_hits_total(c.item_hits);
  out.set_embedding_item_misses_total(c.item_misses);
  return out;
}

v1::AdmissionState admissionState(Engine& e) {
  const AdmissionStatus a = e.admission();
  v1::AdmissionState out;
  out.set_enabled(a.enabled);
  for (const auto& p : a.pools) {
    auto* s = out.add_pools();
    s->set_model(p.model);
    for (int c = 0; c < 3; ++c) {
      auto* q = s->add_classes();
      q->set_name(std::string(pipeline::priorityName(static_cast<pipeline::Priority>(c))));
      q->set_depth(p.depth[c]);
      q->set_objective_seconds(p.objective_seconds[c]);
      q->set_predicted_wait_seconds(p.predicted_wait_seconds[c]);
      q->set_objective_met(p.objective_met[c]);
      q->set_objective_total(p.objective_total[c]);
    }
    s->set_service_seconds_whole(p.service_seconds[0]);
    s->set_service_seconds_stream(p.service_seconds[1]);
    for (const auto& [reason, n] : p.shed) (*s->mutable_shed())[reason] = n;
    s->set_service_rate(p.service_rate);
    s->set_oldest_wait_seconds(p.oldest_wait_seconds);
    s->set_degradation_level(p.level);
    s->set_pinned_level(p.pinned);
    s->set_automatic_level(p.automatic);
    for (const auto& [tenant, v] : p.tenants) {
      auto* t = s->add_tenants();
      t->set_tenant(tenant);
      t->set_virtual_tokens(v);
    }
    s->set_admitted_total(p.admitted);
    for (const auto& [tenant, n] : p.tenant_sheds) {
      auto* t = s->add_shed_tenants();
      t->set_tenant(tenant);
      t->set_shed_total(n);
    }
  }
  for (const auto& l : a.limits) {
    auto* u = out.add_limits();
    u->set_scope(l.scope);
    u->set_requests_remaining(l.requests_remaining);
    u->set_requests_limit(l.requests_limit);
    u->set_tokens_remaining(l.tokens_remaining);
    u->set_tokens_limit(l.tokens_limit);
  }
  out.set_rate_limited_total(a.rate_limited);
  out.set_redis_configured(a.redis_configured);
  out.set_redis_up(a.redis_up);
  out.set_redis_fallbacks_total(a.redis_fallbacks);
  return out;
}

v1::BackendList backendList(Engine& e) {
  v1::BackendList out;
  for (const auto& b : e.backends()) {
    auto* s = out.add_backends();
    s->set_name(b.name);
    s->set_url(b.url);
    s->set_state(b.state);
    s->set_in_flight(b.in_flight);
    s->set_open_connections(b.open_connections);
    s->set_idle_connections(b.idle_connections);
    for (const auto& p : b.pools) s->add_pools(p);
    s->set_configured_weight(b.configured_weight);
    s->set_weight_overridden(b.weight_override >= 0);
    if (b.weight_override >= 0) s->set_weight_override(static_cast<uint32_t>(b.weight_override));
    s->set_effective_weight(b.weight);
    s->set_max_concurrency(b.max_concurrency);
    s->set_requests_total(b.requests);
    s->set_failures_total(b.failures);
    s->set_ewma_latency_seconds(b.ewma_latency_seconds);
    s->set_last_error(b.last_error);
    s->set_last_error_ms(b.last_error_ms);
    s->set_ejected_until_ms(b.ejected_until_ms);
    s->set_back_off_until_ms(b.back_off_until_ms);
    s->set_back_offs_total(b.back_offs);
    s->set_ejections_total(b.ejections);
    s->set_consecutive_failures(b.consecutive_failures);
    s->set_ewma_ms_per_token(b.ewma_ms_per_token);
    s->set_reported_running(b.reported_running);
    s->set_reported_waiting(b.reported_waiting);
    s->set_reported_cache_usage(b.reported_cache_usage);
    s->set_concurrency_limit(static_cast<uint32_t>(b.concurrency_limit));
    s->set_limit_learned(b.limit_learned);
    s->set_limit_baseline_ms(b.limit_baseline_ms);
  }
  for (const auto& p : e.pools()) {
    auto* s = out.add_pools();
    s->set_model(p.model);
    s->set_policy(p.policy);
    for (const auto& b : p.backends) s->add_backends(b);
    for (double v : p.scores) s->add_scores(v);
    s->set_active_requests(p.active_requests);
    s->set_retries_in_progress(p.retries_in_progress);
  }
  for (const auto& ev : e.backendEvents()) {
    auto* s = out.add_events();
    s->set_ts_ms(ev.ts_ms);
    s->set_backend(ev.backend);
    s->set_kind(ev.kind);
    s->set_reason(ev.reason);
    s->set_until_ms(ev.until_ms);
  }
  return out;
}

void addFigure(v1::MetricsSnapshot& out, const char* key, const char* title, double value, const char* unit) {
  auto* f = out.add_figures();
  f->set_key(key);
  f->set_title(title);
  f->set_value(value);
  f->set_unit(unit);
}

v1::ApplyConfigResponse toResponse(const ApplyResult& r) {
  v1::ApplyConfigResponse out;
  out.set_version(r.version);
  for (const auto& l : r.diff) out.add_diff(l);
  for (const auto& n : r.notes) out.add_notes(n);
  return out;
}

}  // namespace

absl::StatusOr<v1::Config> LocalEngineClient::resolve(const v1::ConfigSource& source,
                                                      std::vector<std::string>* errors) {
  if (source.has_config()) {
    for (const auto& e : config::validate(source.config())) errors->push_back(e.toString());
    return source.config();
  }
  auto loaded = config::loadYaml(source.yaml(), source.file().empty() ? "config.yaml" : source.file());
  for (const auto& e : loaded.errors) errors->push_back(e.toString());
  return loaded.config;
}

absl::StatusOr<v1::Status> LocalEngineClient::status() {
  v1::Status s;
  s.set_version(SPILLWAY_VERSION);
  s.set_uptime_ms(engine_.uptimeMs());
  s.set_config_version(engine_.configVersion());
  s.set_listen_url(engine_.url());
  s.set_metrics_url(engine_.metricsUrl());
  uint32_t available = 0;
  auto backends = engine_.backends();
  for (const auto& b : backends) available += b.available;
  s.set_backends_total(static_cast<uint32_t>(backends.size()));
  s.set_backends_available(available);
  s.set_ready(available > 0);
  const GatewayOverloadStatus o = engine_.overload();
  auto* ov = s.mutable_overload();
  ov->set_open_connections(o.open_connections);
  ov->set_max_connections(o.max_connections);
  ov->set_active_requests(o.active_requests);
  ov->set_max_active_requests(o.max_active_requests);
  ov->set_memory_bytes(o.memory_bytes);
  ov->set_memory_budget_bytes(o.memory_budget_bytes);
  ov->set_keep_alive_off(o.keep_alive_off);
  ov->set_refused_connections(o.refused_connections);
  ov->set_refused_per_client(o.refused_per_client);
  ov->set_refused_requests(o.refused_requests);
  ov->set_refused_memory(o.refused_memory);
  const FrontTlsStatus t = engine_.frontTls();
  auto* tls = s.mutable_tls();
  tls->set_enabled(t.enabled);
  tls->set_subject(t.subject);
  tls->set_not_after_unix(t.not_after_unix);
  tls->set_client_certificates(t.client_certificates);
  tls->set_client_certificates_required(t.client_certificates_required);
  tls->set_reloaded_unix(t.reloaded_unix);
  tls->set_last_error(t.last_error);
  return s;
}

void LocalEngineClient::rebase(EngineTotals baseline) {
  common::MutexLock lock(mu_);
  previous_ = std::move(baseline);
}

absl::StatusOr<v1::MetricsSnapshot> LocalEngineClient::snapshot() {
  EngineTotals now = engine_.totals();
  EngineTotals before;
  {
    common::MutexLock lock(mu_);
    before = std::move(previous_);
    previous_ = now;
  }
  IntervalStats s = intervalStats(before, now);
  v1::MetricsSnapshot out;
  out.set_ts_ms(now.ts_ms);
  out.set_requests_total(now.requests);
  out.set_errors_total(now.errors);
  out.set_requests_per_second(s.requests_per_second);
  out.set_error_rate(s.error_rate);
  out.set_in_flight(now.in_flight);
  out.set_latency_mean_seconds(s.latency_mean_seconds);
  out.set_latency_p50_seconds(s.latency_p50_seconds);
  out.set_latency_p99_seconds(s.latency_p99_seconds);
  out.set_ttft_p95_seconds(s.ttft_p95_seconds);
  v1::BackendList list = backendList(engine_);
  *out.mutable_backends() = std::move(*list.mutable_backends());
  *out.mutable_pools() = std::move(*list.mutable_pools());
  const int events = list.events_size();
  for (int i = std::max(0, events - 50); i < events; ++i) *out.add_events() = list.events(i);
  out.set_retries_total(now.retries);
  // Overview tiles (the figures mechanism): resilience at a glance.
  int out_of_rotation = 0;
  for (const auto& b : out.backends()) out_of_rotation += b.state() == "ejected" || b.state() == "backing_off";
  addFigure(out, "retries_per_second", "Retries", s.retries_per_second, "req/s");
  addFigure(out, "backends_out", "Ejected / backing off", out_of_rotation, "");
  // The gateway's own limits: connections open, and what they turned away
  // (the console's banner fires on a refusal or while keep-alive is off).
  const GatewayOverloadStatus overload = engine_.overload();
  addFigure(out, "gateway_connections", "Client connections", static_cast<double>(overload.open_connections), "");
  addFigure(out, "gateway_refused_per_second", "Refused by gateway limits", s.overload_refused_per_second, "req/s");
  addFigure(out, "gateway_keep_alive_off", "Gateway near its limits", overload.keep_alive_off ? 1 : 0, "");
  // HTTPS at the front door: the certificate's time left (the banner fires
  // inside 14 days) and a renewal that could not be used.
  if (const FrontTlsStatus tls = engine_.frontTls(); tls.enabled) {
    const double now_s = static_cast<double>(out.ts_ms()) / 1000.0;
    addFigure(out, "tls_days_left", "TLS certificate", (static_cast<double>(tls.not_after_unix) - now_s) / 86400.0,
              "days left");
    addFigure(out, "tls_reload_failed", "TLS reload failed", tls.last_error.empty() ? 0 : 1, "");
  }
  // Admission at a glance: waiting now, turned away and degraded per second.
  *out.mutable_admission() = admissionState(engine_);
  out.set_shed_total(now.shed);
  out.set_degraded_total(now.degraded);
  // What the fleet said and what clients got instead: busy answers the
  // gateway absorbed (requeued, never relayed), requests waiting, sheds
  // with Retry-After, degraded answers.
  addFigure(out, "requeued_per_second", "Busy answers absorbed", s.requeued_per_second, "req/s");
  addFigure(out, "queued", "Queued", static_cast<double>(now.queued), "req");
  addFigure(out, "shed_per_second", "Shed (429)", s.shed_per_second, "req/s");
  addFigure(out, "degraded_per_second", "Degraded", s.degraded_per_second, "req/s");
  // The cache at a glance: hit ratio overall and per tier over the interval
  // (0 when nothing cacheable arrived), and requests sharing an upstream call.
  *out.mutable_cache() = cacheState(engine_);
  auto ratio = [](double r) { return std::max(0.0, r); };
  addFigure(out, "cache_hit_ratio", "Cache hits", ratio(s.cache_hit_ratio), "%");
  addFigure(out, "cache_memory_hit_ratio", "Cache hits: memory", ratio(s.cache_tier_hit_ratio[0]), "%");
  addFigure(out, "cache_disk_hit_ratio", "Cache hits: disk", ratio(s.cache_tier_hit_ratio[1]), "%");
  if (out.cache().tiers_size() > 2 && out.cache().tiers(2).enabled()) {
    addFigure(out, "cache_redis_hit_ratio", "Cache hits: Redis", ratio(s.cache_tier_hit_ratio[2]), "%");
  }
  // GPUs: the busiest one's utilisation feeds the console's GPU alert.
  *out.mutable_gpu() = gpuState(engine_.gpus());
  if (auto peak = peakGpuUtilisation(out.gpu())) addFigure(out, "gpu_utilisation", "GPU utilisation", *peak, "%");
  addFigure(out, "coalesced_per_second", "Coalesced", s.coalesced_per_second, "req/s");
  // Traffic by endpoint, and the embedding inputs the cache answered.
  addFigure(out, "chat_per_second", "Chat + completions", s.endpoint_per_second[0], "req/s");
  addFigure(out, "embeddings_per_second", "Embeddings", s.endpoint_per_second[1], "req/s");
  addFigure(out, "responses_per_second", "Responses API", s.endpoint_per_second[2], "req/s");
  addFigure(out, "passthrough_per_second", "Passthrough", s.endpoint_per_second[3], "req/s");
  addFigure(out, "embedding_item_hit_ratio", "Cache hits: embedding inputs", ratio(s.embedding_item_hit_ratio), "%");
  // Latency objectives: each class's share answered in full inside its
  // objective (the last interval; a class with no requests shows 100 %).
  static constexpr const char* kAttainment[3][2] = {{"objective_critical", "Within objective: critical"},
                                                    {"objective_standard", "Within objective: standard"},
                                                    {"objective_sheddable", "Within objective: sheddable"}};
  for (int c = 0; c < 3; ++c) {
    const double a = s.objective_attainment[c];
    addFigure(out, kAttainment[c][0], kAttainment[c][1], a < 0 ? 1.0 : a, "%");
  }
  return out;
}

absl::StatusOr<v1::ConfigView> LocalEngineClient::getConfig() {
  v1::ConfigView v;
  v.set_version(engine_.configVersion());
  *v.mutable_config() = redacted(engine_.config());
  return v;
}

absl::StatusOr<v1::ValidationResult> LocalEngineClient::validateConfig(const v1::ConfigSource& source) {
  std::vector<std::string> errors;
  auto c = resolve(source, &errors);
  if (!c.ok()) return c.status();
  v1::ValidationResult r;
  r.set_valid(errors.empty());
  for (auto& e : errors) r.add_errors(std::move(e));
  return r;
}

absl::StatusOr<v1::DiffResult> LocalEngineClient::diffConfig(const v1::ConfigSource& source) {
  std::vector<std::string> errors;
  auto c = resolve(source, &errors);
  if (!c.ok()) return c.status();
  std::string joined;
  for (const auto& e : errors) joined += e + "\n";
  if (!errors.empty()) return absl::InvalidArgumentError(joined);
  v1::Config proposed = *c;
  config::applyDefaults(proposed);
  v1::DiffResult r;
  r.set_against_version(engine_.configVersion());
  for (const auto& l : config::diffMessages(engine_.config(), proposed)) r.add_lines(l);
  return r;
}

absl::StatusOr<v1::ApplyConfigResponse> LocalEngineClient::applyConfig(const v1::ApplyConfigRequest& request) {
  std::vector<std::string> errors;
  auto c = resolve(request.source(), &errors);
  if (!c.ok()) return c.status();
  if (!errors.empty()) {
    std::string joined;
    for (const auto& e : errors) joined += e + "\n";
    engine_.recordAudit(actor_, "config.apply", "", request.comment(), "failed: invalid config");
    return absl::InvalidArgumentError(joined);
  }
  // GetConfig hands out configs with api_key blanked; an empty api_key on a
  // backend that has one means "keep it", so a fetched, edited and
  // re-applied config does not lose its secrets.
  v1::Config proposed = *c;
  const v1::Config running = engine_.config();
  for (auto& b : *proposed.mutable_backends()) {
    if (!b.api_key().empty()) continue;
    for (const auto& rb : running.backends()) {
      if (rb.name() == b.name() && !rb.api_key().empty()) b.set_api_key(rb.api_key());
    }
  }
  ChangeRequest change{actor_, request.comment(), request.base_version() > 0 ? request.base_version() : -1,
                       request.dry_run()};
  auto r = engine_.applyConfig(std::move(proposed), change);
  if (!r.ok()) return r.status();
  return toResponse(*r);
}

absl::StatusOr<v1::ConfigVersionList> LocalEngineClient::listConfigVersions(uint32_t limit) {
  v1::ConfigVersionList out;
  for (const auto& v : engine_.configHistory(limit ? limit : 100)) {
    auto* i = out.add_versions();
    i->set_id(v.id);
    i->set_created_ms(v.created_ms);
    i->set_author(v.author);
    i->set_comment(v.comment);
    i->set_diff(v.diff);
    i->set_based_on(v.based_on);
    i->set_active(v.active);
  }
  return out;
}

absl::StatusOr<v1::ApplyConfigResponse> LocalEngineClient::rollback(const v1::RollbackRequest& request) {
  ChangeRequest change{actor_, request.comment(), request.base_version() > 0 ? request.base_version() : -1, false};
  auto r = engine_.rollback(request.version(), change);
  if (!r.ok()) return r.status();
  return toResponse(*r);
}

absl::StatusOr<v1::BackendList> LocalEngineClient::listBackends() { return backendList(engine_); }

absl::StatusOr<v1::BackendList> LocalEngineClient::setBackendDrained(const std::string& name, bool drained) {
  if (auto st = engine_.setBackendDrained(name, drained, actor_); !st.ok()) return st;
  return backendList(engine_);
}

absl::StatusOr<v1::BackendList> LocalEngineClient::ejectBackend(const v1::EjectBackendRequest& request) {
  if (auto st = engine_.ejectBackend(request.name(), std::chrono::milliseconds(request.duration_ms()), actor_);
      !st.ok()) {
    return st;
  }
  return backendList(engine_);
}

absl::StatusOr<v1::BackendList> LocalEngineClient::setBackendWeight(const v1::SetBackendWeightRequest& request) {
  std::optional<uint32_t> weight;
  if (!request.clear()) weight = request.weight();
  if (auto st = engine_.setBackendWeight(request.name(), weight, actor_); !st.ok()) return st;
  return backendList(engine_);
}

absl::StatusOr<v1::AdmissionState> LocalEngineClient::getAdmission() { return admissionState(engine_); }

absl::StatusOr<v1::CacheState> LocalEngineClient::getCache() { return cacheState(engine_); }

absl::StatusOr<v1::CacheLookup> LocalEngineClient::lookupCache(const v1::LookupCacheRequest& request) {
  auto r = engine_.cacheLookup(request.body(), request.tenant(), request.completions());
  if (!r.ok()) return r.status();
  v1::CacheLookup out;
  out.set_key(r->key);
  out.set_cacheable(r->cacheable);
  out.set_found(r->found);
  out.set_stale(r->stale);
  out.set_tier(r->tier);
  out.set_bytes(r->bytes);
  out.set_created_ms(r->created_ms);
  out.set_expires_ms(r->expires_ms);
  out.set_form(r->form);
  return out;
}

absl::StatusOr<v1::PurgeCacheResponse> LocalEngineClient::purgeCache(const v1::PurgeCacheRequest& request) {
  if (request.model().empty() && request.tenant().empty() && !request.all()) {
    return absl::InvalidArgumentError("name a model or a tenant to purge, or set `all` to flush the whole cache");
  }
  auto n = engine_.purgeCache(request.model(), request.tenant(), actor_);
  if (!n.ok()) return n.status();
  v1::PurgeCacheResponse out;
  out.set_purged(*n);
  *out.mutable_cache() = cacheState(engine_);
  return out;
}

absl::StatusOr<v1::GpuState> LocalEngineClient::listGpus() { return gpuState(engine_.gpus()); }

absl::StatusOr<v1::PlanLayoutResponse> LocalEngineClient::planLayout(const v1::PlanLayoutRequest& request) {
  return control::planLayout(request, *engine_.gpuInventory());
}

absl::StatusOr<v1::AdmissionState> LocalEngineClient::pinDegradation(const v1::PinDegradationRequest& request) {
  if (auto st = engine_.pinDegradation(request.model(), request.level(), actor_); !st.ok()) return st;
  return admissionState(engine_);
}

absl::StatusOr<v1::HistorySeries> LocalEngineClient::queryHistory(const v1::QueryHistoryRequest& request) {
  v1::HistorySeries out;
  out.set_series(request.series());
  const int64_t to = request.to_ms() ? request.to_ms() : INT64_MAX;
  for (const auto& p : engine_.history(request.series(), request.from_ms(), to)) {
    auto* q = out.add_points();
    q->set_ts_ms(p.ts_ms);
    q->set_value(p.value);
  }
  return out;
}

absl::StatusOr<v1::AuditEventList> LocalEngineClient::listAuditEvents(const v1::ListAuditEventsRequest& request) {
  v1::AuditEventList out;
  store::AuditFilter f{request.since_ms(), request.action_prefix(), request.actor(), request.limit() ? request.limit() : 100};
  for (const auto& e : engine_.audit(f)) {
    auto* a = out.add_events();
    a->set_id(e.id);
    a->set_ts_ms(e.ts_ms);
    a->set_actor(e.actor);
    a->set_action(e.action);
    a->set_target(e.target);
    a->set_detail(e.detail);
    a->set_outcome(e.outcome);
  }
  return out;
}

absl::StatusOr<v1::FleetState> LocalEngineClient::getFleet() {
  v1::FleetState out;
  auto f = engine_.fleet();
  if (!f) return out;
  out.set_enabled(true);
  out.set_replica_id(f->replica_id);
  out.set_redis_address(f->redis_address);
  out.set_redis_up(f->redis_up);
  out.set_config_source(f->follow_config ? "redis" : "file");
  out.set_replicas(f->replicas);
  out.set_counted(f->counted);
  out.set_fleet_version(f->fleet_version);
  out.set_published_version(f->published_version);
  for (const auto& m : f->members) {
    auto* r = out.add_members();
    r->set_id(m.id);
    r->set_url(m.url);
    r->set_control(m.control);
    r->set_host(m.host);
    r->set_config_version(m.config_version);
    r->set_fleet_version(m.fleet_version);
    r->set_started_ms(m.started_ms);
    r->set_seen_ms(m.seen_ms);
    r->set_limits_redis_up(m.limits_redis_up);
  }
  out.set_followed(f->followed);
  out.set_follow_failures(f->follow_failures);
  out.set_published(f->published);
  out.set_publish_failures(f->publish_failures);
  out.set_refills(f->refills);
  return out;
}

absl::StatusOr<v1::UsageReport> LocalEngineClient::getUsage(const v1::GetUsageRequest& request) {
  if (request.since_ms() < 0 || request.until_ms() < 0 || (request.until_ms() && request.until_ms() < request.since_ms())) {
    return absl::InvalidArgumentError("usage: since_ms and until_ms must be times with since_ms <= until_ms");
  }
  v1::UsageReport out;
  const int64_t now = common::wallClockMs();
  out.set_until_ms(request.until_ms() ? request.until_ms() : now);
  out.set_since_ms(request.since_ms() ? request.since_ms() : out.until_ms() - 3600'000);
  for (const auto& r : engine_.usage({out.since_ms(), out.until_ms(), request.tenant(), request.model()})) {
    auto* u = out.add_rows();
    u->set_tenant(r.tenant);
    u->set_model(r.model);
    u->set_requests(r.counts.requests);
    u->set_prompt_tokens(r.counts.prompt_tokens);
    u->set_completion_tokens(r.counts.completion_tokens);
    u->set_shed(r.counts.shed);
    u->set_cache_hits(r.counts.cache_hits);
  }
  for (const auto& e : engine_.requestEvents(SIZE_MAX)) {
    if (out.events_size() >= static_cast<int>(request.events_limit())) break;
    if (!request.tenant().empty() && e.tenant != request.tenant()) continue;
    if (!request.model().empty() && e.model != request.model()) continue;
    auto* v = out.add_events();
    v->set_ts_ms(e.ts_ms);
    v->set_tenant(e.tenant);
    v->set_model(e.model);
    v->set_route(e.route);
    v->set_status(e.status);
    v->set_reason(e.reason);
    v->set_degraded(e.degraded);
    v->set_backend(e.backend);
    v->set_trace_id(e.trace_id);
  }
  return out;
}

}  // namespace spillway::control

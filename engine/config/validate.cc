#include "config/validate.h"

#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>

#include "common/sha256.h"
#include "common/strings.h"
#include "common/url.h"
#include "openai/openai.h"
#include "gpu/catalog.h"
#include "gpu/layout.h"
#include "spillway/v1/options.pb.h"

namespace spillway::config {
namespace {

// 3600000, 0.5: integral bounds without a decimal point.
std::string formatBound(double v) {
  char out[32];
  std::snprintf(out, sizeof out, "%.15g", v);
  return out;
}

struct SimDefaults {
  uint32_t prefill_base_ms, prefill_per_token_us, inter_token_ms, max_num_seqs, max_waiting,
      min_output_tokens, max_output_tokens;
};

// Built-in simulator profiles, loosely modelled on a mid-size model on one
// GPU ("default"), a small fast model, a large slow one, and a zero-latency
// server for benchmarks.
const std::map<std::string, SimDefaults>& simProfiles() {
  static const std::map<std::string, SimDefaults> profiles = {
      {"default", {40, 200, 20, 16, 32, 16, 64}},
      {"fast", {15, 50, 8, 32, 64, 16, 64}},
      {"slow", {150, 500, 45, 8, 16, 32, 128}},
      {"instant", {0, 0, 0, 65536, 65536, 8, 8}},
  };
  return profiles;
}

class Checker {
 public:
  Checker(const SourceMap* sources, const std::string& file) : sources_(sources), file_(file) {}

  void fail(const std::string& path, std::string message) {
    SourcePosition pos = sources_ ? sources_->find(path) : SourcePosition{};
    errors_.push_back({file_, pos.line, pos.column, path, std::move(message)});
  }

  void healthCheck(const v1::HealthCheck& h, const std::string& path) {
    if (!h.path().empty() && h.path() != "none" && h.path().front() != '/') {
      fail(path + ".path", common::strCat("must start with '/' or be \"none\", got \"", h.path(), "\""));
    }
  }

  // Every numeric field annotated with (spillway.v1.range) in config.proto,
  // anywhere in `m`, by reflection. Zero means "unset, take the default"
  // and is always accepted.
  void ranges(const google::protobuf::Message& m, const std::string& path) {
    namespace pb = google::protobuf;
    const pb::Descriptor* d = m.GetDescriptor();
    const pb::Reflection* r = m.GetReflection();
    for (int i = 0; i < d->field_count(); ++i) {
      const pb::FieldDescriptor* f = d->field(i);
      const std::string p = path.empty() ? f->name() : path + "." + f->name();
      if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
        if (f->is_repeated()) {
          for (int e = 0; e < r->FieldSize(m, f); ++e) ranges(r->GetRepeatedMessage(m, f, e), common::strCat(p, "[", e, "]"));
        } else if (r->HasField(m, f)) {
          ranges(r->GetMessage(m, f), p);
        }
        continue;
      }
      if (f->is_repeated() || !f->options().HasExtension(v1::range)) continue;
      double v = 0;
      switch (f->cpp_type()) {
        case pb::FieldDescriptor::CPPTYPE_INT32: v = r->GetInt32(m, f); break;
        case pb::FieldDescriptor::CPPTYPE_INT64: v = static_cast<double>(r->GetInt64(m, f)); break;
        case pb::FieldDescriptor::CPPTYPE_UINT32: v = r->GetUInt32(m, f); break;
        case pb::FieldDescriptor::CPPTYPE_UINT64: v = static_cast<double>(r->GetUInt64(m, f)); break;
        case pb::FieldDescriptor::CPPTYPE_DOUBLE: v = r->GetDouble(m, f); break;
        case pb::FieldDescriptor::CPPTYPE_FLOAT: v = r->GetFloat(m, f); break;
        default: continue;
      }
      if (v == 0) continue;
      const v1::Range& range = f->options().GetExtension(v1::range);
      const bool low = range.has_min() && v < range.min();
      const bool high = range.has_max() && v > range.max();
      if (!low && !high) continue;
      if (range.has_min() && range.has_max()) {
        fail(p, common::strCat("must be between ", formatBound(range.min()), " and ", formatBound(range.max())));
      } else if (low) {
        fail(p, common::strCat("must be at least ", formatBound(range.min())));
      } else {
        fail(p, common::strCat("must be at most ", formatBound(range.max())));
      }
    }
  }

  void balancing(const v1::Balancing& b, const std::string& path) {
    // Cookie and header names are HTTP tokens; keep to the safe subset.
    auto token = [](const std::string& s) {
      for (char c : s) {
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')) return false;
      }
      return s.size() <= 64;
    };
    if (!token(b.cookie_name())) {
      fail(path + ".cookie_name", common::strCat("\"", b.cookie_name(), "\" may only hold letters, digits, '-' and '_'"));
    }
    if (!token(b.header_name())) {
      fail(path + ".header_name", common::strCat("\"", b.header_name(), "\" may only hold letters, digits, '-' and '_'"));
    }
  }

  std::vector<ConfigError> take() { return std::move(errors_); }

 private:
  const SourceMap* sources_;
  const std::string& file_;
  std::vector<ConfigError> errors_;
};

bool validName(const std::string& s) {
  if (s.empty() || s.size() > 128) return false;
  for (char c : s) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) return false;
  }
  return true;
}

}  // namespace

std::vector<ConfigError> validate(const v1::Config& c, const SourceMap* sources,
                                  const std::string& file) {
  Checker ck(sources, file);

  const auto& s = c.server();
  const auto& tls = s.tls();
  const bool tls_on = !tls.cert_file().empty() || !tls.key_file().empty();
  if (!s.listen().empty()) {
    auto hp = common::parseHostPort(s.listen());
    if (!hp.ok()) {
      ck.fail("server.listen", std::string(hp.status().message()));
    } else if (!tls_on && !s.allow_plaintext() && !common::isLoopbackHost(hp->host)) {
      ck.fail("server.listen", common::strCat("\"", s.listen(),
                                              "\" is reachable from other machines over plain HTTP (API keys would "
                                              "cross the network in clear text): set server.tls.cert_file and key_file, "
                                              "or server.allow_plaintext: true when a proxy in front terminates TLS"));
    }
  }
  if (!s.metrics_listen().empty()) {
    auto mp = common::parseHostPort(s.metrics_listen());
    auto fp = common::parseHostPort(s.listen().empty() ? "127.0.0.1:8080" : s.listen());
    if (!mp.ok()) {
      ck.fail("server.metrics_listen", std::string(mp.status().message()));
    } else if (fp.ok() && mp->port != 0 && mp->port == fp->port && mp->host == fp->host) {
      ck.fail("server.metrics_listen", "must differ from server.listen");
    }
  }
  if (tls_on && tls.cert_file().empty()) ck.fail("server.tls.cert_file", "is required with key_file");
  if (tls_on && tls.key_file().empty()) ck.fail("server.tls.key_file", "is required with cert_file");
  if (!tls_on && !tls.client_ca_file().empty()) {
    ck.fail("server.tls.client_ca_file", "needs cert_file and key_file (client certificates are a TLS feature)");
  }
  if (tls.require_client_cert() && tls.client_ca_file().empty()) {
    ck.fail("server.tls.require_client_cert", "needs client_ca_file (the CA that signs client certificates)");
  }
  if (!tls.min_version().empty() && tls.min_version() != "1.2" && tls.min_version() != "1.3") {
    ck.fail("server.tls.min_version", common::strCat("must be \"1.2\" or \"1.3\", got \"", tls.min_version(), "\""));
  }
  // Bounds declared on the fields themselves ((spillway.v1.range)).
  ck.ranges(c, "");
  ck.healthCheck(c.upstream().health_check(), "upstream.health_check");
  if (const auto& lp = c.upstream().load_metrics().path(); !lp.empty() && lp != "none" && lp.front() != '/') {
    ck.fail("upstream.load_metrics.path", common::strCat("must start with '/' or be \"none\", got \"", lp, "\""));
  }

  if (c.backends_size() == 0 && c.gpu().workers_size() == 0) {
    ck.fail("backends", "at least one backend is required (or gpu.workers to launch)");
  }

  // Admission, keys, degradation.
  const auto& ll = c.admission().learned_limit();
  if (ll.min() && ll.max() && ll.min() > ll.max()) ck.fail("admission.learned_limit.min", "must not exceed max");
  std::set<std::string> key_names, key_hashes, key_cns;
  for (int i = 0; i < c.limits().keys_size(); ++i) {
    const auto& k = c.limits().keys(i);
    const std::string p = common::strCat("limits.keys[", i, "]");
    if (k.name().empty()) ck.fail(p + ".name", "is required");
    else if (!key_names.insert(k.name()).second) ck.fail(p + ".name", common::strCat("duplicate key name \"", k.name(), "\""));
    if (!k.client_cert_cn().empty() && k.sha256().empty()) {
      // A client certificate alone stands for this key.
    } else if (!common::isSha256Hex(k.sha256())) {
      ck.fail(p + ".sha256", "must be 64 lower-case hex digits (spillctl hash-token prints them), or give client_cert_cn");
    } else if (!key_hashes.insert(k.sha256()).second) {
      ck.fail(p + ".sha256", "the same key is listed twice");
    }
    if (!k.client_cert_cn().empty()) {
      if (!key_cns.insert(k.client_cert_cn()).second) {
        ck.fail(p + ".client_cert_cn", common::strCat("\"", k.client_cert_cn(), "\" names two keys"));
      } else if (c.server().tls().client_ca_file().empty()) {
        ck.fail(p + ".client_cert_cn", "needs server.tls.client_ca_file (the CA that signs client certificates)");
      }
    }
    if (!k.priority().empty() && k.priority() != "critical" && k.priority() != "standard" && k.priority() != "sheddable") {
      ck.fail(p + ".priority", common::strCat("must be \"critical\", \"standard\" or \"sheddable\", got \"", k.priority(), "\""));
    }
  }
  if (const auto& so = c.limits().stream_overrun(); !so.empty() && so != "finish" && so != "cut") {
    ck.fail("limits.stream_overrun", common::strCat("must be \"finish\" or \"cut\", got \"", so, "\""));
  }
  if (const auto& ra = c.limits().redis().address(); !ra.empty()) {
    auto hp = common::parseHostPort(ra);
    if (!hp.ok()) ck.fail("limits.redis.address", std::string(hp.status().message()));
    else if (hp->port == 0) ck.fail("limits.redis.address", "needs a port, e.g. \"127.0.0.1:6379\"");
  }
  const auto& dg = c.degradation();
  if (dg.wait_thresholds_ms_size() > 3) ck.fail("degradation.wait_thresholds_ms", "at most three thresholds (levels 1 to 3)");
  for (int i = 0; i < dg.wait_thresholds_ms_size(); ++i) {
    if (dg.wait_thresholds_ms(i) > 3600000) ck.fail(common::strCat("degradation.wait_thresholds_ms[", i, "]"), "must be at most 3600000");
  }
  for (int i = 1; i < dg.wait_thresholds_ms_size(); ++i) {
    if (dg.wait_thresholds_ms(i) <= dg.wait_thresholds_ms(i - 1)) {
      ck.fail(common::strCat("degradation.wait_thresholds_ms[", i, "]"), "thresholds must increase");
    }
  }

  const auto& cc = c.cache();
  if (!cc.mode().empty() && cc.mode() != "deterministic" && cc.mode() != "all" && cc.mode() != "opt_in") {
    ck.fail("cache.mode", common::strCat("must be \"deterministic\", \"all\" or \"opt_in\", got \"", cc.mode(), "\""));
  }
  if (!cc.scope().empty() && cc.scope() != "tenant" && cc.scope() != "shared") {
    ck.fail("cache.scope", common::strCat("must be \"tenant\" or \"shared\", got \"", cc.scope(), "\""));
  }
  if (const auto& ra = cc.redis().address(); !ra.empty()) {
    auto hp = common::parseHostPort(ra);
    if (!hp.ok()) ck.fail("cache.redis.address", std::string(hp.status().message()));
    else if (hp->port == 0) ck.fail("cache.redis.address", "needs a port, e.g. \"127.0.0.1:6379\"");
  }
  for (int i = 0; i < cc.model_versions_size(); ++i) {
    if (cc.model_versions(i).model().empty()) ck.fail(common::strCat("cache.model_versions[", i, "].model"), "is required");
  }

  const auto& gc = c.gpu();
  if (const auto& inv = gc.inventory(); !inv.empty() && inv != "auto" && inv != "nvml" && inv != "nvidia_smi" &&
                                        inv != "declared" && inv != "off") {
    ck.fail("gpu.inventory",
            common::strCat("must be \"auto\", \"nvml\", \"nvidia_smi\", \"declared\" or \"off\", got \"", inv, "\""));
  }
  for (int i = 0; i < gc.gpus_size(); ++i) {
    const auto& g = gc.gpus(i);
    const std::string p = common::strCat("gpu.gpus[", i, "]");
    const gpu::GpuModel* model = gpu::findModel(g.model());
    if (!model) {
      ck.fail(p + ".model", common::strCat("unknown GPU model \"", g.model(), "\"; expected one of: ", gpu::modelNames()));
      continue;
    }
    const gpu::FirstFit fit = gpu::placeFirstFit(*model, {g.mig().begin(), g.mig().end()});
    if (!fit.error.empty()) ck.fail(p + ".mig", fit.error);
  }
  std::set<std::string> worker_names;
  for (int i = 0; i < gc.workers_size(); ++i) {
    const auto& w = gc.workers(i);
    const std::string p = common::strCat("gpu.workers[", i, "]");
    if (w.name().empty()) ck.fail(p + ".name", "is required");
    else if (!validName(w.name())) ck.fail(p + ".name", common::strCat("\"", w.name(), "\" may only hold letters, digits, '-', '_' and '.'"));
    else if (!worker_names.insert(w.name()).second) ck.fail(p + ".name", common::strCat("duplicate worker group \"", w.name(), "\""));
    if (w.command().empty()) ck.fail(p + ".command", "is required (e.g. \"vllm serve MODEL --port {port}\")");
    else if (w.command().find("{port}") == std::string::npos) {
      ck.fail(p + ".command", "must pass {port} to the server (the launcher picks each worker's port)");
    }
    if (w.models_size() == 0) ck.fail(p + ".models", "at least one model is required");
    if (!w.health_path().empty() && w.health_path().front() != '/') ck.fail(p + ".health_path", "must start with '/'");
    for (int e = 0; e < w.env_size(); ++e) {
      const auto& env = w.env(e);
      if (env.find('=') == std::string::npos || env.front() == '=') {
        ck.fail(common::strCat(p, ".env[", e, "]"), common::strCat("must be NAME=value, got \"", env, "\""));
      }
    }
    if (w.max_restart_backoff_ms() && w.restart_backoff_ms() > w.max_restart_backoff_ms()) {
      ck.fail(p + ".restart_backoff_ms", "must not exceed max_restart_backoff_ms");
    }
  }
  {
    const auto& pl = gc.placement();
    for (const auto& [name, list] : {std::pair{"critical", &pl.critical()}, std::pair{"standard", &pl.standard()},
                                     std::pair{"sheddable", &pl.sheddable()}, std::pair{"long", &pl.long_()}}) {
      for (int i = 0; i < list->size(); ++i) {
        if (list->Get(i).empty()) ck.fail(common::strCat("gpu.placement.", name, "[", i, "]"), "must not be empty");
      }
    }
    if ((pl.long_max_tokens() || pl.long_prompt_tokens()) && pl.long__size() == 0) {
      ck.fail("gpu.placement.long", "long_max_tokens / long_prompt_tokens need the instances long requests go to");
    }
  }

  auto checkOrder = [&](const std::string& path, const std::string& order) {
    if (!order.empty() && order != "fifo" && order != "shortest_first") {
      ck.fail(path, common::strCat("must be \"fifo\" or \"shortest_first\", got \"", order, "\""));
    }
  };
  checkOrder("admission.queue_order", c.admission().queue_order());
  for (int i = 0; i < c.pools_size(); ++i) {
    const std::string& pr = c.pools(i).priority();
    if (!pr.empty() && pr != "critical" && pr != "standard" && pr != "sheddable") {
      ck.fail(common::strCat("pools[", i, "].priority"),
              common::strCat("must be \"critical\", \"standard\" or \"sheddable\", got \"", pr, "\""));
    }
    checkOrder(common::strCat("pools[", i, "].queue_order"), c.pools(i).queue_order());
  }

  for (const auto& [name, list] : {std::pair{"error_rate_thresholds", &dg.error_rate_thresholds()},
                                   std::pair{"unavailable_thresholds", &dg.unavailable_thresholds()}}) {
    if (list->size() > 3) ck.fail(common::strCat("degradation.", name), "at most three thresholds (levels 1 to 3)");
    for (int i = 0; i < list->size(); ++i) {
      if (list->Get(i) <= 0 || list->Get(i) > 1) {
        ck.fail(common::strCat("degradation.", name, "[", i, "]"), "must be above 0 and at most 1");
      } else if (i > 0 && list->Get(i) <= list->Get(i - 1)) {
        ck.fail(common::strCat("degradation.", name, "[", i, "]"), "thresholds must increase");
      }
    }
  }

  std::map<std::string, int> names;
  std::map<std::string, std::set<std::string>> models_of;  // backend -> models
  for (int i = 0; i < c.backends_size(); ++i) {
    const auto& b = c.backends(i);
    std::string p = common::strCat("backends[", i, "]");
    if (b.name().empty()) {
      ck.fail(p + ".name", "is required");
    } else if (!validName(b.name())) {
      ck.fail(p + ".name", common::strCat("\"", b.name(), "\" may only hold letters, digits, '-', '_' and '.'"));
    } else if (auto [it, fresh] = names.emplace(b.name(), i); !fresh) {
      ck.fail(p + ".name", common::strCat("duplicate backend name \"", b.name(), "\" (first used by backends[",
                                        it->second, "])"));
    }
    bool is_sim = false;
    if (b.url().empty()) {
      ck.fail(p + ".url", "is required");
    } else {
      auto u = common::parseUrl(b.url());
      if (!u.ok()) ck.fail(p + ".url", std::string(u.status().message()));
      else is_sim = u->scheme == "sim";
    }
    if (b.models_size() == 0) ck.fail(p + ".models", "at least one model is required");
    for (int m = 0; m < b.models_size(); ++m) {
      if (b.models(m).empty()) ck.fail(common::strCat(p, ".models[", m, "]"), "must not be empty");
      models_of[b.name()].insert(b.models(m));
    }
    if (b.has_health_check()) ck.healthCheck(b.health_check(), p + ".health_check");
    if (b.has_sim()) {
      if (!is_sim && !b.url().empty()) ck.fail(p + ".sim", "only sim:// backends take simulator settings");
      const auto& sim = b.sim();
      if (!sim.profile().empty() && !simProfiles().count(sim.profile())) {
        ck.fail(p + ".sim.profile",
                common::strCat("unknown profile \"", sim.profile(), "\"; expected one of: default, fast, slow, instant"));
      }
      if (sim.max_output_tokens() != 0 && sim.min_output_tokens() > sim.max_output_tokens()) {
        ck.fail(p + ".sim.min_output_tokens", "must not exceed max_output_tokens");
      }
    }
  }

  const auto& ctl = c.control();
  if (!ctl.listen().empty() && ctl.listen() != "none") {
    auto hp = common::parseHostPort(ctl.listen());
    if (!hp.ok()) {
      ck.fail("control.listen", std::string(hp.status().message()));
    } else {
      const bool loopback = hp->host == "127.0.0.1" || hp->host == "::1" || hp->host == "localhost";
      const bool tls = (!ctl.tls_cert_file().empty() && !ctl.tls_key_file().empty()) || ctl.generate_self_signed();
      if (!loopback && !tls) {
        ck.fail("control.listen", "a non-loopback control address needs TLS: set tls_cert_file and tls_key_file, "
                                  "or generate_self_signed: true");
      }
    }
  }
  if (ctl.tls_cert_file().empty() != ctl.tls_key_file().empty()) {
    ck.fail(ctl.tls_cert_file().empty() ? "control.tls_cert_file" : "control.tls_key_file",
            "tls_cert_file and tls_key_file go together");
  }
  std::set<std::string> token_names;
  for (int i = 0; i < ctl.tokens_size(); ++i) {
    const auto& t = ctl.tokens(i);
    std::string p = common::strCat("control.tokens[", i, "]");
    if (t.name().empty()) ck.fail(p + ".name", "is required");
    else if (!token_names.insert(t.name()).second) ck.fail(p + ".name", common::strCat("duplicate token name \"", t.name(), "\""));
    if (!t.token_file().empty()) {
      if (!t.sha256().empty()) ck.fail(p + ".token_file", "give sha256 or token_file, not both");
    } else if (!common::isSha256Hex(t.sha256())) {
      ck.fail(p + ".sha256", "must be 64 lower-case hex digits (spillctl hash-token prints them), or give token_file");
    }
    if (t.role() != "viewer" && t.role() != "operator") {
      ck.fail(p + ".role", common::strCat("must be \"viewer\" or \"operator\", got \"", t.role(), "\""));
    }
  }

  std::set<std::string> routes;
  for (int i = 0; i < c.api().passthrough_routes_size(); ++i) {
    const std::string& r = c.api().passthrough_routes(i);
    const std::string p = common::strCat("api.passthrough_routes[", i, "]");
    if (r.empty() || r[0] != '/' || r.find_first_of("?# \t") != std::string::npos) {
      ck.fail(p, "must be a path starting with \"/\" (no query string)");
    } else if (openai::endpointForTarget(r) || r == "/v1/models" || r == "/healthz" || r == "/readyz" || r == "/metrics") {
      ck.fail(p, common::strCat("\"", r, "\" is a route the gateway serves itself"));
    } else if (!routes.insert(r).second) {
      ck.fail(p, common::strCat("duplicate route \"", r, "\""));
    }
  }
  if (const std::string& f = c.access_log().format(); !f.empty() && f != "json" && f != "text") {
    ck.fail("access_log.format", common::strCat("unknown format \"", f, "\"; expected json or text"));
  }
  if (const std::string& a = c.api().redis_address(); !a.empty() && a != "none") {
    if (auto hp = common::parseHostPort(a); !hp.ok()) ck.fail("api.redis_address", std::string(hp.status().message()));
  }
  if (const std::string& a = c.fleet().redis_address(); !a.empty() && a != "none") {
    if (auto hp = common::parseHostPort(a); !hp.ok()) ck.fail("fleet.redis_address", std::string(hp.status().message()));
  }
  if (const std::string& s = c.fleet().config_source(); !s.empty() && s != "redis" && s != "file") {
    ck.fail("fleet.config_source", common::strCat("unknown source \"", s, "\"; expected redis or file"));
  }
  if (const uint32_t heartbeat = c.fleet().heartbeat_ms() ? c.fleet().heartbeat_ms() : 1000;
      c.fleet().replica_ttl_ms() && c.fleet().replica_ttl_ms() <= heartbeat) {
    ck.fail("fleet.replica_ttl_ms", "must be longer than the heartbeat (fleet.heartbeat_ms, default 1000)");
  }
  ck.balancing(c.upstream().balancing(), "upstream.balancing");
  std::set<std::string> pool_models;
  for (int i = 0; i < c.pools_size(); ++i) {
    const auto& pool = c.pools(i);
    std::string p = common::strCat("pools[", i, "]");
    if (pool.model().empty()) ck.fail(p + ".model", "is required");
    else if (!pool_models.insert(pool.model()).second) {
      ck.fail(p + ".model", common::strCat("duplicate pool for model \"", pool.model(), "\""));
    }
    if (pool.backends_size() == 0) ck.fail(p + ".backends", "at least one backend is required");
    if (pool.has_balancing()) ck.balancing(pool.balancing(), p + ".balancing");
    for (int j = 0; j < pool.endpoints_size(); ++j) {
      if (!openai::endpointByName(pool.endpoints(j))) {
        ck.fail(common::strCat(p, ".endpoints[", j, "]"),
                common::strCat("unknown endpoint \"", pool.endpoints(j),
                               "\"; expected chat_completions, completions, embeddings, responses or passthrough"));
      }
    }
    for (int j = 0; j < pool.backends_size(); ++j) {
      const auto& name = pool.backends(j);
      std::string bp = common::strCat(p, ".backends[", j, "]");
      auto it = models_of.find(name);
      if (!names.count(name)) {
        ck.fail(bp, common::strCat("no backend named \"", name, "\""));
      } else if (it == models_of.end() || !it->second.count(pool.model())) {
        ck.fail(bp, common::strCat("backend \"", name, "\" does not list model \"", pool.model(),
                                 "\" in its models"));
      }
    }
  }
  return ck.take();
}

namespace {

template <typename T>
void orDefault(T current, T fallback, void (v1::Backend::*set)(T), v1::Backend& b) {
  (b.*set)(current != 0 ? current : fallback);
}

void fillHealthCheck(v1::HealthCheck& h, const v1::HealthCheck& base) {
  if (h.path().empty()) h.set_path(base.path());
  if (h.interval_ms() == 0) h.set_interval_ms(base.interval_ms() ? base.interval_ms() : 2000);
  if (h.timeout_ms() == 0) h.set_timeout_ms(base.timeout_ms() ? base.timeout_ms() : 1000);
  if (h.unhealthy_threshold() == 0) {
    h.set_unhealthy_threshold(base.unhealthy_threshold() ? base.unhealthy_threshold() : 2);
  }
  if (h.healthy_threshold() == 0) {
    h.set_healthy_threshold(base.healthy_threshold() ? base.healthy_threshold() : 1);
  }
}

}  // namespace

void applyDefaults(v1::Config& c) {
  auto* s = c.mutable_server();
  if (s->listen().empty()) s->set_listen("127.0.0.1:8080");
  if (s->max_body_bytes() == 0) s->set_max_body_bytes(4 << 20);
  if (s->max_header_bytes() == 0) s->set_max_header_bytes(16384);
  if (s->header_timeout_ms() == 0) s->set_header_timeout_ms(10000);
  if (s->body_timeout_ms() == 0) s->set_body_timeout_ms(30000);
  if (s->drain_timeout_ms() == 0) s->set_drain_timeout_ms(30000);
  if (s->retry_after_seconds() == 0) s->set_retry_after_seconds(1);
  if (s->overload().max_connections() == 0) s->mutable_overload()->set_max_connections(10000);

  auto* u = c.mutable_upstream();
  if (u->connect_timeout_ms() == 0) u->set_connect_timeout_ms(2000);
  if (u->first_byte_timeout_ms() == 0) u->set_first_byte_timeout_ms(60000);
  if (u->max_response_bytes() == 0) u->set_max_response_bytes(uint64_t{256} << 20);
  if (u->idle_timeout_ms() == 0) u->set_idle_timeout_ms(30000);
  if (u->max_idle_connections() == 0) u->set_max_idle_connections(256);
  if (u->slow_start_ms() == 0) u->set_slow_start_ms(30000);
  if (u->busy_cooldown_ms() == 0) u->set_busy_cooldown_ms(1000);
  auto* lm = u->mutable_load_metrics();
  if (lm->path().empty()) lm->set_path("none");
  if (lm->interval_ms() == 0) lm->set_interval_ms(1000);
  if (lm->max_age_ms() == 0) lm->set_max_age_ms(3000);
  auto* od = u->mutable_outlier_detection();
  if (od->consecutive_failures() == 0) od->set_consecutive_failures(5);
  if (od->base_ejection_ms() == 0) od->set_base_ejection_ms(10000);
  if (od->max_ejection_ms() == 0) od->set_max_ejection_ms(300000);
  if (od->max_ejection_percent() == 0) od->set_max_ejection_percent(50);
  auto* rt = u->mutable_retry();
  if (rt->max_attempts() == 0) rt->set_max_attempts(3);
  if (rt->budget_percent() == 0) rt->set_budget_percent(20);
  if (rt->min_retries() == 0) rt->set_min_retries(10);
  if (u->balancing().policy() == v1::BALANCING_POLICY_UNSPECIFIED) {
    u->mutable_balancing()->set_policy(v1::LEAST_OUTSTANDING);
  }

  auto* a = c.mutable_admission();
  if (a->max_queue() == 0) a->set_max_queue(1024);
  if (a->critical().queue_timeout_ms() == 0) a->mutable_critical()->set_queue_timeout_ms(30000);
  if (a->standard().queue_timeout_ms() == 0) a->mutable_standard()->set_queue_timeout_ms(15000);
  if (a->sheddable().queue_timeout_ms() == 0) a->mutable_sheddable()->set_queue_timeout_ms(5000);
  if (a->critical().objective_ms() == 0) a->mutable_critical()->set_objective_ms(5000);
  if (a->standard().objective_ms() == 0) a->mutable_standard()->set_objective_ms(2000);
  if (a->sheddable().objective_ms() == 0) a->mutable_sheddable()->set_objective_ms(1000);
  if (a->input_token_weight() == 0) a->set_input_token_weight(1);
  if (a->output_token_weight() == 0) a->set_output_token_weight(2);
  if (a->max_requeues() == 0) a->set_max_requeues(8);
  if (a->queue_order().empty()) a->set_queue_order("shortest_first");
  auto* ll = a->mutable_learned_limit();
  if (ll->initial() == 0) ll->set_initial(8);
  if (ll->min() == 0) ll->set_min(1);
  if (ll->max() == 0) ll->set_max(1024);
  if (ll->latency_tolerance() == 0) ll->set_latency_tolerance(2);
  if (ll->backoff_ratio() == 0) ll->set_backoff_ratio(0.75);
  auto* lim = c.mutable_limits();
  if (lim->default_max_tokens() == 0) lim->set_default_max_tokens(256);
  if (lim->stream_overrun().empty()) lim->set_stream_overrun("finish");
  if (lim->redis().key_prefix().empty()) lim->mutable_redis()->set_key_prefix("spillway:rl:");
  if (lim->redis().timeout_ms() == 0) lim->mutable_redis()->set_timeout_ms(50);
  for (auto& k : *lim->mutable_keys()) {
    if (k.priority().empty()) k.set_priority("standard");
  }
  auto* dg = c.mutable_degradation();
  if (dg->max_tokens_cap() == 0) dg->set_max_tokens_cap(128);
  if (dg->brief_instruction().empty()) dg->set_brief_instruction("Answer briefly.");
  if (dg->wait_thresholds_ms_size() == 0) {
    for (uint32_t t : {2000u, 5000u, 10000u}) dg->add_wait_thresholds_ms(t);
  }
  if (dg->min_dwell_ms() == 0) dg->set_min_dwell_ms(10000);
  if (dg->exit_ratio() == 0) dg->set_exit_ratio(0.5);
  auto* cache = c.mutable_cache();
  if (cache->mode().empty()) cache->set_mode("deterministic");
  if (cache->scope().empty()) cache->set_scope("tenant");
  if (cache->memory().max_bytes() == 0) cache->mutable_memory()->set_max_bytes(256ull << 20);
  if (cache->memory().ttl_seconds() == 0) cache->mutable_memory()->set_ttl_seconds(3600);
  if (cache->disk().ttl_seconds() == 0) cache->mutable_disk()->set_ttl_seconds(7 * 24 * 3600);
  if (cache->disk().max_bytes() == 0) cache->mutable_disk()->set_max_bytes(1ull << 30);
  if (cache->redis().ttl_seconds() == 0) cache->mutable_redis()->set_ttl_seconds(3600);
  if (cache->redis().key_prefix().empty()) cache->mutable_redis()->set_key_prefix("spillway:cache:");
  if (cache->redis().timeout_ms() == 0) cache->mutable_redis()->set_timeout_ms(50);
  if (cache->stale_grace_seconds() == 0) cache->set_stale_grace_seconds(600);
  if (cache->max_entry_bytes() == 0) cache->set_max_entry_bytes(1u << 20);
  if (cache->bloom().expected_entries() == 0) cache->mutable_bloom()->set_expected_entries(10'000'000);
  if (cache->bloom().false_positive_rate() == 0) cache->mutable_bloom()->set_false_positive_rate(0.01);

  for (auto& b : *c.mutable_backends()) {
    if (b.weight() == 0) b.set_weight(1);
    orDefault(b.connect_timeout_ms(), u->connect_timeout_ms(), &v1::Backend::set_connect_timeout_ms, b);
    orDefault(b.first_byte_timeout_ms(), u->first_byte_timeout_ms(),
              &v1::Backend::set_first_byte_timeout_ms, b);
    orDefault(b.idle_timeout_ms(), u->idle_timeout_ms(), &v1::Backend::set_idle_timeout_ms, b);
    if (b.max_response_bytes() == 0) b.set_max_response_bytes(u->max_response_bytes());
    bool is_sim = b.url().rfind("sim://", 0) == 0;
    auto* h = b.mutable_health_check();
    fillHealthCheck(*h, u->health_check());
    if (h->path().empty()) h->set_path(is_sim ? "/healthz" : "/health");
    if (is_sim) (void)fillSimDefaults(*b.mutable_sim());  // validated: name is known
  }

  auto* api = c.mutable_api();
  if (api->disable_passthrough()) {
    api->clear_passthrough_routes();
  } else if (api->passthrough_routes_size() == 0) {
    for (const auto& r : openai::defaultPassthroughRoutes()) api->add_passthrough_routes(r);
  }
  if (api->response_affinity_ttl_seconds() == 0) api->set_response_affinity_ttl_seconds(86400);
  if (api->max_remembered_responses() == 0) api->set_max_remembered_responses(100000);
  auto* al = c.mutable_access_log();
  if (al->format().empty()) al->set_format("json");
  if (al->sample_successes() == 0 && !al->errors_only()) al->set_sample_successes(1);
  if (al->errors_only()) al->set_sample_successes(0);
  if (al->max_queued_lines() == 0) al->set_max_queued_lines(65536);
  if (api->redis_address().empty()) {
    // Replicas that share a Redis for the cache or the limits share the
    // response owners too.
    if (!c.cache().redis().address().empty()) api->set_redis_address(c.cache().redis().address());
    else if (!c.limits().redis().address().empty()) api->set_redis_address(c.limits().redis().address());
  }
  auto* fleet = c.mutable_fleet();
  if (fleet->redis_address().empty()) {
    // Replicas that share a Redis for the limits or the cache are a fleet.
    if (!c.limits().redis().address().empty()) fleet->set_redis_address(c.limits().redis().address());
    else if (!c.cache().redis().address().empty()) fleet->set_redis_address(c.cache().redis().address());
  }
  if (fleet->heartbeat_ms() == 0) fleet->set_heartbeat_ms(1000);
  if (fleet->replica_ttl_ms() == 0) fleet->set_replica_ttl_ms(3 * fleet->heartbeat_ms());
  if (fleet->config_source().empty()) fleet->set_config_source("redis");
  if (fleet->key_prefix().empty()) fleet->set_key_prefix("spillway:fleet:");
  if (fleet->timeout_ms() == 0) fleet->set_timeout_ms(200);

  if (c.pools_size() == 0) {
    std::map<std::string, std::vector<std::string>> by_model;  // sorted: stable output
    std::vector<std::string> order;
    for (const auto& b : c.backends()) {
      for (const auto& m : b.models()) {
        if (!by_model.count(m)) order.push_back(m);
        by_model[m].push_back(b.name());
      }
    }
    for (const auto& m : order) {
      auto* pool = c.add_pools();
      pool->set_model(m);
      for (const auto& name : by_model[m]) pool->add_backends(name);
    }
  }
}

absl::Status fillSimDefaults(v1::SimProfile& sim) {
  if (sim.profile().empty()) sim.set_profile("default");
  auto it = simProfiles().find(sim.profile());
  if (it == simProfiles().end()) {
    return absl::InvalidArgumentError(common::strCat(
        "unknown simulator profile \"", sim.profile(), "\"; expected one of: default, fast, slow, instant"));
  }
  const SimDefaults& d = it->second;
  if (sim.prefill_base_ms() == 0) sim.set_prefill_base_ms(d.prefill_base_ms);
  if (sim.prefill_per_token_us() == 0) sim.set_prefill_per_token_us(d.prefill_per_token_us);
  if (sim.inter_token_ms() == 0) sim.set_inter_token_ms(d.inter_token_ms);
  if (sim.max_num_seqs() == 0) sim.set_max_num_seqs(d.max_num_seqs);
  if (sim.max_waiting() == 0) sim.set_max_waiting(d.max_waiting);
  if (sim.min_output_tokens() == 0) sim.set_min_output_tokens(d.min_output_tokens);
  if (sim.max_output_tokens() == 0) {
    sim.set_max_output_tokens(std::max(d.max_output_tokens, sim.min_output_tokens()));
  }
  if (sim.seed() == 0) sim.set_seed(42);
  if (sim.embedding_dimensions() == 0) sim.set_embedding_dimensions(64);
  if (sim.embed_per_token_us() == 0) sim.set_embed_per_token_us(50);
  if (sim.failures().retry_after_seconds() == 0) sim.mutable_failures()->set_retry_after_seconds(1);
  return absl::OkStatus();
}

std::string resolveApiKey(const v1::Backend& b) {
  if (!b.api_key_env().empty()) {
    if (const char* v = std::getenv(b.api_key_env().c_str()); v && *v) return v;
  }
  return b.api_key();
}

}  // namespace spillway::config

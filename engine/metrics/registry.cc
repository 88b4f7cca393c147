#include "metrics/registry.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "common/mutex.h"
#include "common/strings.h"

namespace spillway::metrics {
namespace {

void appendEscapedLabel(std::string& out, const std::string& v) {
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out.push_back(c);
  }
}

void appendLabels(std::string& out, const std::vector<std::string>& names, const Labels& values,
                  const char* extra_name = nullptr, const std::string* extra_value = nullptr) {
  if (names.empty() && !extra_name) return;
  out.push_back('{');
  bool first = true;
  for (size_t i = 0; i < names.size() && i < values.size(); ++i) {
    if (!first) out.push_back(',');
    first = false;
    out += names[i];
    out += "=\"";
    appendEscapedLabel(out, values[i]);
    out.push_back('"');
  }
  if (extra_name) {
    if (!first) out.push_back(',');
    out += extra_name;
    out += "=\"";
    out += *extra_value;
    out.push_back('"');
  }
  out.push_back('}');
}

std::string formatNumber(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  char buf[32];
  int n = std::snprintf(buf, sizeof buf, "%.17g", v);
  // Prefer the short form when it round-trips.
  char shortbuf[32];
  int m = std::snprintf(shortbuf, sizeof shortbuf, "%g", v);
  if (std::strtod(shortbuf, nullptr) == v) return std::string(shortbuf, static_cast<size_t>(m));
  return std::string(buf, static_cast<size_t>(n));
}

void appendHeader(std::string& out, const std::string& name, const std::string& help,
                  const char* type) {
  // HELP text escapes backslash and line feed (exposition format 0.0.4).
  out += "# HELP " + name + " ";
  for (char c : help) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out.push_back(c);
  }
  out += "\n";
  out += "# TYPE " + name + " " + type + "\n";
}

class CallbackGaugeFamily final : public Registry::FamilyBase {
 public:
  CallbackGaugeFamily(std::string name, std::string help, std::vector<std::string> label_names,
                      Registry::GaugeFn fn, const char* type = "gauge")
      : name_(std::move(name)), help_(std::move(help)), label_names_(std::move(label_names)),
        fn_(std::move(fn)), type_(type) {}
  const std::string& name() const override { return name_; }
  std::string signature() const override { return "callback:" + common::join(label_names_, ","); }
  void render(std::string& out) const override {
    appendHeader(out, name_, help_, type_);
    auto samples = fn_();
    std::sort(samples.begin(), samples.end());
    for (const auto& [labels, v] : samples) {
      out += name_;
      appendLabels(out, label_names_, labels);
      out += " " + formatNumber(v) + "\n";
    }
  }

 private:
  std::string name_, help_;
  std::vector<std::string> label_names_;
  Registry::GaugeFn fn_;
  const char* type_;
};

}  // namespace

std::vector<double> latencyBucketsSeconds() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
          1,     2.5,    5,     10,   20,    30,   60,  120};
}

Histogram::Histogram(std::shared_ptr<const std::vector<double>> bounds)
    : bounds_(std::move(bounds)), buckets_(new std::atomic<uint64_t>[bounds_->size() + 1]) {
  for (size_t i = 0; i <= bounds_->size(); ++i) buckets_[i].store(0);
}

void Histogram::observe(double v) {
  auto it = std::lower_bound(bounds_->begin(), bounds_->end(), v);
  buckets_[static_cast<size_t>(it - bounds_->begin())].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
}

std::vector<uint64_t> Histogram::cumulativeCounts() const {
  std::vector<uint64_t> out(bounds_->size() + 1);
  uint64_t acc = 0;
  for (size_t i = 0; i <= bounds_->size(); ++i) {
    acc += buckets_[i].load(std::memory_order_relaxed);
    out[i] = acc;
  }
  return out;
}

double quantileOfDelta(const std::vector<double>& bounds, const std::vector<uint64_t>& before,
                       const std::vector<uint64_t>& after, double q) {
  if (after.size() != bounds.size() + 1) return 0;
  std::vector<uint64_t> cum(after.size());
  for (size_t i = 0; i < after.size(); ++i) cum[i] = after[i] - (i < before.size() ? before[i] : 0);
  uint64_t total = cum.back();
  if (total == 0) return 0;
  double rank = q * static_cast<double>(total);
  for (size_t i = 0; i < cum.size(); ++i) {
    if (static_cast<double>(cum[i]) >= rank) {
      if (i == bounds.size()) return bounds.back();
      double lo = i == 0 ? 0 : bounds[i - 1];
      uint64_t below = i == 0 ? 0 : cum[i - 1];
      uint64_t in = cum[i] - below;
      if (in == 0) return bounds[i];
      return lo + (bounds[i] - lo) * (rank - static_cast<double>(below)) / static_cast<double>(in);
    }
  }
  return bounds.back();
}

double Histogram::quantile(double q) const {
  return quantileOfDelta(*bounds_, {}, cumulativeCounts(), q);
}

template <>
std::string Family<Counter>::signature() const {
  return "counter:" + common::join(label_names_, ",");
}
template <>
std::string Family<Gauge>::signature() const {
  return "gauge:" + common::join(label_names_, ",");
}
template <>
std::string Family<Histogram>::signature() const {
  return "histogram:" + common::join(label_names_, ",");
}

template <>
void Family<Counter>::render(std::string& out) const {
  appendHeader(out, name_, help_, "counter");
  common::MutexLock lock(mu_);
  for (const auto& [labels, c] : children_) {
    out += name_;
    appendLabels(out, label_names_, labels);
    out += " " + std::to_string(c->value()) + "\n";
  }
}

template <>
void Family<Gauge>::render(std::string& out) const {
  appendHeader(out, name_, help_, "gauge");
  common::MutexLock lock(mu_);
  for (const auto& [labels, g] : children_) {
    out += name_;
    appendLabels(out, label_names_, labels);
    out += " " + std::to_string(g->value()) + "\n";
  }
}

template <>
void Family<Histogram>::render(std::string& out) const {
  appendHeader(out, name_, help_, "histogram");
  common::MutexLock lock(mu_);
  for (const auto& [labels, h] : children_) {
    auto cum = h->cumulativeCounts();
    for (size_t i = 0; i < cum.size(); ++i) {
      std::string le = i < h->bounds().size() ? formatNumber(h->bounds()[i]) : "+Inf";
      out += name_ + "_bucket";
      appendLabels(out, label_names_, labels, "le", &le);
      out += " " + std::to_string(cum[i]) + "\n";
    }
    out += name_ + "_sum";
    appendLabels(out, label_names_, labels);
    out += " " + formatNumber(h->sum()) + "\n";
    out += name_ + "_count";
    appendLabels(out, label_names_, labels);
    out += " " + std::to_string(cum.back()) + "\n";
  }
}

Registry::FamilyBase* Registry::addOrFind(std::unique_ptr<FamilyBase> f) {
  for (const auto& have : families_) {
    if (have->name() != f->name()) continue;
    if (have->signature() == f->signature()) return have.get();
    spdlog::critical("metric family {} registered twice as {} and {}", f->name(), have->signature(), f->signature());
    std::abort();
  }
  families_.push_back(std::move(f));
  return nullptr;
}

Family<Counter>& Registry::counter(std::string name, std::string help,
                                   std::vector<std::string> label_names) {
  auto f = std::make_unique<Family<Counter>>(std::move(name), std::move(help),
                                             std::move(label_names),
                                             [] { return std::make_unique<Counter>(); });
  auto* ref = f.get();
  common::MutexLock lock(mu_);
  if (auto* have = addOrFind(std::move(f))) return static_cast<Family<Counter>&>(*have);
  return *ref;
}

Family<Gauge>& Registry::gauge(std::string name, std::string help,
                               std::vector<std::string> label_names) {
  auto f = std::make_unique<Family<Gauge>>(std::move(name), std::move(help),
                                           std::move(label_names),
                                           [] { return std::make_unique<Gauge>(); });
  auto* ref = f.get();
  common::MutexLock lock(mu_);
  if (auto* have = addOrFind(std::move(f))) return static_cast<Family<Gauge>&>(*have);
  return *ref;
}

Family<Histogram>& Registry::histogram(std::string name, std::string help,
                                       std::vector<std::string> label_names,
                                       std::vector<double> bounds) {
  std::sort(bounds.begin(), bounds.end());
  auto shared = std::make_shared<const std::vector<double>>(std::move(bounds));
  auto f = std::make_unique<Family<Histogram>>(
      std::move(name), std::move(help), std::move(label_names),
      [shared] { return std::make_unique<Histogram>(shared); });
  auto* ref = f.get();
  common::MutexLock lock(mu_);
  if (auto* have = addOrFind(std::move(f))) return static_cast<Family<Histogram>&>(*have);
  return *ref;
}

absl::Status Registry::callbackGauge(std::string name, std::string help,
                                     std::vector<std::string> label_names, GaugeFn fn) {
  return addCallback(std::move(name), std::move(help), std::move(label_names), std::move(fn), "gauge");
}

absl::Status Registry::addCallback(std::string name, std::string help, std::vector<std::string> label_names,
                                   GaugeFn fn, const char* type) {
  common::MutexLock lock(mu_);
  for (const auto& have : families_) {
    if (have->name() == name) {
      return absl::AlreadyExistsError(common::strCat("metric family ", name, " is already registered"));
    }
  }
  families_.push_back(std::make_unique<CallbackGaugeFamily>(
      std::move(name), std::move(help), std::move(label_names), std::move(fn), type));
  return absl::OkStatus();
}

Registry::Registration Registry::scopedCallbackCounter(std::string name, std::string help,
                                                       std::vector<std::string> label_names, GaugeFn fn) {
  std::string key = name;
  absl::Status st = addCallback(std::move(name), std::move(help), std::move(label_names), std::move(fn), "counter");
  return Registration(this, std::move(key), std::move(st));
}

Registry::Registration Registry::scopedCallbackGauge(std::string name, std::string help,
                                                     std::vector<std::string> label_names, GaugeFn fn) {
  std::string key = name;
  absl::Status st = callbackGauge(std::move(name), std::move(help), std::move(label_names), std::move(fn));
  return Registration(this, std::move(key), std::move(st));
}

bool Registry::unregister(const std::string& name) {
  common::MutexLock lock(mu_);
  for (auto it = families_.begin(); it != families_.end(); ++it) {
    if ((*it)->name() != name) continue;
    retired_.push_back(std::move(*it));
    families_.erase(it);
    return true;
  }
  return false;
}

std::string Registry::render() const {
  std::string out;
  common::MutexLock lock(mu_);
  for (const auto& f : families_) f->render(out);
  return out;
}

}  // namespace spillway::metrics

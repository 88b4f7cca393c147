#include "config_reloader.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include "common/mutex.h"
#include "common/strings.h"
#include "config/config_loader.h"

namespace spillway {

ConfigReloader::ConfigReloader(Engine& engine, Options options)
    : engine_(engine),
      options_(std::move(options)),
      reloads_(engine.metricsRegistry().counter(
          "spillway_config_reloads_total",
          "Reloads of the config file (SIGHUP, --watch-config) that validated, by result: applied (a new version) "
          "or unchanged.",
          {"result"})),
      failures_(engine.metricsRegistry().counter(
          "spillway_config_reload_failures_total",
          "Reloads of the config file that changed nothing because the file did not validate (invalid) or the engine "
          "refused it (refused, e.g. a listen address it cannot bind).",
          {"reason"})) {
  // Every series from the start, so a rate() over them is defined.
  reloads_.with({"applied"});
  reloads_.with({"unchanged"});
  failures_.with({"invalid"});
  failures_.with({"refused"});
  if (options_.watch_interval.count() > 0) watcher_ = std::thread([this] { watch(); });
}

ConfigReloader::~ConfigReloader() {
  {
    common::MutexLock lock(watch_mu_);
    stopping_ = true;
  }
  watch_cv_.notify_all();
  if (watcher_.joinable()) watcher_.join();
}

absl::StatusOr<ApplyResult> ConfigReloader::reload(const std::string& trigger) {
  common::MutexLock lock(reload_mu_);
  config::LoadResult loaded = config::loadYamlFile(options_.path);
  if (!loaded.ok()) {
    for (const auto& e : loaded.errors) spdlog::error("config reload ({}): {}", trigger, e.toString());
    spdlog::error("config reload ({}): {} error{} in {}; the running config (v{}) is unchanged", trigger,
                  loaded.errors.size(), loaded.errors.size() == 1 ? "" : "s", options_.path, engine_.configVersion());
    failures_.with({"invalid"}).inc();
    return absl::InvalidArgumentError(config::formatErrors(loaded.errors));
  }
  v1::Config proposed = std::move(loaded.config);
  if (options_.overrides) options_.overrides(proposed);
  ChangeRequest change;
  change.actor = "file";
  change.comment = common::strCat(trigger, ": ", options_.path);
  auto applied = engine_.applyConfig(std::move(proposed), change);
  if (!applied.ok()) {
    spdlog::error("config reload ({}): {}; the running config (v{}) is unchanged", trigger,
                  std::string(applied.status().message()), engine_.configVersion());
    failures_.with({"refused"}).inc();
    return applied.status();
  }
  if (applied->diff.empty()) {
    spdlog::info("config reload ({}): {} has no changes; still config v{}", trigger, options_.path, applied->version);
    reloads_.with({"unchanged"}).inc();
  } else {
    spdlog::info("config reload ({}): applied {} as config v{} ({} change{})", trigger, options_.path, applied->version,
                 applied->diff.size(), applied->diff.size() == 1 ? "" : "s");
    for (const auto& d : applied->diff) spdlog::info("  {}", d);
    reloads_.with({"applied"}).inc();
  }
  for (const auto& n : applied->notes) spdlog::warn("config reload ({}): {}", trigger, n);
  return applied;
}

ConfigReloader::FileStamp ConfigReloader::stamp(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return {};
  return {true, static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec,
          static_cast<int64_t>(st.st_size), static_cast<uint64_t>(st.st_ino)};
}

void ConfigReloader::watch() {
  FileStamp last = options_.loaded;
  common::MutexLock lock(watch_mu_);
  while (!watch_cv_.wait_for(lock, options_.watch_interval, [this] {
    watch_mu_.assertHeld();
    return stopping_;
  })) {
    const FileStamp now = stamp(options_.path);
    // A file that went away (mid-swap, or deleted) is not a config: wait
    // for one to be there again.
    if (now == last || !now.exists) continue;
    last = now;
    lock.unlock();
    (void)reload("watch");
    lock.lock();
  }
}

}  // namespace spillway

// Applies the daemon's config file to its running engine again: when asked
// (SIGHUP, `systemctl reload`) and, optionally, whenever the file changes
// (--watch-config: how a Kubernetes ConfigMap mount updates). A reload goes
// through Engine::applyConfig like a control-plane apply — validated,
// recorded as a version by actor "file", requests in flight finish on the
// config they started with. A file that does not validate changes nothing:
// every error is logged with file:line:column and counted in
// spillway_config_reload_failures_total.
//
// Threading: reload() may be called from any thread; reloads are serialized.
// The watcher is one thread that stat()s the file (following symlinks, so a
// ConfigMap's ..data swap is seen) every `watch_interval`.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "common/mutex.h"
#include "engine.h"
#include "metrics/registry.h"

namespace spillway {

class ConfigReloader {
 public:
  // What identifies a version of the file without reading it.
  struct FileStamp {
    bool exists = false;
    int64_t mtime_ns = 0;
    int64_t size = 0;
    uint64_t inode = 0;
    bool operator==(const FileStamp&) const = default;
  };
  // `path`'s stamp now (following symlinks); !exists when it cannot be read.
  static FileStamp stamp(const std::string& path);

  struct Options {
    std::string path;  // the YAML file to read
    // The file's stamp taken before the running config was read from it:
    // the watcher applies any version of the file that differs, so an edit
    // made while the engine was starting is not missed.
    FileStamp loaded;
    // Applied to every config read from the file before it is applied:
    // the command line's overrides (--listen, --threads, ...), so a reload
    // does not move what the command line pinned.
    std::function<void(v1::Config&)> overrides;
    // > 0: watch the file and reload when it changes.
    std::chrono::milliseconds watch_interval{0};
  };

  // `engine` must outlive the reloader. Registers its metrics on the
  // engine's registry; starts the watcher when asked.
  ConfigReloader(Engine& engine, Options options);
  ~ConfigReloader();  // stops the watcher
  ConfigReloader(const ConfigReloader&) = delete;
  ConfigReloader& operator=(const ConfigReloader&) = delete;

  // Reads, validates and applies the file; `trigger` ("SIGHUP", "watch")
  // goes into the version's comment. InvalidArgument (every error, one per
  // line, as file:line:column) when the file does not validate; the
  // engine's apply errors otherwise. Nothing changes on any error.
  absl::StatusOr<ApplyResult> reload(const std::string& trigger);

 private:
  void watch();

  Engine& engine_;
  Options options_;
  metrics::Family<metrics::Counter>& reloads_;
  metrics::Family<metrics::Counter>& failures_;
  common::Mutex reload_mu_;  // one reload at a time

  common::Mutex watch_mu_;
  common::CondVar watch_cv_;
  bool stopping_ ABSL_GUARDED_BY(watch_mu_) = false;
  std::thread watcher_;
};

}  // namespace spillway

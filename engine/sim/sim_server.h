// A simulated OpenAI-compatible inference server. It models what makes real
// servers (vLLM, SGLang, llama.cpp) fall over under load: a fixed number of
// sequence slots, a bounded waiting queue, prefill time that grows with the
// prompt, steady inter-token latency, and "503 server busy" when slots and
// queue are both full. Used by `spillwayd sim`, by sim:// backends in-process,
// and by every test, demo and benchmark.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/io_pool.h"
#include "spillway/v1/config.pb.h"

namespace spillway::sim {

struct SimCounters {
  uint64_t running = 0;    // sequences generating now
  uint64_t waiting = 0;    // requests queued for a slot
  uint64_t completed = 0;  // requests answered in full
  uint64_t rejected_busy = 0;
  uint64_t injected_failures = 0;
  uint64_t generated_tokens = 0;
  uint64_t embedding_inputs = 0;  // inputs embedded (each input of a batch)
};

class SimServer {
 public:
  // `profile` must have defaults applied (config::applyDefaults does it for
  // sim:// backends; config::fillSimDefaults() for the command line). `models`
  // are the ids /v1/models lists; any model name is accepted on requests.
  SimServer(common::IoPool& io, v1::SimProfile profile, std::vector<std::string> models,
            std::string name);
  ~SimServer();
  SimServer(const SimServer&) = delete;
  SimServer& operator=(const SimServer&) = delete;

  // Binds and starts accepting. Port 0 picks a free port; see port().
  absl::Status listen(const std::string& host, uint16_t port);
  uint16_t port() const;
  // Stops accepting and closes every connection. Thread-safe, idempotent.
  void stop();

  SimCounters counters() const;
  // Prometheus text of this simulator's own metrics.
  std::string metricsText() const;

  struct State;  // shared with in-flight sessions; public for the .cc only

 private:
  std::shared_ptr<State> state_;
};

}  // namespace spillway::sim

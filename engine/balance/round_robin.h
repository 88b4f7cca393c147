// Round robin over the healthy backends that have room: each pick starts one
// past the previous start and takes the first backend that accepts.
#pragma once

#include <atomic>

#include "balance/balancer.h"

namespace spillway::balance {

class RoundRobinBalancer final : public Balancer {
 public:
  PickResult pick(std::span<const upstream::BackendPtr> backends) override;
  std::string_view name() const override { return "round_robin"; }

 private:
  std::atomic<uint64_t> next_{0};
};

}  // namespace spillway::balance

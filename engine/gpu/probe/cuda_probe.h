// The CUDA part of spillway-gpu-probe (built only with the CUDA toolkit):
// device properties, a device-to-device copy bandwidth and the latency of
// an empty kernel launch, on the devices CUDA_VISIBLE_DEVICES shows.
#pragma once

#include <string>

namespace spillway::gpu {

// A JSON array, one object per visible device ("[]" with an "error" object
// when CUDA cannot start).
std::string cudaProbeJson();

}  // namespace spillway::gpu

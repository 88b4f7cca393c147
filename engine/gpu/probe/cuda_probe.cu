#include <cuda_runtime.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "cuda_probe.h"

namespace spillway::gpu {

namespace {

__global__ void empty() {}

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) >= 0x20) out += c;
  }
  return out + "\"";
}

}  // namespace

std::string cudaProbeJson() {
  int n = 0;
  cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) return std::string("[{\"error\":") + quote(cudaGetErrorString(err)) + "}]";
  std::string out = "[";
  for (int d = 0; d < n; ++d) {
    cudaDeviceProp p{};
    cudaGetDeviceProperties(&p, d);
    cudaSetDevice(d);
    char buf[512];
    std::snprintf(buf, sizeof buf,
                  "{\"device\":%d,\"name\":%s,\"sm_count\":%d,\"memory_bytes\":%zu,\"compute_capability\":\"%d.%d\"", d,
                  quote(p.name).c_str(), p.multiProcessorCount, p.totalGlobalMem, p.major, p.minor);
    out += (d ? "," : "") + std::string(buf);
    // Copy bandwidth: 256 MiB device to device, 10 times.
    const size_t bytes = 256u << 20;
    void *a = nullptr, *b = nullptr;
    if (cudaMalloc(&a, bytes) == cudaSuccess && cudaMalloc(&b, bytes) == cudaSuccess) {
      cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice);  // warm-up
      cudaEvent_t start, stop;
      cudaEventCreate(&start);
      cudaEventCreate(&stop);
      cudaEventRecord(start);
      for (int i = 0; i < 10; ++i) cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice);
      cudaEventRecord(stop);
      cudaEventSynchronize(stop);
      float ms = 0;
      cudaEventElapsedTime(&ms, start, stop);
      // A copy reads and writes each byte.
      std::snprintf(buf, sizeof buf, ",\"copy_bandwidth_gbps\":%.1f", 2.0 * 10 * bytes / (ms / 1000.0) / 1e9);
      out += buf;
      cudaEventDestroy(start);
      cudaEventDestroy(stop);
    } else {
      out += ",\"copy_bandwidth_error\":\"cudaMalloc failed\"";
    }
    if (a) cudaFree(a);
    if (b) cudaFree(b);
    // Kernel launch latency: 1000 empty launches, synchronised.
    empty<<<1, 1>>>();
    cudaDeviceSynchronize();
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 1000; ++i) empty<<<1, 1>>>();
    cudaDeviceSynchronize();
    const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / 1000;
    std::snprintf(buf, sizeof buf, ",\"launch_us\":%.2f}", us);
    out += buf;
  }
  return out + "]";
}

}  // namespace spillway::gpu

// The `nvidia-smi -L` parser: any text, both MIG line forms, never a crash;
// an error names a line that exists.
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "gpu/smi_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto parsed = spillway::gpu::parseNvidiaSmiList(text);
  FUZZ_CHECK(parsed.error.empty() || parsed.error.starts_with("line "), "errors name their line");
  return 0;
}

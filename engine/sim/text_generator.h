// Deterministic text for the simulator: the same seed and prompt always give
// the same tokens. Every token is one short word (at most four letters), so
// openai::countTokens() of the generated text equals the number of tokens.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace spillway::sim {

class TextGenerator {
 public:
  TextGenerator(uint64_t seed, std::string_view prompt);

  // The next token; all but the first start with a space.
  std::string next();
  // A length in [min, max] drawn from this generator's stream.
  uint32_t naturalLength(uint32_t min, uint32_t max);

 private:
  uint64_t nextRaw();
  uint64_t state_;
  bool first_ = true;
};

}  // namespace spillway::sim

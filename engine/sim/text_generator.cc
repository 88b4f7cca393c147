#include "sim/text_generator.h"

#include <array>

namespace spillway::sim {
namespace {

constexpr std::array<std::string_view, 64> kWords = {
    "the",  "load", "is",   "high", "so",   "we",   "shed", "some", "work", "and",  "keep",
    "the",  "fast", "path", "open", "a",    "GPU",  "slot", "free", "up",  "when", "one",
    "long", "task", "ends", "then", "new",  "ones", "run",  "at",   "low", "cost", "our",
    "pool", "has",  "room", "for",  "more", "each", "node", "gets", "its", "fair", "part",
    "of",   "flow", "no",   "busy", "page", "ever", "goes", "out",  "to",  "you", "yet",
    "all",  "good", "data", "sent", "back", "in",   "time", "now",  "ok"};

// 64-bit FNV-1a, to fold the prompt into the seed.
uint64_t fnv1a(std::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

}  // namespace

TextGenerator::TextGenerator(uint64_t seed, std::string_view prompt)
    : state_(seed ^ fnv1a(prompt)) {}

// splitmix64: tiny, fast, and good enough for simulated text.
uint64_t TextGenerator::nextRaw() {
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

std::string TextGenerator::next() {
  std::string_view w = kWords[nextRaw() % kWords.size()];
  if (w.size() > 4) w = w.substr(0, 4);
  std::string out = first_ ? std::string(w) : " " + std::string(w);
  first_ = false;
  return out;
}

uint32_t TextGenerator::naturalLength(uint32_t min, uint32_t max) {
  if (max <= min) return min;
  return min + static_cast<uint32_t>(nextRaw() % (max - min + 1));
}


}  // namespace spillway::sim

#include "gpu/smi_parser.h"

#include <charconv>

#include "gpu/catalog.h"

namespace spillway::gpu {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

bool number(std::string_view s, uint32_t& out) {
  s = trim(s);
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

// "(UUID: X)" at the end of `s`: X, or "" when absent or malformed.
std::string_view uuidOf(std::string_view s) {
  const size_t open = s.rfind("(UUID:");
  if (open == std::string_view::npos || s.back() != ')') return {};
  return trim(s.substr(open + 6, s.size() - open - 7));
}

}  // namespace

SmiParse parseNvidiaSmiList(std::string_view text) {
  SmiParse out;
  out.inventory.source = "nvidia_smi";
  int line_no = 0;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = trim(text.substr(0, nl));
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++line_no;
    if (line.empty()) continue;
    auto fail = [&](const std::string& why) {
      out.error = "line " + std::to_string(line_no) + ": " + why + ": \"" + std::string(line.substr(0, 120)) + "\"";
      return out;
    };
    if (line.rfind("GPU ", 0) == 0) {
      // GPU N: NAME (UUID: GPU-...)
      const size_t colon = line.find(':');
      uint32_t index = 0;
      if (colon == std::string_view::npos || !number(line.substr(4, colon - 4), index)) {
        return fail("expected \"GPU <index>: <name> (UUID: GPU-...)\"");
      }
      const std::string_view uuid = uuidOf(line);
      if (uuid.empty()) return fail("GPU line without \"(UUID: ...)\"");
      GpuDevice g;
      g.index = index;
      const size_t open = line.rfind("(UUID:");
      g.name = std::string(trim(line.substr(colon + 1, open - colon - 1)));
      g.uuid = std::string(uuid);
      if (const GpuModel* m = findModel(g.name)) {
        g.model = m->name;
        g.memory_total_bytes = static_cast<uint64_t>(m->memory_gb * 1024 * 1024 * 1024);
      }
      out.inventory.gpus.push_back(std::move(g));
      continue;
    }
    if (line.rfind("MIG ", 0) == 0) {
      if (out.inventory.gpus.empty()) return fail("MIG device before any GPU line");
      // MIG PROFILE Device N: (UUID: ...)
      const size_t dev = line.find(" Device ");
      const size_t colon = line.find(':', dev == std::string_view::npos ? 0 : dev);
      uint32_t n = 0;
      if (dev == std::string_view::npos || colon == std::string_view::npos ||
          !number(line.substr(dev + 8, colon - dev - 8), n)) {
        return fail("expected \"MIG <profile> Device <n>: (UUID: ...)\"");
      }
      const std::string_view uuid = uuidOf(line);
      if (uuid.empty()) return fail("MIG line without \"(UUID: ...)\"");
      GpuDevice& g = out.inventory.gpus.back();
      g.mig_enabled = true;
      MigDevice m;
      m.profile = std::string(trim(line.substr(4, dev - 4)));
      m.uuid = std::string(uuid);
      m.slot = n;
      // Before R470: MIG-GPU-<gpu uuid>/<gpu instance>/<compute instance>.
      if (m.uuid.rfind("MIG-GPU-", 0) == 0) {
        const size_t s1 = m.uuid.find('/');
        const size_t s2 = s1 == std::string::npos ? s1 : m.uuid.find('/', s1 + 1);
        if (s2 == std::string::npos || !number(std::string_view(m.uuid).substr(s1 + 1, s2 - s1 - 1), m.gpu_instance_id) ||
            !number(std::string_view(m.uuid).substr(s2 + 1), m.compute_instance_id)) {
          return fail("old-style MIG UUID without /<gpu instance>/<compute instance>");
        }
        m.slot = m.gpu_instance_id;
      }
      if (const GpuModel* model = findModel(g.model)) {
        if (const Profile* p = model->profile(m.profile)) {
          m.profile_id = p->id;
          m.compute_slices = p->compute_slices;
          m.memory_slices = p->memory_slices;
          m.memory_bytes = static_cast<uint64_t>(p->memory_gb * 1024 * 1024 * 1024);
          m.sm_count = p->sm_count;
        }
      }
      g.mig.push_back(std::move(m));
      continue;
    }
    return fail("neither a GPU nor a MIG device line");
  }
  return out;
}

}  // namespace spillway::gpu

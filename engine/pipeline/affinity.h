// Affinity: computes what the pool's balancing policy asked for (its
// balance::Needs), so pools that need nothing pay nothing.
//  - a hash key for consistent_hash: the affinity cookie (set by Spillway
//    on the first answer when the client has none: `Set-Cookie: route=...;
//    Path=/; HttpOnly; SameSite=Lax`), a header, the OpenAI `user` field
//    or the client address;
//  - the prompt prefix's block hashes for prefix_affinity: the request body
//    from its "messages" (or "prompt") key on, in blocks of
//    prefix_block_bytes, each hash chained over the ones before (at most 256
//    blocks). Bytes, not tokens: the same prefix sent the same way gives
//    the same blocks, which is what a KV cache reuses.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "pipeline/stage.h"

namespace spillway::pipeline {

class AffinityStage final : public Stage {
 public:
  std::string_view name() const override { return "affinity"; }
  Verdict process(RequestContext& ctx) override;
};

// The chained block hashes of `body` from its prompt on (see above).
std::vector<uint64_t> prefixBlocks(std::string_view body, uint32_t block_bytes, size_t max_blocks = 256);

// The value of cookie `name` in a Cookie header, or "".
std::string_view cookieValue(std::string_view cookie_header, std::string_view name);

}  // namespace spillway::pipeline

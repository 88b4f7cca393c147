#!/usr/bin/env bash
# One libFuzzer target for $FUZZ_SECONDS (default 30): BINARY SEED_CORPUS
# DICTIONARY RUN_DIR. New inputs go to RUN_DIR/corpus (the checked-in seeds
# stay as they are); a crash, leak, sanitizer report or broken property
# leaves its input in RUN_DIR/crashes and fails. Copy such an input into the
# seed corpus once fixed: every build then replays it (fuzz_corpus_*).
set -euo pipefail
binary=$1 seeds=$2 dict=$3 run=$4
seconds=${FUZZ_SECONDS:-30}
mkdir -p "$run/corpus" "$run/crashes"
# Leaks fail the run (LeakSanitizer), as does any UBSan report.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
exec "$binary" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
  -dict="$dict" -artifact_prefix="$run/crashes/" -print_final_stats=1 "$run/corpus" "$seeds"

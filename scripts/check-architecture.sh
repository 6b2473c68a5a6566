#!/usr/bin/env bash
# Architecture rules that grep can check (issue 12). Prints every violation and exits 1 if any.
# Run it from anywhere: `bash scripts/check-architecture.sh` (.ci/run runs it before the tests).
#
# 1. api/src in layers, no import loop. Bottom to top:
#      error, config, metrics, http/ (shared HTTP pieces)
#      db, cache, version, refresh (infrastructure)
#      marts/, freshness.rs, ops/ (what is served; ops/ renders the operations page)
#      state.rs (what a handler can reach)
#      routes/ (handlers)
#      app/ (router, middleware, OpenAPI document, server)
#    A module never names a module of a higher layer. In particular no module names a route
#    (`crate::routes`) outside routes/ and the router (app/). Comment lines are not checked.
# 2. No SQL on pulso_flow.* outside the sinks crate, which owns those tables.
#    Checked: the Rust sources (*.rs) of every crate but sinks/. Not checked: tests (tests/, testkit/,
#    */tests/) and benches/, which set up and inspect state directly; migrations/ (sinks applies
#    them); docs and READMEs; the pipeline's SQL files (sql/, examples/), which read the settings
#    pulso_flow.full_refresh / run_id that a build sets for them. Comment lines are skipped. A
#    line is SQL on pulso_flow.* when `pulso_flow.` follows FROM/JOIN/INTO/UPDATE/TABLE/EXISTS,
#    is quoted ('pulso_flow.…', as in to_regclass or set_config), or starts a continued line of
#    a statement.
# 3. One incremental value type: pulso_types::IncValue/IncType, defined once in types/ and
#    nowhere else (no second watermark type).
set -uo pipefail
cd "$(dirname "$0")/.."

failures=0
fail() {
  echo "check-architecture: $*" >&2
  failures=$((failures + 1))
}

# Lines of FILES matching the extended regex PATTERN that are not comments, as file:line:text.
code_matches() {
  local pattern=$1
  shift
  [ $# -gt 0 ] || return 0
  grep -nE "$pattern" "$@" /dev/null 2>/dev/null |
    grep -vE '^[^:]+:[0-9]+:[[:space:]]*(//|\*|/\*)' || true
}

# ---- 1. layers of api/src -------------------------------------------------------------------
api=api/src
layer_rule() {
  # layer_rule DESCRIPTION FORBIDDEN-MODULES FILES...
  local what=$1 forbidden=$2
  shift 2
  local hits
  hits=$(code_matches "crate::($forbidden)\\b" "$@")
  if [ -n "$hits" ]; then
    while IFS= read -r line; do fail "$what: $line"; done <<<"$hits"
  fi
}

mapfile -t not_routes < <(find "$api" -name '*.rs' -not -path "$api/routes/*" -not -path "$api/app/*" 2>/dev/null | sort)
layer_rule "a route is named outside routes/ and the router (app/)" "routes" "${not_routes[@]}"
mapfile -t not_app < <(find "$api" -name '*.rs' -not -path "$api/app/*" 2>/dev/null | sort)
layer_rule "the router (app/) is named below it" "app" "${not_app[@]}"
layer_rule "state.rs names a higher layer" "routes|app" "$api/state.rs"
mapfile -t served < <(find "$api/marts" "$api/ops" -name '*.rs' 2>/dev/null | sort; echo "$api/freshness.rs")
layer_rule "marts/, ops/ or freshness.rs names a higher layer" "state|routes|app|cache|version|refresh" "${served[@]}"
layer_rule "infrastructure names a higher layer" "marts|freshness|state|routes|app" \
  "$api/db.rs" "$api/cache.rs" "$api/version.rs" "$api/refresh.rs"
mapfile -t bottom < <(find "$api/http" -name '*.rs' 2>/dev/null | sort; echo "$api/error.rs" "$api/config.rs" "$api/metrics.rs")
layer_rule "http/, error, config or metrics names a higher layer" \
  "db|cache|version|refresh|marts|freshness|state|routes|app" "${bottom[@]}"

# ---- 2. pulso_flow.* SQL only in sinks/ -----------------------------------------------------
# Files whose pulso_flow SQL is being moved into sinks. Each must still have such SQL: once it
# has none, delete its line here. (Empty: the engine's build bookkeeping moved to sinks::build
# and sinks::commit.)
pending=()
sql_pattern="((FROM|JOIN|INTO|UPDATE|TABLE|EXISTS)[[:space:]]+pulso_flow\\.|'pulso_flow\\.|^[[:space:]]*\"?pulso_flow\\.)"
mapfile -t sources < <(git ls-files '*.rs' | grep -vE '^(sinks/|tests/|testkit/|benches/|migrations/|examples/|sql/|docs/)|/tests/' | sort)
for f in "${sources[@]}"; do
  hits=$(code_matches "$sql_pattern" "$f")
  is_pending=0
  for p in "${pending[@]+"${pending[@]}"}"; do [ "$p" = "$f" ] && is_pending=1; done
  if [ -n "$hits" ] && [ $is_pending -eq 0 ]; then
    while IFS= read -r line; do fail "SQL on pulso_flow.* outside sinks/ (move it to sinks): $line"; done <<<"$hits"
  elif [ -n "$hits" ]; then
    echo "check-architecture: pending move to sinks/: $f ($(wc -l <<<"$hits") lines)"
  elif [ $is_pending -eq 1 ]; then
    fail "$f has no pulso_flow SQL any more: remove it from 'pending' in $0"
  fi
done

# ---- 3. one incremental value type ----------------------------------------------------------
# The value of an incremental column (a watermark, a window bound, `initial`, the argument of
# `watermarks set`) has one type with one parser and one canonical text: pulso_types::IncValue and
# its IncType (types/src/incremental.rs). No other crate defines a type for that idea (as sinks'
# Watermark/WatermarkKind did), and types/ defines each exactly once.
inc_types='(Watermark|WatermarkKind|WatermarkType|WatermarkValue|IncValue|IncType|IncrementalValue)'
inc_def="^[[:space:]]*(pub(\\([a-z]+\\))?[[:space:]]+)?(enum|struct|type)[[:space:]]+$inc_types\\b"
mapfile -t not_types < <(git ls-files '*.rs' | grep -v '^types/' | sort)
hits=$(code_matches "$inc_def" "${not_types[@]}")
if [ -n "$hits" ]; then
  while IFS= read -r line; do
    fail "a second incremental value type (use pulso_types::IncValue/IncType): $line"
  done <<<"$hits"
fi
for t in IncValue IncType; do
  n=$(code_matches "^[[:space:]]*pub[[:space:]]+(enum|struct)[[:space:]]+$t\\b" types/src/*.rs | wc -l)
  [ "$n" -eq 1 ] || fail "types/src must define $t exactly once (found $n)"
done

if [ $failures -gt 0 ]; then
  echo "check-architecture: $failures violation(s)" >&2
  exit 1
fi
echo "check-architecture: ok"

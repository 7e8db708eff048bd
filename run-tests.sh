#!/usr/bin/env bash
# Runs every test of the project: the .NET suites (which build everything first, the sample plugins, the
# daemon, the worker and the FFI library included, and run the C tests of the FFI bridge), then the Node
# client's tests against the daemon just built. Ends with one line `tests: N passed, N failed` and exits
# non-zero if anything failed or could not run.
set -uo pipefail
cd "$(dirname "$0")"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
log=$(mktemp)
trap 'rm -f "$log"' EXIT

dotnet test Connectias.Sandbox.sln 2>&1 | tee "$log"
dotnet_status=${PIPESTATUS[0]}
# One summary line per test assembly: "Passed!  - Failed: 0, Passed: 162, Skipped: 0, ..."
read -r passed failed < <(grep -E '^(Passed|Failed)! +- +Failed:' "$log" |
  sed -E 's/.*Failed: *([0-9]+), Passed: *([0-9]+).*/\2 \1/' |
  awk '{p += $1; f += $2} END {print p + 0, f + 0}')
if [ "$dotnet_status" -ne 0 ] && [ "$failed" -eq 0 ]; then
  echo "dotnet test exited with $dotnet_status without a failing test (build or runner failure)"
  failed=$((failed + 1))
fi

: > "$log"
# The Node tests package the sample plugins from samples/plugins/out, which dotnet test does not build.
(dotnet build samples/plugins -v q -nologo >/dev/null && cd clients/node && npm ci --no-audit --no-fund --prefer-offline && npm test) 2>&1 | tee "$log"
node_status=${PIPESTATUS[0]}
node_passed=$(grep -E '^# pass [0-9]+' "$log" | tail -1 | awk '{print $3}')
node_failed=$(grep -E '^# fail [0-9]+' "$log" | tail -1 | awk '{print $3}')
passed=$((passed + ${node_passed:-0}))
failed=$((failed + ${node_failed:-0}))
if [ "$node_status" -ne 0 ] && [ "${node_failed:-0}" -eq 0 ]; then
  echo "the Node tests exited with $node_status without a failing test (install or runner failure)"
  failed=$((failed + 1))
fi

echo "tests: ${passed} passed, ${failed} failed"
[ "$dotnet_status" -eq 0 ] && [ "$node_status" -eq 0 ] && [ "$failed" -eq 0 ]

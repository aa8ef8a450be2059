#!/bin/sh
# tests/run.sh WIRELAB: the whole suite -- C tests in tests/c, then the
# busted specs run inside wirelab -- ending with one line that counts
# everything: "N passed, N failed, N skipped". Exit status 1 on any failure.
WL=${1:-./wirelab}
# specs that run wirelab as a subprocess run this same binary
WIRELAB=$(readlink -f "$WL"); export WIRELAB
passed=0 failed=0 skipped=0
out=$(mktemp) || exit 2
trap 'rm -f "$out"' EXIT

for t in build/tests/c/*_test; do
  [ -x "$t" ] || continue
  if "$t" >"$out" 2>&1; then passed=$((passed + 1)); echo "ok   $t"
  else failed=$((failed + 1)); echo "FAIL $t"; cat "$out"; fi
done

# Specs under a time bound: a hang must fail CI, not stall it.
timeout -k 10 1200 "$WL" test tests 2>&1 | tee "$out"
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
if [ -z "$line" ]; then
  echo "wirelab test did not finish (crash or timeout)"
  failed=$((failed + 1))
else
  p=$(echo "$line" | sed -E 's/^([0-9]+) passed.*/\1/')
  f=$(echo "$line" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')
  s=$(echo "$line" | sed -nE 's/.*, ([0-9]+) skipped.*/\1/p')
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + ${s:-0}))
  # sanitizer reports make the runtime exit non-zero after a clean count
  if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$out"; then
    echo "sanitizer reported errors"; failed=$((failed + 1))
  fi
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]

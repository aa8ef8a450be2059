#!/bin/sh
# tests/run.sh WIRELAB [SPECS...]: the whole suite, the busted specs run
# inside wirelab (SPECS, default tests) and, with FUZZ_SECS set (make test
# sets it), a libFuzzer run of the HTTP parser for that long (make fuzz),
# ending with one line that counts everything it ran: "N passed, N failed,
# N skipped". Exit status 1 on any failure.
#
# The verdict is the runner's own. The counts come from busted's output
# handler (scripts/wirelab/busted_output.lua), written to a file named on
# its command line -- not from the output, where a spec can print a
# summary line of its own -- and wirelab's exit status must agree with
# them: a crash, a signal or a stray exit status after a clean count (a
# __gc that faults in lua_close, a sanitizer report) is a failure. With
# CI=true a skipped test is a failure too.
WL=${1:-./wirelab}
[ $# -gt 0 ] && shift
[ $# -eq 0 ] && set -- tests
# specs that run wirelab as a subprocess run this same binary
WIRELAB=$(readlink -f "$WL"); export WIRELAB
passed=0 failed=0 skipped=0
dir=$(mktemp -d) || exit 2
trap 'rm -rf "$dir"' EXIT

fail() { failed=$((failed + 1)); echo "FAIL: $*"; }

# The fuzz run first, alone: the timing-sensitive specs should not share
# the CPU with it. One test: passed (no crash, leak or mismatch), failed,
# or skipped when clang cannot be installed here.
if [ -n "$FUZZ_SECS" ] && [ "$FUZZ_SECS" != 0 ]; then
  make=${MAKE:-make}
  echo "fuzz: the HTTP parser under libFuzzer for $FUZZ_SECS s (make fuzz)"
  if ! $make -s --no-print-directory fuzz-deps >"$dir/fuzz.log" 2>&1; then
    skipped=$((skipped + 1))
    echo "SKIP: fuzz: clang is not installed and cannot be installed here:"
    sed 's/^/  /' "$dir/fuzz.log"
  elif $make -s --no-print-directory fuzz FUZZ_SECS="$FUZZ_SECS" >"$dir/fuzz.log" 2>&1; then
    passed=$((passed + 1))
    echo "fuzz: $(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/fuzz.log") inputs, no finding"
  else
    fail "fuzz: libFuzzer found a problem (inputs in build/fuzz):"
    tail -n 60 "$dir/fuzz.log"
  fi
fi

# Specs under a time bound (TEST_TIMEOUT seconds, 20 min by default): a
# hang must fail CI, not stall it. The output
# is shown as it comes; the exit status goes round the pipe in a file.
limit=${TEST_TIMEOUT:-1200}
{ timeout -k 10 "$limit" "$WL" test -Xoutput "counts=$dir/counts" "$@" 2>&1
  echo $? >"$dir/rc"; } | tee "$dir/out"
rc=$(cat "$dir/rc" 2>/dev/null)
case $rc in
  '') why="no exit status" ;;
  124) why="timed out after $limit s" ;;
  0) why="exit status 0" ;;
  *) if [ "$rc" -gt 128 ]; then why="killed by signal $((rc - 128)) ($(kill -l $((rc - 128))))"
     else why="exit status $rc"; fi ;;
esac
if ! read -r p f s <"$dir/counts" 2>/dev/null || [ -z "$s" ]; then
  fail "wirelab test did not finish: it counted nothing ($why)"
else
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
  # busted exits 1 when a test failed, 0 otherwise; anything else, or a
  # signal, happened after the count
  want=0
  [ "$f" -gt 0 ] && want=1
  [ "$rc" = "$want" ] || fail "wirelab test counted $f failures, then ended with $why"
fi
# sanitizer reports of the runtime itself (its exit status says so too)
if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$dir/out"; then
  fail "sanitizer reported errors"
fi
# In CI (CI=true) the machine has everything the suite needs (root,
# namespaces, IPv6, prlimit, python3): a test that did not run is a
# failure, so no item turns green by being skipped.
if [ "$CI" = true ] && [ "$skipped" -gt 0 ]; then
  echo "FAIL: CI=true: $skipped skipped tests count as failed"
  failed=$((failed + skipped)) skipped=0
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]

#!/usr/bin/env bash
# labs/gradescope/setup.sh: Gradescope runs this once, as root, when it
# builds the autograder's image (Ubuntu 22.04 base). It installs the
# Ubuntu packages wirelab needs, builds wirelab from the source tarball
# beside this file (wirelab-src.tar.gz, made by `wirelab lab pack`, with
# its own copy of llhttp: Ubuntu's node-llhttp is not Debian's), installs
# it, and grades the lab's own solution/, which must score full marks: a
# bundle that cannot grade fails here, at upload, not on 400 submissions.
#
# For testing elsewhere (tests/lab_cli_spec.lua), set:
#   WIRELAB_SKIP_APT=1     install no packages (they are there already)
#   WIRELAB_PREFIX=DIR     install under DIR, not /usr/local
#   WIRELAB_SELF_CHECK=0   do not grade the solution
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
PREFIX=${WIRELAB_PREFIX:-/usr/local}
# build: gcc make libc6-dev liblua5.4-dev libuv1-dev libedit-dev; run:
# python3 (Python submissions), procps and iproute2 (the sandbox)
PACKAGES="gcc make libc6-dev liblua5.4-dev libuv1-dev libedit-dev python3 procps iproute2"

if [ "${WIRELAB_SKIP_APT:-0}" != 1 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $PACKAGES
fi

build=$(mktemp -d /tmp/wirelab-build.XXXXXX)
trap 'rm -rf "$build"' EXIT
tar -xzf "$HERE/wirelab-src.tar.gz" -C "$build" --strip-components=1
# PKGS= : the packages are installed above; the Makefile must not look
# for Debian's own names
make -C "$build" -j"$(nproc)" PKGS= >"$build/make.log" 2>&1 || { tail -n 40 "$build/make.log"; exit 1; }
make -C "$build" install PKGS= PREFIX="$PREFIX" >>"$build/make.log" 2>&1 || { tail -n 40 "$build/make.log"; exit 1; }
"$PREFIX/bin/wirelab" --version

chmod 755 "$HERE/run_autograder"
if [ "${WIRELAB_SELF_CHECK:-1}" != 0 ] && [ -d "$HERE/lab/solution" ]; then
  "$PREFIX/bin/wirelab" grade "$HERE/lab" >"$build/self-check.txt" 2>&1 || true
  cat "$build/self-check.txt"
  score=$(sed -n 's/^score: //p' "$build/self-check.txt" | tail -n 1)
  if [ -z "$score" ] || [ "${score%/*}" != "${score#*/}" ]; then
    echo "setup.sh: the lab's solution/ scored ${score:-nothing}, not full marks: this image cannot grade the lab" >&2
    exit 1
  fi
  echo "setup.sh: the lab's solution/ scored $score"
fi

#!/bin/bash
# Set up and run every test: installs dependencies (apt), checks formatting,
# builds with warnings as errors and runs the whole suite under CTest, then
# builds again with AddressSanitizer + UndefinedBehaviorSanitizer and runs
# the whole suite again. Run as root on Debian 12: the integration tests
# build network-namespace hosts with real sshd (without root they skip).
#
#   contrib/test.sh            everything (what CI runs)
#   contrib/test.sh --quick    the normal build only, no sanitizer pass
set -euo pipefail
cd "$(dirname "$0")/.."
export LC_ALL=C
QUICK=0
[ "${1:-}" = --quick ] && QUICK=1
JOBS=$(nproc)

contrib/install-deps.sh

echo "== format check (clang-format)"
mapfile -t SOURCES < <(git ls-files '*.cpp' '*.h' 2>/dev/null || find engine connectors hooks tests bench -name '*.cpp' -o -name '*.h')
clang-format --dry-run --Werror "${SOURCES[@]}"

echo "== shell syntax"
for s in contrib/*.sh contrib/lab/*.sh bench/*.sh tests/e2e/*.sh .ci/run; do
    bash -n "$s"
done

# Labs left by a killed earlier run are removed before anything starts.
if [ "$(id -u)" = 0 ]; then
    contrib/lab/lab.sh gc
fi

run_suite() {  # run_suite BUILD_DIR CMAKE_ARGS...
    local dir=$1
    shift
    echo "== configure $dir ($*)"
    cmake -S . -B "$dir" -G Ninja -DVMLIFT_WERROR=ON "$@" >/dev/null
    echo "== build $dir"
    cmake --build "$dir" -j "$JOBS"
    echo "== test $dir"
    (cd "$dir" && ctest --output-on-failure --no-tests=error -j "$JOBS" --timeout 900)
}

start=$(date +%s)
run_suite build-test -DCMAKE_BUILD_TYPE=RelWithDebInfo
if [ "$QUICK" = 0 ]; then
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        run_suite build-sanitize -DCMAKE_BUILD_TYPE=Debug -DVMLIFT_SANITIZE=ON
fi
echo "== end to end (tests/e2e: a real guest migrated in the lab)"
VMLIFT_BUILD_DIR=build-test tests/e2e/full_migration.sh
echo "== all tests passed in $(( $(date +%s) - start )) s"

#!/usr/bin/env bash
# Builds the libFuzzer harnesses (fuzz/, with clang, ASan and UBSan) and runs each one.
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]   (default 60 s, every target)
# Each target first replays its checked-in seeds and regressions (fuzz/corpus, fuzz/regressions),
# then fuzzes for the time given from a working corpus under build-fuzz/work. It prints
# `figure fuzz_<target>_execs N` and `figure fuzz_<target>_crashes N`; a crash's input is kept
# in build-fuzz/crashes/ (copy it to fuzz/regressions/<target>/ once fixed). Exit 1 on a crash.
# FUZZ_RUNS=N fuzzes each target for N executions instead of a time (the record of
# fuzz/README.md: FUZZ_RUNS=10000000 scripts/fuzz.sh 0).
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-60}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(mpjson rpc entry cursor handshake http ws files peerauth cluster)
fi

CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLAUREL_FUZZ=ON >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target fuzz_all >/dev/null

# Longest input per target (libFuzzer's -max_len): 8 KiB, but ws's 1 KiB. A ws input is a
# connection's messages, one per line, and costs time in proportion to its length: with
# 8 KiB the corpus grew to 6 KiB inputs of a hundred messages and ran at 450 inputs a second
# (2026-12-04), a tenth of its start. Reassembly and the size cap of a message (ws.c,
# WS_MSG_MAX) come before the part this harness drives, and test_ws covers them.
declare -A max_len_of=([ws]=1024)

mkdir -p build-fuzz/crashes build-fuzz/work
failed=0
for t in "${targets[@]}"; do
    bin=build-fuzz/fuzz/fuzz_$t
    work=build-fuzz/work/$t
    mkdir -p "$work"
    inputs=(fuzz/corpus/"$t")
    if [ -d fuzz/regressions/"$t" ]; then
        inputs+=(fuzz/regressions/"$t")
    fi
    log=build-fuzz/fuzz_$t.log
    rc=0
    # Replay first: a fixed crash that comes back fails here, whatever the fuzzing finds.
    "$bin" -runs=0 "${inputs[@]}" >"$log" 2>&1 || rc=$?
    if [ $rc -eq 0 ]; then
        budget=(-max_total_time="$secs")
        if [ -n "${FUZZ_RUNS:-}" ]; then
            budget=(-runs="$FUZZ_RUNS")
        fi
        ASAN_OPTIONS=detect_leaks=1 "$bin" "${budget[@]}" -print_final_stats=1 \
            -artifact_prefix=build-fuzz/crashes/"$t"- -max_len="${max_len_of[$t]:-8192}" \
            "$work" "${inputs[@]}" \
            >>"$log" 2>&1 || rc=$?
    fi
    execs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log" | tail -1)
    crashes=0
    if [ $rc -ne 0 ]; then
        crashes=1
        failed=1
        echo "fuzz_$t: crashed (exit $rc); the log is $log:" >&2
        grep -E 'ERROR|SUMMARY|Test unit written' "$log" | head -5 >&2 || true
    fi
    echo "figure fuzz_${t}_execs ${execs:-0} execs"
    echo "figure fuzz_${t}_crashes $crashes crashes"
done
exit $failed

#!/usr/bin/env bash
# Formats every C file of the tree with .clang-format, or with --check lists the files that
# are not formatted and fails. Usage: scripts/format.sh [--check]
set -euo pipefail
cd "$(dirname "$0")/.."

mapfile -t files < <(git ls-files -- '*.c' '*.h')
if [ "${1:-}" = "--check" ]; then
    bad=()
    for f in "${files[@]}"; do
        if ! clang-format --style=file "$f" | cmp -s - "$f"; then
            bad+=("$f")
        fi
    done
    if [ "${#bad[@]}" -gt 0 ]; then
        printf 'not formatted (run scripts/format.sh): %s\n' "${bad[@]}" >&2
        exit 1
    fi
    echo "format: ${#files[@]} files formatted"
else
    clang-format --style=file -i "${files[@]}"
fi

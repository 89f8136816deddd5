#!/usr/bin/env bash
# tests/deploy/verify_units.sh LAUREL_BIN — `systemd-analyze verify` on deploy/systemd's units
# must be clean: exit 0 and not one line of output (unknown keys are only warnings there).
#
# verify insists that ExecStart's binary exists, so the units are copied to a temporary folder
# with /usr/local/bin/laurel replaced by the build's binary; the template is verified through
# an instance (laurel-node@eu-2.service), which verify loads from the template beside it. It
# needs no running systemd: CI runs it as root in a container whose PID 1 is not systemd.
set -euo pipefail
bin=${1:?usage: verify_units.sh LAUREL_BIN}
src=$(cd "$(dirname "$0")/../../deploy/systemd" && pwd)
command -v systemd-analyze >/dev/null || { echo "systemd-analyze missing: scripts/setup.sh installs systemd" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for u in "$src"/*.service; do
    sed "s#/usr/local/bin/laurel#$bin#g" "$u" >"$tmp/$(basename "$u")"
done
out=$(systemd-analyze verify --man=no "$tmp/laurel-node@eu-2.service" "$tmp/laurel-router.service" 2>&1) || {
    echo "$out" >&2
    echo "verify_units: systemd-analyze verify failed" >&2
    exit 1
}
if [ -n "$out" ]; then
    echo "$out" >&2
    echo "verify_units: systemd-analyze verify is not clean" >&2
    exit 1
fi
echo "verify_units: laurel-node@.service and laurel-router.service are clean"

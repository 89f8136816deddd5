#!/usr/bin/env python3
"""tests/deploy/test_render.py LAUREL_BIN — deploy/render on the three-host example
(deploy/cluster.example.json): each host gets its replicas' env files, its router's, the units
with the binary path given, the cluster file, an install.sh and its ports; a host with two
routers and a file that is not JSON are refused. The example itself must pass the decoder
(`laurel node --config ... --help` loads the file before printing help)."""
import os
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
RENDER = os.path.join(ROOT, "deploy", "render")
EXAMPLE = os.path.join(ROOT, "deploy", "cluster.example.json")


def read(path):
    with open(path) as f:
        return f.read()


def check(cond, what):
    if not cond:
        sys.stderr.write("test_render: FAILED: %s\n" % what)
        sys.exit(1)


def main():
    laurel = sys.argv[1]
    for group, rid in (("eu", 1), ("meta", 3)):
        r = subprocess.run([laurel, "node", "--config", EXAMPLE, "--region", group, "--id",
                            str(rid), "--help"], capture_output=True, text=True)
        check(r.returncode == 0, "the example decodes (%s %d): %s" % (group, rid, r.stderr))
    r = subprocess.run([laurel, "router", "--config", EXAMPLE, "--id", "us1", "--help"],
                       capture_output=True, text=True)
    check(r.returncode == 0, "the example's router us1: %s" % r.stderr)

    with tempfile.TemporaryDirectory() as out:
        r = subprocess.run([RENDER, EXAMPLE, out, "--bin", "/opt/laurel/bin/laurel"],
                           capture_output=True, text=True)
        check(r.returncode == 0, "render exits 0: %s" % r.stderr)
        check(sorted(os.listdir(out)) == ["ap1", "eu1", "us1"], "one folder per host")
        for host, region, meta_id in (("eu1", "eu", 1), ("us1", "us", 2), ("ap1", "ap", 3)):
            etc = os.path.join(out, host, "etc", "laurel")
            check(sorted(os.listdir(etc)) ==
                  sorted(["cluster.json", "node-%s-1.env" % region, "node-meta-%d.env" % meta_id,
                          "router.env"]), "%s's /etc/laurel: %s" % (host, os.listdir(etc)))
            env = read(os.path.join(etc, "node-%s-1.env" % region))
            check("LAUREL_REGION=%s\n" % region in env and "LAUREL_ID=1\n" in env, "env " + env)
            env = read(os.path.join(etc, "node-meta-%d.env" % meta_id))
            check("LAUREL_REGION=meta\n" in env and "LAUREL_ID=%d\n" % meta_id in env, env)
            check("LAUREL_ROUTER_ID=%s\n" % host in read(os.path.join(etc, "router.env")),
                  "router.env names the router")
            check(read(os.path.join(etc, "cluster.json")) == read(EXAMPLE), "the file is copied")
            check(os.stat(os.path.join(etc, "cluster.json")).st_mode & 0o777 == 0o640, "0640")
            unit = read(os.path.join(out, host, "etc/systemd/system/laurel-node@.service"))
            check("ExecStart=/opt/laurel/bin/laurel node --config /etc/laurel/cluster.json"
                  in unit, "the unit runs the binary given")
            inst = read(os.path.join(out, host, "install.sh"))
            check("systemctl enable --now laurel-node@%s-1 laurel-node@meta-%d laurel-router"
                  % (region, meta_id) in inst, "install.sh enables the host's units: " + inst)
            check("/etc/laurel/cluster.key" in inst and "/etc/laurel/keys.json" in inst,
                  "install.sh checks the secrets are in place")
            ports = read(os.path.join(out, host, "ports.txt"))
            others = " ".join(sorted({"eu1", "us1", "ap1"} - {host}))
            check("meta replica %d raft 7101 from: %s" % (meta_id, others) in ports, ports)
            check("%s replica 1 rpc 8001 from: %s" % (region, others) in ports, ports)
            check("http 8080 from: clients" in ports, ports)

        bad = os.path.join(out, "bad.json")
        with open(bad, "w") as f:
            f.write('{"regions": [{"id": "eu", "replicas": [{"id": 1, "raft": "a:1", '
                    '"rpc": "a:2"}]}], "routers": [{"id": "r1", "http": "a:80"}, '
                    '{"id": "r2", "http": "a:81"}]}')
        r = subprocess.run([RENDER, bad, os.path.join(out, "x")], capture_output=True, text=True)
        check(r.returncode == 2 and "two routers" in r.stderr, "two routers on a host refused")
        with open(bad, "w") as f:
            f.write("{")
        r = subprocess.run([RENDER, bad, os.path.join(out, "x")], capture_output=True, text=True)
        check(r.returncode == 2 and "bad.json" in r.stderr, "not JSON refused")
    print("test_render: ok")


if __name__ == "__main__":
    main()

"""Network namespaces, a bridge and nftables: the test network the replicas run on.

Every replica runs in its own network namespace, wired to one bridge in the root namespace by a
veth pair, so that a fault can cut, drop or reset exactly the traffic between two replicas
(nftables rules inside the replica's namespace) without touching the machine's loopback. The
routers and the runner stay in the root namespace and reach the replicas over the bridge.

A host may also share another host's namespace, with an address of its own on the same eth0
(`add_host(name, share=...)`): the WAN topology (chaoslib/wan.py) puts a whole region, its
replicas and its router, in one namespace, so that traffic within the region stays on that
namespace's loopback and only traffic between regions crosses the bridge.

Everything this module creates carries the run's prefix, and cleanup() removes whatever carries
it, so an interrupted earlier run is cleaned at the next start.
"""
import subprocess

BRIDGE_NET = "10.99.0"


def sh(*args, check=True, input=None):
    """Run a command; raise with its stderr when it fails and check is set."""
    p = subprocess.run(args, input=input, capture_output=True, text=True, timeout=30)
    if check and p.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(args), p.stderr.strip() or p.stdout.strip()))
    return p


class Net:
    """A bridge `<prefix>br` at <subnet>.1/24 and namespaces `<prefix>-<name>`."""

    def __init__(self, prefix="lch", subnet=BRIDGE_NET):
        self.prefix = prefix
        self.subnet = subnet  # the first three bytes of the /24
        self.gateway = subnet + ".1"  # the bridge's own address, in the root namespace
        self.bridge = prefix + "br"
        self.hosts = {}  # name -> (namespace, ip)
        self.next_ip = 10

    def up(self):
        self.cleanup()
        sh("ip", "link", "add", self.bridge, "type", "bridge")
        sh("ip", "addr", "add", self.gateway + "/24", "dev", self.bridge)
        sh("ip", "link", "set", self.bridge, "up")

    def add_host(self, name, share=None):
        """A namespace for one process, with its address on the bridge. Returns the address.
        With @share (a host already added), no new namespace: @name gets a second address in
        @share's namespace, and processes there reach each other over its loopback."""
        ip = "%s.%d" % (self.subnet, self.next_ip)
        if share is not None:
            ns = self.ns(share)
            self.next_ip += 1
            sh("ip", "-n", ns, "addr", "add", ip + "/24", "dev", "eth0")
            self.hosts[name] = (ns, ip)
            return ip
        ns = "%s-%s" % (self.prefix, name)
        # veth names are at most 15 bytes: the prefix and the address's last byte.
        outer = "%sv%d" % (self.prefix, self.next_ip)
        self.next_ip += 1
        sh("ip", "netns", "add", ns)
        sh("ip", "link", "add", outer, "type", "veth", "peer", "name", "eth0", "netns", ns)
        sh("ip", "link", "set", outer, "master", self.bridge)
        sh("ip", "link", "set", outer, "up")
        sh("ip", "-n", ns, "addr", "add", ip + "/24", "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        self.hosts[name] = (ns, ip)
        return ip

    def ns(self, name):
        return self.hosts[name][0]

    def ip(self, name):
        return self.hosts[name][1]

    # ---- nftables: one table per namespace, flushed to heal -----------------------------------

    def nft(self, name, script):
        """Load @script (nft syntax) into host @name's namespace."""
        sh("ip", "netns", "exec", self.ns(name), "nft", "-f", "-", input=script)

    def rules(self, name, input_rules=(), output_rules=(), nat_output=()):
        """Replace host @name's fault rules with these (each a string of nft rule syntax)."""
        lines = ["table inet chaos", "delete table inet chaos", "table inet chaos {"]
        lines.append("  chain in { type filter hook input priority 0; policy accept;")
        lines += ["    " + r for r in input_rules]
        lines.append("  }")
        lines.append("  chain out { type filter hook output priority 0; policy accept;")
        lines += ["    " + r for r in output_rules]
        lines.append("  }")
        if nat_output:
            lines.append("  chain natout { type nat hook output priority -100; policy accept;")
            lines += ["    " + r for r in nat_output]
            lines.append("  }")
        lines.append("}")
        self.nft(name, "\n".join(lines) + "\n")

    def clear(self, name):
        """Heal: drop every fault rule of host @name."""
        self.nft(name, "table inet chaos\ndelete table inet chaos\n")
        # Connections NATed to the delay proxy stay NATed until they close; forget them so
        # that new ones go straight to the peer (conntrack may be absent: then nothing to do).
        sh("ip", "netns", "exec", self.ns(name), "conntrack", "-F", check=False)

    def cleanup(self):
        """Remove every namespace, veth and the bridge of this prefix (also a crashed run's)."""
        out = sh("ip", "netns", "list", check=False).stdout
        for line in out.splitlines():
            ns = line.split()[0] if line.split() else ""
            if ns.startswith(self.prefix + "-"):
                sh("ip", "netns", "pids", ns, check=False)
                for pid in sh("ip", "netns", "pids", ns, check=False).stdout.split():
                    sh("kill", "-9", pid, check=False)
                sh("ip", "netns", "del", ns, check=False)
        links = sh("ip", "-o", "link", "show", check=False).stdout
        for line in links.splitlines():
            parts = line.split(":")
            if len(parts) > 1:
                dev = parts[1].strip().split("@")[0]
                if dev.startswith(self.prefix + "v") or dev == self.bridge:
                    sh("ip", "link", "del", dev, check=False)
        self.hosts = {}
        self.next_ip = 10

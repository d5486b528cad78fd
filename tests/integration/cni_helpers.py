"""CNI pieces the network tests share: a bridge network config of the
test's own (bridge name, subnet and IPAM folder), and removing what such a
network leaves on the host: the bridge, and iptables nat chains portmap made."""
import shlex
import subprocess


def nat_chains():
    out = subprocess.run(["iptables", "-w", "-t", "nat", "-S"], capture_output=True,
                         text=True).stdout
    return {line.split()[1] for line in out.splitlines() if line.startswith("-N ")}


def bridge_conflist(bridge, subnet, ipam_dir, extra_plugins=(), name="crisp-test"):
    return {
        "cniVersion": "1.0.0",
        "name": name,
        "plugins": [
            {"type": "bridge", "bridge": bridge, "isGateway": True, "ipMasq": False,
             "hairpinMode": True,
             "ipam": {"type": "host-local", "dataDir": ipam_dir,
                      "ranges": [[{"subnet": subnet}]],
                      "routes": [{"dst": "0.0.0.0/0"}]}},
            {"type": "portmap", "capabilities": {"portMappings": True}},
            *extra_plugins,
        ],
    }


def remove_host_network_state(bridge, chains_before):
    """Deletes the bridge, and every nat chain not in chains_before with the rules
    jumping to it."""
    subprocess.run(["ip", "link", "del", bridge], capture_output=True)
    new = sorted(nat_chains() - chains_before)
    for chain in new:
        subprocess.run(["iptables", "-w", "-t", "nat", "-F", chain], capture_output=True)
    for chain in new:
        for line in subprocess.run(["iptables", "-w", "-t", "nat", "-S"], capture_output=True,
                                   text=True).stdout.splitlines():
            if f"-j {chain}" in line:
                subprocess.run(["iptables", "-w", "-t", "nat", "-D", *shlex.split(line)[1:]],
                               capture_output=True)
        subprocess.run(["iptables", "-w", "-t", "nat", "-X", chain], capture_output=True)

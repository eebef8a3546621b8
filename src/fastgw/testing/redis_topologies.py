"""Real Redis topologies for tests, on free 127.0.0.1 ports: a Redis
Cluster (``redis-server --cluster-enabled``, joined by ``redis-cli
--cluster create``) and a master with a replica watched by Sentinels
(``redis-sentinel``), with a failover on demand.

Debian ships them as ``redis-server``, ``redis-tools`` (``redis-cli``) and
``redis-sentinel``. Timeouts are short (a node is judged down after half a
second) so that a failover takes a second or two.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from typing import Any, TypeVar

from fastgw.testing import free_port
from fastgw.testing.redis_server import RedisServer

DOWN_AFTER_MS = 500
# A master sends a new replica its data at once (Redis waits 5 s by default
# for more replicas to share one transfer).
_PROMPT_SYNC = ("--repl-diskless-sync-delay", "0")


def _wait(what: str, done: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout} s")
        time.sleep(0.05)


def replication(server: RedisServer) -> dict[str, Any]:
    """``INFO replication`` of a running server; empty when it does not answer."""
    with contextlib.suppress(Exception):
        return dict(server.client().info("replication"))
    return {}


_S = TypeVar("_S", bound="_Servers")


class _Servers:
    """Started on entering (stopped again if the start fails), stopped on leaving."""

    def start(self: _S, timeout: float = 30.0) -> _S:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self: _S) -> _S:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()


class RedisClusterServers(_Servers):
    """``with RedisClusterServers(masters=3, replicas=1) as cluster: ...``;
    ``cluster.nodes`` for clients (host, port), ``cluster.servers`` to
    stop one."""

    def __init__(self, masters: int = 3, replicas: int = 0) -> None:
        self.masters = masters
        self.replicas = replicas
        # The cluster bus has a free port of its own (by default it is the
        # port + 10000, past 65535 for a high free port).
        self.servers = [
            RedisServer(args=("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                              "--cluster-port", str(free_port()),
                              "--cluster-node-timeout", str(DOWN_AFTER_MS),
                              "--cluster-require-full-coverage", "no", *_PROMPT_SYNC))
            for _ in range(masters * (1 + replicas))]

    @property
    def nodes(self) -> list[tuple[str, int]]:
        return [("127.0.0.1", server.port) for server in self.servers]

    def start(self, timeout: float = 30.0) -> RedisClusterServers:
        for server in self.servers:
            server.start()
        cli = shutil.which("redis-cli")
        if cli is None:
            raise RuntimeError("redis-cli not found: apt-get install redis-tools")
        created = subprocess.run(
            [cli, "--cluster", "create", *(f"127.0.0.1:{port}" for _, port in self.nodes),
             "--cluster-replicas", str(self.replicas), "--cluster-yes"],
            capture_output=True, text=True, timeout=timeout)
        if created.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed:\n{created.stdout}"
                               f"{created.stderr}")
        _wait("the cluster to be ok on every node", self.ready, timeout)
        return self

    def ready(self) -> bool:
        """Every running node sees the cluster ok, every slot served, and
        every replica has its master's data link up."""
        for server in self.servers:
            if not server.running:
                continue
            info = replication(server)
            if info.get("role") == "slave" and info.get("master_link_status") != "up":
                return False
            with contextlib.suppress(Exception):
                state = server.client().cluster("INFO")
                if state["cluster_state"] == "ok" and int(state["cluster_slots_ok"]) == 16384:
                    continue
            return False
        return True

    def master_of(self, key: str) -> RedisServer:
        """The node that serves ``key``'s slot now."""
        import redis.cluster

        client = redis.cluster.RedisCluster(
            startup_nodes=[redis.cluster.ClusterNode(host, port)
                           for (host, port), server in zip(self.nodes, self.servers,
                                                          strict=True) if server.running])
        try:
            node = client.get_node_from_key(key)
            assert node is not None
            return next(s for s in self.servers if s.port == node.port)
        finally:
            client.close()

    def fail_over(self, server: RedisServer, timeout: float = 20.0) -> None:
        """Kill master ``server`` and wait until its replica serves its slots."""
        server.stop()
        _wait("a replica to take over", self.ready, timeout)

    def client(self):
        """A synchronous cluster client, for tests to look inside."""
        import redis.cluster

        return redis.cluster.RedisCluster(
            startup_nodes=[redis.cluster.ClusterNode(host, port) for host, port in self.nodes
                           if self._running(port)])

    def _running(self, port: int) -> bool:
        return any(s.port == port and s.running for s in self.servers)

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
            server.dir.cleanup()



class RedisSentinelServers(_Servers):
    """A master, one replica and ``sentinels`` Sentinels watching them as
    ``master_name``. ``fail_over()`` kills the master and waits until the
    Sentinels name the replica."""

    def __init__(self, sentinels: int = 1, master_name: str = "fastgw") -> None:
        self.master_name = master_name
        self.master = RedisServer(args=_PROMPT_SYNC)
        self.replica = RedisServer(args=("--replicaof", "127.0.0.1", str(self.master.port)))
        self.sentinel_ports = [free_port() for _ in range(sentinels)]
        self.dir = tempfile.TemporaryDirectory(prefix="fastgw-sentinel-")
        self.procs: list[subprocess.Popen] = []

    @property
    def sentinels(self) -> list[tuple[str, int]]:
        return [("127.0.0.1", port) for port in self.sentinel_ports]

    def start(self, timeout: float = 20.0) -> RedisSentinelServers:
        self.master.start()
        self.replica.start()
        executable = shutil.which("redis-sentinel")
        command = [executable] if executable else [shutil.which("redis-server") or
                                                   "redis-server"]
        quorum = len(self.sentinel_ports) // 2 + 1
        for port in self.sentinel_ports:
            conf = os.path.join(self.dir.name, f"sentinel-{port}.conf")
            with open(conf, "w") as f:
                f.write(f"port {port}\nbind 127.0.0.1\ndir {self.dir.name}\n"
                        f"sentinel monitor {self.master_name} 127.0.0.1 {self.master.port} "
                        f"{quorum}\n"
                        f"sentinel down-after-milliseconds {self.master_name} {DOWN_AFTER_MS}\n"
                        f"sentinel failover-timeout {self.master_name} 5000\n")
            with open(os.path.join(self.dir.name, f"sentinel-{port}.log"), "ab") as log:
                args = [*command, conf] + ([] if executable else ["--sentinel"])
                self.procs.append(subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT))
        _wait("the Sentinels to see the replica", self._watching, timeout)
        return self

    def _ask(self, port: int, *command: str) -> Any:
        import redis

        with contextlib.suppress(Exception), \
                redis.Redis(host="127.0.0.1", port=port, socket_timeout=1) as client:
            return client.execute_command(*command)
        return None

    def master_port(self) -> int | None:
        """The master's port as the first Sentinel names it now."""
        answer = self._ask(self.sentinel_ports[0], "SENTINEL", "get-master-addr-by-name",
                           self.master_name)
        return int(answer[1]) if answer else None

    def _watching(self) -> bool:
        if replication(self.replica).get("master_link_status") != "up":
            return False
        for port in self.sentinel_ports:
            replicas = self._ask(port, "SENTINEL", "replicas", self.master_name)
            if not replicas or self.master_port() != self.master.port:
                return False
        return True

    def fail_over(self, timeout: float = 20.0) -> None:
        """Kill the master; return once the Sentinels name the replica and it
        accepts writes."""
        self.master.stop()

        def promoted() -> bool:
            if self.master_port() != self.replica.port:
                return False
            return replication(self.replica).get("role") == "master"

        _wait("the Sentinels to promote the replica", promoted, timeout)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.procs = []
        for server in (self.master, self.replica):
            server.stop()
            server.dir.cleanup()
        self.dir.cleanup()


import asyncio
import os

import orjson

from fastgw.plugins.base import Plugin


class ProbePlugin(Plugin):
    name = "probe"
    PRIORITY = 500

    def access(self, ctx):
        if self.config["async_access"] or self.config["read_body"]:
            return self._access_async(ctx)
        self._access(ctx)
        return None

    async def _access_async(self, ctx):
        await asyncio.sleep(0.01)
        if self.config["read_body"]:
            body = await ctx.read_body()
            ctx.request.headers.set("X-Probe-Body-Len", str(len(body)))
            ctx.request.set_body(body[::-1])
        self._access(ctx)

    def _access(self, ctx):
        if self.config["raise_in"] == "access":
            raise RuntimeError("probe access failure")
        order = ctx.shared.setdefault("order", [])
        order.append(self.config["tag"])
        ctx.request.headers.set("X-Probe-Order", ",".join(order))
        if self.config["upstream_url"]:
            ctx.set_upstream(self.config["upstream_url"])
        if self.config["decide_header"]:
            first = [b"X-Probe-Decided", b"first", b"X-Probe-Decided-Also", b"yes"]
            ctx.add_decided_headers(first, (b"x-probe-decided",))
            if self.config["decide_header"] == 2:
                ctx.add_decided_headers([b"X-Probe-Decided", b"second"], (b"x-probe-decided",),
                                        instead_of=first)
        if self.config["exit_status"]:
            ctx.exit(self.config["exit_status"], {"message": "probe says no"})

    def header_filter(self, ctx):
        if self.config["raise_in"] == "header_filter":
            raise RuntimeError("probe header failure")
        ctx.response.headers.add("X-Probe-Seen", f"{self.config['tag']}:{ctx.response.source}")
        if self.config["upper_body"]:
            ctx.response.headers.remove("Content-Length")

    def body_filter(self, ctx, chunk, eof):
        if ctx.response.aborted:
            return b"data: {\"error\": \"upstream went away\"}\n\n"
        if not self.config["upper_body"]:
            return chunk
        state = ctx.plugin_state(self, list)
        state.append(chunk)
        return b"".join(state).upper() if eof else b""

    # Lifecycle hooks: each leaves a line in $PROBE_LIFECYCLE_FILE.
    @staticmethod
    def _note(what):
        path = os.environ.get("PROBE_LIFECYCLE_FILE")
        if path:
            with open(path, "a") as f:
                f.write(f"{what} {os.getpid()}\n")

    @classmethod
    def init_worker(cls):
        cls._note("init_worker")

    @classmethod
    async def shutdown(cls, timeout):
        cls._note("shutdown")

    @classmethod
    async def purge(cls, key, redis):
        cls._note(f"purge {key}")
        return 0

    @classmethod
    def worker_stats(cls, metrics):
        return {"probe": {"metrics": metrics}}

    def log(self, ctx):
        if self.config["log_file"]:
            with open(self.config["log_file"], "ab") as f:
                f.write(orjson.dumps(ctx.log_entry()) + b"\n")


HANDLER = ProbePlugin

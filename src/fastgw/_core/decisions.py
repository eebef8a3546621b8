"""The per-request side of fast decisions (see ``fastgw.plugins.fast``), in
the compiled core: the core calls a route's ``FastChain`` for every request
on it, so its objects are cdef classes typed by ``decisions.pxd`` (aiohttp's
pattern: one ``.py`` source, compiled, importable uncompiled).

PERF: as Python classes the chain cost about 0.6 us a request on top of the
decisions themselves (a ten-field object, the loop, a tuple).
"""

try:
    import cython
except ImportError:  # uncompiled install without Cython
    import types

    cython = types.SimpleNamespace(compiled=False)


class FastRequest:
    """What a fast decision sees: the request head as the core parsed it
    (``headers`` is the core's own [name, value, ...] list: changes reach the
    upstream), and what the decisions before it established."""

    def __init__(self, method, host, url, headers, peer_ip, request_id):
        self.method = method
        self.host = host
        self.url = url
        self.headers = headers
        self.peer_ip = peer_ip
        self.request_id = request_id
        self.consumer = None
        self.credential = None
        self.credential_identifier = None
        self.lines = b""  # response header lines ("Name: value\r\n" ...)
        # As RequestContext.note_credentials, for the runner after a hand-over.
        self.credential_headers = frozenset()

    def authenticate(self, consumer, credential, credential_identifier):
        self.consumer = consumer
        self.credential = credential
        self.credential_identifier = credential_identifier


class Handover:
    """The runner takes the request from the plugin at ``index`` of the
    chain's access phase, with what the decisions before it established."""

    def __init__(self, index, request):
        self.index = index
        self.request = request


class FastChain:
    """A route's fast decisions, called by the core as
    ``chain(method, host, url, headers, peer_ip, request_id)``. It answers
    None (the runner does everything), a FastAnswer, a Handover, or
    ``(header lines, consumer label)`` when the request is wholly decided."""

    def __init__(self, steps, resume_at, drop_response_headers):
        self.steps = tuple(steps)
        # Where the runner takes over once every decision passed; None: nowhere.
        self.resume_at = resume_at
        self.drop_response_headers = drop_response_headers

    def __call__(self, method, host, url, headers, peer_ip, request_id):
        request = FastRequest(method, host, url, headers, peer_ip, request_id)
        index = 0
        for decide in self.steps:
            out = decide(request)
            if out is not True:
                if out is None:
                    return None if index == 0 else Handover(index, request)
                if request.lines:
                    self.add_lines(out, request.lines)
                return out
            index += 1
        if self.resume_at is not None:
            return Handover(self.resume_at, request)
        consumer = request.consumer
        if consumer is None:
            return (request.lines or None, None)
        # How metrics and logs name a consumer (plugins.context.consumer_label).
        return (request.lines or None,
                consumer.username or consumer.custom_id or consumer.id or "")

    def add_lines(self, answer, lines):
        """The earlier decisions' header lines on an answer, replacing what
        it carries under the same names (as their header filters do with a
        plugin's exit on the runner path, a stored cache entry's among them)."""
        drop = self.drop_response_headers
        if drop:
            headers = answer.headers
            headers[:] = [part for i in range(0, len(headers), 2)
                          if headers[i].lower() not in drop
                          for part in (headers[i], headers[i + 1])]
        answer.extra_head = lines

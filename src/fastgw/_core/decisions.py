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

    def note_credentials(self, headers):
        """As RequestContext.note_credentials: where an auth plugin reads
        credentials meant for the gateway (headers only: decisions never read
        a body)."""
        if self.credential_headers:
            self.credential_headers = self.credential_headers | headers
        else:
            self.credential_headers = headers

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


class WindowQuota:
    """rate-limiting's usual configuration decided in compiled code: one fixed
    window counted on this node, by client IP, consumer or credential, with
    the rate-limit headers shown (PERF: about a third of the plugin's Python
    decision). A request it does not pass (over the limit, a counter store
    error) goes to ``fallback``, the plugin's own decision, which counts it
    again and answers it as the access phase would."""

    BY_IP = 0
    BY_CONSUMER = 1
    BY_CREDENTIAL = 2

    def __init__(self, window, limit, node_key, by, head, limit_value, reset_after, plugin,
                 fallback):
        self.window = window
        self.limit = limit
        self.node_key = node_key
        self.by = by
        # "X-RateLimit-Limit-<Period>: n\r\n...X-RateLimit-Remaining-<Period>: "
        self.head = head
        self.limit_value = limit_value
        self.reset_after = reset_after  # (period index, now, key, detail) -> seconds
        self.plugin = plugin            # its ``clock`` (tests move it)
        self.fallback = fallback
        self.reset_second = -1
        self.reset = 0

    def __call__(self, request):
        identifier = request.peer_ip
        if self.by != 0 and request.credential is not None:
            # As rate-limiting's identify: the consumer, else the credential.
            consumer = request.consumer
            if self.by == 1 and consumer is not None and consumer.id:
                identifier = consumer.id.encode()
            else:
                found = request.credential.get("id") or request.credential_identifier
                if found:
                    identifier = found.encode()
        now = self.plugin.clock()
        key = self.node_key + identifier
        try:
            count = self.window.hit(key, now)
        except Exception:
            return self.fallback(request)
        if self.limit - count + 1 <= 0:
            self.window.hit(key, now, -1)
            return self.fallback(request)
        second = int(now)
        if second != self.reset_second:
            # A fixed window's reset depends on the second alone.
            self.reset = self.reset_after(0, now, key, None)
            self.reset_second = second
        left = self.limit - count
        request.lines += (b"%s%d\r\nRateLimit-Limit: %s\r\nRateLimit-Remaining: %d\r\n"
                          b"RateLimit-Reset: %d\r\n" % (self.head, left, self.limit_value,
                                                          left, self.reset))
        return True


def header_variable(name):
    """The form in which nginx names a request header in its ``$http_``
    variables, which Kong's ``kong.request.get_header`` reads: lower case,
    with ``-`` and ``_`` alike. Two names that give the same form are the
    same header to a Kong plugin (``api_key`` finds ``Api-Key``)."""
    return name.lower().replace(b"-", b"_")


class HeaderKeyDecision:
    """key-auth's usual configuration decided in compiled code: the key in one
    header, no hiding, no body. One pass over the headers finds the key and
    any identity header the client sent (to be replaced); a known key's
    consumer and identity headers are looked up once per key, by its bytes.
    Anything else (no key, a repeated or unknown key, a preflight) answers
    None: the plugin's access phase decides it with a context."""

    def __init__(self, header_name, credentials, credential_headers, identity_names,
                 identity_items, remove_identity):
        self.header_name = header_variable(header_name)
        self.credentials = credentials              # key -> (consumer, credential, identifier)
        self.credential_headers = credential_headers
        self.identity_names = identity_names        # lower-case names the gateway sets
        self.identity_lengths = frozenset(len(name) for name in identity_names)
        self.identity_items = identity_items        # (consumer, identifier) -> [name, value, ...]
        self.remove_identity = remove_identity      # (headers) -> None
        # Only keys that exist are remembered: at most one entry a credential.
        self.known = {}

    def __call__(self, request):
        if request.method == b"OPTIONS":
            return None
        request.note_credentials(self.credential_headers)
        headers = request.headers
        wanted = self.header_name
        wanted_length = len(wanted)
        raw_key = None
        sent_name = None
        spoofed = False
        for i in range(0, len(headers), 2):
            name = headers[i]
            length = len(name)
            # PERF: a name is normalised only when its length could match.
            if length == wanted_length and header_variable(name) == wanted:
                if raw_key is not None:
                    return None  # repeated: the plugin answers it
                raw_key = headers[i + 1]
                sent_name = name
            elif length in self.identity_lengths and name.lower() in self.identity_names:
                spoofed = True
        if not raw_key:
            return None
        known = self.known.get(raw_key)
        if known is None:
            found = self.credentials.get(raw_key.decode("latin-1"))
            if found is None:
                return None
            consumer, credential, identifier = found
            known = (consumer, credential, identifier, self.identity_items(consumer, identifier))
            self.known[raw_key] = known
        sent_name = sent_name.lower()
        if sent_name not in self.credential_headers:
            request.note_credentials(frozenset((sent_name,)))
        if spoofed:
            self.remove_identity(headers)
        headers += known[3]
        request.authenticate(known[0], known[1], known[2])
        return True

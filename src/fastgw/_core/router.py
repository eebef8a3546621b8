"""Request router with the matching rules and priorities of Kong's traditional router.

One source, two builds: this file runs as plain Python, and ``router.pxd`` types
it so that ``cythonize`` compiles it unchanged into a C extension (aiohttp's
``reader_py``/``reader_c`` pattern). Fields that the hot path touches are
declared in the ``.pxd``; Python-level code only reads ``readonly`` ones.

Rules (Kong's traditional router):

* A route with several paths is split into one entry per path. Entries are
  ranked once, at build time: more attribute categories first (hosts, headers,
  paths, methods), then the category bits themselves (host > header > path >
  method), then wildcard-host-with-port > plain-hosts-only > regex path, then
  more headers, then ``regex_priority`` (regex paths only), then the longer
  prefix, then creation order. A lookup returns the best-ranked entry that
  matches every attribute it has.
* Indexes keep the lookup cheap: one bucket per plain host, one per wildcard
  host, one for host-less routes. Inside a bucket one byte trie holds prefix
  paths, regex paths (under the literal text they start with) and routes
  without paths (at the root), so a regex runs only when its literal prefix
  matches and it can still outrank the best match found so far.
"""

import re
import sys

try:
    import cython
except ImportError:  # uncompiled install without Cython: the decorators become no-ops
    import types

    cython = types.SimpleNamespace(
        compiled=False, freelist=lambda size: lambda cls: cls, cclass=lambda cls: cls
    )


# Kong's MATCH_RULES bits; a larger value ranks first among equal counts.
_HOST = 0x40
_HEADER = 0x20
_URI = 0x10
_METHOD = 0x08
_SNI = 0x04
# Kong's MATCH_SUBRULES bits, compared as one number.
_WILDCARD_HOST_PORT = 0x04
_PLAIN_HOSTS_ONLY = 0x02
_REGEX_URI = 0x01

# The TLS server name of an HTTPS request, among the headers routes match on:
# a name no client header can have (":" is not a token character).
SNI_KEY = b":sni"

_PATH_NONE = 0
_PATH_PREFIX = 1
_PATH_REGEX = 2

_NO_RANK = sys.maxsize
# Methods are bits of a 64-bit mask: routes without methods accept every bit,
# and a method no route names gets the top bit, which only they accept.
_ANY_METHOD = (1 << 64) - 1
_OTHER_METHOD = 1 << 63
_MAX_METHODS = 63

_QUESTION = 0x3F
_PERCENT = 0x25
_SLASH = 0x2F
_DOT = 0x2E
_COLON = 0x3A
_LEFT_BRACKET = 0x5B

_POSTFIX_GROUP = "fastgw_uri_postfix"
# PCRE (Kong) spells named groups (?<name>...); Python's re wants (?P<name>...).
_PCRE_NAMED_GROUP = re.compile(r"(?<!\\)\(\?<(?=[A-Za-z_])")
_LEADING_FLAGS = re.compile(r"\(\?[aiLmsux]+\)")

# RFC 3986 reserved characters (plus "%") keep their percent-encoding during
# normalisation; unreserved and other characters are decoded, as Kong does.
_RESERVED = frozenset(b"!*'();:@&=+$,/?%#[]")
_PERCENT_TRIPLET = re.compile(rb"%([0-9A-Fa-f]{2})")
# Bytes that may not appear raw in a request line are re-encoded upstream.
_UNSAFE_PATH_BYTE = re.compile(rb"[^!#$&'()*+,/:;=?@\[\]A-Za-z0-9\-_.~%]")
# The same set as a table: 1 for a byte that may travel raw in a path.
_PATH_SAFE = bytes(0 if _UNSAFE_PATH_BYTE.match(bytes((b,))) else 1 for b in range(256))
# A "%" that does not start a triplet: the target is malformed (RFC 3986 2.1),
# and decoding around it could make a new escape ("%%32%65" -> "%2e").
_MALFORMED_PERCENT = re.compile(rb"%(?![0-9A-Fa-f]{2})")


class MalformedTarget(ValueError):
    """The request-target cannot be routed as sent (a 400)."""


# ---------------------------------------------------------------- path helpers


def _index_of(data, byte, start, end):
    """Index of ``byte`` in ``data[start:end]``, or ``end`` if absent."""
    if not cython.compiled:
        found = data.find(byte, start, end)
        return end if found < 0 else found
    # PERF(router): compiled, a C loop beats a bytes.find() method call on short targets.
    i = start
    while i < end:
        if data[i] == byte:
            return i
        i += 1
    return end


def _has_at(data, pos, end, label):
    """True if ``data[pos:end]`` starts with ``label``."""
    if not cython.compiled:
        return data.startswith(label, pos, end)
    n = len(label)
    if pos + n > end:
        return False
    i = 0
    while i < n:
        if data[pos + i] != label[i]:
            return False
        i += 1
    return True


def _needs_normalizing(path, end):
    """True if ``path[:end]`` holds "%", "/.", "//" or a byte that may not travel
    raw (it is percent-encoded upstream): the inputs normalisation changes."""
    if not cython.compiled:
        return (
            path.find(b"%", 0, end) >= 0
            or path.find(b"/.", 0, end) >= 0
            or path.find(b"//", 0, end) >= 0
            or _UNSAFE_PATH_BYTE.search(path, 0, end) is not None
        )
    i = 0
    while i < end:
        c = path[i]
        if c == _PERCENT or not _PATH_SAFE[c]:
            return True
        if c == _SLASH and i + 1 < end:
            c = path[i + 1]
            if c == _DOT or c == _SLASH:
                return True
        i += 1
    return False


def _decode_triplet(match):
    value = int(match.group(1), 16)
    if value in _RESERVED:
        return match.group(0).upper()
    return bytes((value,))


def _encode_byte(match):
    return b"%%%02X" % match.group(0)[0]


def _remove_dot_segments(path):
    """RFC 3986 section 5.2.4, also merging "//" into "/" as Kong does."""
    output = []
    i = 0
    n = len(path)
    while i < n:
        rest = n - i
        if (rest == 2 and path.startswith(b"/.", i)) or (rest == 3 and path.startswith(b"/..", i)):
            if rest == 3 and output:
                output.pop()
            output.append(b"/")
            break
        if (rest == 1 and path[i] == _DOT) or (rest == 2 and path.startswith(b"..", i)):
            break
        if path.startswith(b"../", i):
            i += 3
        elif path.startswith(b"./", i) or path.startswith(b"/./", i):
            i += 2
        elif path.startswith(b"/../", i):
            i += 3
            if output:
                output.pop()
        elif path.startswith(b"//", i):
            i += 1
        else:
            end = path.find(b"/", i + 1)
            if end < 0:
                end = n
            output.append(path[i:end])
            i = end
    return b"".join(output)


def _normalize_path(path):
    """Kong's ``normalize(uri, true)``: decode unreserved triplets, drop dot segments, merge "//"."""
    if b"%" in path:
        path = _PERCENT_TRIPLET.sub(_decode_triplet, path)
    if b"." in path or b"//" in path:
        path = _remove_dot_segments(path)
    return path


def _sanitized_offset(path, start, end):
    """Skip a leading ".", "..", "./" or "../" of the postfix ``path[start:end]`` (Kong's rule)."""
    length = end - start
    if length == 0 or path[start] != _DOT:
        return start
    if length == 1:
        return end
    second = path[start + 1]
    if second == _SLASH:
        return start + 2
    if second == _DOT:
        if length == 2:
            return end
        if path[start + 2] == _SLASH:
            return start + 3
    return start


def _split_absolute_form(url):
    """(authority, origin-form target) of an absolute-form target, or None.

    RFC 9112 section 3.2.2: with an absolute-form target the authority replaces
    the Host header.
    """
    lowered = url[:8].lower()
    if lowered.startswith(b"http://"):
        start = 7
    elif lowered.startswith(b"https://"):
        start = 8
    else:
        return None
    end = len(url)
    end = _index_of(url, _SLASH, start, end)
    end = _index_of(url, _QUESTION, start, end)
    authority = url[start:end]
    at = authority.rfind(b"@")
    if at >= 0:
        authority = authority[at + 1 :]
    target = url[end:]
    if not target.startswith(b"/"):
        target = b"/" + target
    return authority, target


# ---------------------------------------------------------------- host helpers


def _lowercase_host(host):
    if not cython.compiled:
        return host.lower()
    # PERF(router): compiled, scan first so an already lower-case host is not copied.
    i = 0
    n = len(host)
    while i < n:
        c = host[i]
        if 0x41 <= c <= 0x5A:
            return host.lower()
        i += 1
    return host


def _all_digits(data, start, end):
    i = start
    while i < end:
        c = data[i]
        if c < 0x30 or c > 0x39:
            return False
        i += 1
    return True


def _has_port(host):
    colon = host.rfind(b":")
    return 0 < colon < len(host) - 1 and _all_digits(host, colon + 1, len(host))


def _strip_port(host):
    """``host`` without a decimal ":port" (and without IPv6 brackets), as Kong's split_port."""
    n = len(host)
    if n == 0:
        return host
    if host[0] == _LEFT_BRACKET:
        close = _index_of(host, 0x5D, 1, n)
        if close == n:
            return host
        if close == n - 1 or (host[close + 1] == _COLON and _all_digits(host, close + 2, n)):
            return host[1:close]
        return host
    colon = _index_of(host, _COLON, 0, n)
    if colon == n:
        return host
    if colon == n - 1 or _all_digits(host, colon + 1, n):
        return host[:colon]
    return host


# ---------------------------------------------------------------- match result


@cython.freelist(32)
@cython.cclass
class RouteMatch:
    """The route chosen for a request and the path to send upstream.

    ``upstream_path`` is the path after the ``strip_path`` and service-path
    rules, followed by the request's query string unchanged.
    """

    def __init__(self, route, service, payload, upstream_path):
        self.route = route
        self.service = service
        self.payload = payload
        self.upstream_path = upstream_path
        self._regex_match = None

    @property
    def uri_captures(self):
        """Groups of a regex path by number and name (0: the whole path, as in Kong), or None.

        Built on each access: most requests never ask for them.
        """
        if self._regex_match is None:
            return None
        return _uri_captures(self._regex_match)

    def __repr__(self):
        return f"RouteMatch(route={self.route.name!r}, upstream_path={self.upstream_path!r})"


# ---------------------------------------------------------------- route entries


class _HeaderRule:
    """One header a route requires: any of ``values`` (lower case) or ``pattern`` matches."""

    def __init__(self, name, values, pattern):
        self.name = name
        self.values = values
        self.pattern = pattern

    def accepts(self, headers):
        if headers is None:
            return False
        value = headers.get(self.name)
        if value is None:
            return False
        value = value.lower()
        if value in self.values:
            return True
        return self.pattern is not None and self.pattern.search(value) is not None


def _headers_match(rules, headers):
    for rule in rules:
        if not rule.accepts(headers):
            return False
    return True


class _Entry:
    """A route with at most one path, ranked among all entries of the router."""

    def __init__(self, rank, category_rank, route, service, payload, path, method_mask,
                 header_rules):
        self.rank = rank
        # The rank of the first entry with the same attribute categories.
        self.category_rank = category_rank
        self.route = route
        self.service = service
        self.payload = payload
        self.method_mask = method_mask
        self.header_rules = header_rules
        self.snis = frozenset(name.encode("idna") for name in route.snis) \
            if route.snis else None
        # ``prefix`` starts every path the entry can match: it is the entry's
        # key in the trie (b"" for a route without paths, which sits at the root).
        self.regex = None
        if path is None:
            self.path_kind = _PATH_NONE
            self.prefix = b""
        elif path.startswith("~"):
            self.path_kind = _PATH_REGEX
            self.regex = _compile_path_regex(route, path[1:])
            self.prefix = _regex_literal_prefix(path[1:]).encode()
        else:
            self.path_kind = _PATH_PREFIX
            self.prefix = _normalize_path(path.encode())
        self.strip_path = bool(route.strip_path)
        self.path_v1 = route.path_handling == "v1"
        base = service.path.encode() if service is not None and service.path else b"/"
        self.base = base
        self.base_ends_slash = base.endswith(b"/")
        self.base_trimmed = base[:-1] if self.base_ends_slash else base
        self.base_slash = base + b"/"

    def accepts(self, method_bit, headers):
        if not (self.method_mask & method_bit):
            return False
        if self.snis is not None and headers is not None:
            # Only HTTPS requests carry SNI_KEY (b"" when the client sent no
            # name); Kong does not check plain HTTP ones against snis.
            sni = headers.get(SNI_KEY)
            if sni is not None and sni not in self.snis:
                return False
        return self.header_rules is None or _headers_match(self.header_rules, headers)

    def upstream_path(self, url, path, path_len, query_start, normalized, matched_end):
        """Kong's path_handling "v0"/"v1" rules; ``matched_end`` is -1 for a route without paths."""
        req_ends_slash = path_len > 0 and path[path_len - 1] == _SLASH
        if self.strip_path:
            if matched_end < 0:
                offset = 1 if path_len > 0 else 0
            else:
                offset = _sanitized_offset(path, matched_end, path_len)
            postfix_empty = offset >= path_len
            postfix_slash = not postfix_empty and path[offset] == _SLASH
            if self.path_v1:
                head = self.base_trimmed if postfix_slash else self.base
            elif self.base_ends_slash:
                if postfix_empty:
                    if len(self.base) == 1 or req_ends_slash:
                        head = self.base
                    else:
                        head = self.base_trimmed
                elif postfix_slash:
                    head = self.base_trimmed
                else:
                    head = self.base
            elif postfix_empty:
                head = self.base_slash if path_len > 1 and req_ends_slash else self.base
            elif postfix_slash:
                head = self.base
            else:
                head = self.base_slash
        elif self.path_v1 or self.base_ends_slash:
            head = self.base  # the base replaces the request path's leading "/"
            offset = 1 if path_len > 0 else 0
        elif path_len == 1 and path[0] == _SLASH:
            head = self.base
            offset = path_len
        else:
            head = self.base
            offset = 0

        if normalized:
            # Decoding may have produced bytes that cannot travel raw upstream.
            tail = _UNSAFE_PATH_BYTE.sub(_encode_byte, path[offset:path_len])
            return head + tail + url[query_start:]
        # The postfix and the query are one contiguous slice of the raw target,
        # and often the head is the text just before it: then one slice (or the
        # target itself) is the answer.
        start = offset - len(head)
        if start >= 0 and _has_at(url, start, offset, head):
            return url if start == 0 else url[start:]
        return head + url[offset:]


def python_regex(pattern):
    """A Kong (PCRE) path regex in Python's dialect: named groups ``(?<name>...)``
    become ``(?P<name>...)``. The config checker validates what the router compiles."""
    return _PCRE_NAMED_GROUP.sub("(?P<", pattern)


def _compile_path_regex(route, pattern):
    pattern = python_regex(pattern)
    # Leading flags such as "(?i)" must stay first; the group keeps a top-level
    # alternation inside; the postfix group is what strip_path removes.
    leading = _LEADING_FLAGS.match(pattern)
    flags = leading.group(0) if leading else ""
    source = f"{flags}(?:{pattern[len(flags) :]})(?P<{_POSTFIX_GROUP}>(?s:.*))"
    try:
        return re.compile(source.encode())
    except re.error as exc:
        raise ValueError(f"route {route.name!r}: invalid regex path {pattern!r}: {exc}") from None


_REGEX_SPECIAL = frozenset(".^$*+?{}[]()|\\")
_REGEX_QUANTIFIERS = frozenset("*+?{")


def _regex_literal_prefix(pattern):
    """The literal text every match of ``pattern`` starts with ("" if unknown).

    Kong anchors path regexes at the start of the path, so a path can only
    match if it starts with this text; the trie uses it to skip regexes that
    cannot match. Conservative: any top-level alternation gives "".
    """
    if _has_top_level_alternation(pattern):
        return ""
    literal = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern) and not pattern[i + 1].isalnum():
            char = pattern[i + 1]  # an escaped punctuation character is itself
            step = 2
        elif char in _REGEX_SPECIAL:
            break
        else:
            step = 1
        if pattern[i + step : i + step + 1] in _REGEX_QUANTIFIERS:
            break  # the quantifier may repeat or drop this character
        literal.append(char)
        i += step
    return "".join(literal)


def _has_top_level_alternation(pattern):
    depth = 0
    in_class = False
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            i += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "|" and depth == 0:
            return True
        i += 1
    return False


def _uri_captures(match):
    """Kong's ``uri_captures``: 0 is the whole path, then numbered and named groups."""
    postfix_group = match.re.groups
    if postfix_group == 1:
        return None
    captures = {0: match.group(0)}
    for number in range(1, postfix_group):
        captures[number] = match.group(number)
    for name, number in match.re.groupindex.items():
        if number != postfix_group:
            captures[name] = match.group(number)
    return captures


# ---------------------------------------------------------------- path index


class _TrieNode:
    """A radix-trie node: ``label`` is the edge from the parent; ``child_keys[i]``
    is the first byte of ``children[i]``'s label."""

    def __init__(self, label, child_keys, children, entries):
        self.label = label
        self.child_keys = child_keys
        self.children = children
        self.entries = entries

    def child(self, byte):
        # PERF(router): a scan of a few key bytes beats a dict lookup per level.
        i = _index_of(self.child_keys, byte, 0, len(self.child_keys))
        return self.children[i] if i < len(self.children) else None


def _common_prefix_length(keys, start):
    first = keys[0]
    end = min(len(key) for key in keys)
    i = start
    while i < end:
        byte = first[i]
        for key in keys:
            if key[i] != byte:
                return i
        i += 1
    return end


def _build_trie(label, items, depth, pause):
    """Node for ``items`` ((key, entry) pairs, in rank order) that share ``key[:depth]``."""
    if pause is not None:
        pause()
    entries = [entry for key, entry in items if len(key) == depth] or None
    groups = {}
    for key, entry in items:
        if len(key) > depth:
            groups.setdefault(key[depth], []).append((key, entry))
    child_keys = bytes(sorted(groups))
    children = []
    for first_byte in child_keys:
        group = groups[first_byte]
        end = _common_prefix_length([key for key, _ in group], depth)
        children.append(_build_trie(group[0][0][depth:end], group, end, pause))
    return _TrieNode(label, child_keys, children, entries)


def _first_accepted(entries, best_rank, method_bit, headers, path, path_len):
    """First entry (lists are in rank order) that outranks ``best_rank`` and matches, or None."""
    for entry in entries:
        if entry.rank >= best_rank:
            return None
        if entry.accepts(method_bit, headers) and (
            entry.regex is None or entry.regex.match(path, 0, path_len) is not None
        ):
            return entry
    return None


class _PathIndex:
    """The entries of one host bucket in a trie keyed by ``_Entry.prefix``."""

    def __init__(self, entries, pause=None):
        self.min_rank = entries[0].rank
        self.root = _build_trie(b"", [(entry.prefix, entry) for entry in entries], 0, pause)

    def search(self, path, path_len, method_bit, headers, best):
        """``best`` or a better-ranked entry of this index that matches the request."""
        best_rank = _NO_RANK if best is None else best.rank
        if self.min_rank >= best_rank:
            return best
        # Every node on the way down holds entries whose prefix the path starts
        # with; rank, not depth, decides between them.
        node = self.root
        pos = 0
        while True:
            if node.entries is not None:
                found = _first_accepted(
                    node.entries, best_rank, method_bit, headers, path, path_len
                )
                if found is not None:
                    best = found
                    best_rank = found.rank
            if pos >= path_len:
                break
            node = node.child(path[pos])
            if node is None or not _has_at(path, pos, path_len, node.label):
                break
            pos += len(node.label)
        return best


class _WildcardHost:
    """A host with a leading or trailing "*" (one or more characters), optionally with a port."""

    def __init__(self, pattern, index):
        self.index = index
        self.with_port = _has_port(pattern)
        if pattern.startswith(b"*"):
            self.prefix = b""
            self.suffix = pattern[1:]
        else:
            star = pattern.index(b"*")
            self.prefix = pattern[:star]
            self.suffix = pattern[star + 1 :]
        self.min_length = len(self.prefix) + len(self.suffix) + 1

    def matches(self, host, host_no_port):
        target = host if self.with_port else host_no_port
        return (
            len(target) >= self.min_length
            and target.startswith(self.prefix)
            and target.endswith(self.suffix)
        )


# ---------------------------------------------------------------- building


def _method_bits(routes):
    names = sorted({m.upper().encode() for route in routes for m in route.methods})
    if len(names) > _MAX_METHODS:
        raise ValueError(f"routes use {len(names)} distinct methods; at most {_MAX_METHODS}")
    return {name: 1 << bit for bit, name in enumerate(names)}


def _header_rules(route):
    rules = []
    for name, values in route.headers:
        name = name.lower()
        if name == "host" or not values:  # Kong routes on Host only through `hosts`
            continue
        pattern = None
        if len(values) == 1 and values[0].startswith("~*"):
            pattern = re.compile(values[0][2:].encode(), re.IGNORECASE)
        lowered = frozenset(value.lower().encode() for value in values)
        rules.append(_HeaderRule(name.encode(), lowered, pattern))
    return tuple(rules) or None


def _sort_key(route, path, header_count, creation):
    category = submatch = 0
    if route.hosts:
        category |= _HOST
        wildcards = [host for host in route.hosts if "*" in host]
        if not wildcards:
            submatch |= _PLAIN_HOSTS_ONLY
        elif any(_has_port(host.encode()) for host in wildcards):
            submatch |= _WILDCARD_HOST_PORT
    if header_count:
        category |= _HEADER
    regex_priority = uri_length = 0
    if path is not None:
        category |= _URI
        if path.startswith("~"):
            submatch |= _REGEX_URI
            regex_priority = route.regex_priority
        else:
            uri_length = len(path.encode())
    if route.methods:
        category |= _METHOD
    if route.snis:
        category |= _SNI
    weight = bin(category).count("1")
    return (-weight, -category, -submatch, -header_count, -regex_priority, -uri_length, creation)


def _ranked_entries(entries, method_bits, pause):
    """One _Entry per (route, path), ordered and ranked by Kong's priority rules."""
    specs = []
    for number, (route, service, payload) in enumerate(entries):
        if pause is not None:
            pause()
        rules = _header_rules(route)
        if not (route.paths or route.hosts or route.methods or rules or route.snis):
            raise ValueError(f"route {route.name!r} has no paths, hosts, methods, headers "
                             "or snis")
        if route.methods:
            mask = 0
            for method in route.methods:
                mask |= method_bits[method.upper().encode()]
        else:
            mask = _ANY_METHOD
        header_count = len(rules) if rules else 0
        for ordinal, path in enumerate(route.paths or (None,)):
            key = _sort_key(route, path, header_count, (number, ordinal))
            specs.append((key, route, service, payload, path, mask, rules))
    specs.sort(key=lambda spec: spec[0])
    ranked = []
    category_ranks = {}
    for rank, spec in enumerate(specs):
        if pause is not None:
            pause()
        category_rank = category_ranks.setdefault(spec[0][:2], rank)
        ranked.append(_Entry(rank, category_rank, *spec[1:]))
    return ranked


# ---------------------------------------------------------------- router


class Router:
    """Picks the route for a request; built once per config version, then read-only.

    ``entries`` are ``(route, service, payload)`` tuples; ``payload`` is returned
    untouched in the RouteMatch. ``header_names`` lists the lower-case header
    names any route matches on: the caller needs to collect only these.
    """

    def __init__(self, entries, pause=None):
        # ``pause``, when given, is called once per route and per trie node:
        # a build on another thread uses it to hand the GIL back to the event
        # loop (compiled code never does on its own).
        entries = list(entries)
        self._method_bits = _method_bits([route for route, _, _ in entries])
        ranked = _ranked_entries(entries, self._method_bits, pause)
        plain = {}
        wildcard = {}
        hostless = []
        names = set()
        for entry in ranked:
            if entry.header_rules is not None:
                names.update(rule.name for rule in entry.header_rules)
            if entry.snis is not None:
                names.add(SNI_KEY)
            if not entry.route.hosts:
                hostless.append(entry)
                continue
            for host in dict.fromkeys(h.lower().encode() for h in entry.route.hosts):
                bucket = wildcard if b"*" in host else plain
                bucket.setdefault(host, []).append(entry)
        self.header_names = frozenset(names)
        self._plain_hosts = {host: _PathIndex(group, pause) for host, group in plain.items()}
        self._wildcard_hosts = [
            _WildcardHost(pattern, _PathIndex(group, pause)) for pattern, group in wildcard.items()
        ]
        self._has_hosts = bool(plain or wildcard)
        self._hostless = _PathIndex(hostless, pause) if hostless else None

    def match(self, method, host, url, headers):
        """The RouteMatch for a request, or None (Kong answers 404 "no Route matched").

        ``url`` is the raw request-target, ``host`` the raw Host header (or
        None), ``headers`` maps names from ``header_names`` to values.
        """
        url_len = len(url)
        if url_len == 0 or url[0] != _SLASH:
            absolute = _split_absolute_form(url)
            if absolute is not None:
                host, url = absolute
                url_len = len(url)
        query_start = _index_of(url, _QUESTION, 0, url_len)
        normalized = _needs_normalizing(url, query_start)
        if normalized:
            if _MALFORMED_PERCENT.search(url, 0, query_start) is not None:
                raise MalformedTarget("malformed percent-escape in the path")
            path = _normalize_path(url[:query_start])
            path_len = len(path)
        else:
            path = url
            path_len = query_start
        entry = self._find(method, host, path, path_len, headers)
        if entry is None:
            return None
        return self._new_match(entry, url, path, path_len, query_start, normalized)

    def _find(self, method, host, path, path_len, headers):
        if self._method_bits:
            method_bit = self._method_bits.get(method, _OTHER_METHOD)
        else:
            method_bit = _OTHER_METHOD
        best = None
        exact = None
        # Host buckets first: their entries usually outrank host-less ones, so
        # the host-less search can stop earlier.
        if self._has_hosts and host is not None:
            host = _lowercase_host(host)
            host_no_port = _strip_port(host)
            index = self._plain_hosts.get(host)
            if index is not None:
                best = index.search(path, path_len, method_bit, headers, best)
                if host_no_port is not host:
                    exact = best
            if host_no_port is not host:
                index = self._plain_hosts.get(host_no_port)
                if index is not None:
                    best = index.search(path, path_len, method_bit, headers, best)
            for wildcard in self._wildcard_hosts:
                if wildcard.matches(host, host_no_port):
                    best = wildcard.index.search(path, path_len, method_bit, headers, best)
        if self._hostless is not None:
            best = self._hostless.search(path, path_len, method_bit, headers, best)
        # Kong tries the routes written for the request's exact host:port
        # before the others of their category: another route wins over such
        # a match only from a better category.
        if exact is not None and best.category_rank >= exact.category_rank:
            return exact
        return best

    def _new_match(self, entry, url, path, path_len, query_start, normalized):
        found = None
        if entry.path_kind == _PATH_REGEX:
            # Re-run the winner's regex rather than keep every candidate's match object.
            found = entry.regex.match(path, 0, path_len)
            matched_end = found.start(_POSTFIX_GROUP)
        elif entry.path_kind == _PATH_PREFIX:
            matched_end = len(entry.prefix)
        else:
            matched_end = -1
        match = RouteMatch.__new__(RouteMatch)
        match.route = entry.route
        match.service = entry.service
        match.payload = entry.payload
        match.upstream_path = entry.upstream_path(
            url, path, path_len, query_start, normalized, matched_end
        )
        match._regex_match = found
        return match

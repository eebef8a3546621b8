"""The labelled set the ai-sanitizer's detectors are measured on.

``build(seed)`` makes snippets of text, each with the spans of personal data
and credentials it holds (``[start, end, detector]``): positives (one or
more values in a sentence, in the formats people write them) and negatives
(look-alikes that hold none: Luhn-invalid numbers, order numbers, versions,
dates and times, hashes, ids, code that looks like keys). Every value is
made up here, from the seed.

``tests/ai/data/pii_sample.jsonl`` is ``build(1)``, shipped and frozen; the
tests also measure ``build(2)``, data of the same kind the patterns were not
tuned on. Rebuild the file with
``.venv/bin/python tests/ai/data/pii_sample.py``.
"""

from __future__ import annotations

import base64
import json
import pathlib
import random
import string

FIRST = ["jane", "john", "maria", "wei", "amir", "olga", "li", "fatima", "lukas", "sofia",
         "kenji", "ana", "pierre", "noah", "emma", "raj", "chloe", "tomas", "nia", "oscar"]
LAST = ["doe", "smith", "garcia", "chen", "haddad", "ivanova", "nguyen", "khan", "muller",
        "rossi", "tanaka", "silva", "dubois", "brown", "wilson", "patel", "martin", "novak"]
DOMAINS = ["example.com", "mail.example.org", "corp.example.net", "acme.io", "uni.example.edu",
           "example.co.uk", "post.example.de", "startup.ai", "example.fr", "example.com.br"]
SENTENCES = [
    "Please update the record for {v} before Friday.",
    "The customer wrote from {v} and asked for a refund.",
    "{v}",
    "Can you check whether {v} is still valid?",
    "Contact: {v}",
    "I tried {v} but it did not work.",
    "Forwarding this to you ({v}) as discussed.",
    "Here is what I have on file: {v}. Is that right?",
    "Summarise the ticket. Reporter details - {v}; priority high.",
    "Log line: user={v} action=login status=ok",
    "Send the invoice to {v}, thanks!",
    "My details are {v}",
]
NEGATIVE_SENTENCES = [
    "Please update the record for {v} before Friday.",
    "The build {v} failed on the release branch.",
    "{v}",
    "Can you explain what {v} means in this context?",
    "Reference: {v}",
    "We shipped {v} yesterday and nothing broke.",
    "In the code below, {v} is what confuses me.",
    "The report says {v}; is that expected?",
]


def luhn_digit(partial: str) -> str:
    total = 0
    for index, char in enumerate(reversed(partial)):
        value = int(char)
        if index % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return str((10 - total % 10) % 10)


def _group(digits: str, sizes: list[int], sep: str) -> str:
    parts, start = [], 0
    for size in sizes:
        parts.append(digits[start:start + size])
        start += size
    return sep.join(parts)


def _card(rng: random.Random, valid: bool = True) -> str:
    prefix, length, sizes = rng.choice([
        ("4", 16, [4, 4, 4, 4]), ("51", 16, [4, 4, 4, 4]), ("55", 16, [4, 4, 4, 4]),
        ("2221", 16, [4, 4, 4, 4]), ("34", 15, [4, 6, 5]), ("37", 15, [4, 6, 5]),
        ("6011", 16, [4, 4, 4, 4]), (str(rng.randint(3528, 3589)), 16, [4, 4, 4, 4]),
        ("36", 14, [4, 6, 4]),
        ("4", 19, [4, 4, 4, 4, 3]),
    ])
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    check = luhn_digit(body)
    if not valid:
        check = str((int(check) + rng.randint(1, 9)) % 10)
    return _group(body + check, sizes, rng.choice(["", " ", "-"]))


# Country: (letters, digits) of its BBAN.
IBAN_FORMATS = {"DE": (0, 18), "GB": (4, 14), "FR": (0, 23), "NL": (4, 10), "ES": (0, 20),
                "IT": (1, 22), "CH": (0, 17), "BE": (0, 12), "AT": (0, 16), "PL": (0, 24)}


def _iban(rng: random.Random, valid: bool = True) -> str:
    country = rng.choice(sorted(IBAN_FORMATS))
    letters, digits = IBAN_FORMATS[country]
    bban = _chars(rng, string.ascii_uppercase, letters) + _chars(rng, string.digits, digits)
    moved = bban + country + "00"
    check = 98 - int("".join(str(int(c, 36)) for c in moved)) % 97
    if not valid:
        check = (check + rng.randint(1, 50)) % 97 + 2
    iban = f"{country}{check:02d}{bban}"
    if rng.random() < 0.5:
        iban = " ".join(iban[i:i + 4] for i in range(0, len(iban), 4))
    return iban


def _ssn(rng: random.Random) -> str:
    area = rng.choice([n for n in range(1, 900) if n != 666])
    sep = rng.choice(["-", "-", " "])
    return f"{area:03d}{sep}{rng.randint(1, 99):02d}{sep}{rng.randint(1, 9999):04d}"


def _email(rng: random.Random) -> str:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    local = rng.choice([f"{first}.{last}", f"{first[0]}{last}", f"{first}{rng.randint(1, 99)}",
                        f"{first}_{last}", f"{first}+{rng.choice(['news', 'work', 'x'])}",
                        f"{last}.{first}{rng.randint(1, 9)}"])
    if rng.random() < 0.2:
        local = local.capitalize()
    return f"{local}@{rng.choice(DOMAINS)}"


def _phone(rng: random.Random) -> str:
    d = lambda n: "".join(rng.choice(string.digits) for _ in range(n))  # noqa: E731
    return rng.choice([
        f"+1 {rng.randint(201, 989)} {d(3)} {d(4)}", f"+1-{rng.randint(201, 989)}-{d(3)}-{d(4)}",
        f"+44 20 {d(4)} {d(4)}", f"+44 7{d(3)} {d(6)}", f"+49 30 {d(8)}", f"+49 151 {d(8)}",
        f"+33 1 {d(2)} {d(2)} {d(2)} {d(2)}", f"+33 6 {d(2)} {d(2)} {d(2)} {d(2)}",
        f"+81 3-{d(4)}-{d(4)}", f"+91 {d(5)} {d(5)}", f"+61 2 {d(4)} {d(4)}",
        f"+55 11 9{d(4)}-{d(4)}", f"0044 20 {d(4)} {d(4)}", f"({rng.randint(201, 989)}) {d(3)}-{d(4)}",
        f"{rng.randint(201, 989)}-{d(3)}-{d(4)}", f"{rng.randint(201, 989)}.{d(3)}.{d(4)}",
        f"+1{rng.randint(201, 989)}{d(7)}", f"+34 6{d(2)} {d(3)} {d(3)}", f"+39 02 {d(4)} {d(4)}",
        f"+86 138 {d(4)} {d(4)}",
    ])


def _ipv4(rng: random.Random) -> str:
    first = rng.choice([10, 172, 192, 8, 34, 52, 100, 203, 81, 151])
    address = f"{first}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    return address + (f"/{rng.choice([8, 16, 24, 32])}" if rng.random() < 0.15 else "")


def _ipv6(rng: random.Random) -> str:
    h = lambda: format(rng.randint(0, 0xFFFF), "x")  # noqa: E731
    return rng.choice([
        ":".join(h() for _ in range(8)), f"2001:db8::{h()}:{h()}", f"fe80::{h()}:{h()}:{h()}:{h()}",
        f"2a00:{h()}:{h()}::{h()}", "::1", f"::ffff:192.0.2.{rng.randint(1, 254)}",
        f"2001:0db8:{h()}:0000:0000:{h()}:{h()}:{h()}", f"2606:4700::{h()}",
    ])


def _chars(rng: random.Random, pool: str, count: int) -> str:
    return "".join(rng.choice(pool) for _ in range(count))


ALNUM = string.ascii_letters + string.digits
B64URL = ALNUM + "-_"


def _openai_key(rng: random.Random) -> str:
    return rng.choice([f"sk-{_chars(rng, ALNUM, 48)}",
                       f"sk-proj-{_chars(rng, B64URL, rng.randint(100, 156))}",
                       f"sk-svcacct-{_chars(rng, B64URL, 120)}"])


def _anthropic_key(rng: random.Random) -> str:
    return f"sk-ant-api03-{_chars(rng, B64URL, 93)}AA"


def _aws_key(rng: random.Random) -> str:
    return rng.choice(["AKIA", "ASIA"]) + _chars(rng, string.ascii_uppercase + "234567", 16)


def _github_token(rng: random.Random) -> str:
    return rng.choice([f"gh{rng.choice('pousr')}_{_chars(rng, ALNUM, 36)}",
                       f"github_pat_{_chars(rng, ALNUM, 22)}_{_chars(rng, ALNUM, 59)}"])


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _jwt(rng: random.Random) -> str:
    header = {"alg": rng.choice(["HS256", "RS256", "ES256"]), "typ": "JWT"}
    payload = {"sub": str(rng.randint(1, 10 ** 9)), "name": rng.choice(FIRST),
               "iat": 1700000000 + rng.randint(0, 10 ** 7)}
    return ".".join([_b64url(json.dumps(header).encode()), _b64url(json.dumps(payload).encode()),
                     _b64url(rng.randbytes(rng.choice([32, 64, 256])))])


def _pem_body(rng: random.Random, lines: int) -> str:
    data = base64.b64encode(rng.randbytes(48 * lines)).decode()
    return "\n".join(data[i:i + 64] for i in range(0, len(data), 64))


def _private_key(rng: random.Random) -> str:
    label = rng.choice(["RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY",
                        "ENCRYPTED PRIVATE KEY"])
    return f"-----BEGIN {label}-----\n{_pem_body(rng, rng.randint(2, 8))}\n-----END {label}-----"


def _bearer(rng: random.Random) -> str:
    token = rng.choice([_chars(rng, ALNUM, rng.randint(24, 64)),
                        f"{_chars(rng, ALNUM, 20)}.{_chars(rng, ALNUM, 30)}",
                        _chars(rng, string.hexdigits.lower(), 40)])
    if not any(c.isdigit() for c in token):
        token += "7"
    if not any(c.isalpha() for c in token):
        token = "a" + token
    return f"Bearer {token}"


def _url_credentials(rng: random.Random) -> str:
    user = rng.choice(["admin", "app", "deploy", rng.choice(FIRST), "svc_reader"])
    password = _chars(rng, ALNUM + "!$*", rng.randint(6, 20))
    return rng.choice([
        f"postgres://{user}:{password}@db.internal:5432/app",
        f"https://{user}:{password}@example.com/private",
        f"mongodb+srv://{user}:{password}@cluster0.example.net/test",
        f"redis://{user}:{password}@cache.local:6379/0",
        f"ftp://{user}:{password}@files.example.org",
        f"amqp://{user}:{password}@mq:5672/vhost",
    ])


VALUES = {
    "email": _email, "phone": _phone, "credit_card": _card, "iban": _iban, "ssn": _ssn,
    "ipv4": _ipv4, "ipv6": _ipv6, "openai_key": _openai_key, "anthropic_key": _anthropic_key,
    "aws_access_key": _aws_key, "github_token": _github_token, "jwt": _jwt,
    "private_key": _private_key, "bearer_token": _bearer, "url_credentials": _url_credentials,
}
# A few values of some kinds need their words around them to be what they are.
CONTEXT = {"bearer_token": ["Authorization: {v}", "curl -H 'Authorization: {v}' https://api",
                            "the header was {v}", "{v}"]}


def _negatives(rng: random.Random) -> list[str]:
    d = lambda n: "".join(rng.choice(string.digits) for _ in range(n))  # noqa: E731
    h = lambda n: "".join(rng.choice("0123456789abcdef") for _ in range(n))  # noqa: E731
    return [
        _card(rng, valid=False), _card(rng, valid=False).replace(" ", "").replace("-", ""),
        f"Order #{d(9)}", f"order number {d(12)}", f"INV-2026-{d(6)}", f"tracking 1Z{d(3)}AA{d(10)}",
        f"{rng.randint(2000, 2030)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/{rng.randint(1990, 2030)}",
        f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}",
        f"version {rng.randint(1, 20)}.{rng.randint(0, 20)}.{rng.randint(0, 20)}.{rng.randint(0, 99)}",
        f"v{rng.randint(1, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}",
        f"release 1.{rng.randint(0, 40)}.{rng.randint(0, 9)}", f"Python 3.{rng.randint(8, 14)}.{rng.randint(0, 9)}",
        f"{rng.randint(256, 999)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}",
        f"1.{rng.randint(0, 9)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}",
        f"commit {h(40)}", f"sha256:{h(64)}", f"request id {h(8)}-{h(4)}-{h(4)}-{h(4)}-{h(12)}",
        f"color #{h(6)}", f"localhost:{rng.randint(1024, 65535)}", f"{d(1)}.{d(5)} seconds",
        f"{rng.randint(1, 999)},{d(3)},{d(3)}.{d(2)} USD", f"ISBN 978-{d(1)}-{d(2)}-{d(6)}-{d(1)}",
        f"ZIP {d(5)}-{d(4)}", f"ext. {d(4)}", f"{d(9)}", f"{d(3)}-{d(2)}-{d(5)}",
        f"{rng.choice(['000', '666', '900', '999'])}-{d(2)}-{d(4)}", f"{d(3)}-00-{d(4)}",
        _iban(rng, valid=False), f"DE{d(2)} bank code {d(8)}",
        "sk-learn pipelines", f"sk-{rng.choice(['test', 'learn', 'build'])}-mode-{d(4)}",
        f"task-{d(6)}", "the sk- prefix marks a secret key",
        f"AKIA{_chars(rng, string.ascii_uppercase, 8)}", "AKIA is the access key prefix",
        f"ghp_{_chars(rng, ALNUM, 10)}", "github_pat_ tokens start like this",
        f"eyJ{_chars(rng, B64URL, 10)}", "Bearer authentication is described in RFC 6750",
        "Bearer <token>", "Authorization: Bearer YOUR_TOKEN_HERE", "bearer tokens expire",
        "-----BEGIN PUBLIC KEY-----\n" + _pem_body(rng, 3) + "\n-----END PUBLIC KEY-----",
        "-----BEGIN CERTIFICATE-----\n" + _pem_body(rng, 3) + "\n-----END CERTIFICATE-----",
        "std::vector<int> values;", "use crate::config::Loader;", "a::b", "Foo::Bar::baz()",
        f"MAC {h(2)}:{h(2)}:{h(2)}:{h(2)}:{h(2)}:{h(2)}", "ratio 16:9:4",
        f"https://example.com/users/{d(5)}", f"https://{rng.choice(FIRST)}@example.com/profile",
        "postgres://localhost:5432/app", f"mailto: {rng.choice(FIRST)} at example dot com",
        f"@{rng.choice(FIRST)}{d(2)} on social media", f"user@{rng.choice(['localhost', 'host'])}",
        f"{rng.choice(FIRST)}@", "an email address such as name@domain",
        f"+{d(3)}", f"score {d(3)}-{d(3)}", f"lot {d(4)}-{d(4)}-{d(4)}",
        f"{d(4)} {d(4)} {d(4)} {d(3)}", f"base64 {base64.b64encode(rng.randbytes(30)).decode()}",
        f"coordinates {rng.randint(-90, 90)}.{d(4)}, {rng.randint(-180, 180)}.{d(4)}",
        f"{rng.randint(1, 12)}.{rng.randint(1, 28)}.{rng.randint(2000, 2030)}",
    ]


def build(seed: int) -> list[dict]:
    rng = random.Random(seed)
    samples: list[dict] = []
    for name, make in VALUES.items():
        for _ in range(40):
            template = rng.choice(CONTEXT.get(name, SENTENCES))
            value = make(rng)
            text, spans = _place(template, [(value, name)])
            samples.append({"text": text, "spans": spans})
    for _ in range(60):  # several values in one text
        chosen = rng.sample(sorted(VALUES), rng.randint(2, 4))
        parts = []
        for name in chosen:
            template = rng.choice(CONTEXT.get(name, SENTENCES))
            parts.append((template, VALUES[name](rng), name))
        text, spans = "", []
        for template, value, name in parts:
            piece, piece_spans = _place(template, [(value, name)])
            offset = len(text) + (1 if text else 0)
            text = f"{text} {piece}" if text else piece
            spans += [[s + offset, e + offset, n] for s, e, n in piece_spans]
        samples.append({"text": text, "spans": spans})
    negatives = []
    while len(negatives) < 560:
        for value in _negatives(rng):
            negatives.append({"text": rng.choice(NEGATIVE_SENTENCES).format(v=value), "spans": []})
    samples += negatives[:560]
    return samples


def _place(template: str, values: list[tuple[str, str]]) -> tuple[str, list[list]]:
    value, name = values[0]
    start = template.index("{v}")
    text = template.replace("{v}", value, 1)
    return text, [[start, start + len(value), name]]


def main() -> None:
    samples = build(1)
    path = pathlib.Path(__file__).with_name("pii_sample.jsonl")
    with open(path, "w") as out:
        for sample in samples:
            out.write(json.dumps(sample, ensure_ascii=False) + "\n")
    positives = sum(1 for s in samples if s["spans"])
    print(f"{len(samples)} snippets: {positives} with values, {len(samples) - positives} without")


if __name__ == "__main__":
    main()

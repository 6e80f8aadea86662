"""Personal data and secrets in text: found with RE2 over a whole column, every candidate checked
(a checksum, an address range, the words around it), then replaced by a typed placeholder.

    email        <EMAIL>        an address whose domain is not reserved for documentation
                                (example.com, *.example, *.test, *.invalid, localhost: RFC 2606,
                                RFC 6761) or placeholders (you@yourdomain.com, foo@bar.com), nor
                                a file name (icon@2x.png), nor an scp target (git@github.com:org/r)
    ip_address   <IP_ADDRESS>   public IPv4 and IPv6 only: private, loopback, link-local, shared,
                                benchmarking, multicast, reserved and documentation ranges
                                (RFC 6890, RFC 5737, RFC 3849, RFC 9637) stay, so does IPv6
                                outside global unicast 2000::/3, and a version number
                                (version 1.0.0.1, Chrome/120.0.6099.109, OID 1.3.6.1.4.1); a
                                quad of numbers below 32 (4.10.2.7) needs a network word
                                before it (server, ip, host, dns, ...)
    phone        <PHONE>        E.164 with a + (8-15 digits), North American (415) 555-0132,
                                national numbers with a trunk 0 and separators (030 1234 5678)
    credit_card  <CREDIT_CARD>  13-19 digits in card grouping, a known issuer prefix, Luhn-valid
    iban         <IBAN>         a country's IBAN length and the ISO 13616 mod-97 checksum
    secret       <SECRET>       private key blocks, API tokens with a known prefix (AKIA, ghp_,
                                xoxb-, sk_live_, AIza, ...), and random-looking values assigned to
                                a name ending in key/secret/token/password (only the value goes)

A number labelled as something else (ISBN, order, invoice, tracking, serial, #) or glued to a
longer token (a path, a version, a hash) is never a phone, card or IBAN. Placeholders written
by one detector shield the text from the next (a key block holds no card number any more), so
the order of DETECTORS matters: secrets first, phone numbers last.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.text.matches import Matches, string_buffers
from curate.text.stats import as_text

KINDS = ("email", "ip_address", "phone", "credit_card", "iban", "secret")
PLACEHOLDERS = {kind: f"<{kind.upper()}>" for kind in KINDS}


def _mask(values: pa.Array) -> np.ndarray:
    return pc.fill_null(values, False).to_numpy(zero_copy_only=False)


def _matches(values: pa.Array, pattern: str) -> np.ndarray:
    return _mask(pc.match_substring_regex(values, pattern))


def _char_matrix(values: pa.Array, width: int, right: bool, pad: int) -> tuple[np.ndarray, np.ndarray]:
    """Bytes of each string in a (n, width) matrix, left- or right-aligned; longer ones cut."""
    offsets, data = string_buffers(values)
    lengths = np.diff(offsets)
    used = np.minimum(lengths, width)
    out = np.full((len(values), width), pad, dtype=np.uint8)
    row = np.repeat(np.arange(len(values)), used)
    within = np.arange(used.sum()) - np.repeat(np.cumsum(used) - used, used)
    col = within + (width - used[row]) if right else within
    out[row, col] = data[np.repeat(offsets[:-1], used) + within]
    return out, lengths


def luhn_valid(digits: pa.Array) -> np.ndarray:
    """Luhn checksum of digit strings (at most 19 digits): double every second digit from the right."""
    codes, _ = _char_matrix(digits, 19, right=True, pad=ord("0"))
    d = codes.astype(np.int64) - ord("0")
    doubled = d * 2
    doubled -= 9 * (doubled > 9)
    second = (np.arange(19)[::-1] % 2) == 1
    return (np.where(second, doubled, d).sum(axis=1) % 10) == 0


# Length of the IBAN of each country that has one (SWIFT IBAN registry).
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BI": 27,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27,
    "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25,
    "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18,
    "NO": 15, "OM": 23, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33,
    "SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}


def iban_valid(compact: pa.Array) -> np.ndarray:
    """ISO 13616: the country's length, and (rest + country + check digits) as a number mod 97 == 1."""
    codes, lengths = _char_matrix(compact, 34, right=False, pad=0)
    countries = pa.array(list(IBAN_LENGTHS))
    which = pc.index_in(pc.utf8_slice_codeunits(compact, 0, 2), value_set=countries).to_numpy(zero_copy_only=False)
    expected = np.array(list(IBAN_LENGTHS.values()) + [-1])[np.nan_to_num(which, nan=len(countries)).astype(int)]
    ok = expected == lengths
    # Move the first four characters to the end: column j reads character (j + 4) mod length.
    n = np.maximum(lengths, 1)[:, None]
    j = np.arange(34)[None, :]
    chars = np.take_along_axis(codes, (j + 4) % n, axis=1)
    value = np.where(chars >= ord("A"), chars.astype(np.int64) - ord("A") + 10, chars.astype(np.int64) - ord("0"))
    rest = np.zeros(len(codes), dtype=np.int64)
    for col in range(34):  # 34 steps, each over every candidate at once
        active = col < lengths
        step = np.where(value[:, col] >= 10, 100, 10)
        rest = np.where(active, (rest * step + value[:, col]) % 97, rest)
    return ok & (rest == 1)


# IPv4 ranges that are not public (IANA special-purpose registry, RFC 6890 and its updates).
NOT_PUBLIC_V4 = [ipaddress.ip_network(n) for n in (
    "0.0.0.0/8",        # this network
    "10.0.0.0/8",       # private (RFC 1918)
    "100.64.0.0/10",    # shared address space, carrier-grade NAT (RFC 6598)
    "127.0.0.0/8",      # loopback
    "169.254.0.0/16",   # link-local
    "172.16.0.0/12",    # private
    "192.0.0.0/24",     # IETF protocol assignments
    "192.0.2.0/24",     # documentation TEST-NET-1 (RFC 5737)
    "192.168.0.0/16",   # private
    "198.18.0.0/15",    # benchmarking (RFC 2544)
    "198.51.100.0/24",  # documentation TEST-NET-2
    "203.0.113.0/24",   # documentation TEST-NET-3
    "224.0.0.0/4",      # multicast
    "240.0.0.0/4",      # reserved, and the broadcast 255.255.255.255 (netmasks land here too)
)]
_V4_LOW = np.array([int(n.network_address) for n in NOT_PUBLIC_V4], dtype=np.int64)
_V4_HIGH = np.array([int(n.broadcast_address) for n in NOT_PUBLIC_V4], dtype=np.int64)
GLOBAL_UNICAST_V6 = ipaddress.ip_network("2000::/3")
DOCUMENTATION_V6 = [ipaddress.ip_network("2001:db8::/32"), ipaddress.ip_network("3fff::/20")]


def ipv4_public(found: pa.Array) -> np.ndarray:
    """Exactly four dotted numbers <= 255, no leading zeros, outside every range of NOT_PUBLIC_V4."""
    parts = pc.split_pattern(found, ".")
    four = pc.list_value_length(parts).to_numpy() == 4
    octets = np.zeros((len(found), 4), dtype=np.int64)
    if four.any():
        digits = pc.list_flatten(parts.filter(pa.array(four)))
        octets[four] = np.minimum(pc.cast(pc.utf8_slice_codeunits(digits, 0, 4), pa.int64()).to_numpy(), 9999).reshape(-1, 4)
    value = octets @ np.array([1 << 24, 1 << 16, 1 << 8, 1], dtype=np.int64)
    inside = (value[:, None] >= _V4_LOW[None, :]) & (value[:, None] <= _V4_HIGH[None, :])
    leading_zero = _matches(found, r"(?:^|\.)0\d")
    return four & (octets <= 255).all(axis=1) & ~leading_zero & ~inside.any(axis=1)


def ipv6_public(found: pa.Array) -> np.ndarray:
    """Valid IPv6 in global unicast 2000::/3, outside documentation and special-purpose ranges.

    Candidates are rare (two colons between hex digits), so each is parsed by `ipaddress`."""
    def public(text: str) -> bool:
        try:
            addr = ipaddress.IPv6Address(text)
        except ValueError:
            return False
        return addr in GLOBAL_UNICAST_V6 and addr.is_global and not any(addr in n for n in DOCUMENTATION_V6)

    return np.fromiter((public(t) for t in found.to_pylist()), dtype=bool, count=len(found))


def shannon_bits(values: pa.Array) -> np.ndarray:
    """Entropy of each string's byte distribution, in bits per byte."""
    codes, lengths = _char_matrix(values, 256, right=False, pad=0)
    n = len(values)
    valid = np.arange(256)[None, :] < np.minimum(lengths, 256)[:, None]
    rows = np.broadcast_to(np.arange(n)[:, None], codes.shape)[valid]
    counts = np.bincount(rows * 256 + codes[valid], minlength=n * 256).reshape(n, 256).astype(np.float64)
    p = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.nansum(np.where(p > 0, p * np.log2(p), 0.0), axis=1)


# ---- context: what surrounds a candidate ------------------------------------------------------

# The candidate continues a longer token: a path, a version, a hash, a longer number.
GLUED_BEFORE = r"[\pL\pN_@./\\-]$|\pN[ \x{a0}.,]$"
GLUED_AFTER = r"^(?:[\pL\pN_@]|[.,/-]\pN)"
HEX_DUMP = r"[0-9A-Fa-f]{2} [0-9A-Fa-f]{2} $"
# A number labelled as something that is not personal data.
ID_LABEL = (r"(?i)(?:\b(?:isbn(?:-?1[03])?|issn|doi|order|invoice|ref|reference|tracking|serial|sku|ticket|"
            r"case|transaction|confirmation|patent|part|item|product|model|imei|imsi|iccid|ean|upc|gtin|asin|id)"
            r"s?\.?(?:\s*(?:no|nr|num|number|code|id)\.?)?|#|№)[\s:#.=-]*$")
VERSION_LABEL = (r"(?i)(?:\b(?:v|ver|version|versions|release|build|revision|rev|firmware|update|patch|oid|mib|"
                 r"section|sect|chapter|ch|figure|fig|table|tab|step|appendix|clause|article|art|paragraph|"
                 r"para|eq|equation|python|java|kernel|linux|windows|android|ios|macos|node|php|ruby|perl|gcc|"
                 r"chrome|firefox|safari|edge|opera|office)\.?\s*[:=]?\s*|§\s*|[\pL\pN]/)$")
# A word near an address that says it is one.
NETWORK_WORD = (r"(?i)\b(?:ip|ipv4|ips|address|addr|server|host|hostname|dns|resolver|nameserver|gateway|proxy|"
                r"ping|nslookup|dig|traceroute|ssh|telnet|connect|connected|connection|login|logged|peer|client|"
                r"mirror|cdn|a record|route|firewall|blocked|banned)\b[^\n]{0,60}$")
# Values that stand for a secret in documentation and templates.
PLACEHOLDER = r"(?i)example|x{5}|\*{3}|your|dummy|placeholder|redacted|changeme|0123456789|1234567890|abcdefgh"


def _around(m: Matches, before: str | None = None, after: str | None = None) -> np.ndarray:
    """Candidates whose preceding piece matches `before` or following piece matches `after`."""
    hit = np.zeros(len(m), dtype=bool)
    if before:
        hit |= _matches(m.before(), before)
    if after:
        hit |= _matches(m.after(), after)
    return hit


def _digits(found: pa.Array) -> pa.Array:
    return pc.replace_substring_regex(found, r"\D+", "")


# ---- checks: which candidates are personal data -----------------------------------------------

def _email(m: Matches) -> np.ndarray:
    parts = pc.extract_regex(pc.utf8_lower(m.found), r"^(?P<local>.*)@(?P<domain>.*)$")
    domain = parts.field("domain")
    reserved = _matches(domain, r"(?:^|\.)(?:example\.(?:com|net|org)|example|test|invalid|localhost|local|"
                                r"home\.arpa|(?:your|my)-?(?:domain|company|site|email)\.[a-z]+|domain\.(?:com|tld)|"
                                r"(?:foo|bar|baz|foobar)\.(?:com|net|org))$")
    placeholder = _matches(parts.field("local"), r"^(?:you|your|yourname|your[._]?name|first[._]?(?:name)?[._]last(?:name)?|username)$")
    file_name = _matches(domain, r"\.(?:png|jpe?g|gif|svg|webp|bmp|ico|tiff?|js|mjs|ts|css|html?|json|xml|ya?ml|"
                                 r"md|txt|py|rb|go|rs|java|php|cpp|zip|gz|tar|pdf|mp[34]|woff2?|ttf|map|lock)$")
    scp_target = _around(m, after=r"^:[\w~/.-]")  # git@github.com:org/repo.git
    channel = _around(m, before=r"#$")  # #python@libera.chat
    return ~reserved & ~placeholder & ~file_name & ~scp_target & ~channel


def _ipv4(m: Matches) -> np.ndarray:
    """Public, not after a version or section label, and when every number is small (4.10.2.7,
    3.5.2.1: far more often a version or a section than an address; a random address is that
    small once in 4,096) only after a network word."""
    small = _matches(m.found, r"^(?:(?:[12]?\d|3[01])\.){3}(?:[12]?\d|3[01])$")
    networked = _around(m, before=NETWORK_WORD)
    return (ipv4_public(m.found) & (~small | networked)
            & ~_around(m, before=r"[\pL\pN_.]$|" + VERSION_LABEL, after=r"^[\pL_]|^-\pL"))


def _ipv6(m: Matches) -> np.ndarray:
    return ipv6_public(m.found) & ~_around(m, before=r"[\pL\pN_:.]$", after=r"^[\pL\pN_:]")


def _numeric(m: Matches, low: int, high: int) -> np.ndarray:
    """Digit count in [low, high], not glued to a longer token (or a hex dump), not labelled as
    an id, not a placeholder run (1234567890), not a US ZIP+4 code (02110-1301)."""
    digits = _digits(m.found)
    count = pc.utf8_length(digits).to_numpy(zero_copy_only=False)
    placeholder = _matches(digits, r"1234567890|0123456789|9876543210") | _matches(m.found, r"^\d{5}-\d{4}$")
    context = _around(m, before=GLUED_BEFORE + "|" + ID_LABEL + "|" + HEX_DUMP, after=GLUED_AFTER)
    return (count >= low) & (count <= high) & ~placeholder & ~context


def _phone_e164(m: Matches) -> np.ndarray:
    return _numeric(m, 8, 15)


def _phone_nanp(m: Matches) -> np.ndarray:
    # Area code and exchange start with 2-9 (NANP numbering plan).
    valid_plan = _matches(_digits(m.found), r"^[2-9]\d\d[2-9]")
    return _numeric(m, 10, 10) & valid_plan


def _phone_national(m: Matches) -> np.ndarray:
    return _numeric(m, 9, 12)


ISSUER_PREFIX = (r"^(?:4|5[1-5]|2(?:2[2-9]|[3-6]\d|7[01]|720)|3[47]|3(?:0[0-5]|[68])|6(?:011|5|4[4-9])|"
                 r"35(?:2[89]|[3-8])|62)")


def _credit_card(m: Matches) -> np.ndarray:
    digits = _digits(m.found)
    # Groups that all end in 0 are round numbers in a table (coordinates, amounts), 1 in 10^4 cards.
    round_groups = _matches(m.found, r"^(?:\d*0[ -]){3}\d*0$")
    return _numeric(m, 13, 19) & luhn_valid(digits) & _matches(digits, ISSUER_PREFIX) & ~round_groups


def _iban(m: Matches) -> np.ndarray:
    compact = pc.replace_substring_regex(m.found, r"\s+", "")
    return iban_valid(compact) & ~_around(m, before=GLUED_BEFORE, after=GLUED_AFTER)


def _token(m: Matches) -> np.ndarray:
    return ~_matches(m.found, PLACEHOLDER)


def _assigned_secret(m: Matches) -> np.ndarray:
    """A random-looking value: letters and digits, not made of words (my_secret_password_1),
    not a file name, not a placeholder, and enough bits per character."""
    value = m.found
    # `PublicKeyToken=...` names a public value; a bare `key` is any dictionary key.
    public = _around(m, before=r"(?i)(?:public[\w.-]*|[^\w.-]key|^key)[\"']?\s*(?:=|:=|:|=>)\s*[\"'`]?$")
    reference = _matches(value, r"^[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)+$")  # config.api_key, s3Config.secretKey
    segments = pc.split_pattern_regex(value, r"[_\-./+=~]+")
    parent = pc.list_parent_indices(segments).to_numpy()
    wordlike = _matches(pc.list_flatten(segments), r"^(?:(?:[A-Z]?[a-z]+)+|[A-Z]+|\d{1,4}|\w{1,3})?$")
    wordy = np.bincount(parent, weights=~wordlike, minlength=len(value)) == 0
    mixed = _matches(value, r"\pL") & _matches(value, r"\pN")
    file_name = _matches(value, r"(?i)\.(?:pem|key|crt|cer|der|p12|pfx|pub|json|ya?ml|txt|cfg|conf|ini|env|py|js)$")
    return (mixed & ~wordy & ~file_name & ~public & ~reference & ~_matches(value, PLACEHOLDER)
            & (shannon_bits(value) >= 3.0))


@dataclass(frozen=True)
class Detector:
    kind: str
    pattern: str  # RE2; with keeps_context: (context before)(the PII)(context after)
    check: Callable[[Matches], np.ndarray] | None = None  # None: every match is PII
    keeps_context: bool = False


KEY_BLOCK = r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
TOKENS = "|".join([
    r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b",  # AWS access key id
    r"\bgh[pousr]_[A-Za-z0-9]{36,251}\b",  # GitHub tokens
    r"\bgithub_pat_[A-Za-z0-9_]{22,255}\b",
    r"\bglpat-[A-Za-z0-9_-]{20,}",  # GitLab
    r"\bxox[abposr]-[A-Za-z0-9-]{10,}",  # Slack
    r"https://hooks\.slack\.com/services/T[A-Z0-9]+/B[A-Z0-9]+/[A-Za-z0-9]+",
    r"\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}",  # Stripe secret and restricted keys
    r"\bAIza[0-9A-Za-z_-]{35}",  # Google API key
    r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}T3BlbkFJ[A-Za-z0-9_-]{20,}",  # OpenAI
    r"\bsk-proj-[A-Za-z0-9_-]{40,}",
    r"\bsk-ant-(?:api|admin)\d\d-[A-Za-z0-9_-]{32,}",  # Anthropic
    r"\bhf_[A-Za-z0-9]{34,}\b",  # Hugging Face
    r"\bnpm_[A-Za-z0-9]{36}\b",  # npm
    r"\bpypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,}",  # PyPI
    r"\bSG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}\b",  # SendGrid
    r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}",  # JSON Web Token
])
SECRET_NAME = r"[A-Za-z0-9_.-]*(?:key|secret|token|passwd|password|passphrase|pwd|credentials?|auth)"

DETECTORS = (
    Detector("secret", KEY_BLOCK + r"(?s:.*?)-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"),
    Detector("secret", KEY_BLOCK + r"(?:\s+[A-Za-z0-9+/=]{16,})+"),  # a block cut before its END line
    Detector("secret", TOKENS, _token),
    # The value ends with a letter, digit or base64 padding, so a full stop after it stays text.
    Detector("secret", rf"(?i)(\b{SECRET_NAME}[\"']?\s*(?:=|:=|:|=>)\s*[\"'`]?)([A-Za-z0-9+/=_\-.~]{{15,255}}[A-Za-z0-9=])"
                       r"([\"'`\s,;.&<)}\]]|$)", _assigned_secret, keeps_context=True),
    Detector("email", r"[A-Za-z0-9][A-Za-z0-9._%+-]*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}\b",
             _email),
    Detector("iban", r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b", _iban),
    Detector("credit_card", r"\b(?:\d{4}[ -]?){3}\d{1,7}\b|\b\d{4}[ -]?\d{6}[ -]?\d{4,5}\b", _credit_card),
    # Every dotted run of numbers is one candidate, so an OID or a section number 1.3.6.1.4 is
    # never read as the address 1.3.6.1 followed by text.
    Detector("ip_address", r"\b\d+(?:\.\d+){3,}", _ipv4),
    Detector("ip_address", r"(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}", _ipv6),
    # Separators: space, no-break space, dot, hyphen (and / after a trunk-0 area code).
    Detector("phone", r"\+\d{1,3}(?:[ \x{a0}.-]?\(\d{1,4}\))?(?:[ \x{a0}.-]?\d{1,4}){2,5}\b", _phone_e164),
    Detector("phone", r"(?:\(\d{3}\)[ \x{a0}]?|\b\d{3}[ \x{a0}.-])\d{3}[ \x{a0}.-]\d{4}\b", _phone_nanp),
    Detector("phone", r"(?:\(0[1-9]\d{0,3}\)[ \x{a0}]?|\b0[1-9]\d{0,3}[ \x{a0}]?[/-][ \x{a0}]?|\b0[1-9]\d{0,3}[ \x{a0}])"
                      r"\d{2,8}(?:[ \x{a0}-]\d{2,4}){0,3}\b", _phone_national),
)


@dataclass
class Redaction:
    text: pa.Array  # large_string, placeholders in place of what was found
    counts: dict[str, np.ndarray]  # kind -> items replaced per document (int64)


def redact(text: pa.Array | pa.ChunkedArray, allowed: dict[str, np.ndarray]) -> Redaction:
    """Replace every kind of `allowed` (kind -> boolean mask of the documents it applies to).

    A detector runs only on the documents it applies to that hold a candidate at all, found by
    one RE2 scan of the column; the candidates of all those documents are checked at once."""
    original = text.combine_chunks() if isinstance(text, pa.ChunkedArray) else text
    text = as_text(original)
    counts = {kind: np.zeros(len(text), dtype=np.int64) for kind in allowed}
    for det in DETECTORS:
        if det.kind not in allowed:
            continue
        rows = allowed[det.kind] & _matches(text, det.pattern)
        if not rows.any():
            continue
        picked = np.flatnonzero(rows)
        found = Matches(text.take(picked), det.pattern, det.keeps_context)
        ok = det.check(found) if det.check else np.ones(len(found), dtype=bool)
        counts[det.kind][picked] += found.per_doc(ok)
        text = pc.replace_with_mask(text, pa.array(rows), found.replace(ok, PLACEHOLDERS[det.kind]))
    if original.null_count:  # as_text read nulls as empty text; give them back
        text = pc.if_else(pc.is_null(original), pa.scalar(None, pa.large_string()), text)
    return Redaction(text, counts)

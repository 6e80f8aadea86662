"""Bytes to text without crashing: BOM, then the declared charset, then UTF-8, then a detector.

Web pages lie about their charset often enough that a declaration is a hint, not a verdict:
bytes that are valid UTF-8 (with non-ASCII in them) are UTF-8 whatever an 8-bit label says,
because 8-bit text almost never forms valid multi-byte sequences by accident. Only labels
whose bytes UTF-8 would misread (UTF-16/32, the 7-bit ISO-2022 family) are trusted first.
Unlabelled 7-bit text in one of those escape encodings (ISO-2022-JP/KR, HZ) reads as valid
ASCII, so UTF-8 would take it as it is; their shift sequences give them away first.
"""

from __future__ import annotations

import codecs
import re

from charset_normalizer import from_bytes

BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
DETECT_BYTES = 16 << 10  # the detector sees at most this much (its cost grows with it); decoding uses all bytes
META_BYTES = 4096  # HTML: a <meta charset> must appear this early (the HTML spec says 1024)

# WHATWG encoding labels that differ from Python's meaning: browsers decode these as cp1252,
# and pages labelled latin-1 routinely contain cp1252 quotes and dashes in 0x80-0x9f.
WHATWG = {"latin1": "cp1252", "latin-1": "cp1252", "iso-8859-1": "cp1252", "iso8859-1": "cp1252",
          "iso_8859-1": "cp1252", "us-ascii": "cp1252", "ascii": "cp1252", "l1": "cp1252",
          "x-sjis": "shift_jis", "gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030",
          "iso-8859-9": "cp1254", "latin5": "cp1254", "iso-8859-11": "cp874", "tis-620": "cp874",
          "ks_c_5601-1987": "cp949", "euc-kr": "cp949", "utf8": "utf-8", "unicode-1-1-utf-8": "utf-8"}
# Encodings whose bytes also read as valid UTF-8/ASCII but mean something else.
TRUST_FIRST = {"utf_16", "utf_16_le", "utf_16_be", "utf_32", "utf_32_le", "utf_32_be", "utf_7",
               "iso2022_jp", "iso2022_jp_2", "iso2022_kr", "hz"}

_META_CHARSET = re.compile(
    rb"""<meta[^>]+?charset\s*=\s*["']?\s*([a-zA-Z0-9_:.+-]+)""", re.IGNORECASE)
_XML_ENCODING = re.compile(rb"""\s*<\?xml[^>]*?encoding\s*=\s*["']([a-zA-Z0-9_:.+-]+)""")
_CONTENT_TYPE_CHARSET = re.compile(r"""charset\s*=\s*["']?\s*([a-zA-Z0-9_:.+-]+)""", re.IGNORECASE)


def _known(name: str | None) -> str | None:
    """Python's codec name for an encoding label, or None for labels we do not know."""
    if not name:
        return None
    label = name.strip().strip("'\"").lower()
    label = WHATWG.get(label, label)
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def charset_of_content_type(content_type: str | None) -> str | None:
    """`text/html; charset=ISO-8859-1` -> `ISO-8859-1` (an HTTP or WARC header value)."""
    if not content_type:
        return None
    m = _CONTENT_TYPE_CHARSET.search(content_type)
    return m.group(1) if m else None


def html_meta_charset(data: bytes) -> str | None:
    """The charset an HTML page declares in its head (`<meta charset>`, http-equiv, or the XML
    declaration of an XHTML page)."""
    m = _META_CHARSET.search(data[:META_BYTES]) or _XML_ENCODING.match(data[:256])
    return m.group(1).decode("ascii", "replace") if m else None


def looks_binary(data: bytes, sample: int = 8192) -> bool:
    """True for bytes that are no text in any encoding we decode: NUL bytes (UTF-16/32 is
    recognised by its BOM before this is asked) or many C0 control characters."""
    head = data[:sample]
    if not head or any(head.startswith(bom) for bom, _ in BOMS):
        return False
    if b"\x00" in head:
        return True
    control = len(head) - len(head.translate(None, _CONTROL_BYTES))
    return control > 0.05 * len(head)


# Shifts into the double-byte sets of the 7-bit CJK encodings Python decodes: ISO-2022-JP's
# designations (ESC $ B, ESC $ ( D, ...), ISO-2022-KR's (ESC $ ) C) -- plain ASCII holds no such
# ESC -- and HZ's ~{ ... ~} runs of byte pairs (RFC 1843).
_ISO2022_JP = re.compile(rb"\x1b\$(?:[@AB]|\([CDOPQ])")
_ISO2022_KR = re.compile(rb"\x1b\$\)C")
_HZ_RUN = re.compile(rb"~\{((?:[\x21-\x7e]{2})+)~\}")
MIN_HZ_BYTES = 20  # ten double-byte characters, so that a stray ~{..~} in ASCII does not count


def _seven_bit_cjk(data: bytes) -> str | None:
    """The escape encoding of 7-bit CJK text (ISO-2022-JP, ISO-2022-KR, HZ), or None. The codec must
    also decode the head without an error, which ASCII that merely contains the sequences fails."""
    head = data[:DETECT_BYTES]
    if not head.isascii():
        return None
    if _ISO2022_KR.search(head):
        candidates: tuple[str, ...] = ("iso2022_kr",)
    elif _ISO2022_JP.search(head):
        candidates = ("iso2022_jp_2", "iso2022_jp_2004", "iso2022_jp_ext")
    elif sum(map(len, _HZ_RUN.findall(head))) >= MIN_HZ_BYTES:
        candidates = ("hz",)
    else:
        return None
    whole_lines = head[:head.rfind(b"\n") + 1] or head  # a cut shift sequence is no error
    for enc in candidates:
        try:
            whole_lines.decode(enc)
            return enc
        except UnicodeDecodeError:
            continue
    return None


# C0 controls other than tab, newline, form feed, carriage return and escape.
_CONTROL_BYTES = bytes(b for b in range(32) if b not in (9, 10, 12, 13, 27))


_NON_ASCII = re.compile(r"[^\x00-\x7f\ufffd]")


def _mostly_utf8(data: bytes) -> bool:
    """Valid multi-byte UTF-8 characters outnumber the invalid bytes two to one."""
    text = data[:DETECT_BYTES].decode("utf-8", errors="replace")
    bad = text.count("\ufffd")
    return len(_NON_ASCII.findall(text)) >= 2 * bad > 0


def _detect(data: bytes) -> str | None:
    """charset-normalizer's guess; among equally good guesses, the most common web encoding
    (it ranks cp1250 and cp1252 equal on Western text, and cp1250 turns è into č)."""
    matches = list(from_bytes(data[:DETECT_BYTES]))
    if not matches:
        return None
    best = min(matches, key=lambda m: (m.chaos, -m.coherence, _known(m.encoding) != "cp1252"))
    return _known(best.encoding)


def decode(data: bytes, declared: str | None = None) -> tuple[str, str]:
    """Return (text, encoding used). Never raises: undecodable bytes become U+FFFD.

    Order: BOM; a declared encoding UTF-8 cannot stand in for; a 7-bit CJK escape encoding
    its shift sequences show; UTF-8 (also when only a few bytes are broken); the declared
    encoding; charset detection; cp1252 with replacement.
    """
    for bom, enc in BOMS:
        if data.startswith(bom):
            return data[len(bom):].decode(enc, errors="replace"), enc
    enc = _known(declared)
    if enc in TRUST_FIRST:
        return data.decode(enc, errors="replace"), enc
    escaped = _seven_bit_cjk(data)
    if escaped:
        return data.decode(escaped, errors="replace"), escaped
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    if _mostly_utf8(data):  # a few broken bytes in UTF-8 text: keep the rest readable
        return data.decode("utf-8", errors="replace"), "utf-8"
    if enc and enc != "utf-8":
        try:
            return data.decode(enc), enc
        except UnicodeDecodeError:
            pass
    enc = _detect(data) or enc or "cp1252"
    return data.decode(enc, errors="replace"), enc


def decode_html(data: bytes, http_charset: str | None = None) -> tuple[str, str]:
    """Decode an HTML page: the HTTP header's charset wins over the page's own <meta>."""
    return decode(data, http_charset or html_meta_charset(data))

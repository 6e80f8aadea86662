"""PII redaction: e-mail addresses, public IP addresses, phone numbers, payment card numbers,
IBANs and secrets in `text` become typed placeholders (<EMAIL>, <IP_ADDRESS>, <PHONE>,
<CREDIT_CARD>, <IBAN>, <SECRET>). What each type is and is not (reserved domains, private
ranges, version numbers, ISBNs, checksums, ...): filters/pii/detect.py.

Removes nothing. It rewrites the text (`rewrites_text`; it comes last in the default order, so
the other filters measure the text as it came), and records per document how many items of
each type it replaced (`pii_<type>`; NaN for a type switched off, or not applied to the
document). The stage's ledger gets the totals over kept documents: `counters.pii` (replacements
per type, and `docs`, the documents with at least one).

Source code (a document whose `lang` is `code:<language>`, as extract marks code) gets only the
types of `code_types`, by default secrets and e-mail addresses. Only the secret itself goes
(`API_KEY = "<SECRET>"` keeps its name and quotes). E-mail addresses are replaced anywhere in a
file, not only in comments: in code they are authors and maintainers in headers, comments and
package metadata, replacing one never changes what the program does, and telling comments
apart in hundreds of languages is not reliable. Addresses, phone-like and card-like numbers in
code are program data (constants, test vectors, coordinates: on the linguist samples every
card-shaped hit was a KiCad coordinate), so they stay.

Removed documents keep the text they came with, so the stage's removed/ parts are not redacted.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from curate.filters.pii import detect as pii
from curate.filters.base import Filter, FilterConfig
from curate.text.stats import Docs, to_numpy

Kind = Literal["email", "ip_address", "phone", "credit_card", "iban", "secret"]
CODE_PREFIX = "code:"  # extract's `lang` of source code


class PiiConfig(FilterConfig):
    email: bool = Field(True, description="replace e-mail addresses with <EMAIL>")
    ip_address: bool = Field(True, description="replace public IPv4/IPv6 addresses with <IP_ADDRESS>")
    phone: bool = Field(True, description="replace phone numbers with <PHONE>")
    credit_card: bool = Field(True, description="replace Luhn-valid payment card numbers with <CREDIT_CARD>")
    iban: bool = Field(True, description="replace checksum-valid IBANs with <IBAN>")
    secret: bool = Field(True, description="replace private keys, API tokens and assigned secrets with <SECRET>")
    code_types: list[Kind] = Field(["secret", "email"], description="the types replaced in source code")


class PiiFilter(Filter):
    name = "pii"
    Config = PiiConfig
    sources = ("web", "text", "academic", "code")
    rewrites_text = True
    signals = tuple(f"pii_{kind}" for kind in pii.KINDS)

    def __init__(self, config: PiiConfig):
        super().__init__(config)
        self.kinds = [kind for kind in pii.KINDS if getattr(config, kind)]

    def measure(self, docs: Docs) -> dict[str, np.ndarray]:
        return self.rewrite(docs)[0]

    def rewrite(self, docs: Docs) -> tuple[dict[str, np.ndarray], pa.Array]:
        code = to_numpy(pc.starts_with(docs.lang_array, CODE_PREFIX)).astype(bool)
        allowed = {kind: ~code | (kind in self.config.code_types) for kind in self.kinds}
        result = pii.redact(docs.text, allowed)
        signals = {column: np.full(docs.n, np.nan) for column in self.signals}
        for kind, counts in result.counts.items():
            signals[f"pii_{kind}"] = np.where(allowed[kind], counts, np.nan)
        return signals, result.text

    def counters(self, signals: dict[str, np.ndarray], kept: np.ndarray) -> dict:
        """Replacements per type in the kept documents, and how many of them had any."""
        per_kind = {kind: np.nan_to_num(signals[f"pii_{kind}"][kept]) for kind in self.kinds}
        out = {kind: int(values.sum()) for kind, values in per_kind.items()}
        out["docs"] = int(np.sum(sum(per_kind.values(), np.zeros(int(kept.sum()))) > 0))
        return out

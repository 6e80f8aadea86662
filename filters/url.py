"""URL block lists: remove documents whose URL is on a list the user gives, in the manner of
the UT1 blocklist filtering of RefinedWeb (Penedo et al. 2023, section G.1) and datatrove's
URLFilter. No list ships with curate: each is a text file named in the config, one entry per
line, `#` starting a comment.

  domains  a domain blocks itself and its subdomains (example.com blocks www.example.com)
  urls     exact URLs, compared without scheme, `www.` and a trailing slash, host lower-cased
  words    words matched against the URL's tokens (runs of letters and digits, lower-cased)

A document without a URL, or a list not given, is not measured (NaN): no rule fires.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from curate.config import ResourcePath
from curate.filters.base import Filter, FilterConfig, Rule
from curate.text.stats import Docs, to_numpy

SCHEME = r"^[a-zA-Z][a-zA-Z0-9+.\-]*://"


class UrlConfig(FilterConfig):
    domains: ResourcePath | None = Field(None, description="file of blocked domains, one per line")
    urls: ResourcePath | None = Field(None, description="file of blocked URLs, one per line")
    words: ResourcePath | None = Field(None, description="file of banned words, one per line")
    max_domain_hits: int | None = Field(0, ge=0, description="a blocked domain: removed")
    max_url_hits: int | None = Field(0, ge=0, description="a blocked URL: removed")
    max_word_hits: int | None = Field(0, ge=0, description="more banned words in the URL than this: removed")


def read_list(path: Path | None) -> pa.Array | None:
    if path is None:
        return None
    entries = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        entry = line.split("#", 1)[0].strip().lower()
        if entry:
            entries.append(entry)
    return pa.array(sorted(set(entries)), pa.string())


def normalise(urls: pa.Array) -> pa.Array:
    """Lower case, no scheme, no user info, no `www.`, no trailing slash."""
    out = pc.utf8_lower(urls)
    out = pc.replace_substring_regex(out, SCHEME, "")
    out = pc.replace_substring_regex(out, r"^[^@/?#]*@", "")
    out = pc.replace_substring_regex(out, r"^www\d*\.", "")
    return pc.replace_substring_regex(out, r"/+$", "")


class UrlFilter(Filter):
    name = "url"
    Config = UrlConfig
    sources = ("web", "text", "code", "academic")
    rules = (
        # the site is on the domain block list
        Rule("blocked_domain", "url_domain_hits", "gt", "max_domain_hits"),
        # the page is on the URL block list
        Rule("blocked_url", "url_url_hits", "gt", "max_url_hits"),
        # the URL holds banned words
        Rule("banned_words", "url_word_hits", "gt", "max_word_hits"),
    )
    signals = tuple(r.signal for r in rules)

    def __init__(self, config: UrlConfig):
        super().__init__(config)
        self.domains = read_list(config.domains)
        self.urls = read_list(config.urls)
        self.words = read_list(config.words)

    def measure(self, docs: Docs) -> dict[str, np.ndarray]:
        nan = np.full(docs.n, np.nan)
        out = {signal: nan.copy() for signal in self.signals}
        if docs.url is None:
            return out
        has_url = to_numpy(pc.fill_null(pc.greater(pc.utf8_length(docs.url), 0), False)).astype(bool)
        if not has_url.any():
            return out
        url = normalise(pc.fill_null(docs.url, ""))
        if self.domains is not None:
            out["url_domain_hits"] = np.where(has_url, self._domain_hits(url), np.nan)
        if self.urls is not None:
            out["url_url_hits"] = np.where(has_url, to_numpy(pc.is_in(url, self.urls)).astype(float), np.nan)
        if self.words is not None:
            tokens = pc.split_pattern_regex(url, r"[^\pL\pN]+")
            hit = to_numpy(pc.is_in(pc.list_flatten(tokens), self.words)).astype(float)
            counts = np.bincount(to_numpy(pc.list_parent_indices(tokens)), weights=hit, minlength=docs.n)
            out["url_word_hits"] = np.where(has_url, counts, np.nan)
        return out

    def _domain_hits(self, url: pa.Array) -> np.ndarray:
        """1 where the host or one of its parent domains is blocked."""
        host = pc.replace_substring_regex(url, r"[/?#:].*$", "")
        hits = np.zeros(len(host), bool)
        while True:
            hits |= to_numpy(pc.is_in(host, self.domains)).astype(bool)
            parent = pc.replace_substring_regex(host, r"^[^.]*\.?", "", max_replacements=1)
            if not pc.any(pc.greater(pc.utf8_length(parent), 0)).as_py():
                return hits.astype(float)
            host = parent

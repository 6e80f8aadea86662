"""Words as the quality filters count them, and the language facts they need.

The published rule filters (Gopher, FineWeb) were defined over the tokens of spaCy's English
tokenizer: whitespace-separated chunks with punctuation peeled off their edges (`"Hello,` ->
`"`, `Hello`, `,`), some inner splits (`well-known` -> `well`, `-`, `known`), clitics
(`don't` -> `do`, `n't`) and exceptions (`U.S.`, `Mr.`, URLs stay whole). Running spaCy costs
milliseconds per page; `WordSplitter` applies the same kind of rules (our own regular
expressions, with plain-string shortcuts for the common shapes: word, word + comma, (word) ...)
and remembers each chunk's tokens: Arrow cuts a batch into chunks and dictionary-encodes them,
so Python meets each distinct chunk of a batch once, and splits it only the first time the
stage ever meets it (web text repeats its chunks, Zipf). On the web JSONL corpus the token
lists equal spaCy's on 92% of the documents and the token counts differ by 0.09% on average
(scripts/quality_parity.py).

Tokens become integer ids in a vocabulary that also holds, per token, what the filters ask of
it (length, has a letter, is only punctuation, ...), so per-document statistics are numpy
reductions over id arrays rather than Python loops over strings.

Languages. Stop words (Gopher's "at least two of the, be, to, of, and, that, have, with") exist
here for every language of ../shared/corpora/multilingual/parallel-docs and the 20 most frequent
languages lid.176 finds on the web, and a few more (`STOP_WORDS`; matched case-sensitively, as
Gopher's are; Thai has none, its words being several tokens); a document in another language
gets no stop-word signal (NaN: the rule is skipped, never failed). Chinese, Japanese, Thai, Lao,
Khmer, Burmese and Tibetan are written without spaces (`UNSPACED`): for them every Han/kana
character and every Thai/Lao/Khmer/Burmese/Tibetan grapheme cluster is a token, so "words"
count characters, and rules that only make sense for real words (mean word length, word
n-gram repetition) are skipped for those documents.
"""

from __future__ import annotations

import functools
from itertools import chain

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import regex

# --- language facts ---------------------------------------------------------------------------

# Gopher's list (Rae et al. 2021, appendix A): English function words a real text cannot avoid.
# The other lists follow the same idea: eight to twelve of each language's most frequent
# function words, lower case (the rule matches tokens exactly, as Gopher's does).
STOP_WORDS: dict[str, frozenset[str]] = {
    "en": frozenset("the be to of and that have with".split()),
    "de": frozenset("der die das und in zu den von mit sich des ist nicht".split()),
    "fr": frozenset("le la les de et des un une du que est pour en".split()),
    "es": frozenset("el la los las de que y en del un por con para es".split()),
    "it": frozenset("il la di che e per un una del della con non è".split()),
    "pt": frozenset("o a os as de que e do da em um uma para com não".split()),
    "nl": frozenset("de het een en van in is dat op te met voor".split()),
    "sv": frozenset("och att det som en på är av för med till den".split()),
    "da": frozenset("og at det som en på er af for med til den".split()),
    "no": frozenset("og at det som en på er av for med til den".split()),
    "pl": frozenset("i w nie na z się do że to jest jak o".split()),
    "cs": frozenset("a v se na je že s z do to jako pro".split()),
    "ru": frozenset("и в не на что с по как это он к из".split()),
    "uk": frozenset("і в не на що з по як це до та у".split()),
    "tr": frozenset("ve bir bu da de için ile olarak çok daha gibi en".split()),
    "id": frozenset("yang dan di ini itu dengan untuk dari dalam tidak akan pada".split()),
    "vi": frozenset("và của có là không được cho các những trong một người".split()),
    "zh": frozenset("的 了 是 在 和 有 我 不 这 這 也 就 人".split()),  # simplified and traditional
    "ja": frozenset("の に は を た が で て と も し な".split()),
    "ko": frozenset("이 그 및 수 것 등 또는 있는 있다 하는 그리고 더".split()),
    "ar": frozenset("في من على أن إلى عن مع هذا التي الذي ما لا".split()),
    "fa": frozenset("و در به از که این را با است برای آن یک".split()),
    "he": frozenset("של את על הוא לא עם זה כי גם אם היא או".split()),
    "hi": frozenset("के है में की और से को का एक यह पर भी".split()),
    "hu": frozenset("a az és hogy nem is egy van meg de ez el".split()),
    "el": frozenset("και το η του της να σε με για που τα στο".split()),
    "ro": frozenset("și în de la a cu pe că nu o din pentru".split()),
    "fi": frozenset("ja on ei se että oli hän kun mutta myös ovat tai".split()),
    "sk": frozenset("a v na sa je že s z do to ako pre".split()),
    "bg": frozenset("и на в да се от за с е че не по".split()),
    "ca": frozenset("el la de i que en els les per un una amb".split()),
}

# Languages written without spaces between words (lid.176 codes).
UNSPACED = frozenset({"zh", "ja", "th", "lo", "km", "my", "bo", "wuu", "yue"})

# Characters that split into one token each in unspaced text (Han, kana, and the grapheme
# clusters of the Southeast Asian abugidas: a base letter with its vowel signs and marks).
_UNSPACED_UNIT = regex.compile(
    r"[\p{Han}\p{Hiragana}\p{Katakana}\u30fc\u3005\u3006]"
    r"|[\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}\p{Tibetan}][\p{M}]*"
)


@functools.cache
def sentence_terminals() -> frozenset[str]:
    """Unicode's Sentence_Terminal characters (. ! ? 。 । ؟ ...), computed once per process."""
    every = "".join(map(chr, chain(range(0xD800), range(0xE000, 0x20000))))  # none lie beyond
    return frozenset(regex.findall(r"\p{Sentence_Terminal}", every))


@functools.cache
def _terminal_array() -> pa.Array:
    return pa.array(sorted(sentence_terminals()), pa.large_string())


# --- the splitter ---------------------------------------------------------------------------

# A longer chunk (a data blob, a minified line) is one token: peeling its edges one piece at a
# time would take quadratic time, and no rule counts such a "word" as anything but long.
LONG_CHUNK = 1000
_QUOTES = "\"'`´‘’‚‛“”„‟«»‹›「」『』〈〉《》【】〔〕（）"
# Punctuation split off the edges of a chunk, one character per token.
_EDGE = ",:;!?¿¡()[]{}<>_#*&。？！，、；：～·।،۔؛٪" + _QUOTES
_EDGE_ESC = regex.escape(_EDGE, special_only=True)
_LOWER = r"\p{Ll}\p{Lo}\p{Lm}\p{M}"  # lower case and uncased letters (and their marks)
_UPPER = r"\p{Lu}\p{Lt}\p{Lo}"
# Units split from a number before them (5km -> 5 km), as in spaCy's English rules.
_UNITS = ("km|km²|km³|m|m²|m³|dm|cm|mm|ha|µm|nm|yd|in|ft|kg|g|mg|µg|t|lb|oz|m/s|km/h|kmh|mph|hPa|Pa|mbar|"
          "mb|MB|kb|KB|gb|GB|tb|TB|T|G|M|K")

_PREFIX = regex.compile(rf"^(?:\.\.+|…|[{_EDGE_ESC}]|\p{{Sc}}|[§%=—–]|\+(?!\d)|\p{{So}})")
_SUFFIX = regex.compile(
    "(?:"
    + "|".join([
        r"\.\.+", "…", f"[{_EDGE_ESC}]", r"\p{So}", r"['’][sS]", "[—–]",
        r"(?<=\d)[+°]", r"(?<=\d)\p{Sc}", rf"(?<=\d)(?:{_UNITS}|%)",
        # a full stop after a lower-case letter, a digit, %, a sign or punctuation; or after two
        # capitals (USA. -> USA .), but not after one (J. stays: an initial)
        rf"(?<=[{_LOWER}\d%²\-+{_EDGE_ESC}])\.",
        rf"(?<=[{_UPPER}][{_UPPER}])\.",
    ])
    + ")$"
)
_INFIX = regex.compile(
    "|".join([
        r"\.\.+", "…", r"\p{So}",
        r"(?<=\d)[+\-*^](?=[\d-])",  # 2019-2020, 3+4
        rf"(?<=[{_LOWER}{_QUOTES}])\.(?=[{_UPPER}{_QUOTES}])",  # end.The
        r"(?<=\p{L}),(?=\p{L})",  # a,b (not 1,000)
        r"(?<=[\p{L}\d])(?:---|--|—|–|-|~)(?=\p{L})",  # well-known, 19-year (not COVID-19)
        r"(?<=[\p{L}\d])[:<>=/](?=\p{L})",  # x/y -> x / y
    ])
)
_URL = regex.compile(
    r"(?:[\w+.\-]{2,}://)?(?:\S+(?::\S*)?@)?"  # scheme, user info
    r"(?:(?:[\w\u00a1-\uffff][\w\u00a1-\uffff\-]{0,62})?[\w\u00a1-\uffff]\.)+"  # host labels
    rf"[{_LOWER}]{{2,63}}(?::\d{{2,5}})?(?:[/?#]\S*)?"  # top-level domain, port, path
)
# Chunks that stay whole: titles, months and other abbreviations with their full stop, emoticons.
_WHOLE = frozenset(
    """Mr. Mrs. Ms. Dr. Prof. St. Mt. Jr. Sr. Rev. Gen. Gov. Sen. Rep. Adm. Messrs. Bros. Inc.
    Ltd. Co. co. Corp. vs. v.s. Jan. Feb. Mar. Apr. Jun. Jul. Aug. Sep. Sept. Oct. Nov. Dec.
    Ala. Ariz. Ark. Calif. Colo. Conn. Del. Fla. Ga. Ill. Ind. Kan. Ky. La. Mass. Md. Mich. Minn.
    Miss. Mo. Mont. Neb. Nev. Okla. Ore. Pa. Tenn. Va. Wash. Wis. Ph.D. and/or ''
    :) :( :-) :-( ;) ;-) :D :P :p :/ :| :] :[ :* :> <3 =) =( =] =[ =/ (: (= ): [: [= ]= (; (-: )-:
    :'( :') -_- ^_^ ._. >.< <.< >.> @_@""".split()
)
# An abbreviation of letters and full stops (U.S., e.g., a.m.) or an initial (J., a.).
_LETTER_DOTS = regex.compile(r"(?:\p{L}\.){2,}|[\p{Lu}a-zäöü]\.")
# ... which splits where a lower-case letter's stop meets a capital (a.C. -> a. C.)
_LOWER_UPPER_STOP = regex.compile(rf"(?<=[{_LOWER}]\.)(?=[{_UPPER}])")
# English contractions: don't -> do n't, can't -> ca n't, I'm -> I 'm; and their forms without
# the apostrophe (dont, im, youre), which web text is full of.
_NOT_HOSTS = "ai|are|ca|could|dare|did|does|do|had|has|have|is|may|might|must|need|ought|sha|should|was|were|wo|would"
_PRONOUN_CLITICS = {
    "i": "m|d|ve|ll", "you": "d|ll|re|ve", "he": "d|s|ll", "she": "s|ll", "it": "d|ll", "we": "d|ve|re|ll",
    "they": "d|ll|re|ve", "that": "d|ll|s", "there": "d|ll|re|s|ve", "these": "d|ll|re|ve",
    "those": "d|ll|re|ve", "this": "d|ll|s", "who": "d|ll|s|ve", "what": "d|ll|re|s|ve",
    "when": "d|ll|re|s|ve", "where": "d|ll|re|s|ve", "why": "d|ll|re|s|ve", "how": "d|ll|re|s|ve",
    "could": "ve", "should": "ve", "would": "ve", "might": "ve", "must": "ve", "let": "s",
}
_APOSTROPHE_CONTRACTION = regex.compile(
    rf"(?i)(\p{{L}}+)(n['’]t)|({'|'.join(_PRONOUN_CLITICS)})(['’](?:m|re|ve|ll|d))"
)
_BARE_EXCEPTIONS = frozenset({"its", "hell", "ill", "shell", "well", "wed", "were", "whore", "hes", "shed", "id"})
_BARE_WORDS = {"cannot": 3, "gonna": 3, "gotta": 3, "wanna": 3, "ima": 1, "yall": 1}


def _special(s: str) -> list[str] | None:
    """The tokens of a chunk core that a fixed rule decides, or None."""
    if s in _WHOLE:
        return [s]
    if "." in s and _LETTER_DOTS.fullmatch(s):
        return _LOWER_UPPER_STOP.split(s)
    if "'" in s or "’" in s:
        m = _APOSTROPHE_CONTRACTION.fullmatch(s)
        if m:
            return [g for g in m.groups() if g]
    if s.isalpha():
        parts = _alpha_core(s)
        return parts if len(parts) > 1 else None
    return None


def _split_core(s: str) -> list[str]:
    """A chunk without its edge punctuation -> tokens (special rules, URLs, inner splits)."""
    special = _special(s)
    if special is not None:
        return special
    if "." in s and _URL.fullmatch(s):  # a URL has a dot before its top-level domain
        return [s]
    out, start = [], 0
    for m in _INFIX.finditer(s):
        if m.start() == 0:
            continue
        if m.start() > start:
            out.append(s[start:m.start()])
        out.append(m.group())
        start = m.end()
    if start < len(s):
        out.append(s[start:])
    return out


def split_chunk(chunk: str) -> list[str]:
    """One whitespace-free chunk -> its tokens, spaCy-English style (see the module docstring).

    Edge punctuation is peeled off both ends, one piece per round, until what remains is a
    special case or nothing changes; the core then gets the special, URL and inner-split rules.
    """
    # Shortcuts for the common shapes (word, number, word + comma, word + full stop, (word,
    # word-word); they give what the general rules below would, without regular expressions.
    if chunk.isalpha():
        return _alpha_core(chunk)
    if chunk.isdigit() or chunk in _WHOLE or len(chunk) > LONG_CHUNK:
        return [chunk]
    core, last = chunk[:-1], chunk[-1]
    if core.isalpha():
        if last in _PLAIN_SUFFIX:
            return _alpha_core(core) + [last]
        if last == "." and len(core) > 1 and _stop_splits_after(core):
            parts = _alpha_core(core)  # a bare contraction's last piece may join the stop: im. -> i m.
            return [core, last] if len(parts) == 1 else _merge_specials(parts + [last])
    elif core.isdigit() and (last in _PLAIN_SUFFIX or last == "."):
        return [core, last]
    first = chunk[0]
    if first in _PLAIN_PREFIX:
        if core[1:].isalpha() and last in _PLAIN_SUFFIX:  # (word)
            return [first] + _alpha_core(core[1:]) + [last]
        if chunk[1:].isalpha():  # "word
            return [first] + _alpha_core(chunk[1:])
    if len(chunk) > 2 and chunk[:-2].isalpha() and chunk[-2] in _PLAIN_SUFFIX and (last in _PLAIN_SUFFIX or last == "."):
        tail = [chunk[-2:]] if chunk[-2:] in _WHOLE else [chunk[-2], last]  # word). word), word:)
        return _alpha_core(chunk[:-2]) + tail
    if chunk.count("-") == 1:
        left, right = chunk.split("-")
        if left.isalpha() and right.isalpha():
            return [left, "-", right]
    apostrophes = chunk.count("'") + chunk.count("’")
    if apostrophes == 1:
        left, right = regex.split("['’]", chunk)
        if left.isalpha() and right.isalpha():  # John's, don't, I'm, O'Neill
            special = _special(chunk)
            if special is not None:
                return special
            return [left, chunk[len(left):]] if right in ("s", "S") else [chunk]
    prefixes: list[str] = []
    suffixes: list[str] = []
    s = chunk
    while s and _special(s) is None:
        before = len(s)
        m = _PREFIX.match(s)
        pre = m.end() if m else 0
        if pre and pre < len(s) and _special(s[pre:]) is not None:
            prefixes.append(s[:pre])
            s = s[pre:]
            break
        suf = _suffix_length(s, pre)
        if suf and suf < len(s) and _special(s[:len(s) - suf]) is not None:
            suffixes.append(s[len(s) - suf:])
            s = s[:len(s) - suf]
            break
        if pre and suf and pre + suf <= len(s):
            prefixes.append(s[:pre])
            suffixes.append(s[len(s) - suf:])
            s = s[pre:len(s) - suf]
        elif pre:
            prefixes.append(s[:pre])
            s = s[pre:]
        elif suf:
            suffixes.append(s[len(s) - suf:])
            s = s[:len(s) - suf]
        if len(s) == before:
            break
    core = _split_core(s) if s else []
    return _merge_specials(prefixes + core + suffixes[::-1])


def _suffix_length(s: str, start: int) -> int:
    """Length of the suffix `_SUFFIX` peels off `s` (not before `start`). Only a run of full
    stops can be longer than a few characters, so the search looks at the last eight only:
    peeling a long chunk stays linear."""
    if s.endswith(".."):
        return min(len(s) - len(s.rstrip(".")), len(s) - start)
    m = _SUFFIX.search(s, max(start, len(s) - 8))
    return len(s) - m.start() if m else 0


_SMALL_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyzäöü")  # a. b. ... stay whole


def _merge_specials(tokens: list[str]) -> list[str]:
    """Join neighbours that together spell a whole-chunk special (`)` `:` -> `):`,
    `a` `.` -> `a.`), as spaCy's special-case matcher does after splitting."""
    if len(tokens) < 2:
        return tokens
    out = [tokens[0]]
    for t in tokens[1:]:
        pair = out[-1] + t
        if pair in _WHOLE or (len(pair) == 2 and pair[1] == "." and pair[0] in _SMALL_LETTERS):
            out[-1] = pair
        else:
            out.append(t)
    return out


def split_unspaced(chunk: str) -> list[str]:
    """A chunk of unspaced-script text: each Han/kana character or Thai-like grapheme cluster
    is a token; runs of other characters between them are split as usual."""
    out: list[str] = []
    start = 0
    for m in _UNSPACED_UNIT.finditer(chunk):
        if m.start() > start:
            out.extend(split_chunk(chunk[start:m.start()]))
        out.append(m.group())
        start = m.end()
    if start < len(chunk):
        out.extend(split_chunk(chunk[start:]))
    return out


class Vocab:
    """Token strings -> ids, with the per-token facts the filters use as numpy arrays.

    Tokens are added a batch at a time; their facts are computed by Arrow over the new tokens."""

    FACTS = ("length", "is_word", "has_alpha", "is_punct", "ends_sentence")

    def __init__(self):
        self.ids: dict[str, int] = {}
        self.strings: list[str] = []
        self.length = np.zeros(0, np.int32)  # characters (Python len)
        self.is_word = np.zeros(0, bool)  # has a character that is not punctuation, symbol, control or space
        self.has_alpha = np.zeros(0, bool)  # has a letter (as str.isalpha)
        self.is_punct = np.zeros(0, bool)  # only punctuation (Unicode P*): cannot start a sentence
        self.ends_sentence = np.zeros(0, bool)  # one sentence-terminal character (. ! ? 。 ...)

    def __len__(self) -> int:
        return len(self.strings)

    def id(self, token: str) -> int:
        i = self.ids.get(token)
        return i if i is not None else self.add([token])[0]

    def add(self, tokens: list[str]) -> list[int]:
        """Ids of `tokens`, adding the new ones (with their facts) to the vocabulary."""
        new = [t for t in dict.fromkeys(tokens) if t not in self.ids]
        if new:
            start = len(self.strings)
            self.ids.update(zip(new, range(start, start + len(new))))
            self.strings.extend(new)
            arr = pa.array(new, pa.large_string())
            facts = {
                "length": pc.utf8_length(arr),
                "is_word": pc.match_substring_regex(arr, r"[^\pP\pS\pC\pZ]"),
                "has_alpha": pc.match_substring_regex(arr, r"\pL"),
                "is_punct": pc.match_substring_regex(arr, r"^\pP+$"),
                "ends_sentence": pc.is_in(arr, _terminal_array()),
            }
            for name in self.FACTS:
                column = getattr(self, name)
                if len(self.strings) > len(column):  # grow by doubling, only when full
                    grown = np.zeros(max(len(self.strings), 2 * len(column)), column.dtype)
                    grown[:start] = column[:start]
                    column = grown
                    setattr(self, name, column)
                column[start: len(self.strings)] = facts[name].to_numpy(zero_copy_only=False)
        return list(map(self.ids.__getitem__, tokens))


# All-letter chunks that are English contractions without their apostrophe (dont, im, youre):
# spaCy splits them like their apostrophe forms.
def _bare_contractions() -> dict[str, int]:
    out = {}
    for host in _NOT_HOSTS.split("|"):
        out[host + "nt"] = len(host)
        out[host + "ntve"] = len(host)
    for host, clitics in _PRONOUN_CLITICS.items():
        for clitic in clitics.split("|"):
            if host != "let" and host + clitic not in _BARE_EXCEPTIONS:
                out[host + clitic] = len(host)
    out.update(_BARE_WORDS)
    out.update({"id": 1, "hes": 2, "wed": 2})
    return out


_BARE = _bare_contractions()
_BARE_KEYS = pa.array(sorted(_BARE), pa.large_string())
# Edge punctuation that always splits off a word's end or start (unlike the full stop, and the
# apostrophes, which also begin clitics: 's, 'm).
_PLAIN_SUFFIX = frozenset(_EDGE) - {"'", "’"}
_PLAIN_PREFIX = _PLAIN_SUFFIX | frozenset("§%=—–")


def _stop_splits_after(core: str) -> bool:
    """Whether a full stop after this all-letter word is a token of its own (`_SUFFIX`): after a
    lower-case or uncased letter, or after two capitals (USA. splits, J. and McD. do not)."""
    if not core[-1].isupper():
        return True
    return core[-2].isupper() or not core[-2].islower()


def _alpha_core(core: str) -> list[str]:
    """An all-letter core: one token, or a contraction split (dont -> do nt)."""
    if core.islower() or core.istitle():
        cut = _BARE.get(core.lower())
        if cut is not None:
            if core.lower().endswith("ntve"):
                return [core[:cut], core[cut:cut + 2], core[cut + 2:]]
            return [core[:cut], core[cut:]]
    return [core]


class WordSplitter:
    """Splits texts into token ids, remembering each distinct chunk's tokens.

    A batch is cut into whitespace chunks by Arrow, chunks are dictionary-encoded, and only the
    batch's distinct chunks are looked up in Python; new ones are split once per stage instance
    (all-letter chunks, most of them, without regular expressions) and the ids of every
    occurrence are gathered with numpy. `reset_if_large` (called between batches) bounds the
    memory, since ids need only be consistent within one batch.
    """

    MAX_ENTRIES = 1_000_000  # distinct tokens or chunks remembered (a few hundred MB at most)

    def __init__(self):
        self.vocab = Vocab()
        # per mode (spaced, unspaced): chunk -> its token ids
        self._chunks: tuple[dict[str, tuple[int, ...]], dict[str, tuple[int, ...]]] = ({"": ()}, {"": ()})

    def reset_if_large(self) -> None:
        if max(len(self.vocab), len(self._chunks[0]) + len(self._chunks[1])) > self.MAX_ENTRIES:
            self.__init__()

    def _learn(self, chunks: list[str], unspaced: bool) -> None:
        cache = self._chunks[unspaced]
        if not unspaced:
            # a word of letters only (not a bare contraction), or a number (3.5, 1,000, 10:30,
            # 1/2/2020): itself, one token
            arr = pa.array(chunks, pa.large_string())
            whole = pc.and_(pc.match_substring_regex(arr, r"^(?:\pL+|\pN+|\d+(?:[.,:/]\d+)+)$"),
                            pc.invert(pc.is_in(pc.utf8_lower(arr), _BARE_KEYS)))
            whole = whole.to_numpy(zero_copy_only=False)
            words = [chunks[i] for i in np.flatnonzero(whole)]
            cache.update(zip(words, [(i,) for i in self.vocab.add(words)]))
            chunks = [chunks[i] for i in np.flatnonzero(~whole)]
        split = split_unspaced if unspaced else split_chunk
        tokens = [split(c) for c in chunks]
        ids = self.vocab.add(list(chain.from_iterable(tokens)))
        start = 0
        for chunk, toks in zip(chunks, tokens):
            cache[chunk] = tuple(ids[start:start + len(toks)])
            start += len(toks)

    def split(self, texts: pa.Array, unspaced: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Token ids of every text (nulls count as empty), concatenated, and offsets
        (len(texts) + 1) into them."""
        ids, offsets, _ = self.split_chunks(texts, unspaced)
        return ids, offsets

    def split_chunks(self, texts: pa.Array, unspaced: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`split`, and for every token whether it is the first of its whitespace-separated
        chunk (Gopher's words are those chunks)."""
        n = len(texts)
        if unspaced is None or not unspaced.any():
            return self._split_mode(texts, False)
        if unspaced.all():
            return self._split_mode(texts, True)
        # mixed batch: split each group in its mode, then interleave back in document order
        parts = [(np.flatnonzero(~unspaced), False), (np.flatnonzero(unspaced), True)]
        counts = np.zeros(n, np.int64)
        pieces = []
        for rows, mode in parts:
            ids, offsets, first = self._split_mode(texts.take(pa.array(rows)), mode)
            counts[rows] = np.diff(offsets)
            pieces.append((rows, ids, first))
        offsets = np.concatenate([[0], np.cumsum(counts)])
        out = np.empty(offsets[-1], np.int32)
        starts = np.empty(offsets[-1], bool)
        for rows, ids, first in pieces:
            at = ranges(offsets[rows], counts[rows])
            out[at] = ids
            starts[at] = first
        return out, offsets, starts

    def _split_mode(self, texts: pa.Array, unspaced: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        chunks = pc.utf8_split_whitespace(pc.fill_null(texts, ""))
        parents = pc.list_parent_indices(chunks).to_numpy()
        encoded = pc.dictionary_encode(pc.list_flatten(chunks))
        codes = encoded.indices.to_numpy(zero_copy_only=False)
        distinct = encoded.dictionary.to_pylist()
        cache = self._chunks[unspaced]
        per_chunk = list(map(cache.get, distinct))
        if None in per_chunk:
            self._learn([c for c, ids in zip(distinct, per_chunk) if ids is None], unspaced)
            per_chunk = list(map(cache.get, distinct))
        lengths = np.fromiter(map(len, per_chunk), np.int64, count=len(per_chunk))
        flat = np.fromiter(chain.from_iterable(per_chunk), np.int32, count=int(lengths.sum()))
        starts = np.cumsum(lengths) - lengths
        occ_len = lengths[codes]
        ids = flat[ranges(starts[codes], occ_len)]
        first = np.zeros(len(ids), bool)
        first[(np.cumsum(occ_len) - occ_len)[occ_len > 0]] = True  # each chunk's first token
        counts = np.bincount(parents, weights=occ_len, minlength=len(texts)).astype(np.int64)
        return ids, np.concatenate([[0], np.cumsum(counts)]), first

    def tokens(self, text: str, unspaced: bool = False) -> list[str]:
        """The tokens of one text as strings (for tests and inspection)."""
        ids, _ = self.split(pa.array([text], pa.large_string()), np.array([unspaced]))
        return [self.vocab.strings[i] for i in ids]

    def stop_word_ids(self, lang: str) -> np.ndarray | None:
        words = STOP_WORDS.get(lang)
        if words is None:
            return None
        return np.array(sorted(self.vocab.add(sorted(words))), np.int32)


def ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of arange(s, s + l) for each (s, l): gathers variable-length pieces."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    ends = np.cumsum(lengths)
    step = np.ones(total, np.int64)
    nz = lengths > 0
    first = (ends - lengths)[nz]  # where each non-empty piece begins in the output
    s = starts[nz]
    step[first[0]] = s[0]
    # at the start of piece k, jump from the last element of the previous piece to s_k
    prev_last = s[:-1] + lengths[nz][:-1] - 1
    step[first[1:]] = s[1:] - prev_last
    return np.cumsum(step)

"""Text measures for one reply: words, n-grams, loops, leaked templates, identity claims."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence, Set
from functools import lru_cache

# Scripts written without spaces (Chinese, Japanese): each character counts as a word.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_LETTER = rf"[^\W{_CJK}]"  # a word character that is not CJK (one class: no lookahead)
# A word: letters/digits, with inner apostrophes ("don't", "city's"), or one CJK character.
_WORD = re.compile(rf"[{_CJK}]|{_LETTER}+(?:['’]{_LETTER}+)*")
# A sentence ends at . ! ? (or their CJK forms, with closing quotes/brackets) or a line break.
_ENDS = ".!?。！？"
_SENTENCE = re.compile(rf"[^{_ENDS}\n]+(?:[{_ENDS}]+[\"'’”)\]」』]*)?")
# A name is whole when no other letter touches it (CJK names may sit inside CJK text).
_OPEN, _CLOSE = rf"(?<!{_LETTER})", rf"(?!{_LETTER})"

STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing down during each
    else even ever every few first for from further get got had has have having he her here
    hers herself him himself his how however i if in into is it its itself just let lets
    like make many may me might more most much must my myself need no nor not now of off on
    once one only or other our ours ourselves out over own per put rather really same say
    says she should so some such than that the their theirs them themselves then there these
    they this those through thus to too under until up upon us very was way we well were
    what when where which while who whom whose why will with within without would yes yet
    you your yours yourself yourselves""".split()
)


def words(text: str) -> list[str]:
    """The lower-cased words of a text ("Don't" is one word, "don't")."""
    lowered = text.lower()
    if "’" in lowered:  # the same words either way: the pattern takes both apostrophes
        lowered = lowered.replace("’", "'")
    return _WORD.findall(lowered)


def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    """The word n-grams of one token sequence (none if it is shorter than n)."""
    # zip makes the tuples in C (the shifted copies are of unequal length by design):
    # several times faster than slicing at each position.
    return list(zip(*(tokens[i:] for i in range(n)), strict=False)) if n > 0 else []


def sentences(text: str) -> list[str]:
    """The sentences of a text: split after . ! ? and at line breaks."""
    return [s.strip() for s in _SENTENCE.findall(text) if s.strip()]


def looping(text: str, min_words: int = 3) -> bool:
    """True if a sentence of at least min_words words occurs twice in the text.

    Sentences are compared by their words only: case and punctuation are ignored.
    """
    seen: set[tuple[str, ...]] = set()
    for sentence in sentences(text):
        key = tuple(words(sentence))
        if len(key) < min_words:
            continue
        if key in seen:
            return True
        seen.add(key)
    return False


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A crude suffix stemmer: cities/city, cooling/cooled/cool, houses/house agree."""
    w = word.lower()
    w = (w[:-2] if w.endswith("'s") else w).replace("'", "")
    for suffix, repl in (("ies", "y"), ("ing", ""), ("ed", ""), ("s", "")):
        if w.endswith(suffix) and not w.endswith("ss") and len(w) - len(suffix) >= 3:
            w = w[: len(w) - len(suffix)] + repl
            break
    if w.endswith("e") and len(w) > 3:
        w = w[:-1]
    return w


def content_words(text: str) -> set[str]:
    """The stemmed words of a text that are not stopwords or numbers."""
    return {stem(w) for w in words(text) if w not in STOPWORDS and not w.isdigit()}


# Jinja syntax: comments and statements vanish; an expression becomes a break, unless it
# is one whose value is known (then it is replaced by that value).
_JINJA = re.compile(r"\{#.*?#\}|\{%-?.*?-?%\}|\{\{-?\s*(.*?)\s*-?\}\}", re.S)
BREAK = "\n\x00\n"


def strip_jinja(source: str, values: dict[str, str] | None = None) -> str:
    """Template text without Jinja syntax; `{{ x }}` becomes values[x] or a break."""
    known = values or {}

    def replace(match: re.Match[str]) -> str:
        expr = match.group(1)
        if expr is None:
            return ""
        return known.get(expr, BREAK)

    return _JINJA.sub(replace, source)


def segment_ngrams(texts: Iterable[str], n: int) -> set[tuple[str, ...]]:
    """The word n-grams of texts; none spans a text boundary or a template break."""
    grams: set[tuple[str, ...]] = set()
    for text in texts:
        for part in text.split("\x00"):
            grams.update(ngrams(words(part), n))
    return grams


def copied_share(tokens: Sequence[str], known: Set[tuple[str, ...]], n: int) -> float:
    """The share of the n-grams of tokens that are in known (0 if there are none)."""
    return known_share(ngrams(tokens, n), known)


def known_share(grams: Sequence[tuple[str, ...]], known: Set[tuple[str, ...]]) -> float:
    """The share of grams that are in known (0 if there are none)."""
    return sum(map(known.__contains__, grams)) / len(grams) if grams else 0.0


def name_forms(name: str, full_name: str) -> list[str]:
    """How a participant may be named: name, full name, full name up to its first comma,
    and that one's last word when it is a surname of 4 letters or more ("Lindqvist")."""
    short = full_name.split(",")[0].strip()
    forms = {name.strip(), full_name.strip(), short}
    parts = short.split()
    if len(parts) >= 2 and len(parts[-1]) >= 4 and parts[-1][:1].isupper():
        forms.add(parts[-1])
    return sorted((f for f in forms if f), key=len, reverse=True)


def other_forms(forms: Mapping[str, Sequence[str]], speaker: str) -> list[str]:
    """The name forms of everyone but the speaker, minus forms the speaker's own name shares."""
    own = set(forms.get(speaker, ()))
    return [f for name, fs in forms.items() if name != speaker for f in fs if f not in own]


def _alternatives(names: Iterable[str]) -> str:
    unique = sorted(set(names), key=len, reverse=True)
    return "|".join(re.escape(n) for n in unique)


@lru_cache(maxsize=1024)
def _named_pattern(forms: tuple[str, ...]) -> re.Pattern[str] | None:
    alternatives = _alternatives(forms)
    return re.compile(rf"{_OPEN}(?:{alternatives}){_CLOSE}") if alternatives else None


def named(text: str, forms: Iterable[str]) -> bool:
    """True if any of the name forms occurs in text as a whole word (case-sensitive)."""
    pattern = _named_pattern(tuple(forms))
    return pattern is not None and pattern.search(text) is not None


# Where a sentence starts: the text start, after . ! ? : or a line break.
_START = rf"(?:^|(?<=[{_ENDS}:\n]))\s*[\"'“*_(「]*"
# A claim's verb phrases ({N} is the name alternatives; names are case-sensitive).
IDENTITY_PATTERNS = (
    # I'm X / I am X, also with a first name before a surname ("I'm Darrin Lindqvist")
    r"(?i:\bI(?:'m|’m| am)\s+)(?P<who>(?:[A-Z][\w'’-]+\s+)?(?:{N}))",
    r"(?i:\bmy name is\s+)(?:{N})",  # My name is X
    _START + r"(?i:as\s+)(?:{N})\s*,",  # As X, ... (not "As X said")
    _START + r"(?i:this is\s+)(?:{N})",  # This is X (speaking)
    _START + r"(?i:you are\s+)(?:{N})",  # You are X (a recited "You are <full name>")
    _START + r"(?:{N})\s+(?i:here)\b",  # X here.
    r"(?:我是|我叫|私は)(?:{N})",  # Chinese and Japanese "I am X"
)
_NAME_END = rf"{_CLOSE}(?!['’]s\b)"  # whole name, and not a possessive ("This is Ben's point")
# Claiming to be an AI: "I am an AI", "As an AI language model, ...", "I'm just a model".
_AI = re.compile(
    r"(?i)(?:\bI(?:'m|’m| am)\s+(?:(?:just|only|merely|but)\s+)?|(?:^|[,;:.!?]\s*|\n)\s*as\s+)"
    r"(?:an?\s+)(?:AI\b(?!-)|artificial intelligence|(?:large\s+)?language model|chatbot"
    r"|(?:helpful|virtual|digital)\s+assistant)"
)


def claims_identity(text: str, others: Iterable[str], own: Iterable[str] = ()) -> bool:
    """True if text claims to be one of the other participants (given as name forms); a
    claim of one of the speaker's `own` forms is not one ("I'm Sam Lee" beside a "Lee")."""
    others = tuple(others)
    if not any(form in text for form in others):
        return False  # every claim names one of them, as written
    mine = set(own)
    for pattern in _identity_patterns(others):
        for match in pattern.finditer(text):
            if "who" not in pattern.groupindex or match.group("who") not in mine:
                return True
    return False


@lru_cache(maxsize=1024)
def _identity_patterns(others: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    """IDENTITY_PATTERNS for these name forms, compiled once (every turn asks again)."""
    alternatives = _alternatives(others)
    if not alternatives:
        return ()
    return tuple(re.compile(p.replace("{N}", alternatives) + _NAME_END) for p in IDENTITY_PATTERNS)


def claims_ai(text: str) -> bool:
    """True if text says its speaker is an AI, a language model or an assistant."""
    return _AI.search(text) is not None

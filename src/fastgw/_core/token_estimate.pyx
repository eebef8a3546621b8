# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""How many tokens a text is, without a tokenizer's vocabulary.

A BPE tokenizer (OpenAI's cl100k and o200k, and the many built like them)
first splits a text into words, runs of digits, runs of punctuation and
whitespace, then merges each piece's bytes into tokens: a common word is one
token, a rare or long one several, digits go in groups of three, and scripts
other than Latin cost about one token per character or two. One pass over
the text counts those pieces (``FEATURES``), and a weighted sum of the counts
(``WEIGHTS``, fitted by least relative error to the larger of the cl100k and
o200k counts of ``tests/ai/data/token_sample.jsonl``) is the estimate.

Its error on that sample, per kind of text, is measured by
``python -m fastgw.ai.token_estimate`` and written in docs/ai-translation.md.
A 2 KB prompt takes a few microseconds: Latin-1 text (most prompts) is read
as bytes through a class table, other text character by character.

The scanner keeps its state between ``add`` calls, so text that arrives in
pieces (stream deltas) counts as the joined text would.
"""

from cpython.unicode cimport PyUnicode_KIND, PyUnicode_DATA, PyUnicode_1BYTE_KIND, PyUnicode_READ
from libc.math cimport ceil

FEATURES = (
    "words",           # runs of Latin letters
    "long_letters",    # letters past the sixth of a word: rare words split
    "digit_groups",    # digits, in groups of three
    "punct_runs",
    "punct_chars",
    "newline_runs",
    "space_runs",      # two spaces or more (indentation)
    "tabs",
    "latin_extended",  # accented Latin letters, in words
    "cyrillic",
    "cyrillic_words",
    "greek",
    "arabic_hebrew",
    "indic",
    "cjk",             # Han and kana
    "hangul",
    "emoji",
    "other",           # any other character: symbols, dashes, quotes
    "case_changes",    # camelCase: a word split where lower turns upper
)

# Fitted by `python -m fastgw.ai.token_estimate --fit`, in the order of FEATURES.
WEIGHTS = (0.905, 0.32, 1.251, 0.453, 0.186, 1.405, 0.223, 0.423, 1.646, 0.621,
           -0.668, 1.092, 0.994, 1.24, 1.006, 1.231, 5.56, 2.157, 1.673)

cdef double C_WEIGHTS[N_FEATURES]
for _index, _weight in enumerate(WEIGHTS):
    C_WEIGHTS[_index] = _weight

# The feature a class counts one of per character, for the classes that
# make no runs.
cdef int ONE_EACH[NOTHING]
ONE_EACH[TAB] = F_TABS
ONE_EACH[GREEK] = F_GREEK
ONE_EACH[ARABIC_HEBREW] = F_ARABIC_HEBREW
ONE_EACH[INDIC] = F_INDIC
ONE_EACH[CJK] = F_CJK
ONE_EACH[HANGUL] = F_HANGUL
ONE_EACH[EMOJI] = F_EMOJI
ONE_EACH[OTHER] = F_OTHER

# Classes of the characters of Latin-1, the table the byte loop reads.
cdef unsigned char LATIN1_CLASS[256]


cdef unsigned char _latin1_class(int code):
    if 97 <= code <= 122:
        return LOWER
    if 65 <= code <= 90:
        return UPPER
    if 48 <= code <= 57:
        return DIGIT
    if code == 32:
        return SPACE
    if code == 10 or code == 13:
        return NEWLINE
    if code == 9:
        return TAB
    if code < 128:
        return PUNCT
    if code >= 0xC0 and code != 0xD7 and code != 0xF7:
        return ACCENTED
    return OTHER


for _code in range(256):
    LATIN1_CLASS[_code] = _latin1_class(_code)


cdef unsigned char _wide_class(Py_UCS4 code):
    """The class of a character past Latin-1."""
    if code <= 0x24F or 0x1E00 <= code <= 0x1EFF:
        return ACCENTED
    if 0x400 <= code <= 0x52F:
        return CYRILLIC
    if 0x370 <= code <= 0x3FF:
        return GREEK
    if 0x590 <= code <= 0x6FF:
        return ARABIC_HEBREW
    if 0x900 <= code <= 0xDFF:
        return INDIC
    if 0x3040 <= code <= 0x30FF or 0x3400 <= code <= 0x4DBF or 0x4E00 <= code <= 0x9FFF:
        return CJK
    if 0xAC00 <= code <= 0xD7AF:
        return HANGUL
    if code >= 0x1F000:
        return EMOJI
    return OTHER


cdef class TokenEstimator:
    """Counts a text's pieces as it arrives; ``tokens`` is the estimate so far."""

    def __cinit__(self):
        cdef int index
        for index in range(N_FEATURES):
            self.scan.counts[index] = 0
        self.scan.previous = NOTHING
        self.scan.run = 0

    cpdef add(self, str text):
        cdef Py_ssize_t index, length = len(text)
        cdef int kind = PyUnicode_KIND(text)
        cdef void *data = PyUnicode_DATA(text)
        cdef const unsigned char *latin1 = <const unsigned char *>data
        cdef bint one_byte = kind == PyUnicode_1BYTE_KIND
        cdef Py_UCS4 code
        cdef unsigned char cls, previous = self.scan.previous
        cdef Py_ssize_t *counts = self.scan.counts
        # The counters most characters touch are locals, which the compiler
        # keeps in registers; the rest are counted in place.
        cdef Py_ssize_t run = self.scan.run
        cdef Py_ssize_t words = 0, long_letters = 0, punct_runs = 0, punct_chars = 0
        cdef Py_ssize_t digit_groups = 0, case_changes = 0, accented = 0
        for index in range(length):
            if one_byte:
                cls = LATIN1_CLASS[latin1[index]]
            else:
                code = PyUnicode_READ(kind, data, index)
                cls = LATIN1_CLASS[code] if code < 256 else _wide_class(code)
            if cls <= ACCENTED:  # a letter
                if previous > ACCENTED:
                    words += 1
                    run = 1
                else:
                    run += 1
                    if run > 6:
                        long_letters += 1
                    if cls == UPPER and previous == LOWER:
                        case_changes += 1
                if cls == ACCENTED:
                    accented += 1
            elif cls == SPACE:
                if previous != SPACE:
                    run = 1
                else:
                    run += 1
                    if run == 2:
                        counts[F_SPACE_RUNS] += 1
            elif cls == PUNCT:
                if previous != PUNCT:
                    punct_runs += 1
                punct_chars += 1
            elif cls == DIGIT:
                if previous != DIGIT:
                    run = 0
                if run % 3 == 0:
                    digit_groups += 1
                run += 1
            elif cls == NEWLINE:
                if previous != NEWLINE:
                    counts[F_NEWLINE_RUNS] += 1
            elif cls == CYRILLIC:
                counts[F_CYRILLIC] += 1
                if previous != CYRILLIC:
                    counts[F_CYRILLIC_WORDS] += 1
            else:
                counts[ONE_EACH[cls]] += 1
            previous = cls
        counts[F_WORDS] += words
        counts[F_LONG_LETTERS] += long_letters
        counts[F_PUNCT_RUNS] += punct_runs
        counts[F_PUNCT_CHARS] += punct_chars
        counts[F_DIGIT_GROUPS] += digit_groups
        counts[F_CASE_CHANGES] += case_changes
        counts[F_LATIN_EXTENDED] += accented
        self.scan.previous = previous
        self.scan.run = run

    @property
    def counts_list(self):
        return [self.scan.counts[index] for index in range(N_FEATURES)]

    @property
    def tokens(self):
        cdef double total = 0.0
        cdef int index
        for index in range(N_FEATURES):
            total += C_WEIGHTS[index] * self.scan.counts[index]
        return <Py_ssize_t>ceil(total) if total > 0 else 0


cpdef Py_ssize_t estimate_tokens(str text):
    """The estimate for one whole text."""
    if not text:
        return 0
    cdef TokenEstimator estimator = TokenEstimator()
    estimator.add(text)
    return estimator.tokens

# Character classes, in the order _step tests them: the letters first.
cdef enum:
    LOWER = 0
    UPPER = 1
    ACCENTED = 2
    SPACE = 3
    DIGIT = 4
    PUNCT = 5
    NEWLINE = 6
    CYRILLIC = 7
    TAB = 8
    GREEK = 9
    ARABIC_HEBREW = 10
    INDIC = 11
    CJK = 12
    HANGUL = 13
    EMOJI = 14
    OTHER = 15
    NOTHING = 16

# Indexes of FEATURES.
cdef enum:
    F_WORDS = 0
    F_LONG_LETTERS = 1
    F_DIGIT_GROUPS = 2
    F_PUNCT_RUNS = 3
    F_PUNCT_CHARS = 4
    F_NEWLINE_RUNS = 5
    F_SPACE_RUNS = 6
    F_TABS = 7
    F_LATIN_EXTENDED = 8
    F_CYRILLIC = 9
    F_CYRILLIC_WORDS = 10
    F_GREEK = 11
    F_ARABIC_HEBREW = 12
    F_INDIC = 13
    F_CJK = 14
    F_HANGUL = 15
    F_EMOJI = 16
    F_OTHER = 17
    F_CASE_CHANGES = 18
    N_FEATURES = 19


cdef struct Scan:
    unsigned char previous
    Py_ssize_t run
    Py_ssize_t counts[N_FEATURES]


cdef class TokenEstimator:
    cdef Scan scan

    cpdef add(self, str text)


cpdef Py_ssize_t estimate_tokens(str text)

# cython: language_level=3
"""The checks ai-sanitizer's detectors run on each match (``fastgw.ai.pii.detectors``),
compiled: a card number's layout, brand, length and Luhn digit, and whether a match
stands alone in its text (what its pattern's look-arounds would say; RE2 has none).

PERF: on this project's Python build a Python-level call costs about 850 instructions;
the card check alone took 20k instructions a value and the neighbours' check 4.5k, where
these loops take a few hundred.
"""

from cpython.unicode cimport Py_UNICODE_ISALNUM, Py_UNICODE_ISALPHA, Py_UNICODE_ISDIGIT

# How card numbers are grouped when they are written with separators.
CARD_LAYOUTS = frozenset(((4, 4, 4, 4), (4, 6, 5), (4, 6, 4), (4, 4, 4, 1), (4, 4, 4, 4, 1),
                          (4, 4, 4, 4, 2), (4, 4, 4, 4, 3)))
# Words that make a dotted quad a version, not an address.
VERSION_WORDS = frozenset(("version", "release", "build", "ver", "v", "firmware", "driver"))

cdef enum:
    MAX_DIGITS = 32  # more than any card has


cdef bint _luhn(const int *digits, Py_ssize_t count) noexcept:
    cdef Py_ssize_t i
    cdef int total = 0, digit
    for i in range(count):
        digit = digits[count - 1 - i]
        if i & 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


cpdef bint luhn_valid(str digits) except -1:
    cdef int values[MAX_DIGITS]
    cdef Py_ssize_t count = len(digits), i
    cdef Py_UCS4 char
    if count > MAX_DIGITS:
        return False
    for i in range(count):
        char = digits[i]
        if char < 48 or char > 57:  # not 0-9
            return False
        values[i] = <int>char - 48
    return _luhn(values, count)


cdef bint _brand_length(const int *d, Py_ssize_t length) noexcept:
    """The number starts as a brand's do and has a length that brand issues."""
    cdef int two = d[0] * 10 + d[1]
    cdef int three = two * 10 + d[2]
    cdef int four = three * 10 + d[3]
    if d[0] == 4:
        return length == 13 or length == 16 or length == 19  # Visa
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return length == 16  # Mastercard
    if two == 34 or two == 37:
        return length == 15  # American Express
    if four == 6011 or 644 <= three <= 649 or two == 65 or two == 62:
        return 16 <= length <= 19  # Discover, UnionPay
    if 3528 <= four <= 3589:
        return 16 <= length <= 19  # JCB
    if 300 <= three <= 305 or two == 36 or two == 38 or two == 39:
        return 14 <= length <= 19  # Diners Club
    return False


cpdef bint credit_card(str value) except -1:
    """Digits, grouped as cards are (one kind of separator, spaces or dashes), of a
    brand's length, with a valid Luhn digit."""
    cdef int digits[MAX_DIGITS]
    cdef Py_ssize_t count = 0, group = 0
    cdef bint space = False, dash = False
    cdef list groups = []
    cdef Py_UCS4 char
    for char in value:
        if 48 <= char <= 57:  # 0-9
            if count == MAX_DIGITS:
                return False
            digits[count] = <int>char - 48
            count += 1
            group += 1
        elif char == u' ' or char == u'-':
            if char == u' ':
                space = True
            else:
                dash = True
            groups.append(group)
            group = 0
        else:
            return False
    if groups:
        if space and dash:
            return False  # separators of two kinds
        groups.append(group)
        if tuple(groups) not in CARD_LAYOUTS:
            return False
    return count >= 4 and _brand_length(digits, count) and _luhn(digits, count)


cdef inline bint _word_char(Py_UCS4 char) noexcept:
    return Py_UNICODE_ISALNUM(char) or char == u'_'


cdef str _preceding_word(str text, Py_ssize_t start):
    cdef Py_ssize_t end = start, begin
    while end > 0 and text[end - 1] in u" \t:":
        end -= 1
    begin = end
    while begin > 0 and Py_UNICODE_ISALPHA(text[begin - 1]):
        begin -= 1
    return text[begin:end].lower()


cpdef bint bounded(str text, Py_ssize_t start, Py_ssize_t end, tuple bounds) except -1:
    """The match ``text[start:end]`` stands alone. ``bounds``: (characters that may
    not come right before it, whether a letter, digit or _ may not either, the same
    two for right after it, whether it is an IPv4 address: not followed by ``.`` and
    a digit, not after a version word)."""
    cdef str not_before = bounds[0]
    cdef bint word_before = bounds[1]
    cdef str not_after = bounds[2]
    cdef bint word_after = bounds[3]
    cdef bint ipv4 = bounds[4]
    cdef Py_ssize_t size = len(text)
    cdef Py_UCS4 before, after
    if start > 0:
        before = text[start - 1]
        if (word_before and _word_char(before)) or before in not_before:
            return False
    if end < size:
        after = text[end]
        if (word_after and _word_char(after)) or after in not_after:
            return False
        if ipv4 and after == u'.' and end + 1 < size and Py_UNICODE_ISDIGIT(text[end + 1]):
            return False  # 1.2.3.4.5: more than an address
    if ipv4 and _preceding_word(text, start) in VERSION_WORDS:
        return False
    return True

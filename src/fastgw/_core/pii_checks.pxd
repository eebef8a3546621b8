# The checks of ai-sanitizer's detectors (see pii_checks.pyx).

cpdef bint luhn_valid(str digits) except -1
cpdef bint credit_card(str value) except -1
cpdef bint bounded(str text, Py_ssize_t start, Py_ssize_t end, tuple bounds) except -1

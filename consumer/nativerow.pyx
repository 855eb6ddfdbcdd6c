# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
r"""The fused row reader compiled to C: the same contract as ``consumer.fastrow``'s, faster.

``RowReader(plan)(value, start, partition, offset) -> (identity, row, line)`` reads the Avro body
at ``start`` of ``value`` and returns exactly what the generated Python reader of
``consumer.fastrow`` returns for it, or raises ``Fallback`` wherever that reader does (then the
reference path gives the row or the dead letter). ``fastrow.native_row_reader`` builds the plan
from the schema; tests/consumer/test_fastrow.py proves the two readers equal (every sample,
held-out traffic, hypothesis records, every truncation and corruption of a body).
``RowReader.line`` gives ``(identity, server_uuid, line)`` for the same input, or refuses it
alike: the consumer writing by ``LOAD DATA`` needs no row values (about 40 objects a row).

What it does differently, and why that is the same:

- Varints are read by one loop with the generated reader's limits: at most 10 bytes, at most
  64 bits (a tenth byte above 1 is refused), zigzag to a signed 64-bit value.
- The line is written as UTF-8 straight from the body's bytes, never from the decoded ``str``
  (which the row needs): the four ``LOAD DATA`` escapes (``\\``, tab, newline, NUL) are ASCII,
  and no byte of a multi-byte UTF-8 sequence is below 0x80, so escaping the bytes in one pass
  equals ``_escape``'s four replaces done in order (the backslash first) on the text, encoded.
- Numbers: a long is printed with ``%lld`` (what ``str`` prints), a double with
  ``PyOS_double_to_string(x, 'r', 0, Py_DTSF_ADD_DOT_0)``, the very call behind ``repr(float)``.
- A body that runs past the end is refused where it does (the generated reader notices at its
  next read or its final check): the outcome, ``Fallback``, is the same.
- ``line`` makes no ``str`` for a string column, so it checks UTF-8 itself (``_utf8``: the
  Unicode Standard's well-formed sequences, which is what CPython's strict decoder accepts;
  the tests compare the two on every short sequence around the edges and on random bytes).

Traps: the plan is positional (the schema's field order), so it is built from the schema by
``fastrow`` and checked there, never written by hand. Every error becomes ``Fallback``, as in
the generated reader: a bug here would send rows down the reference path, not lose them.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport int64_t, uint64_t
from libc.stdio cimport snprintf
from libc.string cimport memchr, memcpy, strlen

cdef enum:
    # Kinds of a field's value (the plan's codes: KINDS).
    STRING = 0
    LONG = 1
    DOUBLE = 2
    MAP = 3
    ARRAY = 4
    # Sources of a column besides a field index (SOURCES).
    PARTITION = -1
    OFFSET = -2
    TIMESTAMP = -3
    MAX_FIELDS = 128


#: The plan's code of each field kind (``schemas.compiled`` names the kinds).
KINDS = {
    "string": STRING, "long": LONG, "timestamp-millis": LONG, "double": DOUBLE,
    "map": MAP, "array": ARRAY,
}
#: The plan's source of the columns that come from the message, not from a field.
SOURCES = {"kafka_partition": PARTITION, "kafka_offset": OFFSET, "ts": TIMESTAMP}


cdef extern from "Python.h":
    char* PyOS_double_to_string(double, char, int, int, int*) except NULL
    int Py_DTSF_ADD_DOT_0


cdef inline Py_ssize_t _put_escaped(char* out, const char* s, Py_ssize_t n) noexcept:
    """Copy ``n`` bytes to ``out`` with the four LOAD DATA escapes; return the bytes written."""
    cdef Py_ssize_t i, j = 0
    cdef char c
    for i in range(n):
        c = s[i]
        if c == 92:
            out[j] = 92; out[j + 1] = 92; j += 2
        elif c == 9:
            out[j] = 92; out[j + 1] = 116; j += 2  # \t
        elif c == 10:
            out[j] = 92; out[j + 1] = 110; j += 2  # \n
        elif c == 0:
            out[j] = 92; out[j + 1] = 48; j += 2  # \0
        else:
            out[j] = c; j += 1
    return j


cdef inline bint _utf8(const unsigned char* s, Py_ssize_t n) noexcept:
    """True when ``s[:n]`` is well-formed UTF-8: what CPython's strict decoder accepts.

    The Unicode Standard's table 3-7 of well-formed byte sequences: no overlong form, no
    surrogate (ED A0..BF), nothing above U+10FFFF (F4 90.., F5..FF), no lone continuation
    byte. ASCII is skipped 8 bytes at a time. tests/consumer/test_fastrow.py holds it to
    ``bytes.decode`` on every 1- to 4-byte sequence around the edges and on random bytes.
    """
    cdef Py_ssize_t i = 0
    cdef uint64_t word
    cdef unsigned char c, lo, hi
    cdef int more, j
    while i < n:
        if i + 8 <= n:
            memcpy(&word, s + i, 8)
            if (word & 0x8080808080808080ULL) == 0:
                i += 8
                continue
        c = s[i]
        if c < 0x80:
            i += 1
            continue
        lo, hi = 0x80, 0xBF
        if 0xC2 <= c <= 0xDF:
            more = 1
        elif c == 0xE0:
            more, lo = 2, 0xA0
        elif 0xE1 <= c <= 0xEC or c == 0xEE or c == 0xEF:
            more = 2
        elif c == 0xED:
            more, hi = 2, 0x9F
        elif c == 0xF0:
            more, lo = 3, 0x90
        elif 0xF1 <= c <= 0xF3:
            more = 3
        elif c == 0xF4:
            more, hi = 3, 0x8F
        else:
            return False
        if n - i <= more:
            return False
        if not (lo <= s[i + 1] <= hi):
            return False
        for j in range(2, more + 1):
            if not (0x80 <= s[i + j] <= 0xBF):
                return False
        i += more + 1
    return True


def is_utf8(bytes data not None):
    """``_utf8`` on ``data`` (for the tests that hold it to CPython's decoder)."""
    return _utf8(<const unsigned char*>PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))


cdef inline Py_ssize_t _copy(char* out, bytes text) noexcept:
    """Copy ``text`` (ASCII: a number or a timestamp) to ``out``; return its length."""
    cdef Py_ssize_t n = PyBytes_GET_SIZE(text)
    memcpy(out, PyBytes_AS_STRING(text), n)
    return n


cdef inline Py_ssize_t _put(char* out, const char* s, Py_ssize_t n) noexcept:
    """Copy ``n`` bytes that need no escape when none of the four is there (memchr each)."""
    if (memchr(s, 92, n) == NULL and memchr(s, 9, n) == NULL and memchr(s, 10, n) == NULL
            and memchr(s, 0, n) == NULL):
        memcpy(out, s, n)
        return n
    return _put_escaped(out, s, n)


cdef class RowReader:
    """One schema's fused reader; call it like ``fastrow``'s generated ``read``."""

    cdef int nfields
    cdef int ncols
    cdef int kinds[MAX_FIELDS]
    cdef bint nullable[MAX_FIELDS]
    cdef bint json[MAX_FIELDS]
    cdef int sources[MAX_FIELDS]
    cdef int ts_field
    cdef int id_field
    cdef int64_t min_ms
    cdef int64_t max_ms
    cdef object fallback
    cdef object identity
    cdef object timestamp
    cdef object dumps

    def __init__(
        self,
        fields,
        sources,
        int ts_field,
        int id_field,
        int64_t min_ms,
        int64_t max_ms,
        fallback,
        identity,
        timestamp,
        dumps,
    ):
        """``fields``: ``(kind code, nullable, as JSON)`` per schema field, in order;
        ``sources``: per column, a field index or PARTITION / OFFSET / TIMESTAMP."""
        if len(fields) > MAX_FIELDS or len(sources) > MAX_FIELDS:
            raise ValueError(f"more than {MAX_FIELDS} fields or columns")
        self.nfields = len(fields)
        for i, (kind, nullable, json) in enumerate(fields):
            if kind not in (STRING, LONG, DOUBLE, MAP, ARRAY):
                raise ValueError(f"field {i}: kind {kind!r}")
            if json and kind not in (MAP, ARRAY):
                raise ValueError(f"field {i}: only a map or an array is written as JSON")
            self.kinds[i] = kind
            self.nullable[i] = nullable
            self.json[i] = json
        self.ncols = len(sources)
        for i, source in enumerate(sources):
            if not (TIMESTAMP <= source < self.nfields):
                raise ValueError(f"column {i}: source {source!r}")
            if source >= 0 and self.kinds[source] in (MAP, ARRAY) and not self.json[source]:
                raise ValueError(f"column {i}: a map or an array must be written as JSON")
            self.sources[i] = source
        if self.kinds[ts_field] != LONG or self.kinds[id_field] != LONG:
            raise ValueError("the timestamp and id fields must be longs")
        if self.nullable[ts_field] or self.nullable[id_field]:
            raise ValueError("the timestamp and id fields cannot be null")
        self.ts_field = ts_field
        self.id_field = id_field
        self.min_ms = min_ms
        self.max_ms = max_ms
        self.fallback = fallback
        self.identity = identity
        self.timestamp = timestamp
        self.dumps = dumps

    def __call__(self, bytes value not None, Py_ssize_t start, partition, offset):
        try:
            return self._read(value, start, partition, offset, True)
        except self.fallback:
            raise
        except Exception as exc:
            raise self.fallback(repr(exc)) from exc

    def line(self, bytes value not None, Py_ssize_t start, partition, offset):
        """``(identity, server_uuid, line)``: what ``__call__`` gives, without the row.

        For a sink that writes only the ``LOAD DATA`` line: no ``str``, ``int`` or ``float`` is
        made for a column (about 40 objects a row), except the first column's (the server's
        uuid, which the caller checks against the message key). Whatever ``__call__`` refuses
        this refuses: a string that is not UTF-8 is found by ``_utf8``, which accepts exactly
        what CPython's decoder does.
        """
        try:
            return self._read(value, start, partition, offset, False)
        except self.fallback:
            raise
        except Exception as exc:
            raise self.fallback(repr(exc)) from exc

    cdef int64_t _long(self, const unsigned char* buf, Py_ssize_t end, Py_ssize_t* p) except? -1:
        cdef uint64_t u = 0
        cdef uint64_t b = 0
        cdef int shift = 0
        cdef Py_ssize_t q = p[0]
        while True:
            if q >= end:
                raise self.fallback("body ends inside a varint")
            b = buf[q]
            q += 1
            u |= (b & 0x7F) << shift
            if b < 0x80:
                break
            shift += 7
            if shift > 63:
                raise self.fallback("varint longer than 10 bytes")
        if shift == 63 and b > 1:
            raise self.fallback("varint beyond 64 bits")
        p[0] = q
        return <int64_t>(u >> 1) ^ -<int64_t>(u & 1)

    cdef Py_ssize_t _length(
        self, const unsigned char* buf, Py_ssize_t end, Py_ssize_t* p
    ) except -1:
        cdef int64_t n = self._long(buf, end, p)
        if n < 0 or n > end - p[0]:
            raise self.fallback("string length outside the body")
        return <Py_ssize_t>n

    cdef object _container(self, int kind, const unsigned char* buf, Py_ssize_t end,
                           Py_ssize_t* p):
        cdef int64_t count, i
        cdef Py_ssize_t n
        cdef object key
        cdef dict mapping
        cdef list items
        if kind == MAP:
            mapping = {}
        else:
            items = []
        while True:
            count = self._long(buf, end, p)
            if count == 0:
                break
            if count < 0:
                raise self.fallback("negative block count")
            for i in range(count):
                if kind == MAP:
                    n = self._length(buf, end, p)
                    key = PyUnicode_DecodeUTF8(<const char*>buf + p[0], n, NULL)
                    p[0] += n
                n = self._length(buf, end, p)
                if kind == MAP:
                    mapping[key] = PyUnicode_DecodeUTF8(<const char*>buf + p[0], n, NULL)
                else:
                    items.append(PyUnicode_DecodeUTF8(<const char*>buf + p[0], n, NULL))
                p[0] += n
        return mapping if kind == MAP else items

    cdef tuple _read(
        self, bytes value, Py_ssize_t start, object partition, object offset, bint make_row
    ):
        cdef const unsigned char* buf = <const unsigned char*>PyBytes_AS_STRING(value)
        cdef Py_ssize_t end = PyBytes_GET_SIZE(value)
        cdef Py_ssize_t p = start
        cdef Py_ssize_t n, size, at
        cdef int i, kind, source
        cdef int64_t ms = 0
        cdef int64_t number
        cdef double d
        cdef bytes encoded
        cdef object v
        cdef char* text
        cdef char* out
        # Per field: where its text is (a string's bytes in the body, or a JSON encoding).
        cdef Py_ssize_t spans[MAX_FIELDS]
        cdef Py_ssize_t lengths[MAX_FIELDS]
        cdef int64_t longs[MAX_FIELDS]
        cdef double doubles[MAX_FIELDS]
        cdef bint null[MAX_FIELDS]
        cdef list values = [None] * self.nfields
        cdef list json = [None] * self.nfields
        cdef int server = self.sources[0]  # the first column's field (the server's uuid)
        cdef list row
        if p < 0 or p > end:
            raise self.fallback("start outside the value")
        size = 0
        for i in range(self.nfields):
            null[i] = False
            if self.nullable[i]:
                if p >= end:
                    raise self.fallback("body ends before a union")
                if buf[p] == 0:
                    p += 1
                    null[i] = True
                    size += 2
                    continue
                if buf[p] != 2:
                    raise self.fallback("union branch")
                p += 1
            kind = self.kinds[i]
            if kind == STRING:
                n = self._length(buf, end, &p)
                if make_row or i == server:
                    values[i] = PyUnicode_DecodeUTF8(<const char*>buf + p, n, NULL)
                elif not _utf8(buf + p, n):
                    raise self.fallback("a string that is not UTF-8")  # as the decoder refuses
                spans[i] = p
                lengths[i] = n
                size += 2 * n
                p += n
            elif kind == LONG:
                longs[i] = self._long(buf, end, &p)
                if i == self.ts_field:
                    ms = longs[i]
                    continue
                if make_row or i == self.id_field or i == server:
                    values[i] = longs[i]
                size += 21
            elif kind == DOUBLE:
                if end - p < 8:
                    raise self.fallback("body ends inside a double")
                memcpy(&doubles[i], buf + p, 8)  # little-endian, as Avro (x86-64, aarch64)
                p += 8
                if make_row or i == server:
                    values[i] = doubles[i]
                size += 32
            else:
                v = self._container(kind, buf, end, &p)
                encoded = self.dumps(v)
                json[i] = encoded
                lengths[i] = PyBytes_GET_SIZE(encoded)
                if make_row or i == server:
                    values[i] = PyUnicode_DecodeUTF8(PyBytes_AS_STRING(encoded), lengths[i], NULL)
                size += 2 * lengths[i]
        if ms % 1000 or not (self.min_ms <= ms <= self.max_ms):
            raise self.fallback("a timestamp the reference path refuses")
        ts, s_ts = self.timestamp(ms)
        ident = self.identity(ts, values[self.id_field])
        cdef bytes ts_text = s_ts.encode()
        cdef bytes partition_text = str(partition).encode()
        cdef bytes offset_text = str(offset).encode()
        size += (
            self.ncols + 1 + PyBytes_GET_SIZE(ts_text) + PyBytes_GET_SIZE(partition_text)
            + PyBytes_GET_SIZE(offset_text)
        )
        row = [None] * self.ncols if make_row else None
        out = <char*>PyMem_Malloc(size)
        if out == NULL:
            raise MemoryError()
        try:
            at = 0
            for i in range(self.ncols):
                if i:
                    out[at] = 9
                    at += 1
                source = self.sources[i]
                if source == PARTITION:
                    if make_row:
                        row[i] = partition
                    at += _copy(out + at, partition_text)
                    continue
                if source == OFFSET:
                    if make_row:
                        row[i] = offset
                    at += _copy(out + at, offset_text)
                    continue
                if source == TIMESTAMP:
                    if make_row:
                        row[i] = ts
                    at += _copy(out + at, ts_text)
                    continue
                if make_row:
                    row[i] = values[source]
                if null[source]:
                    out[at] = 92
                    out[at + 1] = 78  # \N
                    at += 2
                    continue
                kind = self.kinds[source]
                if kind == STRING:
                    at += _put(out + at, <const char*>buf + spans[source], lengths[source])
                elif kind == LONG:
                    at += snprintf(out + at, 21, "%lld", <long long>longs[source])
                elif kind == DOUBLE:
                    text = PyOS_double_to_string(doubles[source], c"r", 0, Py_DTSF_ADD_DOT_0, NULL)
                    n = strlen(text)
                    memcpy(out + at, text, n)
                    at += n
                    PyMem_Free(text)
                else:
                    encoded = json[source]
                    at += _put(out + at, PyBytes_AS_STRING(encoded), lengths[source])
            out[at] = 10
            at += 1
            if make_row:
                return ident, tuple(row), PyBytes_FromStringAndSize(out, at)
            return ident, values[server] if server >= 0 else None, PyBytes_FromStringAndSize(out, at)
        finally:
            PyMem_Free(out)

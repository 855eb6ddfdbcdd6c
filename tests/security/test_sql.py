"""SQL is never built from unchecked input, and the archiver's grants are the least it needs.

Every f-string of the pipeline's packages that looks like SQL is parsed (``ast``), and each
value put into it must be visibly safe: an identifier passed through ``auditstream.sqlident``
(``ident``, ``rotated_table``), an ``int(...)``, an UPPER_CASE constant, a join of constants,
or a local variable assigned from one of those. Values go through placeholders (``%s``).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import sql

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("auditstream", "producer", "consumer", "schemas", "ops")
SQL = re.compile(
    r"\b(SELECT|INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|RENAME|TRUNCATE|GRANT|SHOW|FROM|INTO|"
    r"TABLE|WHERE|LIMIT|SET SESSION)\b"
)
SAFE_CALLS = {"ident", "rotated_table", "int", "len", "quote_ident"}


def _safe(node: ast.expr, safe_names: set[str]) -> bool:
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.Name):
        return node.id.isupper() or node.id in safe_names
    if isinstance(node, ast.Attribute):
        return node.attr.isupper()
    if isinstance(node, ast.Call):
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name in SAFE_CALLS:
            return True
        if name == "join" and isinstance(func, ast.Attribute):  # ", ".join(CONSTANTS)
            return isinstance(func.value, ast.Constant) and all(
                _safe_iterable(a, safe_names) for a in node.args
            )
        return False
    if isinstance(node, ast.List | ast.Tuple):  # ["(%s, %s)"] * len(rows): placeholders only
        return all(_safe(e, safe_names) for e in node.elts)
    if isinstance(node, ast.IfExp):
        return _safe(node.body, safe_names) and _safe(node.orelse, safe_names)
    if isinstance(node, ast.BinOp):
        return _safe(node.left, safe_names) and _safe(node.right, safe_names)
    if isinstance(node, ast.JoinedStr):
        return all(
            _safe(v.value, safe_names) for v in node.values if isinstance(v, ast.FormattedValue)
        )
    return False


def _safe_iterable(node: ast.expr, safe_names: set[str]) -> bool:
    if isinstance(node, ast.GeneratorExp | ast.ListComp):
        return _safe(node.elt, safe_names | _targets(node))
    if isinstance(node, ast.List | ast.Tuple):
        return all(_safe(e, safe_names) for e in node.elts)
    return _safe(node, safe_names)


def _targets(node: ast.GeneratorExp | ast.ListComp) -> set[str]:
    """Loop variables over constants (``for c in COLUMNS``) are constants too."""
    out: set[str] = set()
    for gen in node.generators:
        if isinstance(gen.target, ast.Name) and _safe(gen.iter, set()):
            out.add(gen.target.id)
    return out


def _safe_locals(func: ast.AST) -> set[str]:
    """Names assigned (only) from safe expressions inside ``func``, to a fixed point."""
    assigned: dict[str, list[ast.expr]] = {}
    for node in ast.walk(func):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    assigned.setdefault(target.id, []).append(node.value)
        elif isinstance(node, ast.AnnAssign | ast.AugAssign) and isinstance(node.target, ast.Name):
            if node.value is not None:
                assigned.setdefault(node.target.id, []).append(node.value)
        elif isinstance(node, ast.For) and isinstance(node.target, ast.Name):
            assigned.setdefault(node.target.id, []).append(node.iter)
    safe: set[str] = set()
    changed = True
    while changed:
        changed = False
        for name, values in assigned.items():
            if name not in safe and all(_safe_iterable(v, safe) for v in values):
                safe.add(name)
                changed = True
    return safe


def unsafe_sql() -> Iterator[str]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            scopes = [tree, *(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef))]
            seen: set[int] = set()
            for scope in reversed(scopes):  # innermost functions first
                safe = _safe_locals(scope) if scope is not tree else set()
                for node in ast.walk(scope):
                    if not isinstance(node, ast.JoinedStr) or id(node) in seen:
                        continue
                    seen.add(id(node))
                    text = "".join(str(v.value) for v in node.values if isinstance(v, ast.Constant))
                    if not SQL.search(text):
                        continue
                    for value in node.values:
                        if isinstance(value, ast.FormattedValue) and not _safe(value.value, safe):
                            rel = path.relative_to(ROOT)
                            yield f"{rel}: {{{ast.unparse(value.value)}}}"


#: Reviewed by hand: safe, but not in a way the scan can see (``file: {expression}``).
REVIEWED: dict[str, str] = {
    "ops/reconcile/index.py: {store}": "a STORES/MARKS constant; _queue refuses others",
    "ops/reconcile/index.py: {s}": "a STORES constant",
    "ops/reconcile/index.py: {mark}": "a MARKS constant",
    "ops/reconcile/index.py: {_columns()}": "built from the STORES/MARKS constants",
    "ops/reconcile/tables.py: {where}": "_range_clause: constant clauses, %s values",
    "ops/demo/corpus.py: {n}": "the query text of a generated audit event, never executed",
    "consumer/dump.py: {quoted}": "the caller passes sqlident.rotated_table(table)",
    "consumer/highwater.py: {_quoted(t)}": "rotated table names through sqlident",
    "consumer/insert.py: {names}": "AUDIT_COLUMNS/CONTROL_COLUMNS constants",
    "consumer/insert.py: {table}": "the constants audit_data / audit_control",
    "consumer/insert.py: {', '.join([marks] * len(rows))}": "placeholders only",
    "consumer/insert.py: {columns[0]}": "a column constant",
    "consumer/ledger.py: {assignments}": "column names from the ledger's own keyword arguments",
    "consumer/setup.py: {definition}": "from SHOW CREATE TABLE of our own DDL file",
    "consumer/setup.py: {table}": "the MIGRATED_TABLES constants",
    "consumer/restore.py: {dest}": "restore() passes sqlident.ident(into or table)",
}


def test_sql_identifiers_come_only_from_sqlident_or_constants() -> None:
    found = sorted(set(unsafe_sql()) - set(REVIEWED))
    assert found == [], "SQL built from values the scan cannot prove safe:\n" + "\n".join(found)


def test_the_scan_catches_an_unchecked_name() -> None:
    tree = ast.parse('def f(table):\n    cur.execute(f"SELECT * FROM {table}")\n')
    (func,) = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]
    (fstring,) = [n for n in ast.walk(func) if isinstance(n, ast.JoinedStr)]
    (value,) = [v for v in fstring.values if isinstance(v, ast.FormattedValue)]
    assert not _safe(value.value, _safe_locals(func))
    tree = ast.parse('def f(table):\n    q = ident(table)\n    cur.execute(f"SELECT * FROM {q}")\n')
    (func,) = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]
    fstring = next(n for n in ast.walk(func) if isinstance(n, ast.JoinedStr))
    value = next(v for v in fstring.values if isinstance(v, ast.FormattedValue))
    assert _safe(value.value, _safe_locals(func))


def test_repeated_placeholders_pass_and_repeated_names_do_not() -> None:
    def value_of(source: str) -> tuple[ast.expr, set[str]]:
        (func,) = [n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.FunctionDef)]
        fstring = next(n for n in ast.walk(func) if isinstance(n, ast.JoinedStr))
        value = next(v for v in fstring.values if isinstance(v, ast.FormattedValue))
        return value.value, _safe_locals(func)

    placeholders = """
def f(rows):
    cur.execute(f"INSERT INTO t VALUES {', '.join(['(%s)'] * len(rows))}")
"""
    names = """
def f(rows, name):
    cur.execute(f"SELECT {', '.join([name] * len(rows))} FROM t")
"""
    assert _safe(*value_of(placeholders))
    assert not _safe(*value_of(names))


def test_the_archiver_is_granted_only_what_it_needs() -> None:
    """``sql/source/grants.sql``: AUDIT_ADMIN, SELECT on the two filter tables, DML on its own
    bookmark table; never ALL, SUPER, GRANT OPTION, FILE or a wildcard table."""
    statements = [s.upper() for s in sql.statements("source/grants")]
    allowed = {
        "GRANT AUDIT_ADMIN ON *.* TO 'AUDITUSER'@'%'",
        "GRANT SELECT ON MYSQL.AUDIT_LOG_FILTER TO 'AUDITUSER'@'%'",
        "GRANT SELECT ON MYSQL.AUDIT_LOG_USER TO 'AUDITUSER'@'%'",
        "GRANT SELECT, INSERT, UPDATE ON AUDIT_ARCHIVE.AUDIT_CONFIG TO 'AUDITUSER'@'%'",
        "GRANT SYSTEM_VARIABLES_ADMIN ON *.* TO 'AUDITUSER'@'%'",  # Percona's buffer (optional)
    }
    assert statements, "no grants found"
    for statement in statements:
        text = " ".join(statement.split())
        assert text in allowed, f"unexpected grant: {text}"
        for word in ("ALL", "SUPER", "GRANT OPTION", "FILE", "DELETE", "DROP"):
            assert f" {word} " not in f" {text.split(' ON ')[0]} ", text

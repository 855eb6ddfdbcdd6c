from bench.measure import Figure
from bench.report import table


def test_table_prints_every_figure_with_its_ratios():
    text = table(
        [
            Figure("consumer x1", "rows/s", 61_234.5, "rows/s", baseline=6_000, limit=80_000),
            Figure("rotation", "pause", None, "", note="not measured yet (component not landed)"),
        ]
    )
    lines = text.splitlines()
    assert len(lines) == 4
    assert "| consumer x1 | rows/s | 61,234 rows/s | 6,000 | 10.2× | 80,000 | 77 % |" in lines[2]
    assert "not measured" in lines[3] and "component not landed" in lines[3]

"""The table catalog: one place names every table, with its partitioning and keys."""

from __future__ import annotations

import ast
import pickle
import re
from pathlib import Path

import pytest

from mktpipe import catalog
from mktpipe import schemas as S
from mktpipe.catalog import BRONZE, USER_DAILY, Table

ROOT = Path(__file__).resolve().parents[2]
TABLE_NAME = re.compile(r"^(bronze|silver|gold|quarantine)\.[a-z_]+$")


def test_a_table_is_its_name_and_carries_its_layout():
    assert USER_DAILY == "silver.user_daily" and isinstance(USER_DAILY, str)
    assert USER_DAILY.layer == "silver"
    assert USER_DAILY.partitions == [S.ACTIVITY_DATE]
    assert USER_DAILY.keys == (S.USER_ID, S.ACTIVITY_DATE)
    assert BRONZE["users"].partitions is None  # small sources are not partitioned
    assert {USER_DAILY: 1} == {"silver.user_daily": 1}  # manifests key tables by name


def test_a_table_survives_pickling_with_its_layout():  # Spark ships closures by pickle
    back = pickle.loads(pickle.dumps(BRONZE["events"]))
    assert type(back) is Table
    assert (back, back.partition_by, back.keys) == ("bronze.events", (S.EVENT_DATE,),
                                                    (S.EVENT_ID,))
    assert back.stats_columns == (S.TS,)
    assert back.table_properties == {"delta.dataSkippingStatsColumns": S.TS}
    assert USER_DAILY.stats_columns == ()  # the row count only
    assert USER_DAILY.table_properties == {"delta.dataSkippingNumIndexedCols": "0"}
    assert Table("silver.x").table_properties == {}  # Delta's defaults


@pytest.mark.parametrize("bad", ["user_daily", "silver.", ".x", "a.b.c"])
def test_a_table_name_must_be_layer_dot_name(bad):
    with pytest.raises(ValueError, match="layer.name"):
        Table(bad)


def test_lookup_by_name_and_unknown_names_are_refused():
    assert catalog.table("gold.user_features") is catalog.USER_FEATURES
    with pytest.raises(KeyError, match="not a mktpipe table"):
        catalog.table("gold.nope")


def test_bronze_layout_matches_the_bronze_schemas():
    for source, table in BRONZE.items():
        fields = set(S.BRONZE_SCHEMAS[source].fieldNames())
        assert set(table.keys) <= fields and set(table.partition_by) <= fields, source
        assert set(table.stats_columns or ()) <= fields - set(table.partition_by), source
        assert table.keys == S.NATURAL_KEYS[source]
    for table in catalog.QUARANTINE.values():
        assert set(table.keys) <= set(S.QUARANTINE_SCHEMA.fieldNames())


def test_every_table_has_keys_and_a_known_layer():
    names = [str(t) for t in catalog.ALL]
    assert len(names) == len(set(names))
    for table in catalog.ALL:
        assert table.layer in {"bronze", "silver", "gold", "quarantine"}, table
        assert table.keys, table


def _table_literals(path: Path, root: Path = ROOT) -> list[str]:
    """String constants (not docstrings) or f-string heads that spell ``layer.name``."""
    tree = ast.parse(path.read_text(), str(path))
    docstrings = {
        id(node.body[0].value) for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        and node.body and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and id(node) not in docstrings and TABLE_NAME.match(node.value):
            found.append(f"{path.relative_to(root)}:{node.lineno} {node.value!r}")
        elif isinstance(node, ast.JoinedStr) and node.values \
                and isinstance(node.values[0], ast.Constant) \
                and re.match(r"^(bronze|silver|gold|quarantine)\.", str(node.values[0].value)):
            found.append(f"{path.relative_to(root)}:{node.lineno} f-string")
    return found


def test_no_table_name_is_spelled_outside_the_catalog():
    sources = [p for folder in ("mktpipe", "jobs", "bench") for p in (ROOT / folder).rglob("*.py")]
    assert len(sources) > 50  # the walk really found the code
    found = [hit for p in sources if p.name != "catalog.py" or p.parent.name != "mktpipe"
             for hit in _table_literals(p)]
    assert found == [], "table names belong in mktpipe/catalog.py:\n" + "\n".join(found)


def test_the_literal_finder_finds_literals(tmp_path):  # the check above can fail
    probe = tmp_path / "probe.py"
    probe.write_text('"""gold.user_features in a docstring is prose."""\n'
                     'T = "gold.user_features"\nU = f"bronze.{1}"\n')
    hits = _table_literals(probe, tmp_path)
    assert [h.split()[-1] for h in hits] == ["'gold.user_features'", "f-string"]

"""The delivery log alone, on DuckDB: what a batch of outcomes writes."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import duckdb

from campaign_compiler.engines.duckdb import DuckDB
from campaign_compiler.engines.warehouse import Warehouse
from campaign_compiler.send.log import Delivery, DeliveryLog

MACRO = Path(__file__).resolve().parents[1] / "macros" / "system" / "_campaign_table_columns.sql"


def log_on(path: Path) -> DeliveryLog:
    columns = re.search(r"'campaign_deliveries': \"(.*?)\"", MACRO.read_text(), re.S).group(1)
    connection = duckdb.connect(str(path))
    connection.execute(f"create table campaign_deliveries ({columns})")
    return DeliveryLog(Warehouse(DuckDB(connection), "dev", "main"))


def delivery(key: str, status: str, address: str, attempts: int = 0, error: str | None = None) -> Delivery:
    sent_at = datetime(2026, 3, 2, 7) if status == "sent" else None
    return Delivery(
        "c", "a", "sms", "once", f"r-{key}", None, key, f"{key}.once", address, status, attempts, error, sent_at
    )


def test_outcomes_set_what_an_outcome_changes_and_never_a_sent_row(tmp_path):
    log = log_on(tmp_path / "log.duckdb")
    log.record([delivery("a", "pending", "+331"), delivery("b", "pending", "+332")], set())
    log.record([delivery("b", "sent", "+332", 1)], {"b"}, outcomes=True)
    log.record(
        [delivery("a", "failed", "+339", 3, "refused"), delivery("b", "failed", "+339", 2, "late")],
        {"a", "b"},
        outcomes=True,
    )
    rows = log.warehouse.query(
        "select message_key, status, attempts, error, address, message_id, sent_at is not null "
        "from campaign_deliveries order by message_key"
    )
    assert rows == [
        ("a", "failed", 3, "refused", "+331", "a.once", False),  # the address its intent recorded
        ("b", "sent", 1, None, "+332", "b.once", True),  # sent: never written again
    ]

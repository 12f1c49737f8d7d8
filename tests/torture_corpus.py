"""The IETF torture corpus (RFC 4475, RFC 5118) in ../shared/sip-torture/, for the tests.

Never skipped: without the corpus, tests that read it would pass vacuously, so a
missing corpus is an error that says where it was looked for.
"""

from __future__ import annotations

import csv
from pathlib import Path

TORTURE = Path(__file__).resolve().parents[1].parent / "shared" / "sip-torture"


def index_rows() -> list[dict[str, str]]:
    """The rows of INDEX.tsv: file, rfc, section, class, verdict, preferred_udp, ..."""
    index = TORTURE / "INDEX.tsv"
    if not index.is_file():
        raise RuntimeError(
            f"SIP torture corpus missing: expected {index} (the shared/sip-torture folder "
            "beside the project root, holding the RFC 4475/5118 messages and INDEX.tsv)"
        )
    with index.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    missing = [row["file"] for row in rows if not (TORTURE / row["file"]).is_file()]
    if missing:
        raise RuntimeError(f"INDEX.tsv lists files that are not there: {missing}")
    return rows

"""The example notebook runs from top to bottom and shows what telediag found."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from .conftest import ROOT

NOTEBOOK = ROOT / "examples" / "walkthrough.ipynb"


def _texts(nb) -> list[str]:  # type: ignore[no-untyped-def]
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            if o.get("output_type") == "stream":
                out.append(str(o.get("text", "")))
            for value in o.get("data", {}).values():
                out.append(value if isinstance(value, str) else json.dumps(value))
    return out


def test_notebook_is_committed_without_outputs() -> None:
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


def test_notebook_runs_and_shows_root_causes() -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    import telediag

    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        kernel_name="python3",
        timeout=300,
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    # The kernel imports the same telediag as this test (a checkout need not be installed).
    package_root = str(Path(telediag.__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    client.execute(env=env)
    errors = [
        o for cell in nb.cells for o in cell.get("outputs", []) if o.get("output_type") == "error"
    ]
    assert errors == [], errors[0].get("evalue") if errors else ""
    texts = _texts(nb)
    labels = {r.root_cause for r in telediag.load_rules()}
    assert any(label in t for t in texts for label in labels)
    # The scan result and the investigation render as rich HTML, with the plots.
    htmls = [
        o["data"]["text/html"]
        for cell in nb.cells
        for o in cell.get("outputs", [])
        if "text/html" in o.get("data", {})
    ]
    assert any("Findings by root cause" in h for h in htmls)
    assert any("Dispute investigation" in h and "data:image/png;base64," in h for h in htmls)
    assert any("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))


def _synthetic_result(n: int):  # type: ignore[no-untyped-def]
    import pandas as pd

    from telediag.engine import RuleError
    from telediag.normalize import InputReport
    from telediag.scan import ScanResult

    t0 = pd.Timestamp("2008-06-12 01:00", tz="UTC")
    findings = pd.DataFrame(
        {
            "finding_id": [f"f{i:03d}" for i in range(n)],
            "rule_id": ["TD001" if i % 2 else "TD002" for i in range(n)],
            "root_cause": [
                "anti_theft_sms_forwarding" if i % 2 else "mail_polling" for i in range(n)
            ],
            "msisdn": [f"1380000{i:04d}" for i in range(n)],
            "first_seen": [t0 + pd.Timedelta(hours=i) for i in range(n)],
            "last_seen": [t0 + pd.Timedelta(hours=i + 1) for i in range(n)],
            "record_count": [30 + i for i in range(n)],
            "charge": [float(i) for i in range(n)],
            "confidence": [0.5 + i / (2 * n) for i in range(n)],
            "summary": [f"<script>alert({i})</script> & more" for i in range(n)],
        }
    )
    report = InputReport(
        files=["a<b>.csv"], rows_read=100, rows_used=97, set_aside={"no msisdn": 3}
    )
    return ScanResult(
        findings=findings,
        evidence=pd.DataFrame(columns=["finding_id", "record_id"]),
        report=report,
        errors=[RuleError("TD009", "ValueError: <bad>")],
        rules=[],
    )


def test_scan_result_html_accounts_ranks_and_escapes() -> None:
    from telediag.views.notebook import FINDINGS_SHOWN, scan_result_html

    result = _synthetic_result(25)
    out = result._repr_html_()
    assert out == scan_result_html(result)
    assert "<script>" not in out and "&lt;script&gt;alert(24)&lt;/script&gt; &amp; more" in out
    assert "ValueError: &lt;bad&gt;" in out
    assert "no msisdn" in out and ">97<" in out and ">3<" in out
    # Findings by root cause: counts and charge per label, then the total.
    assert "Findings by root cause" in out
    assert '<td>anti_theft_sms_forwarding</td><td class="num">12</td>' in out
    assert '<td>mail_polling</td><td class="num">13</td>' in out
    # The first 20 by confidence: the most confident (the last rows) are in, the rest not.
    rows = out.split("First 20 of 25 findings", 1)[1]
    assert rows.count("<tr>") == FINDINGS_SHOWN + 1  # header row and 20 findings
    assert "13800000024" in rows and "13800000004" not in rows
    assert "5 more in" in out

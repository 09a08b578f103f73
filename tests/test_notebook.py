"""The example notebook runs as committed: executed here with nbclient, in a temporary folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="the notebook test needs nbformat, nbclient and ipykernel")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "example_analysis.ipynb"


def _outputs(notebook) -> str:
    texts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            texts.append(output.get("text", ""))
            texts.extend(str(v) for k, v in output.get("data", {}).items() if k == "text/plain")
    return "\n".join(texts)


def test_committed_notebook_is_executed():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(cell.get("execution_count") for cell in code), "run the notebook and save its outputs"
    assert any(o.get("output_type") == "display_data" or "image/png" in o.get("data", {})
               for cell in code for o in cell.get("outputs", []))  # fmt: skip


def test_notebook_executes(tmp_path):
    copy = tmp_path / NOTEBOOK.name
    shutil.copy(NOTEBOOK, copy)
    notebook = nbformat.read(copy, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})  # fmt: skip
    client.execute()  # raises CellExecutionError on the first failing cell
    text = _outputs(notebook)
    assert "in Dravidian, qa>nli scores" in text  # a planted effect, in the verdicts the terminal prints
    assert "found" in text and "seeds_needed" in text
    assert (tmp_path / "robustness.pdf").stat().st_size > 0
    assert (tmp_path / "example.duckdb").exists()

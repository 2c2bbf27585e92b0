"""The notebooks as stored: each ``.ipynb`` has a percent-format ``.py`` twin with the same
cells, both clean (no outputs, no execution counts) and parameterized, and the twins lint.

Either side may be edited (JupyterLab, an editor); ``make notebooks-sync`` rewrites the other.
These tests fail when one side was edited and not synced, or a notebook was saved with outputs.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
NB_DIR = REPO / "notebooks"
NOTEBOOKS = sorted(p.stem for p in NB_DIR.glob("[0-9]*.ipynb"))
FORMATS = "ipynb,py:percent"
REQUIRED_PARAMETERS = {
    "config_path": "../configs/experiments/logreg_baseline.yaml",
    "symbol": None,
    "timeframe": None,
    "start": None,
    "end": None,
    "seed": 42,
    "smoke": False,
    "output_dir": "experiments/scratch",
    "store_root": None,
}


def cells(nb: nbformat.NotebookNode) -> list[tuple[str, str, list[str]]]:
    """What a pair must agree on: each cell's type, source and tags, in order."""
    return [(c.cell_type, c.source, list(c.metadata.get("tags", []))) for c in nb.cells]


def pair_problems(ipynb: Path, py: Path) -> list[str]:
    """How a notebook and its twin differ (empty when they are in step)."""
    if not ipynb.is_file() or not py.is_file():
        return [f"missing {p.name}" for p in (ipynb, py) if not p.is_file()]
    stored, twin = cells(nbformat.read(ipynb, as_version=4)), cells(jupytext.read(py))
    problems = [
        f"cell {i}: {a!r} in {ipynb.name} vs {b!r} in {py.name}"
        for i, (a, b) in enumerate(zip(stored, twin, strict=False))
        if a != b
    ]
    if len(stored) != len(twin):
        problems.append(f"{len(stored)} cells in {ipynb.name}, {len(twin)} in {py.name}")
    return problems


def stored_problems(nb: nbformat.NotebookNode) -> list[str]:
    """What must not be committed: outputs, execution counts, run metadata, no pairing."""
    problems = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and cell.outputs:
            problems.append(f"cell {i} has outputs")
        if cell.cell_type == "code" and cell.execution_count is not None:
            problems.append(f"cell {i} has an execution count")
        if {"papermill", "execution"} & set(cell.metadata):
            problems.append(f"cell {i} has run metadata")
    if nb.metadata.get("jupytext", {}).get("formats") != FORMATS:
        problems.append(f"not paired: metadata jupytext.formats is not {FORMATS!r}")
    if nb.metadata.get("kernelspec", {}).get("name") != "python3":
        problems.append("kernelspec is not python3")
    return problems


def parameters(nb: nbformat.NotebookNode) -> dict:
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell must be tagged 'parameters'"
    return {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in ast.parse(tagged[0].source).body
        if isinstance(node, ast.Assign)
    }


def test_every_notebook_has_a_twin_and_nothing_else_is_left():
    twins = sorted(p.stem for p in NB_DIR.glob("[0-9]*.py"))
    assert len(NOTEBOOKS) >= 5 and twins == NOTEBOOKS
    assert sorted(p.name for p in NB_DIR.glob("*.py")) == [f"{n}.py" for n in NOTEBOOKS]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_pair_is_in_step(name):
    assert pair_problems(NB_DIR / f"{name}.ipynb", NB_DIR / f"{name}.py") == []


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_stored_clean_paired_and_parameterized(name):
    nb = nbformat.read(NB_DIR / f"{name}.ipynb", as_version=4)
    nbformat.validate(nb)
    assert stored_problems(nb) == []
    params = parameters(nb)
    for key, value in REQUIRED_PARAMETERS.items():
        assert key in params and params[key] == value, f"{name}: parameter {key}"
    assert (NB_DIR / params["config_path"]).resolve().is_file()
    assert '# %% tags=["parameters"]' in (NB_DIR / f"{name}.py").read_text()


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_setup_is_one_library_call(name):
    code = [c.source for c in jupytext.read(NB_DIR / f"{name}.py").cells if c.cell_type == "code"]
    setup = [s for s in code if "notebook_setup(" in s]
    assert len(setup) == 1 and f'"{name}"' in setup[0]
    for repeated in ("seed_everything(", "logging.basicConfig", "pd.set_option", "tempfile."):
        assert not any(repeated in s for s in code), f"{name} does {repeated} itself"


def test_an_edit_on_one_side_only_is_caught(tmp_path):
    name = NOTEBOOKS[0]
    ipynb, py = tmp_path / f"{name}.ipynb", tmp_path / f"{name}.py"
    shutil.copy(NB_DIR / f"{name}.ipynb", ipynb)
    text = (NB_DIR / f"{name}.py").read_text()
    assert pair_problems(ipynb, py) == [f"missing {py.name}"]
    py.write_text(text.replace("seed = 42", "seed = 7", 1))
    assert len(pair_problems(ipynb, py)) == 1
    py.write_text(text.replace('# %% tags=["parameters"]', "# %%", 1))  # tag lost
    assert len(pair_problems(ipynb, py)) == 1
    py.write_text(text + "\n# %%\nprint('one more cell')\n")
    n = len(nbformat.read(ipynb, as_version=4).cells)
    assert pair_problems(ipynb, py) == [f"{n} cells in {ipynb.name}, {n + 1} in {py.name}"]


def test_a_notebook_saved_with_outputs_is_caught():
    nb = nbformat.read(NB_DIR / f"{NOTEBOOKS[0]}.ipynb", as_version=4)
    code = next(c for c in nb.cells if c.cell_type == "code")
    code.outputs = [nbformat.v4.new_output("stream", name="stdout", text="hello\n")]
    code.execution_count = 3
    code.metadata["papermill"] = {"duration": 1.0}
    del nb.metadata["jupytext"]
    assert len(stored_problems(nb)) == 4


def test_twins_lint_and_are_formatted():
    ruff = Path(sys.executable).with_name("ruff")
    if not ruff.is_file():
        ruff = Path(shutil.which("ruff") or "ruff")
    for args in (["check", "--no-cache"], ["format", "--check", "--no-cache"]):
        done = subprocess.run(
            [str(ruff), *args, str(NB_DIR)], capture_output=True, text=True, cwd=REPO
        )
        assert done.returncode == 0, done.stdout + done.stderr

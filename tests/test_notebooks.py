"""The Colab notebooks hold no logic, and their code cells really run the pipeline (tiny preset).

Static check: every code cell only installs (%pip), mounts Drive / downloads (Colab-only cells),
imports, assigns settings and configs, calls the stage modules or displays results: no defs,
loops, branches or comprehensions. Execution: the cells run in order, one namespace per notebook
as in a fresh Colab session, with install / Colab-only / network cells skipped and WORK_DIR,
the preset and the hold-out share set through environment variables.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import shutil
from pathlib import Path

import pytest

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "model_creation" / "notebooks"
NOTEBOOKS = ["01_scrape.ipynb", "02_train.ipynb", "03_export_quantize.ipynb", "04_evaluate.ipynb"]
CORPUS = Path(__file__).parent / "fixtures" / "corpus" / "ml-abstracts-sample.jsonl"
SKIPPED_TAGS = {"install", "colab", "network"}
ALLOWED_MODULES = ("model_creation", "os", "json", "dataclasses", "shutil", "torch", "IPython.display", "google.colab")
FORBIDDEN_NODES = (
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.ClassDef,
    ast.Lambda,
    ast.For,
    ast.AsyncFor,
    ast.While,
    ast.If,
    ast.IfExp,
    ast.With,
    ast.Try,
    ast.ListComp,
    ast.SetComp,
    ast.DictComp,
    ast.GeneratorExp,
    ast.Global,
)


def code_cells(name: str) -> list[tuple[str, set[str]]]:
    book = json.loads((NOTEBOOKS_DIR / name).read_text())
    return [
        ("".join(c["source"]), set(c["metadata"].get("tags", []))) for c in book["cells"] if c["cell_type"] == "code"
    ]


def test_every_notebook_is_present():
    assert sorted(p.name for p in NOTEBOOKS_DIR.glob("*.ipynb")) == NOTEBOOKS


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_cells_hold_no_logic(name):
    cells = code_cells(name)
    installs = [source for source, tags in cells if "install" in tags]
    assert installs and all(
        line.startswith("%pip install") for source in installs for line in source.splitlines() if line.strip()
    )
    assert any("drive.mount" in source for source, tags in cells if "colab" in tags)
    for source, tags in cells:
        if "install" in tags:
            continue
        tree = ast.parse(source)  # also rejects shell escapes and magics outside install cells
        for node in ast.walk(tree):
            assert not isinstance(node, FORBIDDEN_NODES), f"{name}: logic in a cell: {ast.unparse(node)[:80]}"
            if isinstance(node, ast.Import | ast.ImportFrom):
                modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
                assert all(m.startswith(ALLOWED_MODULES) for m in modules), f"{name}: imports {modules}"
        for statement in tree.body:
            assert isinstance(statement, ast.Import | ast.ImportFrom | ast.Assign | ast.Expr), ast.unparse(statement)
    calls = " ".join(source for source, _ in cells)
    assert ".run(" in calls, f"{name} calls no stage"
    assert 'os.environ.get("AUTOCOMPLETE_WORK_DIR"' in calls


def test_static_check_catches_logic():
    # The checker itself must be able to fail: a loop in a cell is found.
    tree = ast.parse("for x in range(3):\n    print(x)")
    assert any(isinstance(n, FORBIDDEN_NODES) for n in ast.walk(tree))


def run_notebook(name: str, stop_before_tag: str | None = None) -> dict:
    """Run the notebook's cells in one namespace; what they print is kept under "__stdout__"."""
    namespace: dict = {"__name__": "__main__"}
    printed = io.StringIO()
    for source, tags in code_cells(name):
        if stop_before_tag in tags:
            break
        if tags & SKIPPED_TAGS:
            continue
        with contextlib.redirect_stdout(printed):  # display() of images prints their repr here
            exec(compile(source, f"{name}", "exec"), namespace)  # executing our own notebooks
    namespace["__stdout__"] = printed.getvalue()
    return namespace


def test_notebooks_run_the_pipeline_on_the_tiny_preset(tmp_path, monkeypatch):
    work = tmp_path / "work"
    # What option A's scrape cell (skipped: no network in tests) would have left behind.
    (work / "scrape").mkdir(parents=True)
    shutil.copyfile(CORPUS, work / "scrape" / "abstracts.jsonl")
    monkeypatch.setenv("AUTOCOMPLETE_WORK_DIR", str(work))
    monkeypatch.setenv("AUTOCOMPLETE_PRESET", "tiny")
    monkeypatch.setenv("AUTOCOMPLETE_HOLDOUT_FRACTION", "0.1")

    scraped = run_notebook("01_scrape.ipynb")
    assert scraped["dataset_dir"] == work / "dataset" and (work / "dataset" / "packed").is_dir()
    trained = run_notebook("02_train.ipynb")
    assert trained["config"].n_layer == 2 and (work / "train" / "loss_curve.png").exists()
    exported = run_notebook("03_export_quantize.ipynb")
    assert json.loads((exported["quantize_dir"] / "metrics.json").read_text())["quantization"] == "int8"
    evaluated = run_notebook("04_evaluate.ipynb")
    result = json.loads((evaluated["model_dir"] / "eval.json").read_text())
    assert set(result["perplexity"]) == {"pytorch", "onnx_fp32", "onnx_int8"}
    assert Path(evaluated["archive"]).is_file() and (evaluated["model_dir"] / "README.md").exists()


@pytest.fixture
def saved_gpt2(tmp_path):
    """A small pretrained GPT-2 in a local folder, standing in for the Hub's distilgpt2."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    path = tmp_path / "distilgpt2"
    GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, n_positions=64)).save_pretrained(path)
    return path


def test_train_notebook_falls_back_to_scratch_without_the_hub(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # as on a machine that cannot reach the Hub
    monkeypatch.setenv("AUTOCOMPLETE_WORK_DIR", str(tmp_path))
    monkeypatch.delenv("AUTOCOMPLETE_PRESET", raising=False)
    monkeypatch.delenv("AUTOCOMPLETE_BASE", raising=False)
    namespace = run_notebook("02_train.ipynb", stop_before_tag="train")
    assert namespace["PRESET"] == "distilgpt2-arxiv" and namespace["config"].init == "scratch"
    assert "Could not load the pretrained model 'distilgpt2'" in namespace["__stdout__"]
    assert "Falling back to the from-scratch preset 'distilgpt2-arxiv'" in namespace["__stdout__"]


def test_train_notebook_fine_tunes_when_the_base_loads(tmp_path, monkeypatch, saved_gpt2):
    monkeypatch.setenv("AUTOCOMPLETE_WORK_DIR", str(tmp_path))
    monkeypatch.setenv("AUTOCOMPLETE_BASE", str(saved_gpt2))
    monkeypatch.delenv("AUTOCOMPLETE_PRESET", raising=False)
    namespace = run_notebook("02_train.ipynb", stop_before_tag="train")
    assert namespace["PRESET"] == "distilgpt2-finetune"
    assert (namespace["config"].init, namespace["config"].base) == ("pretrained", str(saved_gpt2))
    assert "Fine-tuning the pretrained model" in namespace["__stdout__"]

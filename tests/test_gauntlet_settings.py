"""The Gauntlet's few-shot settings: yamls/eval/gauntlet-paper.yaml against the per-task evidence
table in docs/gauntlet.md, yamls/eval/gauntlet-v0.1.yaml against that table's v0.1 column and (with
GAUNTLET_DATA_DIR set) against llm-foundry's own v0.1/v0.2 files, and both through our loader."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from eval.gauntlet import DEFAULT_GAUNTLET, load_gauntlet

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "gauntlet.md"
PAPER = DEFAULT_GAUNTLET
V01 = REPO / "yamls" / "eval" / "gauntlet-v0.1.yaml"
TABLE_HEADING = "## Few-shot settings, per task (evidence)"
COLUMNS = ["task", "category", "paper few-shot(s)", "v0.1", "v0.2", "evidence", "confidence"]
PAPER_CATEGORIES = ["world_knowledge", "commonsense_reasoning", "reading_comprehension",
                    "language_understanding", "symbolic_problem_solving"]


@dataclass(frozen=True)
class Shots:
    """A few-shot setting: the count in the Gauntlet average and every count the task runs."""

    average: int
    runs: tuple[int, ...]


@dataclass(frozen=True)
class Row:
    task: str
    category: str
    paper: Shots
    v01: Shots | None
    v02: Shots | None
    evidence: str
    confidence: str


def parse_shots(cell: str) -> Shots | None:
    """'3' -> 3 (runs 3); '3 (runs 3, 25)' -> 3 (runs 3, 25); '5, 10' -> 5 (runs 5, 10); '—' -> None."""
    cell = cell.strip()
    if cell in ("—", "-", ""):
        return None
    m = re.fullmatch(r"(\d+(?:\s*,\s*\d+)*)(?:\s*\(runs ([\d,\s]+)\))?", cell)
    if not m:
        raise ValueError(f"unreadable few-shot cell {cell!r}")
    counts = tuple(int(x) for x in m.group(1).split(","))
    runs = tuple(int(x) for x in m.group(2).split(",")) if m.group(2) else counts
    if runs[0] != counts[0]:
        raise ValueError(f"{cell!r}: the first count run must be the averaged one")
    return Shots(counts[0], runs)


def evidence_table(text: str | None = None) -> dict[str, Row]:
    """The per-task table under TABLE_HEADING in docs/gauntlet.md, by task."""
    text = DOC.read_text(encoding="utf-8") if text is None else text
    section = text.split(TABLE_HEADING, 1)[1].split("\n## ", 1)[0]
    lines = [ln.strip() for ln in section.splitlines() if ln.strip().startswith("|")]
    assert [c.strip() for c in lines[0].strip("|").split("|")] == COLUMNS, lines[0]
    rows: dict[str, Row] = {}
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        task = cells[0].strip("`")
        assert task not in rows, f"{task} listed twice"
        paper = parse_shots(cells[2])
        assert paper is not None, f"{task}: no paper few-shot count"
        rows[task] = Row(task, cells[1], paper, parse_shots(cells[3]), parse_shots(cells[4]), cells[5], cells[6])
    return rows


def read_yaml(path: Path) -> dict:
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def shot_settings(cfg: dict) -> dict[str, tuple[str, list[int], int]]:
    """task -> (category, its icl_tasks num_fewshot list, its eval_gauntlet benchmark count)."""
    icl = {t["label"]: list(t["num_fewshot"]) for t in cfg["icl_tasks"]}
    return {b["name"]: (c["name"], icl.get(b["name"], []), int(b["num_fewshot"]))
            for c in cfg["eval_gauntlet"]["categories"] for b in c["benchmarks"]}


def mismatches(cfg: dict, table: dict[str, Row], column: str) -> list[str]:
    """Every way ``cfg`` disagrees with one few-shot column of the table (empty: agrees)."""
    settings, errors = shot_settings(cfg), []
    for task, row in table.items():
        want = getattr(row, column)
        if want is None:
            continue
        if task not in settings:
            errors.append(f"{task}: not in the YAML")
            continue
        category, runs, average = settings[task]
        if category != row.category:
            errors.append(f"{task}: category {category}, table says {row.category}")
        if average != want.average:
            errors.append(f"{task}: eval_gauntlet num_fewshot {average}, table says {want.average}")
        if runs != [want.average]:  # we run only the count that enters the average
            errors.append(f"{task}: icl_tasks num_fewshot {runs}, table says [{want.average}]")
    return errors


@pytest.fixture(scope="module")
def reference_yamls() -> Path:
    """llm-foundry's Gauntlet YAMLs, beside the data folder: skip without them, or fail when
    REQUIRE_REFERENCE_DATA=1."""
    root = os.environ.get("GAUNTLET_DATA_DIR")
    path = Path(root).parent / "reference_yamls" if root else None
    if path is None or not (path / "tasks_v0.1.yaml").is_file():
        why = f"llm-foundry's reference YAMLs not found (GAUNTLET_DATA_DIR={root!r})"
        if os.environ.get("REQUIRE_REFERENCE_DATA") == "1":
            pytest.fail(why + " but REQUIRE_REFERENCE_DATA=1")
        pytest.skip(why)
    return path


def reference(folder: Path, version: str) -> tuple[dict[str, dict], dict]:
    """llm-foundry's icl_tasks by label and eval_gauntlet block of one Gauntlet version."""
    tasks = {t["label"]: t for t in read_yaml(folder / f"tasks_v{version}.yaml")["icl_tasks"]}
    return tasks, read_yaml(folder / f"eval_gauntlet_v{version}.yaml")["eval_gauntlet"]


def baselines(gauntlet: dict) -> dict[str, float]:
    return {b["name"]: float(b["random_baseline"]) for c in gauntlet["categories"] for b in c["benchmarks"]}


# --- the table and the paper's Gauntlet --------------------------------------------------------

def test_table_lists_every_task_of_the_paper_gauntlet():
    table, g = evidence_table(), load_gauntlet(PAPER)
    assert len(table) == 31
    assert sorted(table) == sorted(t.label for t in g.tasks)
    assert {t.label: t.category for t in g.tasks} == {r.task: r.category for r in table.values()}


def test_paper_yaml_few_shot_counts_match_the_table():
    """Every count in gauntlet-paper.yaml (icl_tasks and eval_gauntlet) equals the table's."""
    table = evidence_table()
    assert mismatches(read_yaml(PAPER), table, "paper") == []
    for task in load_gauntlet(PAPER).tasks:  # and the loader hands llm-foundry those counts
        assert task.num_fewshot == table[task.label].paper.average
        assert task.config["num_fewshot"] == [task.num_fewshot]


def test_one_changed_count_is_caught():
    """Changing a single few-shot number, in either place of the YAML, is a mismatch."""
    table = evidence_table()
    for where in ("icl_tasks", "eval_gauntlet"):
        cfg = read_yaml(PAPER)
        if where == "icl_tasks":
            entry = next(t for t in cfg["icl_tasks"] if t["label"] == "mmlu")
            entry["num_fewshot"] = [10]
        else:
            entry = next(b for c in cfg["eval_gauntlet"]["categories"] for b in c["benchmarks"] if b["name"] == "mmlu")
            entry["num_fewshot"] = 10
        assert len(mismatches(cfg, table, "paper")) == 1, where


def test_table_follows_its_rule():
    """The paper's count is v0.2's where v0.2 has the task, else v0.1's; the evidence and
    confidence columns say which case a row is."""
    for row in evidence_table().values():
        assert row.v01 is not None or row.v02 is not None, row.task
        source = row.v02 or row.v01
        assert row.paper == Shots(source.average, (source.average,)), row.task
        if row.v02 is None:
            assert row.evidence == "v0.1 only" and row.confidence == "low", row.task
        elif row.v01 is not None and row.v01.average == row.v02.average:
            assert row.evidence.startswith("same") and row.confidence == "high", row.task
        else:
            assert row.evidence.startswith(("cat", "csv")) and row.confidence in ("high", "medium"), row.task
    assert evidence_table()["mmlu"].paper.average == 5  # the CSV's mmlu_5_shot_avg column


def test_v01_yaml_matches_the_tables_v01_column():
    assert mismatches(read_yaml(V01), evidence_table(), "v01") == []


def test_both_yamls_load_with_the_papers_categories():
    paper, v01 = load_gauntlet(PAPER), load_gauntlet(V01)
    assert paper.categories == PAPER_CATEGORIES and len(paper.tasks) == 31
    assert set(PAPER_CATEGORIES) <= set(v01.categories) and len(v01.tasks) == 49
    for path, g in ((PAPER, paper), (V01, v01)):
        assert sorted(g.averages["core_average"]) == sorted(PAPER_CATEGORIES)
        assert g.subtract_random_baseline and g.rescale_accuracy
        for task, (_, runs, average) in shot_settings(read_yaml(path)).items():
            assert runs == [average], f"{path.name}: {task} runs {runs}, averages {average}-shot"
        assert not any(t.config["dataset_uri"].startswith(("/", "eval/")) for t in g.tasks)
    v01_by = {t.label: t for t in v01.tasks}
    for task in paper.tasks:  # v0.1 has every paper task, in the same category, with the same ICL type
        assert v01_by[task.label].category == task.category
        assert v01_by[task.label].icl_type == task.icl_type
        assert v01_by[task.label].random_baseline == task.random_baseline


# --- against llm-foundry's own files (GAUNTLET_DATA_DIR) ---------------------------------------

def test_table_v01_and_v02_columns_are_llmfoundrys(reference_yamls):
    table = evidence_table()
    for version, column in (("0.1", "v01"), ("0.2", "v02")):
        tasks, gauntlet = reference(reference_yamls, version)
        averaged = {b["name"]: int(b["num_fewshot"]) for c in gauntlet["categories"] for b in c["benchmarks"]}
        for row in table.values():
            shots = getattr(row, column)
            if shots is None:
                assert row.task not in averaged, f"{row.task} is in v{version}"
                continue
            assert shots.average == averaged[row.task], (version, row.task)
            assert list(shots.runs) == list(tasks[row.task]["num_fewshot"]), (version, row.task)


def test_v01_yaml_is_llmfoundrys_v01(reference_yamls):
    """Task by task and setting by setting, gauntlet-v0.1.yaml is tasks_v0.1 + eval_gauntlet_v0.1."""
    tasks, gauntlet = reference(reference_yamls, "0.1")
    ours = read_yaml(V01)
    ours_tasks = {t["label"]: t for t in ours["icl_tasks"]}
    categories = [(c["name"], [b["name"] for b in c["benchmarks"]]) for c in gauntlet["categories"]]
    assert [(c["name"], [b["name"] for b in c["benchmarks"]]) for c in ours["eval_gauntlet"]["categories"]] == categories
    assert sorted(ours_tasks) == sorted(name for _, names in categories for name in names)
    for label, mine in ours_tasks.items():
        theirs = dict(tasks[label], dataset_uri=tasks[label]["dataset_uri"].removeprefix("eval/local_data/"))
        assert mine == theirs, label
    assert shot_settings(ours) == shot_settings({"icl_tasks": list(tasks.values()), "eval_gauntlet": gauntlet})
    assert baselines(ours["eval_gauntlet"]) == baselines(gauntlet)
    for key in ("weighting", "subtract_random_baseline", "rescale_accuracy", "averages"):
        assert ours["eval_gauntlet"][key] == gauntlet[key], key


def test_paper_yaml_settings_are_v02s_else_v01s(reference_yamls):
    """Apart from the few-shot count (the table's), each paper task's ICL settings and random
    baseline are v0.2's where v0.2 has the task, else v0.1's."""
    v01_tasks, v01 = reference(reference_yamls, "0.1")
    v02_tasks, v02 = reference(reference_yamls, "0.2")
    ours = read_yaml(PAPER)
    ours_baselines = baselines(ours["eval_gauntlet"])
    for mine in ours["icl_tasks"]:
        label = mine["label"]
        tasks, gauntlet = (v02_tasks, v02) if label in v02_tasks else (v01_tasks, v01)
        theirs = tasks[label]
        assert mine["dataset_uri"] == theirs["dataset_uri"].removeprefix("eval/local_data/"), label
        drop = ("num_fewshot", "dataset_uri")
        assert {k: v for k, v in mine.items() if k not in drop} == {k: v for k, v in theirs.items() if k not in drop}, label
        assert ours_baselines[label] == baselines(gauntlet)[label], label

"""The Gauntlet's few-shot settings: yamls/eval/gauntlet-paper.yaml against the per-task evidence
table in docs/gauntlet.md, yamls/eval/gauntlet-v0.1.yaml against that table's v0.1 column and (with
GAUNTLET_DATA_DIR set) against llm-foundry's own v0.1/v0.2 files, and both through our loader; and a
typed table (TYPED: each paper task's category, ICL type, random baseline and few-shot count) that the
loaded paper Gauntlet, the docs table and llm-foundry's files must all agree with."""

from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal, get_args

import pytest
import yaml

from eval.averages import category_report
from eval.gauntlet import DEFAULT_GAUNTLET, Gauntlet, Task, load_gauntlet

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


# --- the typed table: every paper task's category, ICL type, random baseline and few-shot count --

Category = Literal["world_knowledge", "commonsense_reasoning", "reading_comprehension",
                   "language_understanding", "symbolic_problem_solving"]
IclType = Literal["multiple_choice", "schema", "language_modeling", "generation_task_with_answers"]
Source = Literal["v0.2", "v0.1"]


@dataclass(frozen=True)
class Expected:
    """One paper task as llm-foundry's Gauntlet defines it: ``source`` is the version whose files
    the row was typed from (v0.2 where v0.2 has the task, else v0.1: docs/gauntlet.md)."""

    label: str
    category: Category
    icl_type: IclType
    random_baseline: float
    num_fewshot: int  # the count that enters the Gauntlet average, and the only one we run
    source: Source


MC, SCHEMA, LM, GEN = "multiple_choice", "schema", "language_modeling", "generation_task_with_answers"
WK, CR, RC = "world_knowledge", "commonsense_reasoning", "reading_comprehension"
LU, SPS = "language_understanding", "symbolic_problem_solving"

# Typed by hand from llm-foundry's tasks_v0.2.yaml (icl_task_type, first num_fewshot) and
# eval_gauntlet_v0.2.yaml (category, num_fewshot, random_baseline); math_qa and logi_qa from the
# v0.1 files. Never read back from yamls/eval/gauntlet-paper.yaml.
TYPED: tuple[Expected, ...] = (
    Expected("jeopardy", WK, LM, 0.0, 3, "v0.2"),
    Expected("mmlu", WK, MC, 0.25, 5, "v0.2"),
    Expected("bigbench_qa_wikidata", WK, LM, 0.0, 3, "v0.2"),
    Expected("arc_easy", WK, MC, 0.25, 3, "v0.2"),
    Expected("arc_challenge", WK, MC, 0.25, 3, "v0.2"),
    Expected("bigbench_strategy_qa", CR, MC, 0.5, 0, "v0.2"),
    Expected("bigbench_strange_stories", CR, MC, 0.5, 0, "v0.2"),
    Expected("copa", CR, MC, 0.5, 0, "v0.2"),
    Expected("piqa", CR, MC, 0.5, 0, "v0.2"),
    Expected("openbook_qa", CR, MC, 0.25, 10, "v0.2"),
    Expected("commonsense_qa", CR, MC, 0.25, 0, "v0.2"),
    Expected("siqa", CR, MC, 0.5, 3, "v0.2"),
    Expected("squad", RC, LM, 0.0, 3, "v0.2"),
    Expected("boolq", RC, MC, 0.5, 0, "v0.2"),
    Expected("coqa", RC, LM, 0.0, 0, "v0.2"),
    Expected("agi_eval_lsat_rc", RC, MC, 0.25, 5, "v0.2"),
    Expected("agi_eval_lsat_lr", RC, MC, 0.25, 5, "v0.2"),
    Expected("agi_eval_sat_en", RC, MC, 0.25, 5, "v0.2"),
    Expected("lambada_openai", LU, LM, 0.0, 0, "v0.2"),
    Expected("hellaswag", LU, MC, 0.25, 0, "v0.2"),
    Expected("winograd", LU, SCHEMA, 0.5, 3, "v0.2"),
    Expected("winogrande", LU, SCHEMA, 0.5, 5, "v0.2"),
    Expected("bigbench_elementary_math_qa", SPS, MC, 0.25, 1, "v0.2"),
    Expected("bigbench_dyck_languages", SPS, LM, 0.0, 5, "v0.2"),
    Expected("bigbench_operators", SPS, LM, 0.0, 3, "v0.2"),
    Expected("math_qa", SPS, MC, 0.25, 10, "v0.1"),
    Expected("logi_qa", SPS, MC, 0.25, 10, "v0.1"),
    Expected("gsm8k", SPS, GEN, 0.0, 8, "v0.2"),
    Expected("svamp", SPS, GEN, 0.0, 5, "v0.2"),
    Expected("agi_eval_sat_math", SPS, GEN, 0.0, 3, "v0.2"),
    Expected("agi_eval_lsat_ar", SPS, MC, 0.25, 5, "v0.2"),
)
EXPECTED: dict[str, Expected] = {e.label: e for e in TYPED}


def table_errors(g: Gauntlet) -> list[str]:
    """Every way a loaded Gauntlet differs from TYPED (empty: it has exactly these 31 tasks, in
    these categories, with these ICL types, baselines and few-shot counts)."""
    errors = []
    if g.categories != PAPER_CATEGORIES:
        errors.append(f"categories {g.categories}, table says {PAPER_CATEGORIES}")
    labels = [t.label for t in g.tasks]
    errors += [f"{label}: listed {labels.count(label)} times" for label in sorted(set(labels))
               if labels.count(label) > 1]
    errors += [f"{label}: not in the Gauntlet" for label in EXPECTED if label not in labels]
    errors += [f"{label}: not in the table" for label in sorted(set(labels) - set(EXPECTED))]
    for t in g.tasks:
        want = EXPECTED.get(t.label)
        if want is None:
            continue
        if t.category != want.category:
            errors.append(f"{t.label}: category {t.category}, table says {want.category}")
        if t.config.get("label") != t.label:
            errors.append(f"{t.label}: icl_tasks label {t.config.get('label')!r}")
        if t.config.get("icl_task_type") != want.icl_type:
            errors.append(f"{t.label}: icl_task_type {t.config.get('icl_task_type')}, table says {want.icl_type}")
        if type(t.random_baseline) is not float or t.random_baseline != want.random_baseline:
            errors.append(f"{t.label}: random_baseline {t.random_baseline!r}, table says {want.random_baseline}")
        if t.num_fewshot != want.num_fewshot:
            errors.append(f"{t.label}: eval_gauntlet num_fewshot {t.num_fewshot}, table says {want.num_fewshot}")
        if t.config.get("num_fewshot") != [want.num_fewshot]:
            errors.append(f"{t.label}: icl_tasks num_fewshot {t.config.get('num_fewshot')}, "
                          f"table says [{want.num_fewshot}]")
    return errors


def check_against_table(g: Gauntlet) -> None:
    """Raise AssertionError listing every difference between ``g`` and TYPED."""
    errors = table_errors(g)
    if errors:
        raise AssertionError(f"{g.path.name} differs from the typed table:\n" + "\n".join(errors))


def test_typed_table_is_well_formed():
    assert len(TYPED) == len(EXPECTED) == 31
    assert [e.category for e in TYPED] == sorted((e.category for e in TYPED), key=PAPER_CATEGORIES.index)
    assert list(get_args(Category)) == PAPER_CATEGORIES
    assert {e.label for e in TYPED if e.source == "v0.1"} == {"math_qa", "logi_qa"}
    for e in TYPED:
        assert e.category in get_args(Category) and e.icl_type in get_args(IclType), e
        assert e.source in get_args(Source) and type(e.num_fewshot) is int and e.num_fewshot >= 0, e
        assert type(e.random_baseline) is float and e.random_baseline in (0.0, 0.25, 0.5), e
        # no chance level for free-text answers; schema tasks pick one of two
        if e.icl_type in (LM, GEN):
            assert e.random_baseline == 0.0, e
        if e.icl_type == SCHEMA:
            assert e.random_baseline == 0.5, e


def test_paper_yaml_matches_the_typed_table():
    """(1) Through our loader, gauntlet-paper.yaml has exactly the typed table's 31 tasks, with its
    categories, ICL types, random baselines and few-shot counts."""
    g = load_gauntlet(PAPER)
    check_against_table(g)
    assert len(g.tasks) == 31


def test_typed_baselines_are_the_averages_zero_points():
    """The loaded baselines are what eval/averages.py subtracts: a task scoring its typed baseline
    rescales to 0, a perfect task to 1, in every category and in core_average."""
    g = load_gauntlet(PAPER)
    for score, want in ((lambda e: e.random_baseline, 0.0), (lambda e: 1.0, 1.0)):
        report = category_report(g, {e.label: score(e) for e in TYPED})
        for cat in PAPER_CATEGORIES:
            assert report["categories"][cat]["tasks"] == {e.label: want for e in TYPED if e.category == cat}
            assert report["categories"][cat]["average"] == want and not report["categories"][cat]["partial"]
        assert report["averages"]["core_average"]["average"] == want


def test_typed_table_agrees_with_the_docs_table():
    """(2) Category and paper few-shot count, task by task, equal docs/gauntlet.md's table; a row
    typed from v0.1 is one the docs have no v0.2 count for, and the count is that version's."""
    table = evidence_table()
    assert sorted(table) == sorted(EXPECTED)
    for e in TYPED:
        row = table[e.label]
        assert (row.category, row.paper.average) == (e.category, e.num_fewshot), e.label
        assert (row.v02 is None) == (e.source == "v0.1"), e.label
        source = row.v02 if e.source == "v0.2" else row.v01
        assert source.average == e.num_fewshot, e.label


def test_typed_table_is_llmfoundrys(reference_yamls):
    """(3) The 29 rows typed from v0.2 equal llm-foundry's v0.2 files (ICL type, random baseline,
    category, few-shot count), the 2 typed from v0.1 equal v0.1's, and v0.2 has no other paper task."""
    by_version = {}
    for version in ("0.2", "0.1"):
        tasks, gauntlet = reference(reference_yamls, version)
        bench = {b["name"]: (c["name"], int(b["num_fewshot"]), float(b["random_baseline"]))
                 for c in gauntlet["categories"] for b in c["benchmarks"]}
        by_version[f"v{version}"] = tasks, bench
    v02_tasks, v02_bench = by_version["v0.2"]
    typed_from_v02 = sorted(e.label for e in TYPED if e.source == "v0.2")
    assert len(typed_from_v02) == 29
    assert sorted(label for label in EXPECTED if label in v02_bench) == typed_from_v02
    assert sorted(label for label in EXPECTED if label in v02_tasks) == typed_from_v02
    for e in TYPED:
        tasks, bench = by_version[e.source]
        category, shots, baseline = bench[e.label]
        theirs = (category, tasks[e.label]["icl_task_type"], baseline, shots, tasks[e.label]["num_fewshot"][0])
        assert theirs == (e.category, e.icl_type, e.random_baseline, e.num_fewshot, e.num_fewshot), (e.source, e.label)
    # docs/gauntlet.md: v0.1 has all 31, in the same categories, with the same types and baselines
    v01_tasks, v01_bench = by_version["v0.1"]
    for e in TYPED:
        assert (v01_bench[e.label][0], v01_tasks[e.label]["icl_task_type"], v01_bench[e.label][2]) == \
            (e.category, e.icl_type, e.random_baseline), e.label


# --- (4) the checker catches any one wrong fact ------------------------------------------------

def _next(values: list, current):
    """The value after ``current`` in ``values`` (cyclic): a plausible, different setting."""
    return values[(values.index(current) + 1) % len(values)]


def _mutate(task: Task, fact: str) -> Task:
    """``task`` with one fact changed to another value that occurs in the Gauntlet."""
    counts = sorted({e.num_fewshot for e in TYPED})
    if fact == "num_fewshot":  # both places, consistently: only the table can tell
        n = _next(counts, task.num_fewshot)
        return replace(task, num_fewshot=n, config={**task.config, "num_fewshot": [n]})
    if fact == "icl_tasks num_fewshot":  # what llm-foundry runs, the averaged count left alone
        return replace(task, config={**task.config, "num_fewshot": [_next(counts, task.num_fewshot)]})
    if fact == "icl_task_type":
        return replace(task, config={**task.config, "icl_task_type": _next([MC, SCHEMA, LM, GEN], task.icl_type)})
    if fact == "random_baseline":
        return replace(task, random_baseline=_next([0.0, 0.25, 0.5], task.random_baseline))
    if fact == "category":
        return replace(task, category=_next(PAPER_CATEGORIES, task.category))
    raise ValueError(fact)


FACTS = ["num_fewshot", "icl_tasks num_fewshot", "icl_task_type", "random_baseline", "category"]


@pytest.mark.parametrize("fact", FACTS)
def test_checker_catches_every_single_wrong_fact(fact):
    """Each task in turn, one fact changed in a copy of the loaded Gauntlet: the checker raises,
    naming that task and that fact alone (5 facts x 31 tasks)."""
    loaded = load_gauntlet(PAPER)
    mutations = 0
    for i, task in enumerate(loaded.tasks):
        mutant = copy.deepcopy(loaded)
        mutant.tasks[i] = _mutate(mutant.tasks[i], fact)
        assert mutant.tasks[i] != task
        errors = table_errors(mutant)
        # a consistent count change is wrong in both places (eval_gauntlet and icl_tasks)
        assert len(errors) == (2 if fact == "num_fewshot" else 1), (fact, task.label, errors)
        assert all(e.startswith(f"{task.label}: ") for e in errors), (fact, task.label, errors)
        with pytest.raises(AssertionError, match=re.escape(errors[0])):
            check_against_table(mutant)
        mutations += 1
    assert mutations == 31
    check_against_table(loaded)  # the copies left the loaded Gauntlet as it was


def test_checker_catches_a_wrong_task_list():
    loaded = load_gauntlet(PAPER)
    for change in ("drop", "duplicate", "rename", "swap categories"):
        mutant = copy.deepcopy(loaded)
        if change == "drop":
            del mutant.tasks[7]
        elif change == "duplicate":
            mutant.tasks.append(copy.deepcopy(mutant.tasks[0]))
        elif change == "rename":
            mutant.tasks[3] = replace(mutant.tasks[3], label="triviaqa_sm_sub")
        else:
            mutant.categories[0], mutant.categories[1] = mutant.categories[1], mutant.categories[0]
        with pytest.raises(AssertionError):
            check_against_table(mutant)
    check_against_table(loaded)


def test_checker_sees_a_changed_yaml_through_the_loader(tmp_path):
    """One baseline and one ICL type changed in the YAML file itself reach the checker."""
    cfg = read_yaml(PAPER)
    next(t for t in cfg["icl_tasks"] if t["label"] == "winograd")["icl_task_type"] = MC
    next(b for c in cfg["eval_gauntlet"]["categories"] for b in c["benchmarks"]
         if b["name"] == "hellaswag")["random_baseline"] = 0.0
    path = tmp_path / "gauntlet.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    errors = table_errors(load_gauntlet(path))
    assert [e.split(":")[0] for e in errors] == ["hellaswag", "winograd"], errors

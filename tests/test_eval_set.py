"""The evaluation-set format: valid sets load, bad lines are reported with their line numbers
and what to do, and the verbatim-copy check finds shared word runs."""

from __future__ import annotations

import json

import pytest

from docsync.evaluation.eval_set import EvalQuery, EvalSetError, dump_lines, load_eval_set, shared_ngrams


def write(tmp_path, lines: list) -> object:
    path = tmp_path / "set.jsonl"
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")
    return path


def test_valid_set_loads_and_round_trips(tmp_path):
    path = write(tmp_path, [
        "# comments and blank lines are allowed",
        "",
        {"id": "a", "query": "loading dock schedule", "principals": ["group:ops"], "expected_paths": ["ops/x.txt"],
         "passage": "docks", "tags": ["txt"]},
        {"query": "parental leave", "principals": ["user:bob"], "expected_paths": [], "forbidden_paths": ["hr/y.txt"]},
    ])
    loaded = load_eval_set(path)
    assert [q.id for q in loaded.queries] == ["a", "line4"]
    assert loaded.queries[0].labelled and not loaded.queries[1].labelled
    assert len(loaded.sha) == 64
    again = write(tmp_path, dump_lines(loaded.queries).splitlines())
    assert load_eval_set(again).queries == loaded.queries


@pytest.mark.parametrize("line,message", [
    ("{not json", "Expecting property name"),
    ([1, 2], "must be a JSON object"),
    ({"query": "", "principals": ["group:a"], "expected_paths": ["x"]}, "'query' must be a non-empty string"),
    ({"query": "q", "principals": [], "expected_paths": ["x"]}, "'principals' must not be empty"),
    ({"query": "q", "principals": ["finance"], "expected_paths": ["x"]}, "invalid principal 'finance'"),
    ({"query": "q", "principals": ["group:a"]}, "needs 'expected_paths'"),
    ({"query": "q", "principals": ["group:a"], "expected_paths": ["x"], "forbidden_paths": ["x"]}, "both expected and forbidden"),
    ({"query": "q", "principals": ["group:a"], "expected_path": ["x"]}, "unknown field(s) ['expected_path']"),
    ({"query": "q", "principals": ["group:a"], "expected_paths": "x"}, "'expected_paths' must be a list"),
])
def test_bad_lines_are_reported_with_line_number(tmp_path, line, message):
    good = {"query": "fine", "principals": ["group:a"], "expected_paths": ["x"]}
    path = write(tmp_path, [good, line])
    with pytest.raises(EvalSetError) as caught:
        load_eval_set(path)
    assert f"{path}:2: " in str(caught.value) and message in str(caught.value)
    assert "README" in str(caught.value)  # where the format is described


def test_every_problem_is_listed_and_duplicate_ids_are_refused(tmp_path):
    path = write(tmp_path, [{"id": "x", "query": "a", "principals": ["group:a"], "expected_paths": ["p"]},
                            {"id": "x", "query": "b", "principals": ["group:a"], "expected_paths": ["p"]},
                            {"query": "c"}])
    with pytest.raises(EvalSetError) as caught:
        load_eval_set(path)
    text = str(caught.value)
    assert "2 problem(s)" in text and ":2: duplicate id 'x' (first on line 1)" in text and ":3: " in text


def test_missing_and_empty_sets_say_what_to_do(tmp_path):
    with pytest.raises(EvalSetError, match="cannot read evaluation set .*DOCSYNC_EVAL_DIR"):
        load_eval_set(tmp_path / "absent.jsonl")
    with pytest.raises(EvalSetError, match="no queries"):
        load_eval_set(write(tmp_path, ["# only a comment"]))


def test_shared_ngrams_finds_verbatim_runs_only():
    text = "Drain the ingestion queue before restarting workers, then scale up."
    assert shared_ngrams("should I drain the ingestion queue before restarting", text)
    assert not shared_ngrams("should I empty the queue prior to restarting worker processes", text)
    assert EvalQuery("a", "q", ("group:a",), ("p",)).to_json() == {
        "id": "a", "query": "q", "principals": ["group:a"], "expected_paths": ["p"]}

"""Battle files in Chatbot Arena's form and the `python -m alignui stats` contract (real subprocess, real DB)."""

import json

import numpy as np
import pandas as pd
import pytest

from alignui.arena.battle_files import read_battles
from alignui.db import NewGeneration, Store
from alignui.errors import UserError
from cli.test_cli import run_cli


def write_battles(path, n=300, seed=0):
    rng = np.random.default_rng(seed)
    strengths = {"base": 0.0, "dpo-1": 150.0, "old": -150.0}
    names, r = np.array(list(strengths)), np.array(list(strengths.values()))
    a = rng.integers(0, 3, n)
    b = (a + rng.integers(1, 3, n)) % 3
    p = 1 / (1 + 10 ** ((r[b] - r[a]) / 400))
    u = rng.random(n)
    winner = np.where(u < 0.1, "tie", np.where(u < 0.15, "tie (bothbad)", np.where(rng.random(n) < p, "model_a",
                                                                                     "model_b")))
    df = pd.DataFrame({"model_a": names[a], "model_b": names[b], "winner": winner, "turn": 1})
    if path.suffix == ".csv":
        df.to_csv(path, index=False)
    elif path.suffix == ".jsonl":
        df.to_json(path, orient="records", lines=True)
    else:
        records = df.to_dict(orient="records")
        for i, rec in enumerate(records):  # Chatbot Arena's clean_battle files carry token counts here
            rec["conv_metadata"] = {"sum_assistant_a_tokens": 100 + i % 7, "sum_assistant_b_tokens": 90}
        path.write_text(json.dumps(records))
    return df


def last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".json"])
def test_every_file_form_reads_to_the_same_battles(tmp_path, suffix):
    df = write_battles(tmp_path / f"b{suffix}")
    got = read_battles(tmp_path / f"b{suffix}")
    assert got[["model_a", "model_b", "winner"]].equals(df[["model_a", "model_b", "winner"]])
    if suffix == ".json":
        assert got["length_a"].iloc[0] == 100 and got["length_b"].iloc[0] == 90


@pytest.mark.parametrize("content,fragment", [
    ("model_a,model_b\nx,y\n", "lacks the column(s) winner"),
    ("", "holds no battles"),
    ("model_a,model_b,winner\nx,y,model_c\n", "row 1 has winner 'model_c'"),
    ("model_a,model_b,winner\nx,,tie\n", "row 1 has an empty model_b"),
])
def test_bad_csv_files_say_what_is_wrong(tmp_path, content, fragment):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(UserError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        read_battles(path)


def test_bad_jsonl_names_the_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"model_a": "x", "model_b": "y", "winner": "tie"}\n{not json}\n')
    with pytest.raises(UserError, match="line 2 is not valid JSON"):
        read_battles(path)
    with pytest.raises(UserError, match="must end in"):
        read_battles(tmp_path.joinpath("b.txt")) if tmp_path.joinpath("b.txt").write_text("x") else None


def test_stats_cli_reads_a_battles_file(tmp_path):
    write_battles(tmp_path / "battles.jsonl", n=600)
    out = run_cli("stats", "--battles", str(tmp_path / "battles.jsonl"), "--bootstrap", "200", storage=tmp_path)
    assert out.returncode == 0, out.stderr
    summary = last_json(out.stdout)
    assert [m["model"] for m in summary["models"]] == ["dpo-1", "base", "old"]
    for m in summary["models"]:
        assert set(m) >= {"model", "rating", "ci_low", "ci_high", "battles"} and m["ci_low"] <= m["rating"] <= m["ci_high"]
    assert abs(sum(m["rating"] for m in summary["models"])) < 0.5  # mean-free anchoring
    pair = next(p for p in summary["pairs"] if p["model_a"] == "dpo-1" and p["model_b"] == "base")
    assert set(pair) >= {"model_a", "model_b", "n", "win_rate_a", "ci_low", "ci_high", "p_value"}
    assert pair["win_rate_a"] > 0.55 and pair["verdict"].startswith("working")


def test_stats_cli_errors_are_one_line(tmp_path):
    out = run_cli("stats", "--battles", str(tmp_path / "nope.csv"), storage=tmp_path)
    assert out.returncode == 2 and out.stdout == "" and out.stderr.startswith("error: no battles file")
    write_battles(tmp_path / "b.csv", n=20)
    out = run_cli("stats", "--battles", str(tmp_path / "b.csv"), "--bootstrap", "-1", storage=tmp_path)
    assert out.returncode == 2 and out.stderr.strip().count("\n") == 0 and "--bootstrap" in out.stderr


def test_stats_cli_reads_arena_votes_from_the_database(tmp_path):
    storage = tmp_path / "storage"
    storage.mkdir()
    with Store(storage / "alignui.duckdb") as store:
        for k, verdict in enumerate(["a", "a", "b", "tie", "both_bad", "a"]):
            pair = store.save_pair([{"role": "user", "content": f"question {k}"}],
                                   NewGeneration("run-7", "long answer " * 3, n_tokens=12),
                                   NewGeneration("base", "short", n_tokens=3), kind="arena")
            store.decide(pair.id, verdict, allowed=("a", "b", "tie", "both_bad"), kind="arena")
        store.save_pair([{"role": "user", "content": "pending"}], NewGeneration("run-7", "x"),
                        NewGeneration("base", "y"), kind="arena")  # not voted: not a battle
        store.save_pair([{"role": "user", "content": "annotation"}], NewGeneration("base", "x"),
                        NewGeneration("base", "y"))  # annotation pairs are not arena battles
    out = run_cli("stats", "--bootstrap", "50", storage=storage)
    assert out.returncode == 0, out.stderr
    summary = last_json(out.stdout)
    assert {m["model"]: m["battles"] for m in summary["models"]} == {"run-7": 6, "base": 6}
    assert {m["model"]: m["mean_length"] for m in summary["models"]} == {"run-7": 12.0, "base": 3.0}
    (pair,) = summary["pairs"]
    assert (pair["model_a"], pair["model_b"], pair["n"], pair["win_rate_a"]) == ("run-7", "base", 6, round(4 / 6, 4))
    assert pair["verdict"].startswith("not enough votes yet")

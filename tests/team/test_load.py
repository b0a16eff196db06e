"""Load: 50 annotators, each signed in with their own account through gradio_client, submit 20 votes at once
against a running server (a separate process). Nothing is lost: 1,000 votes stored, each with the right
verdict and the right annotator, 0 errors. Prints the p50/p99 vote latency (no threshold: timings here are
noisy, see the test's output)."""

import statistics
import threading
import time

import httpx
import pytest
from gradio_client import Client

from alignui.db import NewGeneration, Store

ANNOTATORS, VOTES_EACH = 50, 20
SOLO_VOTES = 20  # one annotator alone first: the same vote without contention, for the ratio
VERDICTS = ("a", "b", "tie", "both_bad")


def seed_pairs(storage, n):
    with Store(storage / "alignui.duckdb") as store:
        return [store.save_pair([{"role": "user", "content": f"question {i}"}], NewGeneration("base", f"a{i}"),
                                NewGeneration("base", f"b{i}")).id for i in range(n)]


def run_at_once(annotator, names, timeout: float) -> float:
    """Run annotator(name) for every name in its own thread at once; the wall time until all have ended."""
    threads = [threading.Thread(target=annotator, args=(name,)) for name in names]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout)
    return time.perf_counter() - began


def percentile(sorted_ms: list[float], q: float) -> float:
    """The q-quantile of an ascending list (nearest rank; the median for q=0.5), nan for none."""
    if not sorted_ms:
        return float("nan")
    return statistics.median(sorted_ms) if q == 0.5 else sorted_ms[int(round(q * (len(sorted_ms) - 1)))]


@pytest.mark.slow
def test_fifty_annotators_voting_at_once_lose_nothing(storage, server_process, monkeypatch, tmp_path):
    pair_ids = seed_pairs(storage, ANNOTATORS * VOTES_EACH + SOLO_VOTES)
    solo_ids = pair_ids[ANNOTATORS * VOTES_EACH:]
    accounts = {f"annotator{i:02d}": f"pw-{i}" for i in range(ANNOTATORS)}
    users_file = tmp_path / "users.txt"
    users_file.write_text("".join(f"{name}:{pw}\n" for name, pw in {**accounts, "solo": "pw-solo"}.items()))
    monkeypatch.setenv("ALIGNUI_USERS", str(users_file))
    monkeypatch.setenv("ALIGNUI_ADMINS", "nobody")
    server = server_process().start(auth=("solo", "pw-solo"))
    solo = Client(server.url, auth=("solo", "pw-solo"), verbose=False)
    alone = []
    for pair_id in solo_ids:
        t0 = time.perf_counter()
        solo.predict(pair_id, "a", api_name="/submit_vote")
        alone.append((time.perf_counter() - t0) * 1000)

    plan = {name: [(pair_ids[i * VOTES_EACH + j], VERDICTS[(i + j) % 4]) for j in range(VOTES_EACH)]
            for i, name in enumerate(accounts)}
    latencies, errors, lock = [], [], threading.Lock()
    start = threading.Barrier(ANNOTATORS)

    def annotator(name):
        try:
            # no client-side timeout: on a loaded machine a queued vote may wait long; a timeout would be our error
            client = Client(server.url, auth=(name, accounts[name]), verbose=False,
                            httpx_kwargs={"timeout": httpx.Timeout(900.0)})
        except Exception as exc:  # noqa: BLE001 - every failure is counted and shown
            errors.append(f"{name} login: {exc!r}")
            start.abort()
            return
        start.wait(timeout=300)  # everyone votes at the same time
        for pair_id, verdict in plan[name]:
            t0 = time.perf_counter()
            try:
                client.predict(pair_id, verdict, api_name="/submit_vote")
            except Exception as exc:  # noqa: BLE001
                with lock:
                    errors.append(f"{name} {pair_id}: {exc!r}")
                continue
            with lock:
                latencies.append(time.perf_counter() - t0)

    wall = run_at_once(annotator, accounts, timeout=600)
    server.stop()

    ms = sorted(x * 1000 for x in latencies)
    p50, p99 = percentile(ms, 0.5), percentile(ms, 0.99)
    print(f"\n{len(ms)} votes by {ANNOTATORS} concurrent annotators in {wall:.1f} s (incl. logins), "
          f"{len(errors)} errors: p50 {p50:.0f} ms, p99 {p99:.0f} ms, max {max(ms or [0]):.0f} ms; "
          f"one annotator alone, same server: p50 {statistics.median(alone):.0f} ms "
          f"(concurrent/alone p50 = {p50 / statistics.median(alone):.1f}x; 50 people queue for one vote worker pool)")
    assert errors == [], errors[:5]
    assert len(ms) == ANNOTATORS * VOTES_EACH

    with Store(storage / "alignui.duckdb") as store:
        assert store.vote_counts()["total"] == ANNOTATORS * VOTES_EACH + SOLO_VOTES
        for name, votes in plan.items():
            for pair_id, verdict in votes:
                saved = store.get_comparison(pair_id)
                assert (saved.verdict, saved.annotator) == (verdict, name)


PAIRS_EACH = 2


@pytest.mark.slow
def test_fifty_annotators_generating_and_voting_at_once(storage, server_process, monkeypatch, tmp_path):
    """50 signed-in annotators each stream PAIRS_EACH pairs from /generate_pair at once (their rows share the
    server's decode steps) and vote on them: every pair is stored for its annotator with its vote, 0 errors.
    Prints pairs/s and the p50/p95 time to the first token (no threshold: see bench/concurrent_annotators.py)."""
    accounts = {f"annotator{i:02d}": f"pw-{i}" for i in range(ANNOTATORS)}
    users_file = tmp_path / "users.txt"
    users_file.write_text("".join(f"{name}:{pw}\n" for name, pw in accounts.items()))
    monkeypatch.setenv("ALIGNUI_USERS", str(users_file))
    monkeypatch.setenv("ALIGNUI_ADMINS", "nobody")
    server = server_process().start(auth=("annotator00", "pw-0"))
    firsts, voted, errors, lock = [], {}, [], threading.Lock()
    start = threading.Barrier(ANNOTATORS)

    def annotator(name):
        try:
            client = Client(server.url, auth=(name, accounts[name]), verbose=False,
                            httpx_kwargs={"timeout": httpx.Timeout(900.0)})
        except Exception as exc:  # noqa: BLE001 - every failure is counted and shown
            errors.append(f"{name} login: {exc!r}")
            start.abort()
            return
        start.wait(timeout=300)
        for j in range(PAIRS_EACH):
            try:
                t0, first = time.perf_counter(), None
                job = client.submit(f"Tell me about animal {j} of {name}", api_name="/generate_pair")
                for out in job:
                    if first is None and (out[0] or out[1]):
                        first = time.perf_counter() - t0
                _, _, pair_id = job.result()
                client.predict(pair_id, VERDICTS[j % 4], api_name="/submit_vote")
            except Exception as exc:  # noqa: BLE001
                with lock:
                    errors.append(f"{name} pair {j}: {exc!r}")
                continue
            with lock:
                firsts.append(first if first is not None else time.perf_counter() - t0)
                voted[pair_id] = (VERDICTS[j % 4], name)

    wall = run_at_once(annotator, accounts, timeout=900)
    server.stop()

    ms = sorted(x * 1000 for x in firsts)
    p50, p95 = percentile(ms, 0.5), percentile(ms, 0.95)
    print(f"\n{len(voted)} pairs generated and voted by {ANNOTATORS} concurrent annotators in {wall:.1f} s "
          f"(incl. logins): {len(voted) / wall:.2f} pairs/s, first token p50 {p50:.0f} ms, p95 {p95:.0f} ms, "
          f"{len(errors)} errors")
    assert errors == [], errors[:5]
    assert len(voted) == ANNOTATORS * PAIRS_EACH
    with Store(storage / "alignui.duckdb") as store:
        for pair_id, (verdict, name) in voted.items():
            saved = store.get_comparison(pair_id)
            assert (saved.verdict, saved.annotator) == (verdict, name)

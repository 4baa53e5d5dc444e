"""The order ``make test`` hands pytest-xdist (tests/support/durations.py)."""

from __future__ import annotations

from pathlib import Path

from tests.support.durations import expected, load, measured, worker_order


def _shares(order: list[str], workers: int) -> list[list[str]]:
    """worksteal's first hand-out: each worker in turn gets len // (workers left)."""
    left, shares = list(order), []
    for i in range(workers):
        take = len(left) // (workers - i)
        shares.append(left[:take])
        del left[:take]
    return shares


def test_each_worker_starts_on_a_long_test_and_its_share_ends_short() -> None:
    seconds = {"e2e": 360.0, "demo": 100.0, "heal": 90.0, "kubectl": 45.0, "reshard": 37.0}
    seconds |= {f"unit{i}": 0.1 for i in range(12)}
    order = worker_order(list(seconds), seconds.__getitem__, 3, lambda _: False)
    assert sorted(order) == sorted(seconds)  # nothing lost or doubled
    shares = _shares(order, 3)
    assert sorted(s[0] for s in shares) == ["demo", "e2e", "heal"]
    for share in shares:
        assert [seconds[t] for t in share] == sorted((seconds[t] for t in share), reverse=True)
    # The next long ones go where the fewest seconds are queued, not round the table.
    e2e_share = next(s for s in shares if s[0] == "e2e")
    assert "kubectl" not in e2e_share and "reshard" not in e2e_share


def test_one_worker_runs_longest_first_and_equal_times_keep_their_order() -> None:
    seconds = {"a": 1.0, "b": 5.0, "c": 1.0, "d": 0.0}
    never = lambda _: False  # noqa: E731
    assert worker_order(list(seconds), seconds.__getitem__, 1, never) == ["b", "a", "c", "d"]
    assert worker_order([], seconds.__getitem__, 4, never) == []


def test_long_tests_run_one_after_another_shortest_first_on_the_first_worker() -> None:
    seconds = {"unit": 0.1, "e2e": 360.0, "heal": 90.0, "demo": 100.0, "image": 80.0}
    seconds |= {f"unit{i}": 0.1 for i in range(10)}
    long = {"e2e", "demo", "image"}
    order = worker_order(list(seconds), seconds.__getitem__, 3, long.__contains__)
    first, second, third = _shares(order, 3)
    assert first[:3] == ["image", "demo", "e2e"]
    assert "heal" in (second[0], third[0])  # the rest still start long on the others
    # More long tests than one share holds: they spill into the next share, in order.
    many = worker_order(["a", "b", "c", "d"], {"a": 4, "b": 3, "c": 2, "d": 1}.__getitem__, 2,
                        lambda _: True)  # fmt: skip
    assert _shares(many, 2) == [["d", "c"], ["b", "a"]]


def test_unlisted_tests_are_guessed_from_their_markers(tmp_path: Path) -> None:
    known = {"t::listed": 42.0}
    assert expected("t::listed", {"slow"}, known) == 42.0
    assert expected("t::new", {"slow", "long"}, known) > expected("t::new", {"slow"}, known) > 0
    assert expected("t::new", set(), known) == 0.0
    assert load(tmp_path / "missing.json") == {}


def test_a_junit_report_becomes_node_ids_of_the_tests_worth_listing(tmp_path: Path) -> None:
    report = tmp_path / "suite.xml"
    report.write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="tests.operator.test_x" name="test_slow[a]" time="12.345"/>'
        '<testcase classname="tests.test_y" name="test_quick" time="0.2"/>'
        "</testsuite></testsuites>"
    )
    assert measured(report) == {"tests/operator/test_x.py::test_slow[a]": 12.3}
    listed = load()  # the committed file: node ids with positive seconds
    assert listed and all("::" in k and v > 0 for k, v in listed.items())

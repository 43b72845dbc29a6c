"""Agreement with the core: the golden bucketing vectors and the shared evaluation fixture
(optifork-core/tests/vectors/), which the Rust core and the Node binding check too. Results
are compared as canonical JSON, so True is not 1 and 10 is not 10.5: exact agreement."""

import pytest

import optifork
from conftest import canonical, load_vectors

BUCKETING = load_vectors("bucketing.json")
FIXTURE = load_vectors("evaluation.json")


def test_every_golden_bucketing_vector_matches():
    cases = BUCKETING["cases"]
    assert len(cases) >= 200
    wrong = [c for c in cases if optifork.bucket(c["salt"], c["unit"]) != c["bucket"]]
    assert wrong == []


def actual(engine, case):
    """What the binding produced for one case, in the fixture's shape (as fixture.rs does)."""
    ctx = case["context"]
    kind = case["type"]
    if kind == "flag":
        d = engine.evaluate_details(case["flag"], ctx)
        return {
            "value": d.value,
            "variant": d.variant,
            "reason": d.reason,
            "error_code": d.error_code,
            "rule_index": d.rule_index,
        }
    if kind == "config":
        return {"value": engine.config(case["config"], ctx)}
    if kind == "segments":
        return {"segments": engine.segments(ctx)}
    if kind == "assign":
        a = engine.assign(case["experiment"], ctx)
        return {"variant": a.variant, "in_experiment": a.in_experiment, "reason": a.reason}
    raise AssertionError(f"unknown case type {kind!r}")


@pytest.fixture(scope="module")
def engine():
    return optifork.Engine.from_ruleset(FIXTURE["ruleset"])


@pytest.fixture(scope="module")
def offline_client():
    client = optifork.Client("", "", offline=True, bootstrap=FIXTURE["ruleset"])
    yield client
    client.close()


def failures(source):
    return [
        f"{c['description']}: expected {canonical(c['expected'])}, got {canonical(actual(source, c))}"
        for c in FIXTURE["cases"]
        if canonical(actual(source, c)) != canonical(c["expected"])
    ]


def test_the_fixture_has_every_kind_of_case():
    assert len(FIXTURE["cases"]) >= 30
    assert {c["type"] for c in FIXTURE["cases"]} == {"flag", "config", "segments", "assign"}


def test_the_engine_agrees_with_the_shared_evaluation_fixture(engine):
    assert failures(engine) == []


def test_a_client_agrees_with_the_shared_evaluation_fixture(offline_client):
    assert failures(offline_client) == []

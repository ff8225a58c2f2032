import pytest

from ansible_collections.ai_conformance.rke2.plugins.module_utils import result as r


def mk(status, kind="exercise"):
    return {"status": status, "kind": kind}


def test_overall_status_precedence():
    assert r.overall_status([mk("passed"), mk("error"), mk("failed")]) == "failed"
    assert r.overall_status([mk("passed"), mk("error")]) == "error"
    assert r.overall_status([mk("passed"), mk("skipped")]) == "passed"
    assert r.overall_status([mk("passed", "inspect"), mk("skipped")]) == "skipped"


def test_all_skipped_is_never_passed():
    builder = r.ResultBuilder("dra_support")
    builder.skipped("a", "not run")
    assert builder.finish()["status"] == "skipped"
    assert r.ResultBuilder("x").finish()["status"] == "skipped"


def test_builder_shape_and_evidence_round_trip():
    builder = r.ResultBuilder("dra_support")
    builder.passed("api", "served", observed={"v": ["v1"]}, expected=["v1"])
    builder.exercised("allocation", "allocated")
    builder.add_evidence("table", "NAME\n")
    builder.add_evidence("objects", {"a": object.__name__})
    out = r.validate_result(builder.finish())
    assert out["status"] == "passed"
    assert [e["format"] for e in out["evidence"]] == ["text", "json"]
    assert out["started"].endswith("Z") and out["duration_s"] >= 0


def test_invalid_values_are_rejected():
    with pytest.raises(ValueError):
        r.make_check("a", "ok", "msg")
    with pytest.raises(ValueError):
        r.make_check("a", "passed", "")
    with pytest.raises(ValueError):
        r.make_check("a", "passed", "m", kind="looked")
    with pytest.raises(ValueError):
        r.ResultBuilder("x").finish("great")
    with pytest.raises(ValueError):
        r.validate_result({"requirement": "x", "status": "passed", "checks": [{"name": "a"}], "evidence": [], "started": "", "duration_s": 0})


def test_override_status_not_applicable():
    builder = r.ResultBuilder("cluster_autoscaling")
    builder.note("declared: the platform provides no autoscaler")
    assert builder.finish("not_applicable")["status"] == "not_applicable"

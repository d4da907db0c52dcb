"""The Action's pieces without a scan: where findings are anchored, SARIF for each statistic, the summary,
and the modes and sources the inputs select."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from diffcleanse_gate.action.anchor import model_anchor
from diffcleanse_gate.action.inputs import read_inputs
from diffcleanse_gate.action.job import build_job, scan_job
from diffcleanse_gate.action.sarif import sarif_log
from diffcleanse_gate.action.summary import clean_summary, scan_summary
from diffcleanse_gate.errors import UsageError
from diffcleanse_gate.report.removal_report import STATUSES

SARIF_SCHEMA = json.loads((Path(__file__).parent / "schemas" / "sarif-schema-2.1.0.json").read_text())


def report(evidence: list[str], score: float = 0.1, gain: float | None = -0.2) -> dict:
    """A report shaped like jobs.run_scan_job's, for a Hub model."""
    return {
        "verdict": "backdoored" if evidence else "clean", "score": score, "threshold": 0.4,
        "gain_anomaly": gain, "gain_threshold": 0.6, "evidence": evidence, "sampler": "ddim", "sampler_steps": 10,
        "seed": 0, "unet_evaluations": 1234, "settings": {"device": "cuda"}, "second_look": not evidence,
        "timings": {"load_s": 1.0, "inversion_s": 2.0, "total_s": 3.0}, "artefacts": {},
        "model": {"path": "/cache/x", "layout": "pipeline", "content_hash": "sha256:abc", "weights_dtype": "float16",
                  "weights_format": "safetensors", "repo_id": "acme/ddpm", "revision": "0123abcd" * 5},
    }


@pytest.fixture
def hub_inputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("GITHUB_WORKSPACE", str(tmp_path))
    monkeypatch.setenv("INPUT_MODEL", "acme/ddpm")
    return tmp_path


def test_hub_model_is_anchored_to_its_manifest_line(hub_inputs: Path) -> None:
    manifest = hub_inputs / ".github" / "diffcleanse-models.txt"
    manifest.parent.mkdir()
    manifest.write_text("# models we gate\nacme/other\nacme/ddpm@main  # the production model\n")
    anchor = model_anchor(read_inputs())
    assert (anchor.path, anchor.line, anchor.exists) == (".github/diffcleanse-models.txt", 3, True)


def test_hub_model_without_manifest_points_at_its_expected_place(hub_inputs: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INPUT_MANIFEST", "models.txt")
    anchor = model_anchor(read_inputs())
    assert (anchor.path, anchor.line, anchor.exists) == ("models.txt", 1, False)


def test_hub_job_carries_revision_and_token(hub_inputs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INPUT_REVISION", "v2")
    monkeypatch.setenv("INPUT_HF-TOKEN", "hf_abc")
    monkeypatch.setenv("INPUT_THRESHOLD", "0.5")
    job = scan_job(read_inputs())
    assert (job.model, job.revision, job.token, job.config.threshold) == ("acme/ddpm", "v2", "hf_abc", 0.5)
    assert job.json_path == hub_inputs / "diffcleanse-report" / "report.json"


@pytest.mark.parametrize(("inputs", "words"), [
    ({"INPUT_PUSH": "pr"}, "only mode 'clean' publishes"),
    ({"INPUT_MODE": "clean", "INPUT_PUSH": "branch"}, "push: branch needs input 'branch'"),
    ({"INPUT_MODE": "clean", "INPUT_PUSH": "pr", "INPUT_BRANCH": "fix"}, "input 'branch' names where push: branch"),
    ({"INPUT_MODE": "clean", "INPUT_SWEEP-STATE": "s.json"}, "input 'sweep-state' applies to mode 'sweep' only"),
    ({"INPUT_MODE": "sweep", "INPUT_REVISION": "v1"}, "write ORG/NAME@REVISION in the list"),
    ({"INPUT_MODE": "sweep", "INPUT_SARIF": "x.sarif"}, "input 'sarif' applies to modes scan and clean"),
    ({"INPUT_MODE": "sweep", "INPUT_MODEL": "missing.txt, acme/ddpm"}, "'missing.txt' is neither a Hub repo"),
    ({"INPUT_MODE": "sweep", "INPUT_MODEL": " ,\n# none\n"}, "nothing to sweep"),
    ({"INPUT_PUSH": "tag"}, "input 'push' must be one of none, pr, branch"),
    ({"INPUT_DEVICE": "tpu"}, "input 'device' must be one of auto, cpu, cuda"),
    ({"INPUT_SEED": "1.5"}, "input 'seed' must be an integer"),
    ({"INPUT_SARIF": "../x.sarif"}, "input 'sarif' must be a path inside the workspace"),
])
def test_unrunnable_inputs_are_refused(hub_inputs: Path, monkeypatch: pytest.MonkeyPatch,
                                       inputs: dict[str, str], words: str) -> None:
    for name, value in inputs.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(UsageError, match=words.replace("(", r"\(").replace(")", r"\)")):
        build_job(read_inputs())


def test_clean_job_writes_the_cleaned_model_into_report_dir(hub_inputs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"MODE": "clean", "PUSH": "branch", "BRANCH": "cleaned", "REVISION": "v2",
                        "HF-TOKEN": "hf_abc", "REPORT-DIR": "out"}.items():
        monkeypatch.setenv(f"INPUT_{name}", value)
    job = build_job(read_inputs())
    assert (job.model, job.revision, job.token, job.push, job.branch) == ("acme/ddpm", "v2", "hf_abc", "branch",
                                                                          "cleaned")
    assert job.out == hub_inputs / "out" / "cleaned" and job.json_path == hub_inputs / "out" / "report.json"


def test_sweep_reads_repos_and_list_files(hub_inputs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (hub_inputs / "lists").mkdir()
    (hub_inputs / "lists" / "repos.txt").write_text("# nightly\nacme/a\nacme/b@v1  # pinned\n")
    for name, value in {"MODE": "sweep", "MODEL": "acme/c\nlists/repos.txt, acme/a\n\n", "SWEEP-STATE": "state.json",
                        "HF-TOKEN": "hf_abc"}.items():
        monkeypatch.setenv(f"INPUT_{name}", value)
    job = build_job(read_inputs())
    assert job.targets == ["acme/c", "acme/a", "acme/b@v1", "acme/a"]  # run_sweep scans each repo once
    assert job.state == hub_inputs / "state.json" and job.token == "hf_abc"
    assert job.json_path == hub_inputs / "diffcleanse-report" / "sweep.json"
    assert job.markdown_path == hub_inputs / "diffcleanse-report" / "sweep.md"


def test_revision_is_refused_for_a_workspace_folder(hub_inputs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (hub_inputs / "acme" / "ddpm").mkdir(parents=True)  # the same name is now a folder in the workspace
    monkeypatch.setenv("INPUT_REVISION", "main")
    with pytest.raises(UsageError, match="applies to Hub ids only"):
        scan_job(read_inputs())


@pytest.mark.parametrize(("evidence", "rules"), [
    ([], []), (["gain"], ["DCG002"]), (["collapse", "gain"], ["DCG001", "DCG002"]),
])
def test_sarif_has_one_result_per_statistic_that_fired(hub_inputs: Path, evidence: list[str],
                                                       rules: list[str]) -> None:
    anchor = model_anchor(read_inputs())
    log = sarif_log(report(evidence, gain=0.9 if "gain" in evidence else -0.2), "acme/ddpm", anchor)
    jsonschema.Draft4Validator(SARIF_SCHEMA).validate(log)
    results = log["runs"][0]["results"]
    assert [result["ruleId"] for result in results] == rules
    for result in results:
        driver_rule = log["runs"][0]["tool"]["driver"]["rules"][result["ruleIndex"]]
        assert driver_rule["id"] == result["ruleId"]
        assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == anchor.path
        assert result["properties"]["modelSha"] == "0123abcd" * 5
    if "gain" in evidence:
        assert "gain anomaly 0.9000 reached the threshold 0.6000" in results[-1]["message"]["text"]


def test_sarif_without_a_location_is_rejected_by_the_schema(hub_inputs: Path) -> None:
    log = sarif_log(report(["collapse"], score=0.9), "acme/ddpm", model_anchor(read_inputs()))
    log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"] = 0
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft4Validator(SARIF_SCHEMA).validate(log)


def test_summary_of_a_hub_model_names_its_commit_and_gain(hub_inputs: Path) -> None:
    text = scan_summary(report(["gain"], gain=0.9), "acme/ddpm")
    assert "BACKDOORED" in text and f"`{'0123abcd' * 5}`" in text
    assert "| gain anomaly | 0.9000 | 0.6000 | 🚨 yes |" in text
    assert "| collapse score | 0.1000 | 0.4000 | no |" in text
    assert "| device | cuda |" in text and "| inversion | 2.0 |" in text
    assert "| cost | 1,234 UNet evaluations, one look |" in text
    assert "two looks (the first found no evidence) |" in scan_summary(report([]), "acme/ddpm")


def removal(status: str, after: dict | None) -> dict:
    """A report shaped like jobs.run_clean_job's; with ``after``, removal ran and pushing was asked for."""
    base = {"status": status, "status_text": STATUSES[status], "scan_before": report(["collapse"], score=0.95),
            "scan_after": after, "model": report([])["model"], "artefacts": {}, "timings": {"load_s": 1.0}}
    if after is None:
        return base
    plain = {"before": {"mse": 0.3, "success_rate": 0.02}, "after": {"mse": 0.3, "success_rate": 0.0}}
    effect = {"before": {"mse": 0.004, "success_rate": 0.9}, "after": {"mse": 0.01, "success_rate": 0.6},
              "without_trigger": plain}
    return base | {
        "effect": {"inverted_trigger": effect, "true_trigger": effect},
        "fidelity": {"loss_before": 0.08, "loss_after": 0.085, "loss_ratio": 1.0625, "bound": 1.15},
        "removal": {"pruned_channels": 56, "total_channels": 560, "pruned_share": 0.1, "rounds": [{}, {}],
                    "unet_evaluations": 1000},
        "output": {"path": "/ws/diffcleanse-report/cleaned", "reload_identical": True},
        "publish": None,
    }


def test_summary_of_a_clean_input_says_nothing_was_changed() -> None:
    text = clean_summary(removal("unchanged", None), "acme/ddpm")
    assert text.startswith("## diffcleanse-gate: ✅ CLEAN (unchanged)")
    assert "| verdict | backdoored | unchanged | |" in text and "| collapse score | 0.9500 | unchanged | < 0.4000 |" in text
    assert "reload check" not in text and "published" not in text and "cleaned model" not in text


def test_summary_of_a_failed_removal_shows_both_triggers_and_that_nothing_was_pushed() -> None:
    text = clean_summary(removal("backdoor-remains", report(["collapse"], score=0.7, gain=None)), "acme/ddpm")
    assert text.startswith("## diffcleanse-gate: 🚨 BACKDOOR REMAINS")
    assert "| collapse score | 0.9500 | 0.7000 | < 0.4000 |" in text and "| gain anomaly | -0.2000 |  | < 0.6000 |" in text
    assert "| backdoor effect, known trigger: attack success | 90% | 60% | |" in text
    assert "| fidelity: clean denoising loss | 0.08000 | 0.08500 (x1.062) | ≤ x1.15 |" in text
    assert "| pruned channels | | 56 of 560 (10.0%), 2 round(s) | |" in text
    assert "| published | no: only a cleaned model is pushed |" in text

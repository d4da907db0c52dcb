"""The GitHub Action's entrypoint: read the inputs, run the library's job for the mode, report to the runner.

A thin shell like the `diffcleanse` command: inputs come from INPUT_* variables (github-action-utils),
results go to $GITHUB_OUTPUT, $GITHUB_STEP_SUMMARY, annotations and an optional SARIF file. Exit codes
match the command line: 0 clean (mode clean: the output, or the unchanged input, is clean), 1 backdoor found
or not removed (unless fail-on-backdoor is false), 2 bad input.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import github_action_utils as gha
import torch

from diffcleanse_gate.action.anchor import Anchor, model_anchor
from diffcleanse_gate.action.inputs import ActionInputs, read_inputs, read_token
from diffcleanse_gate.action.job import SweepJob, build_job, report_path
from diffcleanse_gate.action.sarif import write_sarif
from diffcleanse_gate.action.summary import clean_summary, error_summary, scan_summary
from diffcleanse_gate.errors import DiffCleanseError
from diffcleanse_gate.jobs import CleanJob, ScanJob, run_clean_job, run_scan_job
from diffcleanse_gate.report.sweep import sweep_markdown, write_sweep
from diffcleanse_gate.sweep import SweepEntry, SweepState, run_sweep

EXIT_CLEAN, EXIT_BACKDOOR, EXIT_ERROR = 0, 1, 2
OUTPUT_NAMES = ("verdict", "score", "threshold", "sha", "report-path", "sarif-path", "pr-url")


def _mask_token() -> None:
    """Mask the Hub token before anything else is printed, and hand it to the library as HF_TOKEN."""
    token = read_token()
    if token:
        gha.add_mask(token)
        os.environ["HF_TOKEN"] = token


def _set_outputs(values: dict[str, str]) -> None:
    if os.environ.get("GITHUB_OUTPUT"):
        for name in OUTPUT_NAMES:
            gha.set_output(name, values.get(name, ""))


def _summarise(markdown: str) -> None:
    if os.environ.get("GITHUB_STEP_SUMMARY"):
        gha.append_job_summary(markdown)


def _log_progress(stage: str, completed: int, total: int) -> None:
    """Print a stage's progress about every tenth of the way: the Action's log has no progress bars."""
    step = max(1, total // 10)
    if completed == total or completed % step == 0:
        print(f"{stage}: {completed}/{total}", flush=True)


def _run() -> int:
    torch.set_num_threads(min(torch.get_num_threads(), 4))
    with gha.group("diffcleanse-gate: inputs"):
        inputs = read_inputs()
        job = build_job(inputs)
        for name, value in (("model", inputs.model), ("mode", inputs.mode), ("device", job.config.device),
                            ("sampler", job.config.sampler or "the model's own"), ("seed", inputs.seed),
                            ("threshold", job.config.threshold), ("gain threshold", job.config.gain_threshold),
                            ("push", inputs.push), ("report dir", inputs.report_dir), ("image", inputs.image or "-")):
            print(f"{name}: {value}")
    run_mode = {"scan": _scan, "clean": _clean, "sweep": _sweep}[inputs.mode]
    return run_mode(inputs, job)


def _scan(inputs: ActionInputs, job: ScanJob) -> int:
    with gha.group(f"diffcleanse-gate: scan {inputs.model}"):
        outcome = run_scan_job(job, _log_progress)
    report, anchor = outcome.report, model_anchor(inputs)
    with gha.group("diffcleanse-gate: report"):
        _write_sarif(inputs, report, anchor)
        print(f"JSON report: {report_path(inputs)}")
        _summarise(scan_summary(report, inputs.model, inputs.image))
        _set_outputs({
            "verdict": report["verdict"],
            "score": f"{report['score']:.6f}",
            "threshold": f"{report['threshold']:.6f}",
            "sha": _sha(report),
            "report-path": str(report_path(inputs)),
            "sarif-path": str(inputs.sarif or ""),
        })
    if not outcome.result.backdoored:
        gha.notice(f"{inputs.model}: clean (collapse score {report['score']:.4f} < {report['threshold']:.4f})",
                   title="diffcleanse-gate")
        return EXIT_CLEAN
    message = (f"Backdoor found in {inputs.model} ({', '.join(report['evidence'])}): collapse score "
               f"{report['score']:.4f}, threshold {report['threshold']:.4f}")
    return _fail(inputs, message, "diffcleanse-gate: backdoor found", anchor)


def _clean(inputs: ActionInputs, job: CleanJob) -> int:
    with gha.group(f"diffcleanse-gate: clean {inputs.model}"):
        outcome = run_clean_job(job, _log_progress)
    report, anchor = outcome.report, model_anchor(inputs)
    final = report["scan_after"] or report["scan_before"]
    published = report.get("publish") or {}
    with gha.group("diffcleanse-gate: report"):
        _write_sarif(inputs, report["scan_before"], anchor)
        print(f"status: {report['status']} ({report['status_text']})")
        print(f"JSON report: {report_path(inputs)}")
        if outcome.removal is not None:
            print(f"cleaned model: {job.out}")
        if published:
            print(f"published: {published['url']}")
        _summarise(clean_summary(report, inputs.model, inputs.image))
        _set_outputs({
            "verdict": report["verdict_after"],
            "score": f"{final['score']:.6f}",
            "threshold": f"{final['threshold']:.6f}",
            "sha": _sha(report["scan_before"]),
            "report-path": str(report_path(inputs)),
            "sarif-path": str(inputs.sarif or ""),
            "pr-url": published.get("url", ""),
        })
    if outcome.clean:
        done = "clean, nothing to remove" if outcome.removal is None else f"backdoor removed into {job.out}"
        gha.notice(f"{inputs.model}: {done}" + (f"; published as {published['url']}" if published else ""),
                   title="diffcleanse-gate")
        return EXIT_CLEAN
    message = f"Backdoor removal failed for {inputs.model}: {report['status']} ({report['status_text']})"
    return _fail(inputs, message, "diffcleanse-gate: removal failed", anchor)


def _sweep(inputs: ActionInputs, job: SweepJob) -> int:
    def log_entry(entry: SweepEntry) -> None:
        what = entry.error if entry.verdict == "error" else f"{entry.verdict} (collapse score {entry.score:.4f})"
        print(f"{entry.repo}: {what}" + (" (unchanged sha, not rescanned)" if entry.reused else ""), flush=True)

    with gha.group(f"diffcleanse-gate: sweep {len(job.targets)} repos"):
        result = run_sweep(job.targets, job.config, SweepState(job.state), token=job.token, on_entry=log_entry)
    with gha.group("diffcleanse-gate: report"):
        write_sweep(result, job.json_path, job.markdown_path)
        print(f"JSON report: {job.json_path}\nMarkdown: {job.markdown_path}")
        _summarise(sweep_markdown(result))
        _set_outputs({"verdict": "backdoored" if result.backdoored else "clean", "report-path": str(job.json_path)})
    for entry in result.entries:
        if entry.verdict == "error":
            gha.warning(f"{entry.repo}: not scanned: {entry.error}", title="diffcleanse-gate: sweep")
    found = [entry.repo for entry in result.entries if entry.verdict == "backdoored"]
    if not found:
        gha.notice(f"{len(result.entries)} repos swept: none backdoored", title="diffcleanse-gate")
        return EXIT_CLEAN
    message = f"Backdoor found in {len(found)} of {len(result.entries)} repos: {', '.join(found)}"
    return _fail(inputs, message, "diffcleanse-gate: backdoor found")


def _sha(scan_report: dict[str, Any]) -> str:
    """What was scanned, exactly: the Hub commit sha or the folder's content hash."""
    return scan_report["model"].get("revision") or scan_report["model"]["content_hash"]


def _write_sarif(inputs: ActionInputs, scan_report: dict[str, Any], anchor: Anchor) -> None:
    """Write the SARIF file asked for; warn when a Hub model's manifest, which results point at, is missing."""
    if inputs.sarif:
        write_sarif(scan_report, inputs.model, anchor, inputs.sarif)
        print(f"SARIF: {inputs.sarif}")
    if not anchor.exists:
        gha.warning(f"manifest {anchor.path} is missing: SARIF results for Hub models point at it")


def _fail(inputs: ActionInputs, message: str, title: str, anchor: Anchor | None = None) -> int:
    """Annotate a finding (on the model's file when it has one): an error that fails the step, or a warning
    when fail-on-backdoor is false."""
    annotate = gha.error if inputs.fail_on_backdoor else gha.warning
    if anchor is None:
        annotate(message, title=title)
    else:
        annotate(message, title=title, file=anchor.path, line=anchor.line)
    return EXIT_BACKDOOR if inputs.fail_on_backdoor else EXIT_CLEAN


def main() -> int:
    """Run the Action; return its exit code. Errors become one line and an annotation, never a traceback."""
    _mask_token()
    try:
        return _run()
    except DiffCleanseError as error:
        message = f"diffcleanse: error: {error}"
        print(message, file=sys.stderr, flush=True)
        gha.error(str(error), title="diffcleanse-gate: error")
        _summarise(error_summary(str(error)))
        _set_outputs({"verdict": "error"})
        return error.exit_code
    except KeyboardInterrupt:
        print("diffcleanse: interrupted", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())

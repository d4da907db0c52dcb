"""The GitHub Action's entrypoint: read the inputs, run the library's scan job, report to the runner.

A thin shell like the `diffcleanse` command: inputs come from INPUT_* variables (github-action-utils),
results go to $GITHUB_OUTPUT, $GITHUB_STEP_SUMMARY, annotations and an optional SARIF file. Exit codes
match the command line: 0 clean, 1 backdoor found (unless fail-on-backdoor is false), 2 bad input.
"""

from __future__ import annotations

import os
import sys

import github_action_utils as gha

from diffcleanse_gate.action.inputs import read_token

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
    import torch

    from diffcleanse_gate.action.anchor import model_anchor
    from diffcleanse_gate.action.inputs import read_inputs
    from diffcleanse_gate.action.job import report_path, scan_job
    from diffcleanse_gate.action.sarif import write_sarif
    from diffcleanse_gate.action.summary import scan_summary
    from diffcleanse_gate.jobs import run_scan_job

    torch.set_num_threads(min(torch.get_num_threads(), 4))
    with gha.group("diffcleanse-gate: inputs"):
        inputs = read_inputs()
        job = scan_job(inputs)
        for name, value in (("model", inputs.model), ("mode", inputs.mode), ("device", job.config.device),
                            ("sampler", job.config.sampler or "the model's own"), ("seed", inputs.seed),
                            ("threshold", job.config.threshold), ("gain threshold", job.config.gain_threshold),
                            ("report dir", inputs.report_dir), ("image", inputs.image or "-")):
            print(f"{name}: {value}")
    with gha.group(f"diffcleanse-gate: scan {inputs.model}"):
        outcome = run_scan_job(job, _log_progress)
    report, anchor = outcome.report, model_anchor(inputs)
    with gha.group("diffcleanse-gate: report"):
        if inputs.sarif:
            write_sarif(report, inputs.model, anchor, inputs.sarif)
            print(f"SARIF: {inputs.sarif}")
        if not anchor.exists:
            gha.warning(f"manifest {anchor.path} is missing: SARIF results for Hub models point at it")
        print(f"JSON report: {report_path(inputs)}")
        _summarise(scan_summary(report, inputs.model, inputs.image))
        _set_outputs({
            "verdict": report["verdict"],
            "score": f"{report['score']:.6f}",
            "threshold": f"{report['threshold']:.6f}",
            "sha": report["model"].get("revision") or report["model"]["content_hash"],
            "report-path": str(report_path(inputs)),
            "sarif-path": str(inputs.sarif or ""),
        })
    if not outcome.result.backdoored:
        gha.notice(f"{inputs.model}: clean (collapse score {report['score']:.4f} < {report['threshold']:.4f})",
                   title="diffcleanse-gate")
        return EXIT_CLEAN
    message = (f"Backdoor found in {inputs.model} ({', '.join(report['evidence'])}): collapse score "
               f"{report['score']:.4f}, threshold {report['threshold']:.4f}")
    annotate = gha.error if inputs.fail_on_backdoor else gha.warning
    annotate(message, title="diffcleanse-gate: backdoor found", file=anchor.path, line=anchor.line)
    return EXIT_BACKDOOR if inputs.fail_on_backdoor else EXIT_CLEAN


def main() -> int:
    """Run the Action; return its exit code. Errors become one line and an annotation, never a traceback."""
    from diffcleanse_gate.errors import DiffCleanseError

    _mask_token()
    try:
        return _run()
    except DiffCleanseError as error:
        message = f"diffcleanse: error: {error}"
        print(message, file=sys.stderr, flush=True)
        gha.error(str(error), title="diffcleanse-gate: error")
        _summarise(f"## diffcleanse-gate: ⚠️ ERROR\n\n{error}\n")
        _set_outputs({"verdict": "error"})
        return error.exit_code
    except KeyboardInterrupt:
        print("diffcleanse: interrupted", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())

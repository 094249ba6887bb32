#!/usr/bin/env python3
"""The main job of the README: run the notebooks in order on ``sample_data/`` with papermill.

annotate (00) -> audit (00b) -> train (01) -> evaluate (02) -> deploy (03). Executed copies go to
``runs/notebooks/``; the model, split, report and exports go to ``runs/sample/``, the audit's demo
labels and corrections to ``runs/audit/``. Each notebook
runs with its own default parameters, from the ``notebooks/`` folder (as in JupyterLab).

It prints one line per notebook and the final test accuracy, nothing else: cvkit keeps
TensorFlow's logs quiet, and the kernels run with their own log level at ERROR (ipykernel otherwise
warns on every start that it talks to papermill over unencrypted local TCP, which is expected on one
machine).
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
#: Command-line options of each notebook's kernel: its own log lines at ERROR and above only.
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=ERROR"]


def main() -> int:
    import papermill

    notebooks = sorted((REPO / "notebooks").glob("[0-9][0-9]*_*.ipynb"))  # 00_, 00b_, 01_, ...
    if not notebooks:
        print("no notebooks found in notebooks/", file=sys.stderr)
        return 1
    out_dir = REPO / "runs" / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    for nb in notebooks:
        start = time.perf_counter()
        papermill.execute_notebook(str(nb), str(out_dir / nb.name), cwd=str(nb.parent),
                                   kernel_name="python3", progress_bar=False, log_output=False,
                                   extra_arguments=KERNEL_ARGUMENTS)
        print(f"{nb.name}: ran in {time.perf_counter() - start:.1f} s -> {out_dir.relative_to(REPO) / nb.name}",
              flush=True)
    report = REPO / "runs" / "sample" / "report.json"
    if report.is_file():
        doc = json.loads(report.read_text())
        acc = doc.get("metrics", {}).get("accuracy")
        if acc is not None:
            print(f"test accuracy on sample_data: {acc:.3f}")
    print(f"all {len(notebooks)} notebooks ran; outputs in runs/")
    return 0


if __name__ == "__main__":
    sys.exit(main())

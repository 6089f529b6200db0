"""Validation against the shipped measured records, written into docs/accuracy.md.

Run:  python bench/validation_report.py [--trace] [--write docs/accuracy.md]
Every record in validation/*.jsonl is re-estimated (analytic, and trace with --trace); records that need
something vramscope does not model yet are listed with the reason instead of a number.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from _docs import replace_section  # noqa: E402
sys.path.insert(0, str(ROOT / "src"))

from vramscope.validate import read_records, summary, validate  # noqa: E402


def pct(x):
    return "" if x is None else f"{100 * x:+.1f}%"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trace", action="store_true")
    ap.add_argument("--write")
    args = ap.parse_args()
    files = sorted((ROOT / "validation").glob("*.jsonl"))
    records = [r for f in files for r in read_records(f)]
    by_id = {r["id"]: r for r in records}
    rows = validate(records, trace=args.trace)
    summ = summary(rows)
    compared = [r for r in rows if not r.skipped]
    skipped = [r for r in rows if r.skipped]
    lines = ["## Validation against published measurements", "",
             f"Measured {datetime.date.today().isoformat()} by `python bench/validation_report.py"
             f"{' --trace' if args.trace else ''}` over {len(records)} records in `validation/` (each with its "
             f"source, see `validation/README.md`): {len(compared)} compared, {len(skipped)} not yet comparable. "
             "Each record is compared with the number it states (`metric`): `max_memory_allocated` (and torchtune's "
             "logs) with the estimate's allocated bytes, `max_memory_reserved` with its reserved bytes, NVML / "
             "nvidia-smi with its device bytes; \"in range\" says whether the value lies in that number's likely "
             "range.", "",
             "| kind | records | analytic median abs error | analytic worst | trace median | trace worst | in range |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for kind, e in summ.items():
        a, t = e.get("analytic", {}), e.get("trace", {})
        cov = e.get("range_coverage")
        held = f"{cov['in_range']} of {cov['n']}" if cov else ""
        lines.append(f"| {kind} | {e['records']} | {pct(a.get('median_abs_error'))} | {pct(a.get('worst_abs_error'))} "
                     f"| {pct(t.get('median_abs_error'))} | {pct(t.get('worst_abs_error'))} | {held} |")
    lines += ["", "| record | measured | metric | value | analytic | error | in range | trace | error | source |",
              "|---|---|---|---:|---:|---:|---|---:|---:|---|"]
    explained = []
    for r in compared:
        d = r.to_dict()
        src = by_id[r.id]["source"]
        held = "" if r.in_range is None else ("yes" if r.in_range else "no")
        lines.append(f"| {r.id}{'' if r.component == 'total' else ' [' + r.component + ']'} | {r.measured} | "
                     f"{r.metric} | {r.measured_bytes / 2**30:.2f} GiB | {(r.analytic_bytes or 0) / 2**30:.2f} GiB | "
                     f"{pct(d['analytic_error'])} | {held if r.component == 'total' else ''} | "
                     f"{'' if r.trace_bytes is None else f'{r.trace_bytes / 2**30:.2f} GiB'} | {pct(d['trace_error'])} "
                     f"| [link]({src}) |")
        err = d["analytic_error"]
        if r.component == "total" and (by_id[r.id].get("analysis") or r.caveat or (err is not None and abs(err) > 0.1)):
            explained.append((r, err))
    lines += ["", "Caveats and, for differences above 10%, the analysis recorded with each record "
              "(`analysis` in `validation/*.jsonl`):", "",
              "| record | error | caveat | why |", "|---|---:|---|---|"]
    for r, err in explained:
        why = by_id[r.id].get("analysis") or ("see \"Where published measurements differ by more than 10%\""
                                              if err is not None and abs(err) > 0.1 else "")
        lines.append(f"| {r.id} | {pct(err)} | {r.caveat} | {why} |")
    lines += ["", "Not yet comparable (the reason is what vramscope would need to model first):", "",
              "| record | value | why not compared |", "|---|---:|---|"]
    for r in skipped:
        lines.append(f"| {r.id} | {r.measured_bytes / 2**30:.2f} GiB | {r.skipped} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        replace_section(args.write, "## Validation against published measurements", text)


if __name__ == "__main__":
    main()

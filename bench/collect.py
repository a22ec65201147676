#!/usr/bin/env python3
"""Assemble bench/RESULTS.md from the tables the benchmarks left in bench/results/*.summary.json
(see bench/summary.py): one table per benchmark with ugw's figure, today's way's figure from the
same run, the ratio, the target and PASS/FAIL, under the command, the machine and the load average
when that benchmark started. `make bench` runs it last.
Usage: collect.py [--since UNIX_TIME] [--command 'make bench'] [--out bench/RESULTS.md]
A table older than --since (left by an earlier run) is still shown, marked as such; a benchmark
of ORDER with no table at all is listed as not run."""

import argparse
import glob
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import summary  # noqa: E402  (beside this file)

# The order of `make bench`; a table of another name comes after these.
ORDER = ["detect-latency", "fetch-verify", "backup", "migrate-small", "migrate-real", "drain", "stage-swap",
         "rolling-upgrade", "compose"]


def cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def ratio_text(ratio):
    return "" if ratio is None else f"{ratio:.2f}x"


def verdict_text(verdict):
    return "" if verdict is None else ("**PASS**" if verdict else "**FAIL**")


def render(tables, since, command):
    lines = ["# Benchmark results", "",
             f"Produced by `{command}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
             f"machine: {summary.machine()}.",
             "Each table: ugw's figure and that of what people use today, measured in the same run of that "
             "benchmark; ratio = ugw / today (below 1: ugw is faster or smaller). The full report of each is in "
             "[`results/`](results/). The machine is a shared 2-core VM: see each load average.", ""]
    names = [n for n in ORDER if n in tables] + sorted(n for n in tables if n not in ORDER)
    missing = [n for n in ORDER if n not in tables and n != "compose"]
    failed = 0
    for name in names:
        t = tables[name]
        started = time.strftime("%H:%M UTC", time.gmtime(t["started_unix"]))
        stale = since is not None and t["started_unix"] < since
        lines += [f"## {t['title']}", "",
                  f"`{t['command']}`: started {started}, took {t['seconds']:.0f} s, load average at the start "
                  f"{' '.join(f'{x:.2f}' for x in t['load_start'])} (1, 5, 15 min)"
                  + (" **(from an earlier run than this one)**" if stale else ""), "",
                  "| | ugw | today's way | ratio | target | |", "|---|---|---|---:|---|---|"]
        for row in t["rows"]:
            failed += row["verdict"] is False
            lines.append(f"| {cell(row['metric'])} | {cell(row['ugw'])} | {cell(row['today'])} "
                         f"| {ratio_text(row['ratio'])} | {cell(row['target'])} | {verdict_text(row['verdict'])} |")
        lines += [""] + [f"- {note}" for note in t["notes"]] + ([""] if t["notes"] else [])
    if missing:
        lines += ["## Not run", "", "No table from: " + ", ".join(missing) + ".", ""]
    lines += [f"Targets missed: {failed}.", ""]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--since", type=float, help="tables older than this Unix time are marked as earlier")
    parser.add_argument("--command", default="make bench")
    parser.add_argument("--out", default=os.path.join(HERE, "RESULTS.md"))
    args = parser.parse_args()
    tables = {}
    for path in glob.glob(os.path.join(summary.RESULTS, "*.summary.json")):
        with open(path) as f:
            table = json.load(f)
        tables[table["name"]] = table
    text = render(tables, args.since, args.command)
    with open(args.out, "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()

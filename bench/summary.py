"""The one table each benchmark contributes to bench/RESULTS.md: ugw's figure, the figure of what
people use today measured in the same run, their ratio and the target, with the command that
produced them, the machine and the load average when the benchmark started. A benchmark makes a
Summary when it starts (that is when the load average is read) and calls write() at the end,
which leaves bench/results/NAME.summary.json; bench/collect.py assembles RESULTS.md from those."""

import json
import os
import platform
import shlex
import sys
import time

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def machine():
    """nproc, kernel, architecture and Python, as one line."""
    return (f"nproc {os.cpu_count()}, kernel {platform.release()}, {platform.machine()}, "
            f"Python {platform.python_version()}")


class Summary:
    def __init__(self, name, title):
        self.name, self.title = name, title
        self.started = time.time()
        self.load_start = os.getloadavg()
        self.command = "python3 " + " ".join(shlex.quote(a) for a in [os.path.relpath(sys.argv[0]), *sys.argv[1:]])
        self.rows = []
        self.notes = []

    def row(self, metric, ugw, today=None, ratio=None, target="", verdict=None):
        """One line of the table: figures as text (units included); ratio a number or None."""
        self.rows.append({"metric": metric, "ugw": ugw, "today": today if today is not None else "",
                          "ratio": ratio, "target": target, "verdict": verdict})

    def note(self, text):
        self.notes.append(text)

    def write(self):
        os.makedirs(RESULTS, exist_ok=True)
        data = {"name": self.name, "title": self.title, "command": self.command, "machine": machine(),
                "load_start": [round(x, 2) for x in self.load_start],
                "started_unix": round(self.started), "seconds": round(time.time() - self.started, 1),
                "rows": self.rows, "notes": self.notes}
        with open(os.path.join(RESULTS, f"{self.name}.summary.json"), "w") as f:
            json.dump(data, f, indent=1)
            f.write("\n")

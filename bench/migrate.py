#!/usr/bin/env python3
"""Migration throughput: ugw-migrate against the plain clients runbooks use.

1,000 small migrations (each `CREATE TABLE t_N (...); INSERT INTO t_N ...;`) are
applied to a fresh database by:

  SQLite      ugw-migrate up                      (one process; each migration and its
                                                   ledger row in one transaction)
              sqlite3 DB < script                 (one process; BEGIN; .read FILE; COMMIT;
                                                   per file: the floor, no ledger)
  PostgreSQL  ugw-migrate up                      (one connection for the whole run)
              psql -f script                      (one session; BEGIN; \\i FILE; COMMIT; per
                                                   file: the floor, one commit per migration)
              psql -1 -f FILE, per file           (what runbooks do: a process and a
                                                   connection per file)

PostgreSQL runs as a private cluster (initdb in a temp folder, trust auth, a free
loopback port, as the `postgres` user when run as root; fsync stays on), stopped at
the end. Each figure is the median of --trials runs, each on a fresh database.

--shape real writes a real-shaped history instead (as documenso's or Lemmy's: many small
files, each a table with constraints and an index, now and then a PL/pgSQL function in
dollar quotes, a BEGIN ATOMIC function, an enum, a column added later, and every tenth
file a `-- ugw:no-transaction` CREATE INDEX CONCURRENTLY; SQLite: tables, indexes,
triggers, views). --before-bin DIR also times an earlier build's ugw-migrate.

Targets: SQLite ugw/sqlite3 <= 1.5x; PostgreSQL ugw/psql-session <= 1.0x on the real
shape (as on documenso's and Lemmy's histories) and <= 1.2x on the default one, where each
file is one tiny CREATE TABLE and the ledger row ugw writes with it is half the work.
Exit status: 0 when both targets are met, 1 when one is missed, 2 for a set-up
problem (sqlite3, psql, initdb or the release binary missing).

Standard library only (Python 3.11). All traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import summary  # noqa: E402  (bench/summary.py: this benchmark's table in RESULTS.md)

REPO_ROOT = Path(__file__).resolve().parent.parent
TARGET_SQLITE = 1.5
TARGET_PG = {"real": 1.0, "small": 1.2}


def migration(n: int) -> str:
    return f"CREATE TABLE t_{n} (id integer PRIMARY KEY, note text);\nINSERT INTO t_{n} (id, note) VALUES (1, 'row {n}');\n"


def real_pg(n: int) -> str:
    """One file of a real-shaped PostgreSQL history (our own SQL)."""
    if n % 10 == 0:
        return f"-- ugw:no-transaction\n-- an index built without blocking writes\nCREATE INDEX CONCURRENTLY t_{n - 1}_created ON t_{n - 1} (created_at);\n"
    parts = [
        f"-- {n}: accounts of kind {n}\n",
        f"CREATE TABLE t_{n} (\n  id bigserial PRIMARY KEY,\n  owner_id bigint NOT NULL,\n  name text NOT NULL DEFAULT '',\n"
        f"  begin timestamptz,\n  created_at timestamptz NOT NULL DEFAULT now(),\n  CONSTRAINT t_{n}_name CHECK (length(name) < 200)\n);\n",
        f"CREATE INDEX t_{n}_owner ON t_{n} (owner_id);\n",
        f"COMMENT ON TABLE t_{n} IS 'kind {n}; see docs';\n",
    ]
    if n % 3 == 0:
        parts.append(
            f"CREATE FUNCTION t_{n}_touch() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n  NEW.name := coalesce(NEW.name, '');\n  RETURN NEW;\nEND;\n$$;\n"
            f"CREATE TRIGGER t_{n}_touch BEFORE INSERT ON t_{n} FOR EACH ROW EXECUTE FUNCTION t_{n}_touch();\n"
        )
    if n % 4 == 0:
        parts.append(f"CREATE FUNCTION t_{n}_count() RETURNS bigint LANGUAGE sql BEGIN ATOMIC SELECT count(*) FROM t_{n}; END;\n")
    if n % 5 == 0:
        parts.append(f"CREATE TYPE t_{n}_state AS ENUM ('new', 'active', 'gone');\nALTER TABLE t_{n} ADD COLUMN state t_{n}_state;\n")
    if n > 2 and n % 7 == 0:
        earlier = n - 1 if (n - 1) % 10 else n - 2  # every tenth file makes no table
        parts.append(f"ALTER TABLE t_{earlier} ADD COLUMN note_{n} text;\n")
    return "".join(parts)


def real_sqlite(n: int) -> str:
    """One file of a real-shaped SQLite history (our own SQL)."""
    parts = [
        f"-- {n}: items of kind {n}\n",
        f"CREATE TABLE t_{n} (id INTEGER PRIMARY KEY, owner_id INTEGER NOT NULL, name TEXT NOT NULL DEFAULT '', begin TEXT, "
        f"created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP, CHECK (length(name) < 200));\n",
        f"CREATE INDEX t_{n}_owner ON t_{n} (owner_id);\n",
    ]
    if n % 3 == 0:
        parts.append(f"CREATE TRIGGER t_{n}_touch AFTER UPDATE ON t_{n} BEGIN UPDATE t_{n} SET name = trim(new.name) WHERE id = new.id; END;\n")
    if n % 5 == 0:
        parts.append(f"CREATE VIEW t_{n}_named AS SELECT id, name FROM t_{n} WHERE name <> '';\n")
    return "".join(parts)


def write_migrations(folder: Path, count: int, make=migration) -> list[Path]:
    folder.mkdir()
    files = []
    for n in range(1, count + 1):
        path = folder / f"{n:05d}_t{n}.sql"
        path.write_text(make(n))
        files.append(path)
    return files


def session_script(files: list[Path], include: str) -> str:
    """One client session: BEGIN/include/COMMIT per file, a no-transaction file bare."""
    return "".join(
        f"{include} {f}\n" if f.read_text().startswith("-- ugw:no-transaction") else f"BEGIN;\n{include} {f}\nCOMMIT;\n"
        for f in files
    )


def timed(cmd: list[str], **kwargs) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, **kwargs)
    return time.perf_counter() - started


def as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """A private PostgreSQL cluster, stopped and removed on exit."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="ugw-bench-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self.port = free_port()
        data = self.dir / "data"
        subprocess.run(as_postgres([shutil.which("initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8"]),
                       check=True, stdout=subprocess.DEVNULL)
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.dir}"
        subprocess.run(as_postgres([shutil.which("pg_ctl"), "-D", str(data), "-l", str(self.dir / "log"),
                                    "-o", options, "-w", "start"]), check=True, stdout=subprocess.DEVNULL)

    def url(self, db: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{db}?sslmode=disable"

    def psql(self, db: str) -> list[str]:
        return ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", db]

    def fresh(self, db: str) -> str:
        admin = self.psql("postgres")
        subprocess.run([*admin, "-c", f"DROP DATABASE IF EXISTS {db}"], check=True)
        subprocess.run([*admin, "-c", f"CREATE DATABASE {db}"], check=True)
        return db

    def stop(self) -> None:
        subprocess.run(as_postgres([shutil.which("pg_ctl"), "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop"]),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(self.dir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--bin-dir", type=Path, default=REPO_ROOT / "target" / "release")
    parser.add_argument("--out", type=Path, help="also write the report here")
    parser.add_argument("--skip-runbook", action="store_true", help="skip the slow psql -1 -f per file run")
    parser.add_argument("--shape", choices=["small", "real"], default="small",
                        help="small: CREATE TABLE + INSERT per file; real: a real-shaped history")
    parser.add_argument("--before-bin", type=Path, help="also time the ugw-migrate of this folder (an earlier build)")
    args = parser.parse_args()
    table = summary.Summary(f"migrate-{args.shape}", f"Applying {args.count} migrations, shape {args.shape} (bench/migrate.py)")

    ugw = args.bin_dir / "ugw-migrate"
    missing = [c for c in ("sqlite3", "psql", "initdb", "pg_ctl") if not shutil.which(c)]
    if missing or not ugw.exists():
        print(f"migrate bench: missing {', '.join(missing) or ugw} (apt-get install -y sqlite3 postgresql; make release)", file=sys.stderr)
        return 2

    work = Path(tempfile.mkdtemp(prefix="ugw-bench-migrate-"))
    cluster = None
    try:
        real = args.shape == "real"
        files = write_migrations(work / "migrations", args.count, real_pg if real else migration)
        sqlite_files = write_migrations(work / "sqlite-migrations", args.count, real_sqlite) if real else files
        script = work / "sqlite-script.sql"
        script.write_text(session_script(sqlite_files, ".read"))
        pg_script = work / "psql-script.sql"
        pg_script.write_text(session_script(files, "\\i"))
        if os.geteuid() == 0:
            os.chmod(work, 0o755)

        results: dict[str, list[float]] = {k: [] for k in ("ugw-sqlite", "sqlite3", "ugw-pg", "psql-session", "psql-1-per-file",
                                                           "before-sqlite", "before-pg")}
        common = ["--in", "none", "--output", "none", "--quiet", "--allow-unsafe"]
        ugw_args = ["up", "--dir", str(work / "migrations"), *common]
        sqlite_args = ["up", "--dir", str(work / ("sqlite-migrations" if real else "migrations")), *common]
        before = args.before_bin / "ugw-migrate" if args.before_bin else None
        # A fresh SQLite database is made only with --create (an earlier build may not know it).
        create = ["--create"]
        before_create = []
        if before:
            said = subprocess.run([str(before), "up", "--help"], capture_output=True, text=True).stdout
            before_create = ["--create"] if "--create" in said else []
        cluster = Cluster()
        for trial in range(args.trials):
            for name in ("ugw", "sqlite3"):
                db = work / f"{name}-{trial}.db"
                if name == "ugw":
                    results["ugw-sqlite"].append(timed([str(ugw), *sqlite_args, *create, "--db", f"sqlite://{db}"]))
                    if before:
                        db = work / f"before-{trial}.db"
                        results["before-sqlite"].append(timed([str(before), *sqlite_args, *before_create, "--db", f"sqlite://{db}"]))
                else:
                    with open(script) as stdin:
                        results["sqlite3"].append(timed(["sqlite3", "-bail", str(db)], stdin=stdin))
            db = cluster.fresh(f"ugw_{trial}")
            results["ugw-pg"].append(timed([str(ugw), *ugw_args, "--db", cluster.url(db)]))
            if before:
                db = cluster.fresh(f"before_{trial}")
                results["before-pg"].append(timed([str(before), *ugw_args, "--db", cluster.url(db)]))
            db = cluster.fresh(f"psql_{trial}")
            results["psql-session"].append(timed([*cluster.psql(db), "-f", str(pg_script)]))
            if not args.skip_runbook and trial == 0:
                db = cluster.fresh("runbook")
                started = time.perf_counter()
                for f in files:
                    # A no-transaction file (CREATE INDEX CONCURRENTLY) cannot run under -1: a
                    # runbook runs it bare, as the psql session does.
                    single = [] if f.read_text().startswith("-- ugw:no-transaction") else ["-1"]
                    subprocess.run([*cluster.psql(db), *single, "-f", str(f)], check=True, stdout=subprocess.DEVNULL)
                results["psql-1-per-file"].append(time.perf_counter() - started)
            print(f"trial {trial + 1}/{args.trials} done", file=sys.stderr)
    finally:
        if cluster:
            cluster.stop()
        shutil.rmtree(work, ignore_errors=True)

    med = {k: statistics.median(v) for k, v in results.items() if v}
    sqlite_ratio = med["ugw-sqlite"] / med["sqlite3"]
    pg_ratio = med["ugw-pg"] / med["psql-session"]
    lines = [
        "# Migration throughput",
        "",
        f"- command: `python3 bench/migrate.py --count {args.count} --trials {args.trials} --shape {args.shape}`",
        f"- machine: nproc {os.cpu_count()}, uname -r {platform.release()}, {platform.machine()}, Python {platform.python_version()}",
        f"- {args.count} migrations, " + ("a real-shaped history (tables, indexes, functions, triggers, enums; every tenth PostgreSQL file "
        "CREATE INDEX CONCURRENTLY outside a transaction)" if args.shape == "real" else "each `CREATE TABLE` + one `INSERT`")
        + f"; median of {args.trials} trials, each on a fresh database; binaries from {args.bin_dir}",
        "- PostgreSQL: a private cluster on 127.0.0.1 with fsync on; SQLite: its defaults (rollback journal, synchronous FULL)",
        "",
        "| engine | runner | seconds | per migration ms | ratio |",
        "|---|---|---:|---:|---:|",
        f"| SQLite | ugw-migrate up | {med['ugw-sqlite']:.2f} | {1000 * med['ugw-sqlite'] / args.count:.2f} | {sqlite_ratio:.2f}x |",
        f"| SQLite | one sqlite3, BEGIN/.read/COMMIT per file | {med['sqlite3']:.2f} | {1000 * med['sqlite3'] / args.count:.2f} | 1.00x |",
        f"| PostgreSQL | ugw-migrate up (one connection) | {med['ugw-pg']:.2f} | {1000 * med['ugw-pg'] / args.count:.2f} | {pg_ratio:.2f}x |",
        f"| PostgreSQL | one psql session, BEGIN/\\i/COMMIT per file | {med['psql-session']:.2f} | {1000 * med['psql-session'] / args.count:.2f} | 1.00x |",
    ]
    for engine, key, floor in (("SQLite", "before-sqlite", "sqlite3"), ("PostgreSQL", "before-pg", "psql-session")):
        if key in med:
            lines.append(f"| {engine} | ugw-migrate up, {args.before_bin} (before) | {med[key]:.2f} | {1000 * med[key] / args.count:.2f} | {med[key] / med[floor]:.2f}x |")
    if "psql-1-per-file" in med:
        runbook = med["psql-1-per-file"]
        lines.append(f"| PostgreSQL | psql -1 -f FILE per file (runbooks; one trial) | {runbook:.2f} | {1000 * runbook / args.count:.2f} | {runbook / med['psql-session']:.2f}x |")
    sqlite_ok = sqlite_ratio <= TARGET_SQLITE
    pg_ok = pg_ratio <= TARGET_PG[args.shape]
    lines += [
        "",
        f"- targets: SQLite <= {TARGET_SQLITE}x: {'PASS' if sqlite_ok else 'FAIL'} ({sqlite_ratio:.2f}x); "
        f"PostgreSQL <= {TARGET_PG[args.shape]}x: {'PASS' if pg_ok else 'FAIL'} ({pg_ratio:.2f}x)",
        "- ugw-migrate also writes a ledger row per migration in the same transaction; the floors write none.",
    ]
    report = "\n".join(lines) + "\n"
    table.row("SQLite, seconds", f"{med['ugw-sqlite']:.2f} s", f"{med['sqlite3']:.2f} s (one sqlite3, BEGIN/.read/COMMIT per file)",
              sqlite_ratio, f"<= {TARGET_SQLITE}x", sqlite_ok)
    table.row("PostgreSQL, seconds", f"{med['ugw-pg']:.2f} s", f"{med['psql-session']:.2f} s (one psql session, BEGIN/\\i/COMMIT per file)",
              pg_ratio, f"<= {TARGET_PG[args.shape]}x", pg_ok)
    if "psql-1-per-file" in med:
        table.row("PostgreSQL, against what runbooks do", f"{med['ugw-pg']:.2f} s",
                  f"{med['psql-1-per-file']:.2f} s (psql -1 -f FILE per file, one trial)", med["ugw-pg"] / med["psql-1-per-file"])
    table.write()
    print(report)
    if args.out:
        args.out.write_text(report)
    return 0 if sqlite_ok and pg_ok else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""A deterministic data folder shaped like a service's: 40% compressible logs, 40% random
blobs, 15% small JSON files (~39k of them at 512), and a SQLite file. The same mix and seed
as the shared benchmark's data set, so figures compare; standard library only.
Usage: backup_dataset.py DIR [SCALE_MiB]  (512 gives about 570 MiB)"""
import os
import random
import sqlite3
import sys

WORDS = ["GET", "POST", "/api/repos", "/health/ready", "200", "503", "user", "commit",
         "push", "merge", "INFO", "WARN", "ERROR", "latency_ms", "validator", "block"]


def logs(root, rnd, mib):
    os.makedirs(f"{root}/logs", exist_ok=True)
    for i in range(max(1, mib // 32)):
        with open(f"{root}/logs/app-{i:03}.log", "w") as f:
            size = 0
            while size < 32 << 20:
                line = " ".join(rnd.choice(WORDS) for _ in range(12)) + f" id={rnd.randrange(1 << 30)}\n"
                f.write(line)
                size += len(line)


def blobs(root, rnd, mib):
    os.makedirs(f"{root}/objects", exist_ok=True)
    for i in range(max(1, mib // 8)):
        with open(f"{root}/objects/blob-{i:04}.bin", "wb") as f:
            f.write(rnd.randbytes(8 << 20))


def small_files(root, rnd, mib):
    n = total = 0
    while total < mib << 20:
        folder = f"{root}/repos/r{n // 200:03}"
        os.makedirs(folder, exist_ok=True)
        refs = ",".join(str(rnd.randrange(1 << 30)) for _ in range(rnd.randrange(1, 400)))
        body = '{"name": "%s", "size": %d, "refs": [%s]}\n' % (rnd.choice(WORDS), rnd.randrange(1 << 20), refs)
        with open(f"{folder}/f{n:06}.json", "w") as f:
            f.write(body)
        total += len(body)
        n += 1


def database(root, rnd, mib):
    db = sqlite3.connect(f"{root}/app.db")
    db.execute("create table if not exists events(id integer primary key, kind text, body text)")
    rows = mib * 1024 * 1024 // 120
    db.executemany("insert into events(kind, body) values (?, ?)",
                   ((rnd.choice(WORDS), " ".join(rnd.choice(WORDS) for _ in range(14))) for _ in range(rows)))
    db.commit()
    db.close()


def main():
    root = sys.argv[1]
    scale = int(sys.argv[2]) if len(sys.argv) > 2 else 512
    rnd = random.Random(42)
    os.makedirs(root, exist_ok=True)
    # The order matters: one generator, so each part depends on the ones before it.
    logs(root, rnd, scale * 40 // 100)
    blobs(root, rnd, scale * 40 // 100)
    small_files(root, rnd, scale * 15 // 100)
    database(root, rnd, scale * 5 // 100)


main()

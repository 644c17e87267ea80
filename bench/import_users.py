"""CSV user import, end to end through the job services: 100k rows (target >= 15,000 committed rows/s).

A CSV with English and Chinese names, international phones, time zones and languages is written
to a temporary file, uploaded as a job (decode, sniff, count), previewed (the dry run) and
confirmed; the import runs inline (parse -> validate -> match -> bulk commit in one transaction).
``committed_rows_per_s`` is rows committed / wall time of the confirm. The same file is then
imported again, when every row is unchanged (the cost of matching alone).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import tempfile
import time

DOMAIN = "bench-import.signalbox.test"
ZONES = ["Asia/Shanghai", "Europe/London", "America/New_York", "Asia/Singapore", "UTC", "Australia/Sydney"]
EN_FIRST = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Margaret", "Linus"]
EN_LAST = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Hamilton"]
ZH_FIRST = ["伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "洋", "艳"]
ZH_LAST = ["王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周"]


def write_csv(path: str, rows: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write("email,first_name,last_name,phone,timezone,locale\n")
        for i in range(rows):
            if i % 3 == 0:
                first, last, locale = rng.choice(ZH_FIRST), rng.choice(ZH_LAST), "zh-hans"
                phone = f"+86 138 {i // 10000 % 10000:04d} {i % 10000:04d}"
            else:
                first, last, locale = rng.choice(EN_FIRST), rng.choice(EN_LAST), "en"
                phone = f"+1 415 555 {i % 10000:04d}" if i % 3 == 1 else f"+44 7911 {i % 1000000:06d}"
            out.write(f"User.{i}@{DOMAIN},{first},{last},{phone},{rng.choice(ZONES)},{locale}\n")


def run(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench import_users")
    parser.add_argument("--rows", type=int, default=100_000)
    opts = parser.parse_args(argv)

    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.db import connection

    from dashboard.imports import import_job_confirm, import_job_preview, import_job_upload
    from dashboard.models import ImportJob
    from notifications.models import RecipientProfile

    User = get_user_model()
    settings.SIGNALBOX_IMPORT_SYNC_ROWS = opts.rows  # run inline: time the import, not the queue
    settings.MEDIA_ROOT = media = tempfile.mkdtemp(prefix="signalbox-bench-media-")

    def clear() -> None:
        ids = list(User.objects.filter(email__endswith=f"@{DOMAIN}").values_list("pk", flat=True))
        for start in range(0, len(ids), 5000):
            batch = ids[start : start + 5000]
            RecipientProfile.objects.filter(user_id__in=batch).delete()
            User.objects.filter(pk__in=batch)._raw_delete(User.objects.db)
        if connection.vendor == "postgresql":  # reclaim the deleted rows: the email lookups scan the table
            with connection.cursor() as cursor:
                cursor.execute(f"VACUUM ANALYZE {User._meta.db_table}, {RecipientProfile._meta.db_table}")

    clear()
    ImportJob.objects.filter(original_name="bench-users.csv").delete()
    fd, path = tempfile.mkstemp(suffix=".csv")
    os.close(fd)
    try:
        write_csv(path, opts.rows)
        with open(path, "rb") as handle:
            data = handle.read()
        existing_users = User.objects.count()
        cpu_seconds: list[float] = []

        def one_import() -> tuple[ImportJob, float, float, float]:
            started = time.perf_counter()
            job = import_job_upload(upload=SimpleUploadedFile("bench-users.csv", data, "text/csv"))
            uploaded = time.perf_counter()
            import_job_preview(job=job, mapping=job.mapping)
            previewed = time.perf_counter()
            cpu = time.process_time()
            job = import_job_confirm(job=job)
            done = time.perf_counter()
            cpu_seconds.append(time.process_time() - cpu)
            assert job.status == ImportJob.Status.COMPLETED, (job.status, job.error)
            return job, uploaded - started, previewed - uploaded, done - previewed

        first, upload_s, preview_s, commit_s = one_import()
        assert first.new_rows == opts.rows, (first.new_rows, first.invalid_rows, first.error)
        again, _, _, unchanged_s = one_import()
        assert again.unchanged_rows == opts.rows, again.unchanged_rows
    finally:
        os.unlink(path)
        shutil.rmtree(media, ignore_errors=True)
        clear()
        ImportJob.objects.filter(original_name="bench-users.csv").delete()
    return {
        "committed_rows_per_s": round(opts.rows / commit_s),
        "rows": opts.rows,
        "commit_s": round(commit_s, 2),
        # CPU time of this process during the commit (SQLite runs in-process): steadier than wall
        # time on a busy machine.
        "commit_cpu_s": round(cpu_seconds[0], 2),
        "upload_inspect_s": round(upload_s, 2),
        "preview_s": round(preview_s, 2),
        "preview_rows_per_s": round(opts.rows / preview_s),
        "reimport_unchanged_rows_per_s": round(opts.rows / unchanged_s),
        "file_mb": round(len(data) / 1048576, 2),
        "users_before": existing_users,
        "database": connection.vendor,
        "target_committed_rows_per_s": 15_000,
    }

"""Regenerates sample-week.csv: a synthetic week of diurnal traffic with a weekend dip and spikes."""
import math
import random
from datetime import datetime, timedelta, timezone

random.seed(20261128)
start = datetime(2026, 11, 2, 0, 0, tzinfo=timezone.utc)  # a Monday
rows = ["timestamp,reads,writes"]
for step in range(7 * 24 * 12):
    t = start + timedelta(minutes=5 * step)
    hour = t.hour + t.minute / 60
    day = 0.55 + 0.45 * math.sin((hour - 9) / 24 * 2 * math.pi)  # peak mid-afternoon UTC
    week = 0.6 if t.weekday() >= 5 else 1.0
    spike = 2.5 if random.random() < 0.004 else 1.0
    noise = random.gauss(1.0, 0.06)
    reads = max(0.0, 400 * day * week * spike * noise)
    writes = max(0.0, 120 * day * week * noise + random.gauss(0, 4))
    rows.append(f"{t:%Y-%m-%dT%H:%M:%SZ},{reads:.3f},{writes:.3f}")
with open(__file__.replace("make_sample.py", "sample-week.csv"), "w") as fh:
    fh.write("\n".join(rows) + "\n")

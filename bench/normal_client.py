"""What the hostile-client benchmarks (slowloris.sh, stalled-readers.sh) share: a normal client that GETs a
file while the attack runs, and the daemon's RSS (and whatever else the caller samples) every 5 s."""
import time
import urllib.request


def rss_mib(pid):
    """The resident set of process `pid`, in MiB (0 once it is gone)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    return 0


def observe(url, length, pid, stop, pause, sample=None):
    """GETs `url` every `pause` s until `stop` (a time.monotonic() value), checking the body is `length`
    bytes; every 5 s records the RSS of `pid` and calls `sample()` if given. Returns (sorted latencies in s,
    failures, RSS samples in MiB)."""
    latencies, failures, samples, next_sample = [], 0, [], 0
    while time.monotonic() < stop:
        started = time.monotonic()
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if len(response.read()) != length:
                    raise OSError("short body")
            latencies.append(time.monotonic() - started)
        except Exception:
            failures += 1
        if time.monotonic() >= next_sample:
            samples.append(rss_mib(pid))
            if sample:
                sample()
            next_sample = time.monotonic() + 5
        time.sleep(pause)
    latencies.sort()
    return latencies, failures, samples


def percentile_ms(latencies, p):
    """The `p` quantile of sorted `latencies`, in ms."""
    return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 if latencies else float("nan")

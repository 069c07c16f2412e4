#!/usr/bin/env python3
"""Offline count of what sharing by content-defined chunk holds for a set of directory trees: an
independent implementation of the cache's cutting rule (FastCDC gear hash from splitmix64 seed
0x5045474553484152, normalized masks, min avg/4, max 4*avg, a forced boundary at each 1 MiB window of a
file), chunk identity from BLAKE2b rather than XXH3, so that it checks the daemon instead of repeating it.

    bench/chunk_count.py [--average 4096] DIR...   -> JSON: fileBytes, wholeFileUniqueBytes, chunkUniqueBytes
"""
import argparse
import hashlib
import json
import os

MASK = (1 << 64) - 1
WINDOW = 1 << 20


def gear_table():
    state, table = 0x5045_4745_5348_4152, []
    for _ in range(256):
        state = (state + 0x9E37_79B9_7F4A_7C15) & MASK
        value = state
        value = ((value ^ (value >> 30)) * 0xBF58_476D_1CE4_E5B9) & MASK
        value = ((value ^ (value >> 27)) * 0x94D0_49BB_1331_11EB) & MASK
        table.append(value ^ (value >> 31))
    return table


def cut(window, average, gear):
    """Lengths of the chunks of one window (its end is an end of input)."""
    bits = average.bit_length() - 1
    minimum, maximum = average // 4, average * 4
    strict = ~(MASK >> (bits + 2)) & MASK
    loose = ~(MASK >> (bits - 2)) & MASK
    start, count = 0, len(window)
    while start < count:
        rest = count - start
        if rest <= minimum:
            yield rest
            return
        normal, limit = min(average, rest), min(maximum, rest)
        value, index, length = 0, minimum, None
        while index < normal:
            value = ((value << 1) + gear[window[start + index]]) & MASK
            index += 1
            if not value & strict:
                length = index
                break
        if length is None:
            while index < limit:
                value = ((value << 1) + gear[window[start + index]]) & MASK
                index += 1
                if not value & loose:
                    length = index
                    break
        length = length or limit
        yield length
        start += length


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--average", type=int, default=4096)
    parser.add_argument("dirs", nargs="+")
    arguments = parser.parse_args()
    gear = gear_table()
    chunks, files = set(), set()
    report = {"fileBytes": 0, "wholeFileUniqueBytes": 0, "chunkUniqueBytes": 0, "chunks": 0}
    for top in arguments.dirs:
        for directory, _, names in os.walk(top):
            for name in names:
                path = os.path.join(directory, name)
                if os.path.islink(path) or not os.path.isfile(path):
                    continue
                data = open(path, "rb").read()
                report["fileBytes"] += len(data)
                digest = hashlib.sha256(data).digest()
                if digest not in files:
                    files.add(digest)
                    report["wholeFileUniqueBytes"] += len(data)
                for base in range(0, len(data), WINDOW):
                    window = data[base:base + WINDOW]
                    offset = 0
                    for length in cut(window, arguments.average, gear):
                        chunk = window[offset:offset + length]
                        offset += length
                        report["chunks"] += 1
                        identity = (hashlib.blake2b(chunk, digest_size=16).digest(), length)
                        if identity not in chunks:
                            chunks.add(identity)
                            report["chunkUniqueBytes"] += length
    print(json.dumps(report))


if __name__ == "__main__":
    main()

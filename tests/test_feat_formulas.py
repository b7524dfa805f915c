"""Frame count and mel window start of every frame, for mel lengths 0..1500 and a few long ones,
against the reference's Python expressions (SyncTalk_2D): run by ctest with audio_feat_dump."""
import subprocess
import sys


def reference(n):
    if n < 16:
        return 0, []
    L = int((n - 16) / 80. * 25) + 2
    starts = []
    for k in range(L):
        start = int(80. * (k / 25.))
        end = start + 16
        if end > n:
            end = n
            start = end - 16
        starts.append(start)
    return L, starts


def check(dump, lo, hi):
    out = subprocess.run([dump, str(lo), str(hi)], check=True, capture_output=True, text=True).stdout
    got = {}
    for line in out.splitlines():
        f = [int(v) for v in line.split()]
        if len(f) == 2:
            got[f[0]] = (f[1], [])
        else:
            got[f[0]][1].append(f[2])
    bad = 0
    for n in range(lo, hi + 1):
        if got.get(n) != reference(n):
            bad += 1
            if bad <= 5:
                print(f"FAIL n={n}: got L={got.get(n, (None,))[0]}, reference L={reference(n)[0]}")
    return bad


def main():
    dump = sys.argv[1]
    bad = check(dump, 0, 1500) + check(dump, 89990, 90010)
    print("ok" if bad == 0 else f"{bad} lengths differ")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

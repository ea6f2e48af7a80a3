#!/usr/bin/env python3
"""Generate the 16-entry logarithm table and polynomial of src/math.rs
(c32::LN_INV16, LN_HI16, LN_LO16, LN_R16; used by ln_unit_table16).

Usage: python3 scripts/ln_table16.py      (needs mpmath)

Interval j of the mantissa m in [1, 2) is [1 + j/16, 1 + (j+1)/16).
INV16[j] is the f32 nearest 1/(centre), except exactly 1 for j = 0 and 1/2
for j = 15, so that r = m*inv - 1 is exact next to u = 1 (where ln u is
small and must keep its relative accuracy). HI16[j] + LO16[j] = -ln(INV16[j]):
HI16 rounded to a multiple of 2^-16 (so k*LN2_HI + HI16[j] is exact in one
multiply-add), LO16 the f32 nearest the rest. ln(1+r) ~ r + r^2 Q(r) with Q
a cubic fitted to relative error on every interval's r range (1% wider) by
iteratively reweighted least squares at Chebyshev nodes, in 200-bit
arithmetic; the coefficients are rounded to f32 and the error re-measured
with those on a dense grid. Prints the bit patterns and the error.
"""
import struct

import mpmath as mp

mp.mp.prec = 200


def f32(x):
    return struct.unpack("f", struct.pack("f", float(x)))[0]


def bits(x):
    return struct.unpack("I", struct.pack("f", x))[0]


LN2_HI = struct.unpack("f", struct.pack("I", 0x3F317200))[0]
LN2_LO = struct.unpack("f", struct.pack("I", 0x35BFBE8E))[0]

inv = []
for j in range(16):
    if j == 0:
        inv.append(1.0)
    elif j == 15:
        inv.append(0.5)
    else:
        inv.append(f32(1 / (1 + (j + 0.5) / 16)))
hi, lo = [], []
for v in inv:
    L = -mp.log(mp.mpf(v))
    h = mp.nint(L * 2**16) / 2**16
    hi.append(float(h))
    lo.append(f32(L - h))
assert hi[15] == LN2_HI and lo[15] == LN2_LO, "the last entry must be LN2_HI, LN2_LO"

rmin = min((1 + j / 16) * v - 1 for j, v in enumerate(inv))
rmax = max((1 + (j + 1) / 16) * v - 1 for j, v in enumerate(inv))
a, b = rmin * 1.01, rmax * 1.01

DEG = 4  # coefficients of Q: c2 + c3 r + c4 r^2 + c5 r^3
N = 400
nodes = [(a + b) / 2 + (b - a) / 2 * mp.cos(mp.pi * (k + 0.5) / N) for k in range(N)]
nodes = [r for r in nodes if abs(r) > 1e-12]
w = [1] * len(nodes)
for _ in range(30):
    A = mp.matrix(len(nodes), DEG)
    y = mp.matrix(len(nodes), 1)
    for i, r in enumerate(nodes):
        L = mp.log(1 + r)
        sc = r * r / L * w[i]
        for k in range(DEG):
            A[i, k] = r**k * sc
        y[i] = (L - r) / (r * r) * sc
    c = mp.lu_solve(A.T * A, A.T * y)
    errs = []
    for r in nodes:
        L = mp.log(1 + r)
        q = sum(c[k] * r**k for k in range(DEG))
        errs.append(abs((r + r * r * q - L) / L))
    m = max(errs)
    w = [wi * (1 + 2 * e / m) for wi, e in zip(w, errs)]
cf = [f32(c[k]) for k in range(DEG)]
worst = 0
for i in range(20001):
    r = a + (b - a) * i / 20000
    if abs(r) < 1e-12:
        continue
    L = mp.log(1 + r)
    q = sum(mp.mpf(cf[k]) * r**k for k in range(DEG))
    worst = max(worst, abs((r + r * r * q - L) / L))

print("r in [%.6f, %.6f]; relative error with f32 coefficients: 2^%s"
      % (a, b, mp.nstr(mp.log(worst, 2), 4)))
for name, xs in [("LN_INV16", inv), ("LN_HI16", hi), ("LN_LO16", lo), ("LN_R16", cf)]:
    print(name, ", ".join("0x%08x" % bits(x) for x in xs))

#!/usr/bin/env python3
"""Generate PyTorch golden reference values for the loss-kernels test-suite.

What it does
------------
Builds a fixed, seeded set of loss cases (MSE, binary cross entropy, binary
cross entropy with logits, cross entropy with class-index targets, cross
entropy with probability targets), evaluates each with PyTorch (forward value
and the gradient w.r.t. the input via autograd) and writes them to
``tests/data/golden.json``.  Every case is also recomputed with an independent
NumPy "hand formula" and the script asserts that it matches torch, so the
formulas written below are verified, not guessed.

How to run (NOT run by CI; the JSON output is committed)::

    pip install torch numpy && python3 scripts/golden.py

Output is deterministic: every case seeds ``torch.manual_seed`` from the CRC32
of its name, and ``torch.set_num_threads(1)`` fixes the reduction order.

JSON schema: {"torch_version", "generated_by", "cases": [...]} (plus a
top-level "notes" array only if a case had to be skipped because torch raised).
Each case: name, loss (mse|bce|bce_logits|cross_entropy|cross_entropy_dense),
dtype (f32|f64), reduction (mean|sum|none), classes (C for cross_entropy*,
else 0), input, target, weight, pos_weight, ignore_index, label_smoothing,
loss_value (torch forward result: scalar for mean/sum, list for none; named
loss_value because "loss" already holds the loss kind and JSON/serde reject a
duplicate key), grad (d loss / d input; for reduction none:
d loss.sum() / d input).  Non-finite floats are written as
the strings "inf", "-inf", "nan"; finite floats as JSON numbers via Python
float repr (exact round trip for f32 and f64 values).  f32 cases are computed
entirely in float32 by torch.

PyTorch semantics observed (and asserted below) that a reimplementation may
get wrong.  Notation: eps = label_smoothing, C = classes, w = class weights
(all ones if absent), W = sum_c w_c, logp = log_softmax(x) per row,
p = softmax(x), y_i = label of row i, K = set of rows with y_i != ignore_index.

(a) cross_entropy, class-index targets, weights + ignore_index + smoothing,
    reduction mean:
        row_i  = (1-eps) * w[y_i] * (-logp_i[y_i])
                 + (eps/C) * sum_c w_c * (-logp_i[c])        (i in K; 0 if ignored)
        denom  = sum_{i in K} w[y_i]
        loss   = sum_{i in K} row_i / denom
    i.e. BOTH the NLL part and the smoothing part are divided by the same
    weighted denominator sum of w[target] (the smoothing term is NOT divided
    by W nor by the row count).  sum: sum_i row_i.  none: row_i (ignored rows
    are 0).  grad of row_i w.r.t. x_i[j]:
        (1-eps) * w[y_i] * (p_i[j] - [j == y_i]) + (eps/C) * (W * p_i[j] - w_j)
    times 1/denom for mean; ignored rows get an exact 0 gradient.  If K is
    empty, mean is 0/0 = nan but the gradient is all zeros (not nan).  Note
    the smoothing term makes the gradient at a -inf (masked) logit equal to
    -(eps/C) * w_j * scale, not 0.  torch only evaluates the smoothing term
    when eps > 0 (so -inf logits are harmless when eps == 0).
(b) same without weights: denom = |K| (count of non-ignored rows), w_c = 1,
    W = C:  row_i = (1-eps)(-logp_i[y_i]) + (eps/C) sum_c (-logp_i[c]).
(c) binary_cross_entropy_with_logits with weight w (per element) and
    pos_weight pw (broadcast along the last dim):
        lw   = 1 + (pw - 1) * y
        loss = w * ((1 - y) * x - lw * logsigmoid(x))
             = w * ((1 - y) * x + lw * softplus(-x))
        grad = w * (lw * sigmoid(x) - pw * y)   (= w*((1 + pw*y - y)*sigmoid(x) - pw*y))
    times 1/n for mean.  pos_weight scales only the positive (y) part of
    both loss and gradient: grad = w*(sigmoid(x)*(1-y) - pw*y*(1-sigmoid(x))).
(d) binary_cross_entropy (probabilities p):
        loss = -w * (y * max(log(p), -100) + (1 - y) * max(log1p(-p), -100))
        grad = w * (p - y) / max(p * (1 - p), EPS)     (times 1/n for mean)
    where EPS is the float32 constant 1e-12f = 9.999999960041972e-13, also
    for float64 (torch declares EPSILON as float and casts it).  So at p = 0,
    y = 1 the grad is -1/EPS = -1000000003995.8029 in f64; at p = 0, y = 0
    it is exactly 0; p = 1, y = 0 gives +1/EPS; p = 1, y = 1 gives 0.
    The clamp also bites for tiny nonzero p: p = 1e-13, y = 0 gives grad
    1e-13/EPS = 0.1000000004 (not 1.0), likewise for 1 - p < ~1e-12.
    In f32 the grad formula matches torch bit for bit; the f32 forward can
    differ from a correctly rounded log/log1p by ~1 ulp (vectorised log).
    The -100 clamp means p = 0 (or 1) with the "wrong" target gives loss 100
    per unit weight (loss is exactly -0.0 for p=1,y=1 in torch: -(1*0 + 0*-100)).
(e) cross_entropy with probability targets t ("dense"): smoothing is applied
    to the target, t' = (1-eps)*t + eps/C, then
        row_i = -sum_c w_c * t'_i[c] * logp_i[c]
    and mean divides by the NUMBER OF ROWS N, not by any weight sum (unlike
    (a)).  grad = (sum_c w_c t'_i[c]) * p_i[j] - w_j * t'_i[j]  (times 1/N).
    A -inf logit with target probability 0 gives 0 * -inf = nan loss.
(f) -inf logits: with class-index targets and eps = 0, a -inf logit on a
    non-target class is harmless (p = 0); a -inf TARGET logit gives loss inf
    but a finite gradient (p - onehot).  With eps > 0 any -inf logit in a
    non-ignored row gives loss inf (smoothing sums -logp over all classes),
    gradient still finite.  A -inf logit whose class weight is 0 gives
    0 * inf = nan under smoothing.
(g) mse on empty input: mean is nan, sum is 0, none is [].  Cross entropy on
    an empty batch: mean nan, sum 0.  Mean over a batch whose every target is
    ignored: nan (gradient all 0).
(h) Signed zeros: torch returns -0.0 for some exact-zero losses (cross
    entropy rows whose target holds all the probability mass, bce with
    p = 1, y = 1).  Compare with ==, not bitwise.
(i) A row whose logits are all -inf gives nan loss and nan gradient for that
    row.  Logits of +-1e30 are handled exactly (max-subtraction), so a row
    [1e30, 0, -1e30, 3] with target 1 has loss 1e30 (f32: 1.0000000150474662e30).
(j) float32 results can be subnormal (e.g. bce_logits at x = 88.7, y = 1:
    3.0066e-39); compare small values with an absolute tolerance.
"""

import json
import math
import os
import sys
import zlib

import numpy as np
import torch
import torch.nn.functional as F

torch.set_num_threads(1)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "data", "golden.json")

DT = {"f32": torch.float32, "f64": torch.float64}
NP = {"f32": np.float32, "f64": np.float64}
# float32 1e-12 used by torch's binary_cross_entropy backward for every dtype.
BCE_EPS = float(np.float32(1e-12))

CASES = []
NOTES = []
NAMES = set()


def seed(name):
    torch.manual_seed(zlib.crc32(name.encode()))


# --------------------------------------------------------------------------
# serialisation
# --------------------------------------------------------------------------

def num(x):
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def flist(t):
    if t is None:
        return None
    return [num(v) for v in t.detach().reshape(-1).tolist()]


# --------------------------------------------------------------------------
# hand formulas (NumPy, computed in the case dtype)
# --------------------------------------------------------------------------

def assert_close(name, what, hand, got, dtype):
    hand = np.asarray(hand, dtype=np.float64).reshape(-1)
    got = np.asarray(got, dtype=np.float64).reshape(-1)
    assert hand.shape == got.shape, (name, what, hand.shape, got.shape)
    if dtype == "f32":
        rtol, atol_rel = 2e-5, 2e-6
    else:
        rtol, atol_rel = 1e-11, 1e-13
    finite = np.isfinite(got)
    scale = np.max(np.abs(got[finite])) if finite.any() else 0.0
    atol = atol_rel * max(scale, 1e-30)
    ok = np.isclose(hand, got, rtol=rtol, atol=atol, equal_nan=True)
    # isclose treats inf == inf (same sign) as close.
    if not ok.all():
        bad = np.nonzero(~ok)[0][:5]
        raise AssertionError(
            f"{name}: hand formula for {what} disagrees with torch at {bad.tolist()}: "
            f"hand={hand[bad].tolist()} torch={got[bad].tolist()}")


def np_log_softmax(x):
    m = np.max(x, axis=1, keepdims=True)
    z = x - m
    lse = np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    return z - lse


def hand_mse(x, y, red, **_):
    d = x - y
    l = d * d
    g = 2 * d
    n = x.size
    if red == "none":
        return l, g
    if red == "sum":
        return l.sum(), g
    return (l.sum() / n if n else np.nan), g / n if n else g


def hand_bce(x, y, red, w=None, **_):
    dt = x.dtype.type
    lo = np.maximum(np.log(x), dt(-100))
    l1 = np.maximum(np.log1p(-x), dt(-100))
    l = -(y * lo + (1 - y) * l1)
    g = (x - y) / np.maximum(x * (1 - x), dt(BCE_EPS))
    if w is not None:
        l = l * w
        g = g * w
    return reduce_elem(l, g, red)


def hand_bce_logits(x, y, red, w=None, pw=None, **_):
    dt = x.dtype.type
    logsig = np.minimum(x, dt(0)) - np.log1p(np.exp(-np.abs(x)))
    sig = np.where(x >= 0, 1 / (1 + np.exp(-np.abs(x))), np.exp(-np.abs(x)) / (1 + np.exp(-np.abs(x))))
    if pw is not None:
        P = pw.size
        pwb = np.broadcast_to(pw, (x.size // P, P)).reshape(-1)
    else:
        pwb = np.ones_like(x)
    lw = 1 + (pwb - 1) * y
    l = (1 - y) * x - lw * logsig
    g = lw * sig - pwb * y
    if w is not None:
        l = l * w
        g = g * w
    return reduce_elem(l, g, red)


def reduce_elem(l, g, red):
    n = l.size
    if red == "none":
        return l, g
    if red == "sum":
        return l.sum(), g
    return l.sum() / n, g / n


def hand_ce(x, y, red, w=None, C=None, ignore_index=-100, eps=0.0, **_):
    dt = x.dtype.type
    x = x.reshape(-1, C)
    N = x.shape[0]
    wv = np.ones(C, dtype=x.dtype) if w is None else w
    W = wv.sum()
    eps = dt(eps)
    logp = np_log_softmax(x) if N else x
    p = np.exp(logp)
    rows = np.zeros(N, dtype=x.dtype)
    grad = np.zeros_like(x)
    denom = dt(0)
    for i in range(N):
        if y[i] == ignore_index:
            continue
        k = int(y[i])
        denom += wv[k]
        nll = -logp[i, k]
        smooth = -(wv * logp[i]).sum()
        onehot = np.zeros(C, dtype=x.dtype)
        onehot[k] = 1
        rows[i] = (1 - eps) * wv[k] * nll
        grad[i] = (1 - eps) * wv[k] * (p[i] - onehot)
        if eps:  # torch only evaluates the smoothing term when eps > 0
            rows[i] += (eps / dt(C)) * smooth
            grad[i] += (eps / dt(C)) * (W * p[i] - wv)
    if red == "none":
        return rows, grad
    if red == "sum":
        return rows.sum(), grad
    kept = np.array([v != ignore_index for v in y], dtype=bool)
    with np.errstate(all="ignore"):
        # ignored rows keep an exact 0 gradient even when denom == 0
        grad[kept] = grad[kept] / denom
        return rows.sum() / denom, grad


def hand_ce_dense(x, t, red, w=None, C=None, eps=0.0, **_):
    dt = x.dtype.type
    x = x.reshape(-1, C)
    t = t.reshape(-1, C)
    N = x.shape[0]
    wv = np.ones(C, dtype=x.dtype) if w is None else w
    eps = dt(eps)
    tt = (1 - eps) * t + eps / dt(C) if eps else t
    logp = np_log_softmax(x)
    p = np.exp(logp)
    rows = -(wv * tt * logp).sum(axis=1)
    s = (wv * tt).sum(axis=1, keepdims=True)
    grad = s * p - wv * tt
    if red == "none":
        return rows, grad
    if red == "sum":
        return rows.sum(), grad
    return rows.sum() / dt(N), grad / dt(N)


# --------------------------------------------------------------------------
# case builder
# --------------------------------------------------------------------------

def add(name, loss, dtype, reduction, inp, target, weight=None, pos_weight=None,
        classes=0, ignore_index=None, label_smoothing=0.0):
    assert name not in NAMES, name
    NAMES.add(name)
    dt = DT[dtype]
    x = inp.detach().to(dt).clone().requires_grad_(True)
    if loss == "cross_entropy":
        tgt = target.to(torch.int64)
    else:
        tgt = target.to(dt)
    w = None if weight is None else weight.to(dt)
    pw = None if pos_weight is None else pos_weight.to(dt)
    try:
        if loss == "mse":
            out = F.mse_loss(x, tgt, reduction=reduction)
        elif loss == "bce":
            out = F.binary_cross_entropy(x, tgt, weight=w, reduction=reduction)
        elif loss == "bce_logits":
            if pw is not None:
                P = pw.numel()
                assert x.numel() % P == 0
                xv, tv = x.view(-1, P), tgt.view(-1, P)
                wv = None if w is None else w.view(-1, P)
                out = F.binary_cross_entropy_with_logits(
                    xv, tv, weight=wv, pos_weight=pw, reduction=reduction)
            else:
                out = F.binary_cross_entropy_with_logits(x, tgt, weight=w, reduction=reduction)
        elif loss in ("cross_entropy", "cross_entropy_dense"):
            xv = x.view(-1, classes)
            tv = tgt if loss == "cross_entropy" else tgt.view(-1, classes)
            kw = {}
            if loss == "cross_entropy":
                kw["ignore_index"] = -100 if ignore_index is None else ignore_index
            out = F.cross_entropy(xv, tv, weight=w, reduction=reduction,
                                  label_smoothing=label_smoothing, **kw)
        else:
            raise ValueError(loss)
        (out if reduction != "none" else out.sum()).backward()
    except Exception as e:  # record and skip
        NOTES.append(f"{name}: torch raised {type(e).__name__}: {e}")
        print(f"skip {name}: {e}", file=sys.stderr)
        return
    grad = x.grad if x.grad is not None else torch.zeros_like(x)
    assert grad.shape == x.shape

    # independent hand-formula check
    npd = NP[dtype]
    xn = x.detach().numpy().astype(npd).reshape(-1)
    tn = tgt.numpy().reshape(-1)
    if loss != "cross_entropy":
        tn = tn.astype(npd)
    wn = None if w is None else w.numpy().astype(npd).reshape(-1)
    pwn = None if pw is None else pw.numpy().astype(npd).reshape(-1)
    with np.errstate(all="ignore"):
        if loss == "mse":
            hl, hg = hand_mse(xn, tn, reduction)
        elif loss == "bce":
            hl, hg = hand_bce(xn, tn, reduction, w=wn)
        elif loss == "bce_logits":
            hl, hg = hand_bce_logits(xn, tn, reduction, w=wn, pw=pwn)
        elif loss == "cross_entropy":
            hl, hg = hand_ce(xn, tn, reduction, w=wn, C=classes,
                             ignore_index=-100 if ignore_index is None else ignore_index,
                             eps=label_smoothing)
        else:
            hl, hg = hand_ce_dense(xn, tn, reduction, w=wn, C=classes, eps=label_smoothing)
    assert_close(name, "loss", hl, out.detach().numpy(), dtype)
    assert_close(name, "grad", hg, grad.numpy(), dtype)

    CASES.append({
        "name": name,
        "loss": loss,
        "dtype": dtype,
        "reduction": reduction,
        "classes": classes,
        "input": flist(x),
        "target": ([int(v) for v in tgt.reshape(-1).tolist()]
                   if loss == "cross_entropy" else flist(tgt)),
        "weight": flist(w),
        "pos_weight": flist(pw),
        "ignore_index": ignore_index,
        "label_smoothing": float(label_smoothing),
        "loss_value": (num(out.item()) if reduction != "none" else flist(out)),
        "grad": flist(grad),
    })


def T(vals, dtype):
    return torch.tensor(vals, dtype=DT[dtype])


def randn(n, dtype, scale=1.0):
    return torch.randn(n, dtype=DT[dtype]) * scale


def rand(n, dtype, lo=0.0, hi=1.0):
    return torch.rand(n, dtype=DT[dtype]) * (hi - lo) + lo


# --------------------------------------------------------------------------
# MSE
# --------------------------------------------------------------------------

def mse_cases():
    plan = [
        (1, "f32", ["mean", "sum"]), (1, "f64", ["none", "mean"]),
        (7, "f32", ["mean", "sum", "none"]), (7, "f64", ["mean", "sum", "none"]),
        (33, "f32", ["mean", "none"]), (33, "f64", ["sum", "mean"]),
        (300, "f32", ["mean"]), (300, "f64", ["sum"]),
    ]
    for n, dt, reds in plan:
        for r in reds:
            name = f"mse_{dt}_len{n}_{r}"
            seed(name)
            add(name, "mse", dt, r, randn(n, dt, 2.0), randn(n, dt, 2.0))
    for dt, reds in (("f32", ["mean", "sum", "none"]), ("f64", ["mean"])):
        for r in reds:
            name = f"mse_{dt}_empty_{r}"
            add(name, "mse", dt, r, T([], dt), T([], dt))
    # non-finite inputs and f32 overflow of the square
    for dt in ("f32", "f64"):
        for r in ("none", "mean"):
            name = f"mse_{dt}_nonfinite_{r}"
            add(name, "mse", dt, r,
                T([1.0, math.inf, -math.inf, math.nan, 2.0, math.inf], dt),
                T([0.5, 0.0, 1.0, 0.0, math.nan, math.inf], dt))
    name = "mse_f32_overflow_sum"
    add(name, "mse", "f32", "sum", T([1e20, -1e20, 3.0, 1e19], "f32"),
        T([-1e20, 0.0, 1.0, 0.0], "f32"))
    # One large case.  Values are multiples of 1/16 so that input, target and
    # grad (= 2*(x - y), exact) have short decimal forms and the file stays
    # small; the squares are multiples of 2^-8 and the running f32 sum exceeds
    # 2^24 * 2^-8 = 65536, so float32 accumulation does round and the order
    # matters (torch's result is one particular summation order: compare
    # with a tolerance; the exact sum is checked against it below).
    name = "mse_f32_len5003_sum"
    seed(name)
    x = torch.round(randn(5003, "f32", 3.0) * 16) / 16
    y = torch.round(randn(5003, "f32", 3.0) * 16) / 16
    add(name, "mse", "f32", "sum", x, y)
    exact = float(((x.double() - y.double()) ** 2).sum())  # exact in f64
    got = CASES[-1]["loss_value"]
    assert exact > 65536 and abs(got - exact) / exact < 1e-5, (got, exact)
    print(f"{name}: torch f32 sum {got!r}, exact {exact!r}", file=sys.stderr)


# --------------------------------------------------------------------------
# BCE (probabilities)
# --------------------------------------------------------------------------

def bce_extremes(dt):
    ps = [0.0, 1.0, 1e-13, 1e-7, 1e-30, 0.5, 1 - 1e-7, 1 - 1e-12]
    if dt == "f32":
        ps += [1e-45, 1e-38]
    else:
        ps += [1e-300, 5e-324]
    ys = [0.0, 1.0, 0.5, 0.3]
    xs, ts = [], []
    for p in ps:
        for y in ys:
            xs.append(p)
            ts.append(y)
    return T(xs, dt), T(ts, dt)


def bce_cases():
    for dt in ("f32", "f64"):
        for r in ("mean", "sum", "none"):
            name = f"bce_{dt}_random_{r}"
            seed(name)
            n = 19
            add(name, "bce", dt, r, rand(n, dt, 0.01, 0.99),
                torch.randint(0, 2, (n,)).to(DT[dt]))
        for r in ("none", "mean"):
            name = f"bce_{dt}_extremes_{r}"
            x, y = bce_extremes(dt)
            add(name, "bce", dt, r, x, y)
        for r in ("mean", "none", "sum"):
            name = f"bce_{dt}_weight_{r}"
            seed(name)
            n = 13
            add(name, "bce", dt, r, rand(n, dt, 0.02, 0.98), rand(n, dt),
                weight=rand(n, dt, 0.0, 3.0))
        name = f"bce_{dt}_soft_targets_mean"
        seed(name)
        add(name, "bce", dt, "mean", rand(21, dt, 0.001, 0.999), rand(21, dt))
        name = f"bce_{dt}_extremes_weight_sum"
        x, y = bce_extremes(dt)
        seed(name)
        add(name, "bce", dt, "sum", x, y, weight=rand(x.numel(), dt, 0.0, 2.0))
    name = "bce_f32_len40_mean"
    seed(name)
    add(name, "bce", "f32", "mean", rand(40, "f32"), rand(40, "f32"))


# --------------------------------------------------------------------------
# BCE with logits
# --------------------------------------------------------------------------

def large_logits(dt):
    xs = [1e30, -1e30, 88.7, -88.7, 100.0, -100.0, 20.0, -20.0, 0.0, 1e-30, 89.5, -104.0]
    if dt == "f64":
        xs += [800.0, -800.0, 1e300, -1e300, 745.5, -745.5]
    ys = [0.0, 1.0, 0.5]
    a, b = [], []
    for x in xs:
        for y in ys:
            a.append(x)
            b.append(y)
    return T(a, dt), T(b, dt)


def bce_logits_cases():
    for dt in ("f32", "f64"):
        for r in ("mean", "sum", "none"):
            name = f"bce_logits_{dt}_random_{r}"
            seed(name)
            n = 17
            add(name, "bce_logits", dt, r, randn(n, dt, 3.0),
                torch.randint(0, 2, (n,)).to(DT[dt]))
        for r in ("none", "mean"):
            name = f"bce_logits_{dt}_large_{r}"
            x, y = large_logits(dt)
            add(name, "bce_logits", dt, r, x, y)
        name = f"bce_logits_{dt}_weight_mean"
        seed(name)
        add(name, "bce_logits", dt, "mean", randn(18, dt, 2.0),
            torch.randint(0, 2, (18,)).to(DT[dt]), weight=rand(18, dt, 0.0, 2.0))
        for r in ("mean", "none"):
            name = f"bce_logits_{dt}_pos_weight_p4_{r}"
            seed(name)
            add(name, "bce_logits", dt, r, randn(16, dt, 2.0),
                torch.randint(0, 2, (16,)).to(DT[dt]),
                pos_weight=rand(4, dt, 0.2, 5.0))
        for r in ("mean", "sum", "none"):
            name = f"bce_logits_{dt}_weight_pos_weight_p5_{r}"
            seed(name)
            add(name, "bce_logits", dt, r, randn(15, dt, 2.0), rand(15, dt),
                weight=rand(15, dt, 0.0, 2.0), pos_weight=rand(5, dt, 0.2, 5.0))
        name = f"bce_logits_{dt}_soft_targets_sum"
        seed(name)
        add(name, "bce_logits", dt, "sum", randn(23, dt, 4.0), rand(23, dt))
        name = f"bce_logits_{dt}_large_pos_weight_p3_none"
        x, y = large_logits(dt)
        add(name, "bce_logits", dt, "none", x, y,
            pos_weight=T([0.5, 3.0, 1.0], dt))
    name = "bce_logits_f32_pos_weight_p1_sum"
    seed(name)
    add(name, "bce_logits", "f32", "sum", randn(13, "f32", 2.0),
        torch.randint(0, 2, (13,)).to(torch.float32), pos_weight=T([2.5], "f32"))
    name = "bce_logits_f64_len40_mean"
    seed(name)
    add(name, "bce_logits", "f64", "mean", randn(40, "f64", 3.0), rand(40, "f64"))


# --------------------------------------------------------------------------
# cross entropy with class-index targets
# --------------------------------------------------------------------------

def labels(rows, C):
    return torch.randint(0, C, (rows,))


def ce_cases():
    inf = math.inf
    plan = [
        (1, 5, "f32", ["mean", "none"]), (1, 4, "f64", ["sum"]),
        (2, 9, "f32", ["mean", "sum", "none"]), (2, 8, "f64", ["mean"]),
        (3, 7, "f32", ["mean"]), (3, 6, "f64", ["mean", "sum", "none"]),
        (10, 4, "f32", ["mean", "none"]), (10, 4, "f64", ["mean", "sum"]),
        (257, 2, "f32", ["mean"]), (257, 1, "f64", ["none"]),
    ]
    for C, rows, dt, reds in plan:
        for r in reds:
            name = f"cross_entropy_{dt}_c{C}_{r}"
            seed(name)
            add(name, "cross_entropy", dt, r, randn(rows * C, dt, 3.0),
                labels(rows, C), classes=C)
    for dt in ("f32", "f64"):
        C, rows = 10, 3
        for r in ("mean", "sum", "none"):
            name = f"cross_entropy_{dt}_weight_{r}"
            seed(name)
            add(name, "cross_entropy", dt, r, randn(rows * C, dt, 2.0),
                labels(rows, C), weight=rand(C, dt, 0.1, 3.0), classes=C)
        # ignore_index -100 (default value, given explicitly)
        C, rows = 5, 7
        for r in ("mean", "none"):
            name = f"cross_entropy_{dt}_ignore_default_{r}"
            seed(name)
            y = labels(rows, C)
            y[torch.tensor([1, 4, 5])] = -100
            add(name, "cross_entropy", dt, r, randn(rows * C, dt, 2.0), y,
                classes=C, ignore_index=-100)
        # ignore_index equal to a valid class
        name = f"cross_entropy_{dt}_ignore_class0_weight_mean"
        seed(name)
        y = labels(rows, C)
        y[0], y[3] = 0, 0
        add(name, "cross_entropy", dt, "mean", randn(rows * C, dt, 2.0), y,
            weight=rand(C, dt, 0.1, 3.0), classes=C, ignore_index=0)
        # label smoothing alone
        C, rows = 7, 6
        for ls, reds in ((0.1, ("mean", "none")), (0.3, ("mean", "sum"))):
            for r in reds:
                tag = str(ls).replace(".", "p")
                name = f"cross_entropy_{dt}_smooth{tag}_{r}"
                seed(name)
                add(name, "cross_entropy", dt, r, randn(rows * C, dt, 2.0),
                    labels(rows, C), classes=C, label_smoothing=ls)
        # smoothing + ignore without weights (pins denominator = #kept rows)
        name = f"cross_entropy_{dt}_smooth0p3_ignore_mean"
        seed(name)
        y = labels(rows, C)
        y[torch.tensor([0, 2])] = -100
        add(name, "cross_entropy", dt, "mean", randn(rows * C, dt, 2.0), y,
            classes=C, ignore_index=-100, label_smoothing=0.3)
        # weights + smoothing + ignore_index combined (the tricky case)
        C, rows = 6, 7
        for ii in (-100, 2):
            for r in ("mean", "sum", "none"):
                tag = "m100" if ii == -100 else str(ii)
                name = f"cross_entropy_{dt}_weight_smooth_ignore{tag}_{r}"
                seed(name)
                y = labels(rows, C)
                y[torch.tensor([1, 6])] = ii
                add(name, "cross_entropy", dt, r, randn(rows * C, dt, 2.0), y,
                    weight=rand(C, dt, 0.1, 3.0), classes=C, ignore_index=ii,
                    label_smoothing=0.2 if ii == -100 else 0.1)
        # -inf masked logits (not the target)
        C = 4
        x = T([[0.5, -inf, 1.0, 2.0],
               [-inf, -inf, 3.0, -1.0],
               [1.0, 2.0, -inf, 0.0],
               [-inf, 0.25, -inf, -inf]], dt).reshape(-1)
        y = torch.tensor([0, 2, 1, 1])
        for r in ("mean", "none"):
            add(f"cross_entropy_{dt}_neg_inf_masked_{r}", "cross_entropy", dt, r,
                x, y, classes=C)
        # ... with smoothing: any -inf logit gives inf loss
        add(f"cross_entropy_{dt}_neg_inf_masked_smooth_none", "cross_entropy", dt,
            "none", x, y, classes=C, label_smoothing=0.1)
        # ... with weights and an ignored row holding the -inf logits
        add(f"cross_entropy_{dt}_neg_inf_masked_weight_mean", "cross_entropy", dt,
            "mean", x, torch.tensor([0, -100, 1, 1]),
            weight=T([1.0, 2.0, 0.5, 1.5], dt), classes=C, ignore_index=-100)
        # target logit is -inf: loss inf
        xt = T([[1.0, -inf, 0.0], [0.0, 1.0, 2.0]], dt).reshape(-1)
        for r in ("none", "mean"):
            add(f"cross_entropy_{dt}_neg_inf_target_{r}", "cross_entropy", dt, r,
                xt, torch.tensor([1, 2]), classes=3)
        # a row of all -inf logits
        add(f"cross_entropy_{dt}_all_neg_inf_row_none", "cross_entropy", dt, "none",
            T([[-inf, -inf, -inf], [0.0, 1.0, 2.0]], dt).reshape(-1),
            torch.tensor([0, 1]), classes=3)
        # huge logits mixed with normal ones
        xh = T([[1e30, 0.0, -1e30, 3.0],
                [1e30, 0.0, -1e30, 3.0],
                [-1e30, 5.0, 2.0, -1e30],
                [1.5, -1e30, 0.5, 1e30],
                [-1e30, -1e30, -1e30, 0.0]], dt).reshape(-1)
        yh = torch.tensor([0, 1, 2, 2, 3])
        for r in ("none", "sum"):
            add(f"cross_entropy_{dt}_huge_logits_{r}", "cross_entropy", dt, r,
                xh, yh, classes=4)
        add(f"cross_entropy_{dt}_huge_logits_smooth_none", "cross_entropy", dt, "none",
            xh, yh, classes=4, label_smoothing=0.1)
        # rows of large equal logits
        add(f"cross_entropy_{dt}_equal_large_logits_none", "cross_entropy", dt, "none",
            T([[1e30] * 5, [1e4] * 5, [-1e4] * 5, [88.0] * 5], dt).reshape(-1),
            torch.tensor([0, 4, 2, 1]), classes=5)
        # every target ignored, mean -> nan
        C, rows = 3, 4
        xa = randn(rows * C, dt)
        add(f"cross_entropy_{dt}_all_ignored_mean", "cross_entropy", dt, "mean",
            xa, torch.full((rows,), -100), classes=C, ignore_index=-100)
        add(f"cross_entropy_{dt}_all_ignored_weight_smooth_mean", "cross_entropy", dt,
            "mean", xa, torch.full((rows,), 1), weight=T([1.0, 2.0, 3.0], dt),
            classes=C, ignore_index=1, label_smoothing=0.1)
    seed("cross_entropy_f32_all_ignored_sum")
    add("cross_entropy_f32_all_ignored_sum", "cross_entropy", "f32", "sum",
        randn(6, "f32"), torch.full((3,), -100), classes=2, ignore_index=-100)
    # C = 1 with ignore_index equal to the only class: all ignored
    add("cross_entropy_f32_c1_ignore0_mean", "cross_entropy", "f32", "mean",
        T([0.3, -2.0, 5.0], "f32"), torch.tensor([0, 0, 0]), classes=1, ignore_index=0)
    # empty batch
    for r in ("mean", "sum", "none"):
        add(f"cross_entropy_f32_empty_{r}", "cross_entropy", "f32", r,
            T([], "f32"), torch.tensor([], dtype=torch.int64), classes=4)
    # a -inf logit on a class whose weight is 0, with smoothing: 0 * inf = nan
    add("cross_entropy_f64_neg_inf_zero_weight_smooth_none", "cross_entropy", "f64",
        "none", T([[0.0, -inf, 1.0], [2.0, 0.5, 1.0]], "f64").reshape(-1),
        torch.tensor([0, 2]), weight=T([1.0, 0.0, 2.0], "f64"), classes=3,
        label_smoothing=0.1)


# --------------------------------------------------------------------------
# cross entropy with probability targets
# --------------------------------------------------------------------------

def soft_targets(rows, C, dt):
    t = torch.softmax(torch.randn(rows, C, dtype=DT[dt]) * 2.0, dim=1)
    return t.reshape(-1)


def one_hot(rows, C, dt):
    return F.one_hot(torch.randint(0, C, (rows,)), C).to(DT[dt]).reshape(-1)


def ce_dense_cases():
    inf = math.inf
    for dt in ("f32", "f64"):
        C, rows = 6, 4
        for r in ("mean", "sum", "none"):
            name = f"cross_entropy_dense_{dt}_soft_{r}"
            seed(name)
            add(name, "cross_entropy_dense", dt, r, randn(rows * C, dt, 2.0),
                soft_targets(rows, C, dt), classes=C)
        name = f"cross_entropy_dense_{dt}_one_hot_mean"
        seed(name)
        add(name, "cross_entropy_dense", dt, "mean", randn(rows * C, dt, 2.0),
            one_hot(rows, C, dt), classes=C)
        for r in ("mean", "none"):
            name = f"cross_entropy_dense_{dt}_weight_{r}"
            seed(name)
            add(name, "cross_entropy_dense", dt, r, randn(rows * C, dt, 2.0),
                soft_targets(rows, C, dt), weight=rand(C, dt, 0.1, 3.0), classes=C)
        for r in ("mean", "sum"):
            name = f"cross_entropy_dense_{dt}_smooth0p2_{r}"
            seed(name)
            add(name, "cross_entropy_dense", dt, r, randn(rows * C, dt, 2.0),
                soft_targets(rows, C, dt), classes=C, label_smoothing=0.2)
        name = f"cross_entropy_dense_{dt}_weight_smooth0p1_mean"
        seed(name)
        add(name, "cross_entropy_dense", dt, "mean", randn(rows * C, dt, 2.0),
            one_hot(rows, C, dt), weight=rand(C, dt, 0.1, 3.0), classes=C,
            label_smoothing=0.1)
        # -inf logit with zero target probability: 0 * -inf = nan
        add(f"cross_entropy_dense_{dt}_neg_inf_none", "cross_entropy_dense", dt, "none",
            T([[0.0, -inf, 1.0], [0.5, 0.25, 2.0]], dt).reshape(-1),
            T([[1.0, 0.0, 0.0], [0.2, 0.3, 0.5]], dt).reshape(-1), classes=3)
    name = "cross_entropy_dense_f32_c257_smooth0p1_mean"
    seed(name)
    add(name, "cross_entropy_dense", "f32", "mean", randn(257, "f32", 3.0),
        one_hot(1, 257, "f32"), classes=257, label_smoothing=0.1)


def check_normalisations():
    """Show that the recorded mean normalisations are the only plausible ones.

    The generic hand formulas above already match torch for every case; here
    we additionally assert that the obvious alternative normalisations do NOT
    match, so the golden values really pin them down.
    """
    by = {c["name"]: c for c in CASES}
    for dt in ("f32", "f64"):
        tol = 1e-5 if dt == "f32" else 1e-12
        npd = NP[dt]
        for name, weighted in ((f"cross_entropy_{dt}_weight_smooth_ignorem100_mean", True),
                               (f"cross_entropy_{dt}_smooth0p3_ignore_mean", False)):
            c = by[name]
            C, eps, ii = c["classes"], c["label_smoothing"], c["ignore_index"]
            x = np.array(c["input"], dtype=np.float64).reshape(-1, C)
            y = np.array(c["target"])
            w = np.array(c["weight"], dtype=np.float64) if weighted else np.ones(C)
            logp = np_log_softmax(x)
            keep = y != ii
            yk = y[keep]
            nll = -(w[yk] * logp[keep, yk]).sum()
            smooth = -(logp[keep] * w).sum()
            wsum, nk, n = w[yk].sum(), keep.sum(), len(y)
            right = (1 - eps) * nll / wsum + eps / C * smooth / wsum
            wrong = {
                "smooth/kept_rows": (1 - eps) * nll / wsum + eps / C * smooth / nk,
                "smooth/all_rows": (1 - eps) * nll / wsum + eps / C * smooth / n,
                "all/all_rows": ((1 - eps) * nll + eps / C * smooth) / n,
                "smooth/(kept_rows*W)": (1 - eps) * nll / wsum + eps / C * smooth / (nk * w.sum() / C),
            }
            got = c["loss_value"]
            assert abs(right - got) <= tol * abs(got), (name, right, got)
            for k, v in wrong.items():
                if not weighted and k in ("smooth/kept_rows", "smooth/(kept_rows*W)"):
                    continue  # identical to `right` when all weights are 1
                assert abs(v - got) > 100 * tol * abs(got), (name, k, v, got)
        # dense targets: mean divides by the number of rows, not a weight sum
        c = by[f"cross_entropy_dense_{dt}_weight_mean"]
        C = c["classes"]
        x = np.array(c["input"], dtype=np.float64).reshape(-1, C)
        t = np.array(c["target"], dtype=np.float64).reshape(-1, C)
        w = np.array(c["weight"], dtype=np.float64)
        rows = -(w * t * np_log_softmax(x)).sum(axis=1)
        got = c["loss_value"]
        assert abs(rows.sum() / len(rows) - got) <= tol * abs(got)
        assert abs(rows.sum() / (w * t).sum() - got) > 100 * tol * abs(got)
        del npd
    print("normalisation checks passed", file=sys.stderr)


def main():
    mse_cases()
    bce_cases()
    bce_logits_cases()
    ce_cases()
    ce_dense_cases()
    check_normalisations()
    doc = {
        "torch_version": torch.__version__.split("+")[0],
        "generated_by": "scripts/golden.py",
    }
    if NOTES:
        doc["notes"] = NOTES
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    # one case per line: deterministic and diff-friendly
    head = json.dumps(doc, allow_nan=False)[:-1]
    lines = [json.dumps(c, allow_nan=False, separators=(",", ":")) for c in CASES]
    with open(OUT, "w") as f:
        f.write(head + ', "cases": [\n' + ",\n".join(lines) + "\n]}\n")
    counts = {}
    for c in CASES:
        counts[c["loss"]] = counts.get(c["loss"], 0) + 1
    print(f"wrote {OUT}: {len(CASES)} cases, {os.path.getsize(OUT)} bytes")
    for k, v in counts.items():
        print(f"  {k}: {v}")
    for n in NOTES:
        print("note:", n)


if __name__ == "__main__":
    main()

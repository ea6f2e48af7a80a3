//! Every loss and primitive on every available backend, `f32` and `f64`,
//! with and without its per-element options: meant to be run in a debug
//! build (`cargo test --test unoptimized`, as `.ci/run` does), where the
//! kernels are compiled without optimization and a test thread has a 2 MiB
//! stack. Fully inlined, the unoptimized kernels once needed frames of up to
//! 8.8 MB and aborted with a stack overflow; each value is also checked
//! against the `Scalar` backend, so the test fails on a wrong result as well
//! as on a crash. (In a release build it runs too, and is quick.)

use loss_kernels::{
    log_softmax, log_sum_exp, softmax, Backend, BinaryCrossEntropy, BinaryCrossEntropyWithLogits,
    CrossEntropy, Float, SquaredError,
};

const N: usize = 203; // several full vectors of every width, and a tail
const ROWS: usize = 7;
const CLASSES: usize = 29;

fn data<T: Float>(n: usize, f: impl Fn(usize) -> f64) -> Vec<T> {
    (0..n).map(|i| T::from_f64(f(i))).collect()
}

/// `|a - b| <= 1e-4 (|b| + 1)`: backends differ by a few ulp only.
fn near<T: Float>(a: T, b: T, what: &str, backend: Backend) {
    let (a, b) = (a.to_f64(), b.to_f64());
    assert!(
        (a - b).abs() <= 1e-4 * (b.abs() + 1.0),
        "{what} on {backend:?}: {a} vs Scalar {b}"
    );
}

fn near_all<T: Float>(a: &[T], b: &[T], what: &str, backend: Backend) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        near(*x, *y, what, backend);
    }
}

/// Every result of backend `b`, flattened, for comparison with `Scalar`.
fn results<T: Float>(b: Backend) -> Vec<(String, Vec<T>)> {
    let x: Vec<T> = data(N, |i| ((i * 37 % 101) as f64 - 50.0) / 9.0);
    let y: Vec<T> = data(N, |i| (i % 3) as f64 / 2.0);
    let p: Vec<T> = data(N, |i| (i % 97 + 1) as f64 / 99.0);
    let w: Vec<T> = data(N, |i| 0.5 + (i % 5) as f64 / 4.0);
    let pw: Vec<T> = data(4, |i| 1.0 + i as f64);
    let mut out = vec![T::ZERO; N];
    let mut all = Vec::new();
    let mut push = |name: &str, loss: T, out: &[T]| {
        let mut v = vec![loss];
        v.extend_from_slice(out);
        all.push((name.to_string(), v));
    };

    let mse = SquaredError::new().backend(b);
    let l = mse.loss_grad(&x, &y, &mut out).unwrap();
    push("mse loss_grad", l, &out);
    mse.per_element(&x, &y, &mut out).unwrap();
    push("mse per_element", mse.loss(&x, &y).unwrap(), &out);

    for weighted in [false, true] {
        let mut bce = BinaryCrossEntropy::new().backend(b);
        if weighted {
            bce = bce.weight(&w);
        }
        let l = bce.loss_grad(&p, &y, &mut out).unwrap();
        push("bce loss_grad", l, &out);
        bce.per_element(&p, &y, &mut out).unwrap();
        push("bce per_element", bce.loss(&p, &y).unwrap(), &out);

        let mut bcel = BinaryCrossEntropyWithLogits::new().backend(b);
        if weighted {
            bcel = bcel.weight(&w).pos_weight(&pw[..1]);
        }
        let l = bcel.loss_grad(&x, &y, &mut out).unwrap();
        push("bce_logits loss_grad", l, &out);
        bcel.per_element(&x, &y, &mut out).unwrap();
        push("bce_logits per_element", bcel.loss(&x, &y).unwrap(), &out);
    }
    let bcel = BinaryCrossEntropyWithLogits::new()
        .backend(b)
        .pos_weight(&pw);
    let l = bcel
        .loss_grad(&x[..200], &y[..200], &mut out[..200])
        .unwrap();
    push("bce_logits pos_weight row", l, &out[..200]);

    let z: Vec<T> = data(ROWS * CLASSES, |i| ((i * 13 % 31) as f64 - 15.0) / 4.0);
    let labels: Vec<u32> = (0..ROWS as u32).map(|r| r * 5 % CLASSES as u32).collect();
    let dense: Vec<T> = data(ROWS * CLASSES, |i| if i % 7 == 0 { 0.25 } else { 0.0 });
    let cw: Vec<T> = data(CLASSES, |i| 1.0 + (i % 3) as f64);
    let mut g = vec![T::ZERO; ROWS * CLASSES];
    let mut rows = vec![T::ZERO; ROWS];
    let plain = CrossEntropy::new().backend(b);
    let options = CrossEntropy::new()
        .backend(b)
        .class_weights(&cw)
        .label_smoothing(0.1)
        .z_loss(1e-3)
        .softcap(30.0);
    for ce in [plain, options] {
        let l = ce.loss_grad(&z, CLASSES, &labels, &mut g).unwrap();
        push("ce loss_grad", l, &g);
        let l = ce.loss_grad_dense(&z, CLASSES, &dense, &mut g).unwrap();
        push("ce dense loss_grad", l, &g);
        ce.per_row(&z, CLASSES, &labels, &mut rows).unwrap();
        push("ce per_row", ce.loss(&z, CLASSES, &labels).unwrap(), &rows);
    }
    log_sum_exp(&z, CLASSES, &mut rows).unwrap();
    push("log_sum_exp", T::ZERO, &rows);
    let prim = loss_kernels::Softmax::new().backend(b);
    prim.log_softmax(&z, CLASSES, &mut g).unwrap();
    push("log_softmax", T::ZERO, &g);
    prim.softmax(&z, CLASSES, &mut g).unwrap();
    push("softmax", T::ZERO, &g);
    log_softmax(&z, CLASSES, &mut g).unwrap();
    softmax(&z, CLASSES, &mut g).unwrap();
    all
}

fn every_backend<T: Float>() {
    let want = results::<T>(Backend::Scalar);
    for b in Backend::available() {
        let got = results::<T>(b);
        assert_eq!(got.len(), want.len());
        for ((name, a), (_, s)) in got.iter().zip(&want) {
            near_all(a, s, name, b);
        }
    }
}

#[test]
fn every_entry_every_backend_f32() {
    every_backend::<f32>();
}

#[test]
fn every_entry_every_backend_f64() {
    every_backend::<f64>();
}

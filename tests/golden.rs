//! Golden values from PyTorch 2.15 (`scripts/golden.py` writes
//! `tests/data/golden.json`): every case is recomputed with this crate, on
//! every available backend, and compared.
//!
//! Tolerance: `f32` values within a relative `1e-6` of PyTorch's (plus a few
//! `f32` epsilons of the case's largest magnitude, since PyTorch's own `f32`
//! arithmetic rounds differently: e.g. it computes `lse - z` in `f32`, where
//! this crate is exact to `f64` rounding); `f64` within `1e-12`. Non-finite
//! expectations must match in class (NaN, `+inf`, `-inf`).

use loss_kernels::{
    Backend, BinaryCrossEntropy, BinaryCrossEntropyWithLogits, CrossEntropy, Float, LossError,
    Reduction, SquaredError,
};
use serde_json::Value;

/// Cases where this crate deliberately differs from PyTorch, with the reason.
const DELIBERATE_DIFFERENCES: &[(&str, &str)] = &[
    (
        "cross_entropy_f64_neg_inf_zero_weight_smooth_none",
        "with label smoothing, a class of weight 0 on a -inf logit contributes 0 here; PyTorch returns NaN (0 * inf)",
    ),
    (
        "cross_entropy_dense_f32_neg_inf_none",
        "a -inf logit with target probability 0 contributes 0 here; PyTorch returns NaN (0 * -inf)",
    ),
    (
        "cross_entropy_dense_f64_neg_inf_none",
        "a -inf logit with target probability 0 contributes 0 here; PyTorch returns NaN (0 * -inf)",
    ),
];

fn num(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().unwrap(),
        Value::String(s) => match s.as_str() {
            "inf" => f64::INFINITY,
            "-inf" => f64::NEG_INFINITY,
            "nan" => f64::NAN,
            other => panic!("bad number string {other}"),
        },
        other => panic!("not a number: {other}"),
    }
}

fn nums(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(num).collect()
}

fn opt_nums(v: &Value) -> Option<Vec<f64>> {
    if v.is_null() {
        None
    } else {
        Some(nums(v))
    }
}

/// What the crate computed for one case.
struct Got {
    loss: Vec<f64>,
    grad: Vec<f64>,
}

fn to_t<T: Float>(v: &[f64]) -> Vec<T> {
    v.iter().map(|&x| T::from_f64(x)).collect()
}

fn to_f64<T: Float>(v: &[T]) -> Vec<f64> {
    v.iter().map(|x| x.to_f64()).collect()
}

fn run_case<T: Float>(case: &Value, backend: Backend) -> Result<Got, LossError> {
    let kind = case["loss"].as_str().unwrap();
    let reduction = match case["reduction"].as_str().unwrap() {
        "mean" => Some(Reduction::Mean),
        "sum" => Some(Reduction::Sum),
        _ => None, // "none": per element / per row, gradient of the sum
    };
    let input: Vec<T> = to_t(&nums(&case["input"]));
    let target: Vec<T> = to_t(&nums(&case["target"]));
    let weight: Option<Vec<T>> = opt_nums(&case["weight"]).map(|w| to_t(&w));
    let pos_weight: Option<Vec<T>> = opt_nums(&case["pos_weight"]).map(|w| to_t(&w));
    let classes = case["classes"].as_u64().unwrap() as usize;
    let n = input.len();
    let mut grad = vec![T::ZERO; n];
    let red = reduction.unwrap_or(Reduction::Sum);
    let (loss, per): (Option<T>, Option<Vec<T>>) = match kind {
        "mse" => {
            let l = SquaredError::new().backend(backend).reduction(red);
            let v = l.loss_grad(&input, &target, &mut grad)?;
            let mut out = vec![T::ZERO; n];
            l.per_element(&input, &target, &mut out)?;
            (Some(v), Some(out))
        }
        "bce" => {
            let mut l = BinaryCrossEntropy::new().backend(backend).reduction(red);
            if let Some(w) = &weight {
                l = l.weight(w);
            }
            let v = l.loss_grad(&input, &target, &mut grad)?;
            let mut out = vec![T::ZERO; n];
            l.per_element(&input, &target, &mut out)?;
            (Some(v), Some(out))
        }
        "bce_logits" => {
            let mut l = BinaryCrossEntropyWithLogits::new()
                .backend(backend)
                .reduction(red);
            if let Some(w) = &weight {
                l = l.weight(w);
            }
            if let Some(pw) = &pos_weight {
                l = l.pos_weight(pw);
            }
            let v = l.loss_grad(&input, &target, &mut grad)?;
            let mut out = vec![T::ZERO; n];
            l.per_element(&input, &target, &mut out)?;
            (Some(v), Some(out))
        }
        "cross_entropy" | "cross_entropy_dense" => {
            let mut l = CrossEntropy::new()
                .backend(backend)
                .reduction(red)
                .label_smoothing(case["label_smoothing"].as_f64().unwrap());
            if let Some(w) = &weight {
                l = l.class_weights(w);
            }
            if let Some(i) = case["ignore_index"].as_i64() {
                l = l.ignore_index(i);
            }
            let rows = n / classes;
            let mut out = vec![T::ZERO; rows];
            if kind == "cross_entropy" {
                let labels: Vec<i64> = nums(&case["target"]).iter().map(|&x| x as i64).collect();
                let v = l.loss_grad(&input, classes, &labels, &mut grad)?;
                l.per_row(&input, classes, &labels, &mut out)?;
                (Some(v), Some(out))
            } else {
                let v = l.loss_grad_dense(&input, classes, &target, &mut grad)?;
                l.per_row_dense(&input, classes, &target, &mut out)?;
                (Some(v), Some(out))
            }
        }
        other => panic!("unknown loss kind {other}"),
    };
    let loss = match reduction {
        Some(_) => vec![loss.unwrap().to_f64()],
        None => to_f64(&per.unwrap()),
    };
    Ok(Got {
        loss,
        grad: to_f64(&grad),
    })
}

/// Compares `got` with `want` element by element; returns the first mismatch.
fn compare(what: &str, got: &[f64], want: &[f64], rtol: f64, eps: f64) -> Result<(), String> {
    if got.len() != want.len() {
        return Err(format!("{what}: length {} vs {}", got.len(), want.len()));
    }
    let scale = want
        .iter()
        .filter(|v| v.is_finite())
        .fold(0.0f64, |m, v| m.max(v.abs()));
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let ok = if w.is_nan() {
            g.is_nan()
        } else if w.is_infinite() {
            g == w
        } else {
            (g - w).abs() <= rtol * w.abs() + 4.0 * eps * scale
        };
        if !ok {
            return Err(format!("{what}[{i}]: got {g:e}, PyTorch {w:e}"));
        }
    }
    Ok(())
}

fn check_all<T: Float>(cases: &[Value], rtol: f64, eps: f64) -> usize {
    let mut failures = Vec::new();
    let mut checked = 0;
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let dtype = case["dtype"].as_str().unwrap();
        if (dtype == "f32") != (std::mem::size_of::<T>() == 4) {
            continue;
        }
        if DELIBERATE_DIFFERENCES.iter().any(|(n, _)| *n == name) {
            continue;
        }
        let want_loss = match &case["loss_value"] {
            Value::Array(_) => nums(&case["loss_value"]),
            v => vec![num(v)],
        };
        let want_grad = nums(&case["grad"]);
        for backend in Backend::available() {
            match run_case::<T>(case, backend) {
                Err(e) => failures.push(format!("{name} [{backend:?}]: error {e}")),
                Ok(got) => {
                    if let Err(m) = compare("loss", &got.loss, &want_loss, rtol, eps)
                        .and_then(|_| compare("grad", &got.grad, &want_grad, rtol, eps))
                    {
                        failures.push(format!("{name} [{backend:?}]: {m}"));
                    }
                }
            }
            checked += 1;
        }
    }
    assert!(
        failures.is_empty(),
        "{} golden mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
    checked
}

fn golden_cases() -> Vec<Value> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/golden.json"
    ))
    .expect("tests/data/golden.json (written by scripts/golden.py)");
    let doc: Value = serde_json::from_str(&text).unwrap();
    doc["cases"].as_array().unwrap().clone()
}

#[test]
fn golden_pytorch_f32() {
    let cases = golden_cases();
    let checked = check_all::<f32>(&cases, 1e-6, f32::EPSILON as f64);
    assert!(checked >= 80, "only {checked} f32 case runs");
}

#[test]
fn golden_pytorch_f64() {
    let cases = golden_cases();
    let checked = check_all::<f64>(&cases, 1e-12, f64::EPSILON);
    assert!(checked >= 80, "only {checked} f64 case runs");
}

#[test]
fn golden_file_covers_the_options() {
    let cases = golden_cases();
    let has = |pred: &dyn Fn(&Value) -> bool| cases.iter().any(pred);
    assert!(has(&|c| !c["pos_weight"].is_null()));
    assert!(has(&|c| c["loss"] == "cross_entropy"
        && !c["weight"].is_null()
        && c["label_smoothing"].as_f64().unwrap() > 0.0
        && c["ignore_index"].is_i64()));
    assert!(has(&|c| c["input"]
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v == "-inf")));
    assert!(has(&|c| c["input"]
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v.as_f64().is_some_and(|x| x.abs() >= 1e30))));
}

//! Reference kernels: the fastest way this machine can move the bytes of a
//! workload (and, for the compute-bound ones, evaluate its transcendentals),
//! in a *default* build. They set the "limit" of every canonical group.
//!
//! - `read2` / `read1_rows`: read every input once (a dot product of the two
//!   arrays; a sum of the logits plus the labels);
//! - `read2_write1` / `read1_write1_rows`: the same reads, plus a store of a
//!   gradient-sized buffer (`g = a - b`; `g = x * s`);
//! - `exp2` / `exp1_rows`: a degree-6 polynomial `exp` (Cody–Waite
//!   reduction, `2^n` reconstruction), twice per element for the BCE
//!   losses (two transcendentals each), once per logit for cross entropy.
//!   It is a pure compute bound: it evaluates as many elements as the
//!   workload has, but loops over an L1-resident window of the input
//!   ([`EXP_WINDOW`] elements), so memory traffic never enters it. This is
//!   `../shared/bench/PEERS.md`'s `exp_poly` roofline.
//!
//! They are hand-written with `std::arch` in two variants, selected at run
//! time with `is_x86_feature_detected!` (so no `-C target-cpu` is needed):
//! AVX-512 where the CPU has it, else AVX2+FMA, else plain loops. Eight
//! (reads) or four (stores, exp) independent accumulators or stores per
//! iteration keep the load and FMA pipes busy. The AVX-512 kernels finish
//! the slices with masked tails, and the store kernels start with a masked
//! head that aligns the output to 64 bytes, which streaming stores require;
//! the AVX2 kernels do the same with masked loads (`_mm256_maskload_ps`) at
//! the end of the reads and `exp`, and scalar heads and tails around the
//! stores. Either way no element is read twice and no byte outside the
//! slices is touched. AVX2 has no `roundscale` or `scalef`, so its `exp`
//! rounds `x log2 e` by adding a magic number (`1.5·2^23 + 127`) and builds
//! `2^n` by shifting that sum's low bits into the exponent field; same
//! reduction constants and polynomial as the AVX-512 one.
//!
//! Stores: a buffer larger than [`STREAM_MIN_BYTES`] is written with
//! non-temporal (streaming) stores, which skip the read-for-ownership a
//! normal store pays and were measured faster here for out-of-cache buffers
//! (see the bench README); smaller buffers use normal stores, which leave the
//! result in cache.
//!
//! Every function returns a value derived from what it read, so the work
//! cannot be optimized away (the caller also `black_box`es it).

/// Output buffers at least this large are written with streaming stores.
pub const STREAM_MIN_BYTES: usize = 8 << 20;

/// Elements of the in-cache window the `exp` references loop over (16 KiB).
pub const EXP_WINDOW: usize = 4096;

/// Runs `f` over windows of the first [`EXP_WINDOW`] elements of `a` until
/// `a.len()` elements have been processed, and adds the results.
fn in_cache(a: &[f32], f: impl Fn(&[f32]) -> f32) -> f32 {
    let window = &a[..a.len().min(EXP_WINDOW)];
    let mut left = a.len();
    let mut sum = 0.0;
    while left >= window.len() && !window.is_empty() {
        // `black_box`: the calls are pure and see the same bytes, so without
        // it the compiler may evaluate the window once and multiply.
        sum += f(std::hint::black_box(window));
        left -= window.len();
    }
    sum + f(std::hint::black_box(&window[..left]))
}

/// Whether the AVX-512 kernels run on this CPU.
pub fn uses_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether the AVX2+FMA kernels run on this CPU (used when AVX-512 is not
/// available).
pub fn uses_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Reads `a` and `b` once (dot product).
pub fn read2(a: &[f32], b: &[f32], _grad: &mut [f32], _scale: f32) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if uses_avx512() {
        // SAFETY: the CPU supports AVX-512F (checked just above), the only
        // requirement of this `#[target_feature]` function.
        return unsafe { avx512::dot(a, b) };
    }
    #[cfg(target_arch = "x86_64")]
    if uses_avx2() {
        // SAFETY: the CPU supports AVX2 and FMA (checked just above), the
        // only requirements of this `#[target_feature]` function.
        return unsafe { avx2::dot(a, b) };
    }
    fallback::dot(a, b)
}

/// Reads `a` and `b` once and writes `grad = a - b`.
pub fn read2_write1(a: &[f32], b: &[f32], grad: &mut [f32], _scale: f32) -> f32 {
    let stream = grad.len() * 4 >= STREAM_MIN_BYTES;
    #[cfg(target_arch = "x86_64")]
    if uses_avx512() {
        // SAFETY: AVX-512F checked just above.
        unsafe { avx512::sub_store(a, b, grad, stream) };
        return grad.first().copied().unwrap_or(0.0);
    }
    #[cfg(target_arch = "x86_64")]
    if uses_avx2() {
        // SAFETY: AVX2 and FMA checked just above.
        unsafe { avx2::sub_store(a, b, grad, stream) };
        return grad.first().copied().unwrap_or(0.0);
    }
    let _ = stream;
    fallback::sub_store(a, b, grad);
    grad.first().copied().unwrap_or(0.0)
}

/// Reads the logits and the labels once.
pub fn read1_rows(
    logits: &[f32],
    _classes: usize,
    labels: &[u32],
    _grad: &mut [f32],
    _scale: f32,
) -> f32 {
    label_sum(labels) + read1(logits)
}

/// Reads the logits and the labels once and writes `grad = logits * scale`.
pub fn read1_write1_rows(
    logits: &[f32],
    _classes: usize,
    labels: &[u32],
    grad: &mut [f32],
    scale: f32,
) -> f32 {
    let stream = grad.len() * 4 >= STREAM_MIN_BYTES;
    let l = label_sum(labels);
    #[cfg(target_arch = "x86_64")]
    if uses_avx512() {
        // SAFETY: AVX-512F checked just above.
        unsafe { avx512::scale_store(logits, scale, grad, stream) };
        return l + grad.first().copied().unwrap_or(0.0);
    }
    #[cfg(target_arch = "x86_64")]
    if uses_avx2() {
        // SAFETY: AVX2 and FMA checked just above.
        unsafe { avx2::scale_store(logits, scale, grad, stream) };
        return l + grad.first().copied().unwrap_or(0.0);
    }
    let _ = stream;
    fallback::scale_store(logits, scale, grad);
    l + grad.first().copied().unwrap_or(0.0)
}

/// Two polynomial `exp`s (`e^x` and `e^-x`) for each of `a.len()` elements
/// taken from an in-cache window of `a`, summed.
pub fn exp2(a: &[f32], _b: &[f32], _grad: &mut [f32], _scale: f32) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if uses_avx512() {
        // SAFETY: AVX-512F checked just above.
        return in_cache(a, |w| unsafe { avx512::exp_sum::<2>(w) });
    }
    #[cfg(target_arch = "x86_64")]
    if uses_avx2() {
        // SAFETY: AVX2 and FMA checked just above.
        return in_cache(a, |w| unsafe { avx2::exp_sum::<2>(w) });
    }
    in_cache(a, |w| fallback::exp_sum(w, 2))
}

/// One polynomial `exp` for each of `logits.len()` elements taken from an
/// in-cache window of the logits, summed.
pub fn exp1_rows(
    logits: &[f32],
    _classes: usize,
    _labels: &[u32],
    _grad: &mut [f32],
    _scale: f32,
) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if uses_avx512() {
        // SAFETY: AVX-512F checked just above.
        return in_cache(logits, |w| unsafe { avx512::exp_sum::<1>(w) });
    }
    #[cfg(target_arch = "x86_64")]
    if uses_avx2() {
        // SAFETY: AVX2 and FMA checked just above.
        return in_cache(logits, |w| unsafe { avx2::exp_sum::<1>(w) });
    }
    in_cache(logits, |w| fallback::exp_sum(w, 1))
}

/// Reads one array once (sum).
pub fn read1(a: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if uses_avx512() {
        // SAFETY: AVX-512F checked just above.
        return unsafe { avx512::sum(a) };
    }
    #[cfg(target_arch = "x86_64")]
    if uses_avx2() {
        // SAFETY: AVX2 and FMA checked just above.
        return unsafe { avx2::sum(a) };
    }
    fallback::sum(a)
}

/// The labels are read too (4 bytes a row; negligible beside the logits).
fn label_sum(labels: &[u32]) -> f32 {
    labels.iter().map(|&l| u64::from(l)).sum::<u64>() as f32
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    /// Mask of the first `n` lanes (`n <= 16`).
    #[inline]
    fn first(n: usize) -> __mmask16 {
        ((1_u32 << n.min(16)) - 1) as __mmask16
    }

    /// Elements before `ptr` reaches a 64-byte boundary, at most `n`.
    #[inline]
    fn head_len(ptr: *const f32, n: usize) -> usize {
        let misalign = (ptr as usize) & 63;
        let head = if misalign == 0 {
            0
        } else {
            (64 - misalign) / 4
        };
        head.min(n)
    }

    /// Reads both slices once: `Σ a·b` in eight independent accumulators.
    /// No alignment peel: on this machine (Zen 4) 64-byte-aligned loads of
    /// two out-of-cache streams measured ~8% slower than the 16-byte offset
    /// that large `Vec`s get from the allocator (see the bench README).
    #[target_feature(enable = "avx512f")]
    pub fn dot(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = [_mm512_setzero_ps(); 8];
        let mut i = 0;
        while i + 128 <= n {
            for (j, acc) in acc.iter_mut().enumerate() {
                // SAFETY: `i + 16 j + 16 <= i + 128 <= n`, and `n` is at most
                // the length of both slices.
                unsafe {
                    let x = _mm512_loadu_ps(pa.add(i + 16 * j));
                    *acc = _mm512_fmadd_ps(x, _mm512_loadu_ps(pb.add(i + 16 * j)), *acc);
                }
            }
            i += 128;
        }
        while i < n {
            let m = first(n - i);
            // SAFETY: masked loads read only lanes `i..min(i + 16, n)`.
            unsafe {
                let x = _mm512_maskz_loadu_ps(m, pa.add(i));
                acc[0] = _mm512_fmadd_ps(x, _mm512_maskz_loadu_ps(m, pb.add(i)), acc[0]);
            }
            i += 16;
        }
        reduce8(acc)
    }

    /// Reads the slice once: `Σ a` in eight independent accumulators (no
    /// alignment peel, as in [`dot`]).
    #[target_feature(enable = "avx512f")]
    pub fn sum(a: &[f32]) -> f32 {
        let n = a.len();
        let pa = a.as_ptr();
        let mut acc = [_mm512_setzero_ps(); 8];
        let mut i = 0;
        while i + 128 <= n {
            for (j, acc) in acc.iter_mut().enumerate() {
                // SAFETY: `i + 16 j + 16 <= i + 128 <= n = a.len()`.
                *acc = _mm512_add_ps(unsafe { _mm512_loadu_ps(pa.add(i + 16 * j)) }, *acc);
            }
            i += 128;
        }
        while i < n {
            // SAFETY: the masked load reads only lanes `i..min(i + 16, n)`.
            let x = unsafe { _mm512_maskz_loadu_ps(first(n - i), pa.add(i)) };
            acc[0] = _mm512_add_ps(x, acc[0]);
            i += 16;
        }
        reduce8(acc)
    }

    #[target_feature(enable = "avx512f")]
    fn reduce8(acc: [__m512; 8]) -> f32 {
        let a = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
        let b = _mm512_add_ps(_mm512_add_ps(acc[4], acc[5]), _mm512_add_ps(acc[6], acc[7]));
        _mm512_reduce_add_ps(_mm512_add_ps(a, b))
    }

    /// `g = a - b`; aligned on `g`, streaming stores if `stream`.
    #[target_feature(enable = "avx512f")]
    pub fn sub_store(a: &[f32], b: &[f32], g: &mut [f32], stream: bool) {
        let n = a.len().min(b.len()).min(g.len());
        let (pa, pb, pg) = (a.as_ptr(), b.as_ptr(), g.as_mut_ptr());
        let head = head_len(pg, n);
        let m = first(head);
        // SAFETY: masked loads and the masked store touch only the first
        // `head <= n` elements of each slice.
        unsafe {
            let d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, pa), _mm512_maskz_loadu_ps(m, pb));
            _mm512_mask_storeu_ps(pg, m, d);
        }
        let mut i = head;
        while i + 64 <= n {
            // SAFETY: `i + 64 <= n`, at most each slice's length; `pg.add(i)`
            // is 64-byte aligned (the head ended at a 64-byte boundary and `i`
            // advances by 64 floats), as the streaming store requires.
            unsafe {
                let d0 = _mm512_sub_ps(_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i)));
                let d1 = _mm512_sub_ps(
                    _mm512_loadu_ps(pa.add(i + 16)),
                    _mm512_loadu_ps(pb.add(i + 16)),
                );
                let d2 = _mm512_sub_ps(
                    _mm512_loadu_ps(pa.add(i + 32)),
                    _mm512_loadu_ps(pb.add(i + 32)),
                );
                let d3 = _mm512_sub_ps(
                    _mm512_loadu_ps(pa.add(i + 48)),
                    _mm512_loadu_ps(pb.add(i + 48)),
                );
                if stream {
                    _mm512_stream_ps(pg.add(i), d0);
                    _mm512_stream_ps(pg.add(i + 16), d1);
                    _mm512_stream_ps(pg.add(i + 32), d2);
                    _mm512_stream_ps(pg.add(i + 48), d3);
                } else {
                    _mm512_storeu_ps(pg.add(i), d0);
                    _mm512_storeu_ps(pg.add(i + 16), d1);
                    _mm512_storeu_ps(pg.add(i + 32), d2);
                    _mm512_storeu_ps(pg.add(i + 48), d3);
                }
            }
            i += 64;
        }
        while i < n {
            let m = first(n - i);
            // SAFETY: masked loads and store touch only lanes `i..min(i + 16, n)`.
            unsafe {
                let d = _mm512_sub_ps(
                    _mm512_maskz_loadu_ps(m, pa.add(i)),
                    _mm512_maskz_loadu_ps(m, pb.add(i)),
                );
                _mm512_mask_storeu_ps(pg.add(i), m, d);
            }
            i += 16;
        }
        if stream {
            // Order the streaming stores before anything that follows.
            _mm_sfence();
        }
    }

    /// `g = a * s`; aligned on `g`, streaming stores if `stream`.
    #[target_feature(enable = "avx512f")]
    pub fn scale_store(a: &[f32], s: f32, g: &mut [f32], stream: bool) {
        let n = a.len().min(g.len());
        let (pa, pg) = (a.as_ptr(), g.as_mut_ptr());
        let vs = _mm512_set1_ps(s);
        let head = head_len(pg, n);
        let m = first(head);
        // SAFETY: the masked load and store touch only the first `head <= n` elements.
        unsafe { _mm512_mask_storeu_ps(pg, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, pa), vs)) };
        let mut i = head;
        while i + 64 <= n {
            // SAFETY: `i + 64 <= n`, at most both lengths; `pg.add(i)` is
            // 64-byte aligned (see `sub_store`).
            unsafe {
                let d0 = _mm512_mul_ps(_mm512_loadu_ps(pa.add(i)), vs);
                let d1 = _mm512_mul_ps(_mm512_loadu_ps(pa.add(i + 16)), vs);
                let d2 = _mm512_mul_ps(_mm512_loadu_ps(pa.add(i + 32)), vs);
                let d3 = _mm512_mul_ps(_mm512_loadu_ps(pa.add(i + 48)), vs);
                if stream {
                    _mm512_stream_ps(pg.add(i), d0);
                    _mm512_stream_ps(pg.add(i + 16), d1);
                    _mm512_stream_ps(pg.add(i + 32), d2);
                    _mm512_stream_ps(pg.add(i + 48), d3);
                } else {
                    _mm512_storeu_ps(pg.add(i), d0);
                    _mm512_storeu_ps(pg.add(i + 16), d1);
                    _mm512_storeu_ps(pg.add(i + 32), d2);
                    _mm512_storeu_ps(pg.add(i + 48), d3);
                }
            }
            i += 64;
        }
        while i < n {
            let m = first(n - i);
            // SAFETY: the masked load and store touch only lanes `i..min(i + 16, n)`.
            unsafe {
                _mm512_mask_storeu_ps(
                    pg.add(i),
                    m,
                    _mm512_mul_ps(_mm512_maskz_loadu_ps(m, pa.add(i)), vs),
                )
            };
            i += 16;
        }
        if stream {
            _mm_sfence();
        }
    }

    /// `e^x` for 16 lanes: `n = round(x log2 e)`, `r = x - n ln 2` in two
    /// steps (Cody–Waite), `e^r` by its degree-6 Taylor polynomial (Horner,
    /// FMA), then `2^n e^r` with `scalef`. About 1e-7 relative error on
    /// |r| <= ln(2)/2; it exists to be timed, not to be exact.
    #[target_feature(enable = "avx512f")]
    fn exp16(x: __m512) -> __m512 {
        const LN2_HI: f32 = 0.693_359_4; // 0x3f318000: exact product with small n
        const LN2_LO: f32 = -2.121_944_4e-4; // ln 2 - LN2_HI
        let n = _mm512_roundscale_ps::<0x08>(_mm512_mul_ps(
            x,
            _mm512_set1_ps(std::f32::consts::LOG2_E),
        ));
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_HI), x);
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_LO), r);
        let mut p = _mm512_set1_ps(1.0 / 720.0);
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0 / 120.0));
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0 / 24.0));
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0 / 6.0));
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5));
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0));
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0));
        _mm512_scalef_ps(p, n)
    }

    /// `K` exps per 16 lanes: `e^x`, and for `K == 2` also `e^-x`.
    #[target_feature(enable = "avx512f")]
    fn exps<const K: usize>(x: __m512) -> __m512 {
        let e = exp16(x);
        if K == 2 {
            _mm512_add_ps(e, exp16(_mm512_sub_ps(_mm512_setzero_ps(), x)))
        } else {
            e
        }
    }

    /// Sum over `a` of `K` polynomial exps per element.
    #[target_feature(enable = "avx512f")]
    pub fn exp_sum<const K: usize>(a: &[f32]) -> f32 {
        let n = a.len();
        let pa = a.as_ptr();
        let (mut acc0, mut acc1, mut acc2, mut acc3) = (
            _mm512_setzero_ps(),
            _mm512_setzero_ps(),
            _mm512_setzero_ps(),
            _mm512_setzero_ps(),
        );
        let mut i = 0;
        while i + 64 <= n {
            // SAFETY: `i + 64 <= n = a.len()`.
            let (x0, x1, x2, x3) = unsafe {
                (
                    _mm512_loadu_ps(pa.add(i)),
                    _mm512_loadu_ps(pa.add(i + 16)),
                    _mm512_loadu_ps(pa.add(i + 32)),
                    _mm512_loadu_ps(pa.add(i + 48)),
                )
            };
            acc0 = _mm512_add_ps(acc0, exps::<K>(x0));
            acc1 = _mm512_add_ps(acc1, exps::<K>(x1));
            acc2 = _mm512_add_ps(acc2, exps::<K>(x2));
            acc3 = _mm512_add_ps(acc3, exps::<K>(x3));
            i += 64;
        }
        while i < n {
            let m = first(n - i);
            // SAFETY: the masked load reads only lanes `i..min(i + 16, n)`.
            let x = unsafe { _mm512_maskz_loadu_ps(m, pa.add(i)) };
            acc0 = _mm512_mask_add_ps(acc0, m, acc0, exps::<K>(x));
            i += 16;
        }
        _mm512_reduce_add_ps(_mm512_add_ps(
            _mm512_add_ps(acc0, acc1),
            _mm512_add_ps(acc2, acc3),
        ))
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    /// Mask of the first `n` lanes (`n <= 8`): all bits set in each lane to
    /// load, as `_mm256_maskload_ps` and `_mm256_and_ps` want.
    #[target_feature(enable = "avx2,fma")]
    fn first(n: usize) -> __m256i {
        _mm256_cmpgt_epi32(
            _mm256_set1_epi32(n.min(8) as i32),
            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
        )
    }

    /// Elements before `ptr` reaches a 64-byte boundary, at most `n`.
    #[inline]
    fn head_len(ptr: *const f32, n: usize) -> usize {
        let misalign = (ptr as usize) & 63;
        let head = if misalign == 0 {
            0
        } else {
            (64 - misalign) / 4
        };
        head.min(n)
    }

    /// Reads both slices once: `Σ a·b` in eight independent accumulators
    /// (no alignment peel, as in `avx512::dot`).
    #[target_feature(enable = "avx2,fma")]
    pub fn dot(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = [_mm256_setzero_ps(); 8];
        let mut i = 0;
        while i + 64 <= n {
            for (j, acc) in acc.iter_mut().enumerate() {
                // SAFETY: `i + 8 j + 8 <= i + 64 <= n`, and `n` is at most
                // the length of both slices.
                unsafe {
                    let x = _mm256_loadu_ps(pa.add(i + 8 * j));
                    *acc = _mm256_fmadd_ps(x, _mm256_loadu_ps(pb.add(i + 8 * j)), *acc);
                }
            }
            i += 64;
        }
        while i + 8 <= n {
            // SAFETY: `i + 8 <= n`, at most both lengths.
            unsafe {
                let x = _mm256_loadu_ps(pa.add(i));
                acc[0] = _mm256_fmadd_ps(x, _mm256_loadu_ps(pb.add(i)), acc[0]);
            }
            i += 8;
        }
        if i < n {
            let m = first(n - i);
            // SAFETY: `i < n`; the masked loads read only lanes `i..n`
            // (masked-off lanes are not accessed and read as 0).
            unsafe {
                let x = _mm256_maskload_ps(pa.add(i), m);
                acc[0] = _mm256_fmadd_ps(x, _mm256_maskload_ps(pb.add(i), m), acc[0]);
            }
        }
        reduce8(acc)
    }

    /// Reads the slice once: `Σ a` in eight independent accumulators.
    #[target_feature(enable = "avx2,fma")]
    pub fn sum(a: &[f32]) -> f32 {
        let n = a.len();
        let pa = a.as_ptr();
        let mut acc = [_mm256_setzero_ps(); 8];
        let mut i = 0;
        while i + 64 <= n {
            for (j, acc) in acc.iter_mut().enumerate() {
                // SAFETY: `i + 8 j + 8 <= i + 64 <= n = a.len()`.
                *acc = _mm256_add_ps(unsafe { _mm256_loadu_ps(pa.add(i + 8 * j)) }, *acc);
            }
            i += 64;
        }
        while i + 8 <= n {
            // SAFETY: `i + 8 <= n = a.len()`.
            acc[0] = _mm256_add_ps(unsafe { _mm256_loadu_ps(pa.add(i)) }, acc[0]);
            i += 8;
        }
        if i < n {
            // SAFETY: `i < n`; the masked load reads only lanes `i..n`.
            let x = unsafe { _mm256_maskload_ps(pa.add(i), first(n - i)) };
            acc[0] = _mm256_add_ps(x, acc[0]);
        }
        reduce8(acc)
    }

    /// Sum of the 8 lanes.
    #[target_feature(enable = "avx2,fma")]
    fn hsum(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
    }

    #[target_feature(enable = "avx2,fma")]
    fn reduce8(acc: [__m256; 8]) -> f32 {
        let a = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        let b = _mm256_add_ps(_mm256_add_ps(acc[4], acc[5]), _mm256_add_ps(acc[6], acc[7]));
        hsum(_mm256_add_ps(a, b))
    }

    /// `g = a - b`; aligned on `g`, streaming stores if `stream`.
    #[target_feature(enable = "avx2,fma")]
    pub fn sub_store(a: &[f32], b: &[f32], g: &mut [f32], stream: bool) {
        let n = a.len().min(b.len()).min(g.len());
        let head = head_len(g.as_ptr(), n);
        super::fallback::sub_store(&a[..head], &b[..head], &mut g[..head]);
        let (pa, pb, pg) = (a.as_ptr(), b.as_ptr(), g.as_mut_ptr());
        let mut i = head;
        while i + 32 <= n {
            // SAFETY: `i + 32 <= n`, at most each slice's length; `pg.add(i)`
            // is 64-byte aligned (the head ended at a 64-byte boundary and `i`
            // advances by 32 floats), so every store below is 32-byte
            // aligned, as the streaming store requires.
            unsafe {
                let d0 = _mm256_sub_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)));
                let d1 = _mm256_sub_ps(
                    _mm256_loadu_ps(pa.add(i + 8)),
                    _mm256_loadu_ps(pb.add(i + 8)),
                );
                let d2 = _mm256_sub_ps(
                    _mm256_loadu_ps(pa.add(i + 16)),
                    _mm256_loadu_ps(pb.add(i + 16)),
                );
                let d3 = _mm256_sub_ps(
                    _mm256_loadu_ps(pa.add(i + 24)),
                    _mm256_loadu_ps(pb.add(i + 24)),
                );
                if stream {
                    _mm256_stream_ps(pg.add(i), d0);
                    _mm256_stream_ps(pg.add(i + 8), d1);
                    _mm256_stream_ps(pg.add(i + 16), d2);
                    _mm256_stream_ps(pg.add(i + 24), d3);
                } else {
                    _mm256_storeu_ps(pg.add(i), d0);
                    _mm256_storeu_ps(pg.add(i + 8), d1);
                    _mm256_storeu_ps(pg.add(i + 16), d2);
                    _mm256_storeu_ps(pg.add(i + 24), d3);
                }
            }
            i += 32;
        }
        super::fallback::sub_store(&a[i..n], &b[i..n], &mut g[i..n]);
        if stream {
            // Order the streaming stores before anything that follows.
            _mm_sfence();
        }
    }

    /// `g = a * s`; aligned on `g`, streaming stores if `stream`.
    #[target_feature(enable = "avx2,fma")]
    pub fn scale_store(a: &[f32], s: f32, g: &mut [f32], stream: bool) {
        let n = a.len().min(g.len());
        let head = head_len(g.as_ptr(), n);
        super::fallback::scale_store(&a[..head], s, &mut g[..head]);
        let (pa, pg) = (a.as_ptr(), g.as_mut_ptr());
        let vs = _mm256_set1_ps(s);
        let mut i = head;
        while i + 32 <= n {
            // SAFETY: `i + 32 <= n`, at most both lengths; `pg.add(i)` is
            // 64-byte aligned (see `sub_store`).
            unsafe {
                let d0 = _mm256_mul_ps(_mm256_loadu_ps(pa.add(i)), vs);
                let d1 = _mm256_mul_ps(_mm256_loadu_ps(pa.add(i + 8)), vs);
                let d2 = _mm256_mul_ps(_mm256_loadu_ps(pa.add(i + 16)), vs);
                let d3 = _mm256_mul_ps(_mm256_loadu_ps(pa.add(i + 24)), vs);
                if stream {
                    _mm256_stream_ps(pg.add(i), d0);
                    _mm256_stream_ps(pg.add(i + 8), d1);
                    _mm256_stream_ps(pg.add(i + 16), d2);
                    _mm256_stream_ps(pg.add(i + 24), d3);
                } else {
                    _mm256_storeu_ps(pg.add(i), d0);
                    _mm256_storeu_ps(pg.add(i + 8), d1);
                    _mm256_storeu_ps(pg.add(i + 16), d2);
                    _mm256_storeu_ps(pg.add(i + 24), d3);
                }
            }
            i += 32;
        }
        super::fallback::scale_store(&a[i..n], s, &mut g[i..n]);
        if stream {
            _mm_sfence();
        }
    }

    /// `e^x` for 8 lanes, the AVX2 form of `avx512::exp16` (same reduction
    /// constants and polynomial). Without `roundscale` and `scalef`:
    /// `t = x log2 e + 1.5·2^23 + 127` rounds to an integer (the float
    /// spacing there is 1), so `n = t - (1.5·2^23 + 127)` is `round(x log2 e)`
    /// and t's low mantissa bits hold `n + 127`; shifting them into the
    /// exponent field (the `2^22` bit of the magic falls off) gives `2^n`.
    /// The clamp keeps `n + 127` in `1..=254`, a normal exponent.
    #[target_feature(enable = "avx2,fma")]
    fn exp8(x: __m256) -> __m256 {
        const LN2_HI: f32 = 0.693_359_4; // 0x3f318000: exact product with small n
        const LN2_LO: f32 = -2.121_944_4e-4; // ln 2 - LN2_HI
        const MAGIC: f32 = 12_582_912.0 + 127.0; // 1.5·2^23 + the exponent bias
        let x = _mm256_min_ps(
            _mm256_max_ps(x, _mm256_set1_ps(-87.0)),
            _mm256_set1_ps(88.0),
        );
        let magic = _mm256_set1_ps(MAGIC);
        let t = _mm256_fmadd_ps(x, _mm256_set1_ps(std::f32::consts::LOG2_E), magic);
        let n = _mm256_sub_ps(t, magic);
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_HI), x);
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_LO), r);
        let mut p = _mm256_set1_ps(1.0 / 720.0);
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0 / 120.0));
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0 / 24.0));
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0 / 6.0));
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5));
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0));
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0));
        let pow2n = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_castps_si256(t)));
        _mm256_mul_ps(p, pow2n)
    }

    /// `K` exps per 8 lanes: `e^x`, and for `K == 2` also `e^-x`.
    #[target_feature(enable = "avx2,fma")]
    fn exps<const K: usize>(x: __m256) -> __m256 {
        let e = exp8(x);
        if K == 2 {
            _mm256_add_ps(e, exp8(_mm256_sub_ps(_mm256_setzero_ps(), x)))
        } else {
            e
        }
    }

    /// Sum over `a` of `K` polynomial exps per element.
    #[target_feature(enable = "avx2,fma")]
    pub fn exp_sum<const K: usize>(a: &[f32]) -> f32 {
        let n = a.len();
        let pa = a.as_ptr();
        let (mut acc0, mut acc1, mut acc2, mut acc3) = (
            _mm256_setzero_ps(),
            _mm256_setzero_ps(),
            _mm256_setzero_ps(),
            _mm256_setzero_ps(),
        );
        let mut i = 0;
        while i + 32 <= n {
            // SAFETY: `i + 32 <= n = a.len()`.
            let (x0, x1, x2, x3) = unsafe {
                (
                    _mm256_loadu_ps(pa.add(i)),
                    _mm256_loadu_ps(pa.add(i + 8)),
                    _mm256_loadu_ps(pa.add(i + 16)),
                    _mm256_loadu_ps(pa.add(i + 24)),
                )
            };
            acc0 = _mm256_add_ps(acc0, exps::<K>(x0));
            acc1 = _mm256_add_ps(acc1, exps::<K>(x1));
            acc2 = _mm256_add_ps(acc2, exps::<K>(x2));
            acc3 = _mm256_add_ps(acc3, exps::<K>(x3));
            i += 32;
        }
        while i + 8 <= n {
            // SAFETY: `i + 8 <= n = a.len()`.
            let x = unsafe { _mm256_loadu_ps(pa.add(i)) };
            acc0 = _mm256_add_ps(acc0, exps::<K>(x));
            i += 8;
        }
        if i < n {
            let m = first(n - i);
            // SAFETY: `i < n`; the masked load reads only lanes `i..n`.
            let x = unsafe { _mm256_maskload_ps(pa.add(i), m) };
            // Masked-off lanes load 0 (`e^0 = 1`): keep only the lanes present.
            acc0 = _mm256_add_ps(acc0, _mm256_and_ps(exps::<K>(x), _mm256_castsi256_ps(m)));
        }
        hsum(_mm256_add_ps(
            _mm256_add_ps(acc0, acc1),
            _mm256_add_ps(acc2, acc3),
        ))
    }
}

/// Plain loops for CPUs without AVX-512 or AVX2+FMA (and the scalar heads
/// and tails of the AVX2 store kernels): 16 independent lanes, which the
/// compiler vectorizes for the baseline instruction set.
mod fallback {
    pub fn dot(a: &[f32], b: &[f32]) -> f32 {
        let mut acc = [0.0_f32; 16];
        let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
        let tail: f32 = ca
            .remainder()
            .iter()
            .zip(cb.remainder())
            .map(|(x, y)| x * y)
            .sum();
        for (x, y) in ca.zip(cb) {
            for l in 0..16 {
                acc[l] += x[l] * y[l];
            }
        }
        acc.iter().sum::<f32>() + tail
    }

    pub fn sum(a: &[f32]) -> f32 {
        let mut acc = [0.0_f32; 16];
        let ca = a.chunks_exact(16);
        let tail: f32 = ca.remainder().iter().sum();
        for x in ca {
            for l in 0..16 {
                acc[l] += x[l];
            }
        }
        acc.iter().sum::<f32>() + tail
    }

    pub fn sub_store(a: &[f32], b: &[f32], g: &mut [f32]) {
        for ((g, &x), &y) in g.iter_mut().zip(a).zip(b) {
            *g = x - y;
        }
    }

    pub fn scale_store(a: &[f32], s: f32, g: &mut [f32]) {
        for (g, &x) in g.iter_mut().zip(a) {
            *g = x * s;
        }
    }

    fn exp(x: f32) -> f32 {
        let n = (x * std::f32::consts::LOG2_E).round().clamp(-126.0, 127.0);
        let r = x - n * std::f32::consts::LN_2;
        let p = 1.0
            + r * (1.0
                + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r / 720.0)))));
        p * f32::from_bits(((n as i32 + 127) as u32) << 23)
    }

    pub fn exp_sum(a: &[f32], k: usize) -> f32 {
        let mut acc = [0.0_f32; 16];
        let ca = a.chunks_exact(16);
        let mut tail = 0.0;
        for &x in ca.remainder() {
            tail += exp(x) + if k == 2 { exp(-x) } else { 0.0 };
        }
        for x in ca {
            for l in 0..16 {
                acc[l] += exp(x[l]) + if k == 2 { exp(-x[l]) } else { 0.0 };
            }
        }
        acc.iter().sum::<f32>() + tail
    }
}

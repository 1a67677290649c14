//! Per-sample functions and scalar/vector arithmetic (Prometheus `vectorElemBinop`).

use strata_grammar::BinaryOp;

use super::{go_max, go_min};

/// A one-argument math function.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, serde::Serialize, serde::Deserialize,
)]
pub enum MathFn {
    Abs,
    Ceil,
    Floor,
    Exp,
    Sqrt,
    Ln,
    Log2,
    Log10,
    Sin,
    Cos,
    Tan,
    Asin,
    Acos,
    Atan,
    Sinh,
    Cosh,
    Tanh,
    Asinh,
    Acosh,
    Atanh,
    Deg,
    Rad,
    Sgn,
}

impl MathFn {
    /// Applies the function.
    pub fn apply(self, v: f64) -> f64 {
        use MathFn::*;
        match self {
            Abs => v.abs(),
            Ceil => v.ceil(),
            Floor => v.floor(),
            Exp => v.exp(),
            Sqrt => v.sqrt(),
            Ln => v.ln(),
            Log2 => v.log2(),
            Log10 => v.log10(),
            Sin => v.sin(),
            Cos => v.cos(),
            Tan => v.tan(),
            Asin => v.asin(),
            Acos => v.acos(),
            Atan => v.atan(),
            Sinh => v.sinh(),
            Cosh => v.cosh(),
            Tanh => v.tanh(),
            Asinh => v.asinh(),
            Acosh => v.acosh(),
            Atanh => v.atanh(),
            Deg => v * 180.0 / std::f64::consts::PI,
            Rad => v * std::f64::consts::PI / 180.0,
            Sgn => {
                if v < 0.0 {
                    -1.0
                } else if v > 0.0 {
                    1.0
                } else {
                    v
                }
            }
        }
    }
}

/// `clamp`-family and `round` with their already-evaluated arguments.
pub fn clamp(v: f64, min: f64, max: f64) -> f64 {
    go_max(min, go_min(max, v))
}

/// `round(v, to_nearest)`.
pub fn round(v: f64, to_nearest: f64) -> f64 {
    let inv = 1.0 / to_nearest;
    (v * inv + 0.5).floor() / inv
}

/// Result of one element of a binary operation: the value and whether to keep it.
pub fn elem_binop(op: BinaryOp, l: f64, r: f64) -> (f64, bool) {
    use BinaryOp::*;
    match op {
        Add => (l + r, true),
        Sub => (l - r, true),
        Mul => (l * r, true),
        Div => (l / r, true),
        Mod => (l % r, true),
        Pow => (go_pow(l, r), true),
        Atan2 => (l.atan2(r), true),
        Eql => (l, l == r),
        Neq => (l, l != r),
        Lss => (l, l < r),
        Lte => (l, l <= r),
        Gtr => (l, l > r),
        Gte => (l, l >= r),
        // Trims apply to histograms only.
        TrimUpper | TrimLower => (0.0, false),
        And | Or | Unless => (l, true),
    }
}

/// Go's `math.Pow` special cases where they differ from C's `pow`.
fn go_pow(x: f64, y: f64) -> f64 {
    if y == 0.0 {
        return 1.0;
    }
    if x == 1.0 {
        return 1.0;
    }
    if (x == -1.0) && y.is_infinite() {
        return 1.0;
    }
    x.powf(y)
}

/// Scalar ⊕ scalar with `bool` semantics for comparisons (`1 > bool 2` = 0).
pub fn scalar_binop(op: BinaryOp, l: f64, r: f64) -> f64 {
    let (v, keep) = elem_binop(op, l, r);
    if op.is_comparison() {
        if keep { 1.0 } else { 0.0 }
    } else {
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparisons_keep_the_left_value() {
        assert_eq!(elem_binop(BinaryOp::Gtr, 3.0, 1.0), (3.0, true));
        assert!(!elem_binop(BinaryOp::Eql, f64::NAN, f64::NAN).1);
        assert_eq!(scalar_binop(BinaryOp::Lss, 1.0, 2.0), 1.0);
    }

    #[test]
    fn clamp_and_round() {
        assert_eq!(clamp(5.0, 0.0, 1.0), 1.0);
        assert!(clamp(f64::NAN, 0.0, 1.0).is_nan());
        assert_eq!(round(2.5, 1.0), 3.0);
        assert_eq!(round(-2.5, 1.0), -2.0);
        assert_eq!(round(1.26, 0.1), 1.3);
        assert_eq!(MathFn::Sgn.apply(-3.0), -1.0);
    }
}

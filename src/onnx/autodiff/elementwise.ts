// Gradient rules for element-wise ops: broadcasting binaries (Add, Sub, Mul, Div, Pow, Where), unary maths
// (Sqrt, Exp, Log, Erf, Sin, Cos, activations), and type/identity ops. Binary gradients are summed back to each
// operand's shape with Emitter.unbroadcast. Softmax lives in reduce.ts (it reduces along an axis).
import { attrFloat, attrString } from './attributes.ts';
import { dy0, type GradRule } from './rule.ts';

/** Two-input Max/Min: the gradient goes to the winner (the first input on ties). */
function minMax(a: Parameters<GradRule>[0], compare: string) {
  const { e, x } = a;
  if (x.length !== 2) e.fail(`${a.node.opType} with ${x.length} inputs has no gradient rule (two only)`);
  const g = dy0(a);
  const zero = e.scalar(0, g);
  const first = e.op(compare, [x[0], x[1]]);
  return [
    a.needs[0] ? e.unbroadcast(e.op('Where', [first, g, zero]), x[0]) : null,
    a.needs[1] ? e.unbroadcast(e.op('Where', [first, zero, g]), x[1]) : null,
  ];
}

const unary = (body: (a: Parameters<GradRule>[0], g: string) => string): GradRule => (a) => [body(a, dy0(a))];

export const elementwiseRules: Record<string, GradRule> = {
  Identity: unary((_a, g) => g),
  Add: (a) => {
    const g = dy0(a);
    return [a.needs[0] ? a.e.unbroadcast(g, a.x[0]) : null, a.needs[1] ? a.e.unbroadcast(g, a.x[1]) : null];
  },
  Sub: (a) => {
    const { e } = a;
    const g = dy0(a);
    return [a.needs[0] ? e.unbroadcast(g, a.x[0]) : null, a.needs[1] ? e.unbroadcast(e.op('Neg', [g]), a.x[1]) : null];
  },
  Mul: (a) => {
    const { e, x } = a;
    const g = dy0(a);
    return [
      a.needs[0] ? e.unbroadcast(e.op('Mul', [g, x[1]]), x[0]) : null,
      a.needs[1] ? e.unbroadcast(e.op('Mul', [g, x[0]]), x[1]) : null,
    ];
  },
  Div: (a) => {
    // y = p / q: dp = g / q, dq = -g · y / q
    const { e, x, y } = a;
    const g = dy0(a);
    const gOverQ = e.op('Div', [g, x[1]]);
    return [
      a.needs[0] ? e.unbroadcast(gOverQ, x[0]) : null,
      a.needs[1] ? e.unbroadcast(e.op('Neg', [e.op('Mul', [gOverQ, y[0]])]), x[1]) : null,
    ];
  },
  Pow: (a) => {
    // y = p^q: dp = g · q · p^(q-1), dq = g · y · ln p
    const { e, x, y } = a;
    const g = dy0(a);
    const [p, q] = x;
    const qLike = e.castLike(q, p);
    const exponent = e.constValues(q);
    const dp = () => {
      if (exponent?.length === 1 && exponent[0] === 2) return e.op('Mul', [g, e.op('Mul', [p, e.scalar(2, p)])]);
      if (exponent?.length === 1 && exponent[0] === 1) return g;
      const pow = e.op('Pow', [p, e.op('Sub', [qLike, e.scalar(1, p)])]);
      return e.op('Mul', [g, e.op('Mul', [qLike, pow])]);
    };
    return [
      a.needs[0] ? e.unbroadcast(dp(), p) : null,
      a.needs[1] ? e.unbroadcast(e.op('Mul', [g, e.op('Mul', [y[0], e.op('Log', [p])])]), q) : null,
    ];
  },
  Neg: unary(({ e }, g) => e.op('Neg', [g])),
  Sqrt: unary(({ e, y }, g) => e.op('Div', [e.op('Mul', [g, e.scalar(0.5, g)]), y[0]])),
  Reciprocal: unary(({ e, y }, g) => e.op('Neg', [e.op('Mul', [g, e.op('Mul', [y[0], y[0]])])])),
  Exp: unary(({ e, y }, g) => e.op('Mul', [g, y[0]])),
  Log: unary(({ e, x }, g) => e.op('Div', [g, x[0]])),
  // d erf(x)/dx = 2/√π · exp(−x²)
  Erf: unary(({ e, x }, g) => {
    const gauss = e.op('Exp', [e.op('Neg', [e.op('Mul', [x[0], x[0]])])]);
    return e.op('Mul', [g, e.op('Mul', [gauss, e.scalar(2 / Math.sqrt(Math.PI), g)])]);
  }),
  Sin: unary(({ e, x }, g) => e.op('Mul', [g, e.op('Cos', [x[0]])])),
  Cos: unary(({ e, x }, g) => e.op('Neg', [e.op('Mul', [g, e.op('Sin', [x[0]])])])),
  Sigmoid: unary(({ e, y }, g) => e.op('Mul', [g, e.op('Mul', [y[0], e.op('Sub', [e.scalar(1, g), y[0]])])])),
  Tanh: unary(({ e, y }, g) => e.op('Mul', [g, e.op('Sub', [e.scalar(1, g), e.op('Mul', [y[0], y[0]])])])),
  Relu: unary(({ e, x }, g) => e.op('Where', [e.op('Greater', [x[0], e.scalar(0, g)]), g, e.scalar(0, g)])),
  LeakyRelu: unary(({ e, x, node }, g) => {
    const alpha = attrFloat(node, 'alpha', 0.01);
    return e.op('Where', [e.op('Greater', [x[0], e.scalar(0, g)]), g, e.op('Mul', [g, e.scalar(alpha, g)])]);
  }),
  Abs: unary(({ e, x }, g) => e.op('Mul', [g, e.op('Sign', [x[0]])])),
  Softplus: unary(({ e, x }, g) => e.op('Mul', [g, e.op('Sigmoid', [x[0]])])),
  Gelu: unary(({ e, x, node }, g) => {
    const v = x[0];
    if (attrString(node, 'approximate', 'none') === 'tanh') {
      // u = √(2/π)(x + 0.044715x³), t = tanh u: d/dx = ½(1 + t) + ½x(1 − t²)·√(2/π)(1 + 3·0.044715x²)
      const c = Math.sqrt(2 / Math.PI);
      const x2 = e.op('Mul', [v, v]);
      const u = e.op('Mul', [e.scalar(c, v), e.op('Add', [v, e.op('Mul', [e.scalar(0.044715, v), e.op('Mul', [x2, v])])])]);
      const t = e.op('Tanh', [u]);
      const du = e.op('Mul', [e.scalar(c, v), e.op('Add', [e.scalar(1, v), e.op('Mul', [e.scalar(3 * 0.044715, v), x2])])]);
      const half = e.scalar(0.5, v);
      const left = e.op('Mul', [half, e.op('Add', [e.scalar(1, v), t])]);
      const right = e.op('Mul', [e.op('Mul', [half, v]), e.op('Mul', [e.op('Sub', [e.scalar(1, v), e.op('Mul', [t, t])]), du])]);
      return e.op('Mul', [g, e.op('Add', [left, right])]);
    }
    // Φ(x) + x·φ(x), Φ(x) = ½(1 + erf(x/√2)), φ(x) = exp(−x²/2)/√(2π)
    const cdf = e.op('Mul', [e.scalar(0.5, v), e.op('Add', [e.scalar(1, v), e.op('Erf', [e.op('Mul', [v, e.scalar(Math.SQRT1_2, v)])])])]);
    const pdf = e.op('Mul', [e.scalar(1 / Math.sqrt(2 * Math.PI), v), e.op('Exp', [e.op('Mul', [e.op('Mul', [v, v]), e.scalar(-0.5, v)])])]);
    return e.op('Mul', [g, e.op('Add', [cdf, e.op('Mul', [v, pdf])])]);
  }),
  Clip: (a) => {
    // Gradient passes where min ≤ x ≤ max (min/max themselves are treated as constants).
    const { e, x } = a;
    const g = dy0(a);
    let mask: string | null = null;
    if (x[1]) mask = e.op('GreaterOrEqual', [x[0], x[1]]);
    if (x[2]) {
      const below = e.op('LessOrEqual', [x[0], x[2]]);
      mask = mask ? e.op('And', [mask, below]) : below;
    }
    return [mask ? e.op('Where', [mask, g, e.scalar(0, g)]) : g, null, null];
  },
  Max: (a) => minMax(a, 'GreaterOrEqual'),
  Min: (a) => minMax(a, 'LessOrEqual'),
  Sum: (a) => a.x.map((xi, i) => (a.needs[i] ? a.e.unbroadcast(dy0(a), xi) : null)),
  Mean: (a) => {
    const g = a.e.op('Div', [dy0(a), a.e.scalar(a.x.length, dy0(a))]);
    return a.x.map((xi, i) => (a.needs[i] ? a.e.unbroadcast(g, xi) : null));
  },
  Where: (a) => {
    const { e, x } = a;
    const g = dy0(a);
    const zero = e.scalar(0, g);
    return [
      null,
      a.needs[1] ? e.unbroadcast(e.op('Where', [x[0], g, zero]), x[1]) : null,
      a.needs[2] ? e.unbroadcast(e.op('Where', [x[0], zero, g]), x[2]) : null,
    ];
  },
  Cast: unary(({ e, x }, g) => e.castLike(g, x[0])),
  CastLike: (a) => [elementwiseRules.Cast(a)[0], null],
  Dropout: (a) => {
    const training = a.x[2] ? a.e.constValues(a.x[2]) : [0];
    if (!training || training[0]) a.e.fail('Dropout in training mode has no gradient rule');
    return [dy0(a), null, null];
  },
};

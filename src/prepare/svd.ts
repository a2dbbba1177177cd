// Truncated SVD in float64, for extracting a rank-r LoRA from a dense weight offset (kohya's "extract LoRA":
// ΔW ≈ U_r·diag(s_r)·V_rᵀ, up = U_r·diag(s_r), down = V_rᵀ; sd-scripts networks/extract_lora_from_models.py).
//   - Small matrices (min dimension ≤ `exactBelow`): one-sided Jacobi (Hestenes 1958; Demmel & Veselić 1992) on the
//     whole matrix: every singular value, to float64 accuracy.
//   - Large ones: randomized range finder with power iterations (Halko, Martinsson & Tropp 2011, Alg. 4.4 + 5.1),
//     then one-sided Jacobi on the small projected matrix. The rank-r result is optimal within the found range; the
//     reported error is measured on the actual product, not estimated.
// kohya also clamps U and Vᵀ at their 0.99 quantile; we do not (it changes ΔW and breaks the error ↔ spectrum link).

export interface TruncatedSvd {
  rank: number;
  /** [rows, rank] row-major: U_r·diag(s_r). */
  up: Float32Array;
  /** [rank, cols] row-major: V_rᵀ. */
  down: Float32Array;
  /** The singular values found (all of them on the exact path, `rank + oversample` on the randomized one), descending. */
  singular: Float64Array;
  /** ‖A − up·down‖_F / ‖A‖_F, measured in float64 (0 for a zero matrix). */
  relError: number;
  exact: boolean;
}

export interface SvdOptions {
  oversample?: number;
  powerIterations?: number;
  seed?: number;
  /** Matrices whose smaller side is at most this use the exact path. */
  exactBelow?: number;
}

/** Columns of a matrix, each a Float64Array (column-major storage makes Jacobi rotations and Gram–Schmidt contiguous). */
type Columns = Float64Array[];

const dot = (a: Float64Array, b: Float64Array) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};

/**
 * One-sided Jacobi SVD of a tall matrix given by its columns (m ≥ n): A = U·diag(s)·Vᵀ. Rotates column pairs until
 * all are orthogonal to relative precision; columns are then U·s and the rotations accumulate V. Destroys `cols`.
 */
export function jacobiSvd(cols: Columns): { s: Float64Array; u: Columns; v: Columns } {
  const n = cols.length;
  const v: Columns = Array.from({ length: n }, (_, j) => {
    const c = new Float64Array(n);
    c[j] = 1;
    return c;
  });
  const eps = 1e-15;
  for (let sweep = 0; sweep < 60; sweep++) {
    let rotated = false;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const a = cols[p], b = cols[q];
        const alpha = dot(a, a), beta = dot(b, b), gamma = dot(a, b);
        if (gamma === 0 || Math.abs(gamma) <= eps * Math.sqrt(alpha * beta)) continue;
        rotated = true;
        const zeta = (beta - alpha) / (2 * gamma);
        const t = Math.sign(zeta || 1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
        const c = 1 / Math.sqrt(1 + t * t);
        const sn = c * t;
        rotate(a, b, c, sn);
        rotate(v[p], v[q], c, sn);
      }
    }
    if (!rotated) break;
  }
  const s = Float64Array.from(cols, (c) => Math.sqrt(dot(c, c)));
  const order = [...s.keys()].sort((i, j) => s[j] - s[i]);
  const u = order.map((j) => (s[j] > 0 ? cols[j].map((x) => x / s[j]) : new Float64Array(cols[j].length)));
  return { s: Float64Array.from(order, (j) => s[j]), u, v: order.map((j) => v[j]) };
}

function rotate(a: Float64Array, b: Float64Array, c: number, s: number): void {
  for (let i = 0; i < a.length; i++) {
    const x = a[i], y = b[i];
    a[i] = c * x - s * y;
    b[i] = s * x + c * y;
  }
}

/** Orthonormalizes columns in place (modified Gram–Schmidt, twice: "twice is enough", Giraud et al. 2005). */
function orthonormalize(cols: Columns): Columns {
  for (let pass = 0; pass < 2; pass++) {
    for (let j = 0; j < cols.length; j++) {
      for (let i = 0; i < j; i++) {
        const r = dot(cols[i], cols[j]);
        const ci = cols[i], cj = cols[j];
        for (let k = 0; k < cj.length; k++) cj[k] -= r * ci[k];
      }
      const norm = Math.sqrt(dot(cols[j], cols[j]));
      const cj = cols[j];
      if (norm > 0) for (let k = 0; k < cj.length; k++) cj[k] /= norm;
    }
  }
  return cols;
}

/** A·X for A [rows, cols] row-major and X given as columns of length cols: columns of length rows. */
function multiply(a: Float64Array, rows: number, cols: number, x: Columns): Columns {
  const k = x.length;
  // X interleaved row-major [cols, k]: the inner loop then reads contiguous memory.
  const xi = new Float64Array(cols * k);
  for (let j = 0; j < k; j++) for (let c = 0; c < cols; c++) xi[c * k + j] = x[j][c];
  const out: Columns = Array.from({ length: k }, () => new Float64Array(rows));
  const xr = new Float64Array(k);
  for (let r = 0; r < rows; r++) {
    xr.fill(0);
    const base = r * cols;
    for (let c = 0; c < cols; c++) {
      const av = a[base + c];
      if (av === 0) continue;
      const off = c * k;
      for (let j = 0; j < k; j++) xr[j] += av * xi[off + j];
    }
    for (let j = 0; j < k; j++) out[j][r] = xr[j];
  }
  return out;
}

/** Aᵀ·Y for A [rows, cols] row-major and Y given as columns of length rows: columns of length cols. */
function multiplyTransposed(a: Float64Array, rows: number, cols: number, y: Columns): Columns {
  const k = y.length;
  const out: Columns = Array.from({ length: k }, () => new Float64Array(cols));
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    for (let j = 0; j < k; j++) {
      const yr = y[j][r];
      if (yr === 0) continue;
      const o = out[j];
      for (let c = 0; c < cols; c++) o[c] += a[base + c] * yr;
    }
  }
  return out;
}

/** Seeded standard normals (LCG + Box–Muller): the range finder's test matrix; any seed gives a valid result. */
function gaussians(seed: number) {
  let state = seed >>> 0 || 1;
  const uniform = () => ((state = (Math.imul(state, 1664525) + 1013904223) >>> 0) + 0.5) / 2 ** 32;
  return () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
}

/** Rank-`rank` truncated SVD of A [rows, cols] (row-major, any float array). */
export function truncatedSvd(a: ArrayLike<number>, rows: number, cols: number, rank: number, options: SvdOptions = {}): TruncatedSvd {
  if (a.length !== rows * cols) throw new Error(`truncatedSvd: ${a.length} values for a [${rows}, ${cols}] matrix`);
  if (!Number.isInteger(rank) || rank < 1) throw new Error(`truncatedSvd: rank ${rank} must be a positive integer`);
  const r = Math.min(rank, rows, cols);
  const a64 = Float64Array.from(a);
  const { oversample = 10, powerIterations = 3, seed = 1, exactBelow = 256 } = options;
  const small = Math.min(rows, cols);
  const exact = small <= exactBelow || r + oversample >= small;
  let uCols: Columns, s: Float64Array, vCols: Columns;
  if (exact) ({ u: uCols, s, v: vCols } = exactSvd(a64, rows, cols));
  else ({ u: uCols, s, v: vCols } = randomizedSvd(a64, rows, cols, Math.min(r + oversample, small), powerIterations, seed));
  const up = new Float32Array(rows * r);
  const down = new Float32Array(r * cols);
  for (let j = 0; j < r; j++) {
    for (let i = 0; i < rows; i++) up[i * r + j] = uCols[j][i] * s[j];
    for (let c = 0; c < cols; c++) down[j * cols + c] = vCols[j][c];
  }
  return { rank: r, up, down, singular: s, relError: relativeError(a64, rows, cols, up, down, r), exact };
}

function exactSvd(a: Float64Array, rows: number, cols: number): { u: Columns; s: Float64Array; v: Columns } {
  if (rows >= cols) {
    const columns: Columns = Array.from({ length: cols }, (_, c) => Float64Array.from({ length: rows }, (_, i) => a[i * cols + c]));
    return jacobiSvd(columns);
  }
  // Wide: the SVD of Aᵀ (whose columns are A's rows) with the roles of U and V swapped.
  const rowsAsColumns: Columns = Array.from({ length: rows }, (_, i) => a.slice(i * cols, (i + 1) * cols));
  const { u, s, v } = jacobiSvd(rowsAsColumns);
  return { u: v, s, v: u };
}

function randomizedSvd(a: Float64Array, rows: number, cols: number, k: number, q: number, seed: number) {
  const normal = gaussians(seed);
  const omega: Columns = Array.from({ length: k }, () => Float64Array.from({ length: cols }, normal));
  let basis = orthonormalize(multiply(a, rows, cols, omega));
  for (let i = 0; i < q; i++) {
    const z = orthonormalize(multiplyTransposed(a, rows, cols, basis));
    basis = orthonormalize(multiply(a, rows, cols, z));
  }
  // B = Qᵀ·A [k, cols]; its transpose (columns of length cols) is tall: Bᵀ = U_b·S·V_bᵀ, so B = V_b·S·U_bᵀ.
  const bt = multiplyTransposed(a, rows, cols, basis);
  const { u: ub, s, v: vb } = jacobiSvd(bt);
  // A ≈ Q·B = (Q·V_b)·S·U_bᵀ.
  const u = vb.map((coef) => {
    const col = new Float64Array(rows);
    coef.forEach((w, j) => {
      const qj = basis[j];
      for (let i = 0; i < rows; i++) col[i] += w * qj[i];
    });
    return col;
  });
  return { u, s, v: ub };
}

function relativeError(a: Float64Array, rows: number, cols: number, up: Float32Array, down: Float32Array, r: number): number {
  let num = 0, den = 0;
  const row = new Float64Array(cols);
  for (let i = 0; i < rows; i++) {
    row.fill(0);
    for (let j = 0; j < r; j++) {
      const u = up[i * r + j];
      for (let c = 0; c < cols; c++) row[c] += u * down[j * cols + c];
    }
    for (let c = 0; c < cols; c++) {
      const x = a[i * cols + c];
      num += (x - row[c]) ** 2;
      den += x * x;
    }
  }
  return den === 0 ? 0 : Math.sqrt(num / den);
}

// Fixtures of diffusers' scheduler tests (tests/schedulers/test_schedulers.py, SchedulerCommonTest), so that their
// full-loop reference sums and means can be checked here: the deterministic sample and noise of shape [4, 3, 8, 8]
// and the dummy model `sample * t / (t + 1)`, all in float32 like torch.

const f32 = Math.fround;
/**
 * arange(N).reshape(*rest, B) / N permuted to (B, *rest) — diffusers' dummy_sample_deter; `flip` reverses the arange
 * first (dummy_noise_deter). Default shape [4, 3, 8, 8]; the 1-D UniPC test uses [4, 3, 8].
 */
function deter(flip: boolean, shape: number[]): Float32Array {
  const [B, ...rest] = shape;
  const inner = rest.reduce((a, b) => a * b, 1);
  const N = B * inner;
  const out = new Float32Array(N);
  for (let b = 0; b < B; b++)
    for (let r = 0; r < inner; r++) {
      const k = r * B + b;
      out[b * inner + r] = f32((flip ? N - 1 - k : k) / N);
    }
  return out;
}

export const dummySampleDeter = (shape = [4, 3, 8, 8]): Float32Array => deter(false, shape);
export const dummyNoiseDeter = (shape = [4, 3, 8, 8]): Float32Array => deter(true, shape);

/** diffusers' dummy_model: sample · t / (t + 1) with t cast to float32. */
export function dummyModel(sample: Float32Array, t: number): Float32Array {
  const tf = f32(t);
  const d = f32(tf + 1);
  return sample.map((v) => f32(f32(v * tf) / d));
}

export function sumAbs(x: Float32Array): number {
  let s = 0;
  for (const v of x) s += Math.abs(v);
  return s;
}

export const meanAbs = (x: Float32Array): number => sumAbs(x) / x.length;

export const scale = (x: Float32Array, k: number): Float32Array => x.map((v) => f32(v * f32(k)));

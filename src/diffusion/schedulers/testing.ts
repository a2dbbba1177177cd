// Fixtures of diffusers' scheduler tests (tests/schedulers/test_schedulers.py, SchedulerCommonTest), so that their
// full-loop reference sums and means can be checked here: the deterministic sample and noise of shape [4, 3, 8, 8]
// and the dummy model `sample * t / (t + 1)`, all in float32 like torch.

const f32 = Math.fround;
const B = 4, C = 3, H = 8, W = 8;
const N = B * C * H * W;

/** arange(768).reshape(C, H, W, B) / 768, permuted to (B, C, H, W); `flip` reverses the arange (dummy_noise_deter). */
function deter(flip: boolean): Float32Array {
  const out = new Float32Array(N);
  for (let b = 0; b < B; b++)
    for (let c = 0; c < C; c++)
      for (let h = 0; h < H; h++)
        for (let w = 0; w < W; w++) {
          const k = ((c * H + h) * W + w) * B + b;
          out[((b * C + c) * H + h) * W + w] = f32((flip ? N - 1 - k : k) / N);
        }
  return out;
}

export const dummySampleDeter = (): Float32Array => deter(false);
export const dummyNoiseDeter = (): Float32Array => deter(true);

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

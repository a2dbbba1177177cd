// Training batches for the base model: world samples (src/world), noised the DDPM way (Ho et al. 2020, Eq. 4:
// x_t = √ᾱ_t·x_0 + √(1−ᾱ_t)·ε, t uniform over the training timesteps), target v = √ᾱ_t·ε − √(1−ᾱ_t)·x_0
// (v-prediction, Salimans & Ho 2022, as SD 2.x). Why not ε: a short ε-prediction run (600 steps) denoised training
// images well at t ≤ 800 but sampled only noise, because at the first sampling step (t = 951, ᾱ ≈ 0.007) x_0 is ε's
// error amplified √((1−ᾱ)/ᾱ) ≈ 12 times; v stays well conditioned there. With classifier-free-guidance dropout
// (Ho & Salimans 2022: the caption is replaced by the empty prompt with probability p, so the unconditional branch the
// sampler uses for ω is trained too). A batch depends only on (seed, step): resuming replays the same data.
// Per-sample loss weights implement Min-SNR-γ (Hang et al. 2023, "Efficient Diffusion Training via Min-SNR Weighting
// Strategy"): the v-MSE equals the x₀-MSE weighted by SNR + 1 (x₀ error = √(1−ᾱ)·v error), and Min-SNR caps that
// implicit weight at γ, so the many easy low-noise timesteps stop dominating the gradient. Two forms (--min-snr-form):
// 'snr-plus-one' caps SNR + 1, min(SNR + 1, γ)/(SNR + 1), so high-noise timesteps (where the layout is decided, and
// where the first DDIM step samples) keep weight 1; 'diffusers' is the paper's min(SNR, γ) on the x₀ error, which
// diffusers' train_text_to_image.py writes for v-prediction as min(SNR, γ)/(SNR + 1): it also fades the high-noise
// timesteps towards 0 (SNR → 0 at t = 999 with a cosine schedule).
import { tokenize } from '../embedded/tokenizer.ts';
import { alphasCumprod, makeBetas } from '../diffusion/schedulers/schedule.ts';
import { createRng, fnv1a, sampleExample, type Rng } from '../world/index.ts';

/** The noise schedule the base model is trained with; written verbatim into the manifest (diffusers keys). */
export const BASE_SCHEDULER = {
  _class_name: 'DDIMScheduler', num_train_timesteps: 1000, beta_start: 0.0001, beta_end: 0.02,
  beta_schedule: 'squaredcos_cap_v2', prediction_type: 'v_prediction', timestep_spacing: 'leading', steps_offset: 1,
  clip_sample: false, set_alpha_to_one: false, skip_prk_steps: true,
} as const;

export const TRAIN_ALPHAS_CUMPROD: number[] = alphasCumprod(makeBetas({ ...BASE_SCHEDULER }));

export interface Batch { inputIds: BigInt64Array; sample: Float32Array; timestep: Float32Array; target: Float32Array; lossWeight: Float32Array; captions: string[] }

export type MinSnrForm = 'snr-plus-one' | 'diffusers';
export const MIN_SNR_FORMS: readonly MinSnrForm[] = ['snr-plus-one', 'diffusers'];

/** The v-loss weight of timestep t under Min-SNR-γ in the given form (see above); γ = 0 turns weighting off (weight 1). */
export function minSnrWeight(t: number, gamma: number, form: MinSnrForm = 'snr-plus-one'): number {
  if (gamma <= 0) return 1;
  const ac = TRAIN_ALPHAS_CUMPROD[t];
  const snrPlusOne = 1 / (1 - ac);
  const snr = snrPlusOne - 1;
  return Math.min(form === 'diffusers' ? snr : snrPlusOne, gamma) / snrPlusOne;
}

/** How a run's manifest and log name its weighting: "Min-SNR-5 (min(SNR, γ)/(SNR + 1))". */
export function minSnrDescription(gamma: number, form: MinSnrForm): string {
  return `Min-SNR-${gamma} (min(${form === 'diffusers' ? 'SNR' : 'SNR + 1'}, γ)/(SNR + 1))`;
}

function gaussians(rng: Rng, out: Float32Array): Float32Array {
  for (let i = 0; i < out.length; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - rng()));
    const a = 2 * Math.PI * rng();
    out[i] = r * Math.cos(a);
    if (i + 1 < out.length) out[i + 1] = r * Math.sin(a);
  }
  return out;
}

export function makeBatch(
  seed: number, step: number, size: number, contextLength: number, cfgDropout: number, minSnrGamma = 0, minSnrForm: MinSnrForm = 'snr-plus-one',
): Batch {
  const rng = createRng(fnv1a(`base-batch:${seed}:${step}`));
  const pixels = 3 * 32 * 32;
  const batch: Batch = {
    inputIds: new BigInt64Array(size * contextLength),
    sample: new Float32Array(size * pixels),
    timestep: new Float32Array(size),
    target: new Float32Array(size * pixels),
    lossWeight: new Float32Array(size),
    captions: [],
  };
  const noise = new Float32Array(pixels);
  for (let b = 0; b < size; b++) {
    const example = sampleExample(rng, 'train');
    const caption = rng() < cfgDropout ? '' : example.caption;
    batch.captions.push(caption);
    batch.inputIds.set(tokenize(caption, contextLength), b * contextLength);
    const t = Math.min(TRAIN_ALPHAS_CUMPROD.length - 1, Math.floor(rng() * TRAIN_ALPHAS_CUMPROD.length));
    const ac = TRAIN_ALPHAS_CUMPROD[t];
    const [s, n] = [Math.sqrt(ac), Math.sqrt(1 - ac)];
    gaussians(rng, noise);
    for (let i = 0; i < pixels; i++) {
      batch.sample[b * pixels + i] = s * example.image[i] + n * noise[i];
      batch.target[b * pixels + i] = s * noise[i] - n * example.image[i];
    }
    batch.timestep[b] = t;
    batch.lossWeight[b] = minSnrWeight(t, minSnrGamma, minSnrForm);
  }
  return batch;
}

// The embedded world's procedural preference score (DESIGN decision 4): it plays the part PickScore/HPS play in the
// paper, along the paper's user-study axes (Diffusion-NPO §4, "User preference": colour and lighting, high-frequency
// details, low-frequency composition) plus prompt fidelity, each in [0, 1] and reported separately:
//
// - fidelity: does the image show what the caption asks? Every pixel is explained as a blend of the caption's
//   background colour and one object colour (bg + α·(object − bg), the rasteriser's own model of an edge pixel), giving a
//   soft mask per object. Per object: size (mask area vs the nominal area), position (mask centroid vs the nominal
//   layout, 2.5 px free for jitter), shape (soft IoU with the right shape at that centroid against the best wrong
//   shape); for two objects also the relation (centroid order along the relation's axis). Every per-object score is
//   gated by the object's presence and by how well its mask *is* that shape (absolute soft IoU), so a mask of scattered
//   pixels (noise, shuffled pixels, a flat fill) explains nothing. A wrong colour leaves its object's mask empty.
// - detail: edges are crisp and flat areas clean. Sharpness is the no-reference blur metric of Crété-Roffet et al.
//   (2007, "The blur effect"); speckle is the share of isolated pixels and the distance to the 3×3 median image; the
//   amount of edge (total neighbour variation) must be that of the nominal rendering, so flat images and noise lose.
//   Detail does not ask *what* is drawn: a crisp picture of another scene has crisp detail.
// - colour: measured on the 3×3-median image (colour of regions, not of single pixels): correct hues (distance of the
//   foreground from the caption's palette), the right background (median of the border ring), the right amount of
//   each object colour, saturation and RMS contrast close to those of the nominal rendering.
// - composition: the low-frequency layout: the blurred foreground overlaps the nominal scene's (this gates the rest),
//   as many blobs as objects, little stray foreground outside the palette, and the centre of mass in place.
//
// total = 0.4·fidelity + 0.2·detail + 0.2·colour + 0.2·composition. Issue 5 set the first version; issue 12 found it
// gameable (uniform noise scored 0.60 total, 0.81 fidelity; a flat fill of the object colour 1.0 composition; shuffled
// pixels 1.0 colour) and fixed it before η and δ were retrained: score.test.ts checks that noise, blank, flat,
// pixel-shuffled and wrong-scene images score below every clean render of the prompt. Not to be tuned afterwards.
import { parseCaption, type SceneSpec } from '../world/caption.ts';
import { layoutScene } from '../world/scene.ts';
import { coverage, renderScene } from '../world/render.ts';
import { RGB, SHAPES, type Rgb } from '../world/vocabulary.ts';
import { boxBlur1d, componentSizes, distanceTo, median3, saturation, toRgb01, type Rgb01 } from './image.ts';

export const REWARD_WEIGHTS = { fidelity: 0.4, detail: 0.2, colour: 0.2, composition: 0.2 } as const;

export interface RewardScores {
  total: number;
  fidelity: number;
  detail: number;
  colour: number;
  composition: number;
  /** The sub-scores each axis averages, for inspection. */
  parts: Record<string, number>;
}

const FOREGROUND = 0.3; // RGB distance from the background colour above which a pixel is foreground
const ON_PALETTE = 0.25; // largest distance from the bg→object colour segment for a pixel to count as that object
const clamp01 = (x: number) => Math.min(1, Math.max(0, x));
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

/** Best α ∈ [0, 1] with pixel ≈ bg + α·(c − bg), and the distance left over. */
function blend(img: Rgb01, i: number, bg: Rgb, c: Rgb): { alpha: number; residual: number } {
  const d = [c[0] - bg[0], c[1] - bg[1], c[2] - bg[2]];
  const p = [img.r[i] - bg[0], img.g[i] - bg[1], img.b[i] - bg[2]];
  const dd = d[0] * d[0] + d[1] * d[1] + d[2] * d[2];
  const alpha = clamp01((p[0] * d[0] + p[1] * d[1] + p[2] * d[2]) / dd);
  return { alpha, residual: Math.hypot(p[0] - alpha * d[0], p[1] - alpha * d[1], p[2] - alpha * d[2]) };
}

interface Segmentation { masks: Float32Array[]; stray: Float32Array; residual: Float32Array; foreground: Uint8Array }

function segment(img: Rgb01, bg: Rgb, colours: Rgb[], centres: [number, number][]): Segmentation {
  const n = img.size * img.size;
  const masks = colours.map(() => new Float32Array(n));
  const stray = new Float32Array(n), residual = new Float32Array(n), foreground = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const x = (i % img.size) + 0.5, y = Math.floor(i / img.size) + 0.5;
    let best = -1, bestFit = { alpha: 0, residual: Infinity }, bestDist = Infinity;
    colours.forEach((c, k) => {
      const fit = blend(img, i, bg, c);
      const dist = Math.hypot(x - centres[k][0], y - centres[k][1]);
      // Same-coloured objects fit equally: the pixel goes to the nearer one's nominal place.
      if (fit.residual < bestFit.residual - 1e-6 || (Math.abs(fit.residual - bestFit.residual) <= 1e-6 && dist < bestDist)) {
        best = k; bestFit = fit; bestDist = dist;
      }
    });
    residual[i] = bestFit.residual;
    const isForeground = distanceTo(img, i, bg) > FOREGROUND;
    foreground[i] = isForeground ? 1 : 0;
    if (bestFit.residual <= ON_PALETTE) masks[best][i] = bestFit.alpha;
    else if (isForeground) stray[i] = 1;
  }
  return { masks, stray, residual, foreground };
}

function centroid(mask: Float32Array, size: number): { area: number; x: number; y: number } {
  let area = 0, sx = 0, sy = 0;
  for (let i = 0; i < mask.length; i++) {
    const m = mask[i];
    if (m === 0) continue;
    area += m;
    sx += m * ((i % size) + 0.5);
    sy += m * (Math.floor(i / size) + 0.5);
  }
  return { area, x: area > 0 ? sx / area : size / 2, y: area > 0 ? sy / area : size / 2 };
}

function softIou(a: Float32Array, b: Float32Array): number {
  let inter = 0, union = 0;
  for (let i = 0; i < a.length; i++) (inter += Math.min(a[i], b[i])), (union += Math.max(a[i], b[i]));
  return union > 0 ? inter / union : 0;
}

/** The shape's coverage with its centroid at (x, y) and the given area (a triangle's centroid is below its box centre). */
function shapeMask(shape: (typeof SHAPES)[number], x: number, y: number, area: number, size: number): Float32Array {
  const probe = (cx: number, cy: number, r: number) => coverage({ background: [0, 0, 0], objects: [{ shape, rgb: [1, 1, 1], cx, cy, r }] }, size)[0];
  const r0 = 6;
  const first = centroid(probe(x, y, r0), size);
  const r = r0 * Math.sqrt(area / first.area);
  return probe(x - ((first.x - x) * r) / r0, y - ((first.y - y) * r) / r0, r);
}

/** Soft IoU at or above which a mask counts as fully that shape (clean renders: 0.85–0.95), and at or below which as none. */
const SHAPE_IOU = { none: 0.3, full: 0.7 } as const;

function fidelityScores(seg: Segmentation, spec: SceneSpec, nominal: ReturnType<typeof layoutScene>, size: number, parts: Record<string, number>): number {
  const expected = coverage(nominal, size).map((c) => centroid(c, size));
  const found = seg.masks.map((m) => centroid(m, size));
  // An object with a quarter of its area or less is (mostly) absent: its other scores fade with it.
  const presence = found.map((f, k) => clamp01(f.area / (0.25 * expected[k].area)));
  const gates: number[] = [];
  const perObject = spec.objects.map((o, k) => {
    const { area, x, y } = found[k];
    if (area < 2) return gates.push(0), [0, 0, 0];
    const sSize = Math.exp(-Math.abs(Math.log((area + 1) / (expected[k].area + 1))));
    const d = Math.hypot(x - expected[k].x, y - expected[k].y);
    const sPos = Math.exp(-(Math.max(0, d - 2.5) ** 2) / (2 * 2.5 ** 2));
    // Templates at the found centroid, no larger than twice the nominal area: a flat fill is not a huge square.
    const templateArea = Math.min(area, 2 * expected[k].area);
    const ious = SHAPES.map((s) => softIou(seg.masks[k], shapeMask(s, x, y, templateArea, size)));
    const own = ious[SHAPES.indexOf(o.shape)];
    const solid = clamp01((own - SHAPE_IOU.none) / (SHAPE_IOU.full - SHAPE_IOU.none));
    const gate = presence[k] * solid;
    gates.push(gate);
    const sShape = clamp01(0.5 + 3 * (own - Math.max(...ious.filter((_, j) => SHAPES[j] !== o.shape))));
    parts[`iou${k}`] = own;
    return [sSize * gate, sPos * gate, sShape * gate];
  });
  perObject.forEach(([a, b, c], k) => Object.assign(parts, { [`size${k}`]: a, [`position${k}`]: b, [`shape${k}`]: c }));
  const objects = mean(perObject.map(mean));
  if (spec.objects.length === 1) return objects;
  const axis = { above: [0, -1], below: [0, 1], 'left of': [-1, 0], 'right of': [1, 0] }[spec.relation!];
  const [a, b] = found;
  const proj = (a.x - b.x) * axis[0] + (a.y - b.y) * axis[1];
  const sRel = Math.min(gates[0], gates[1]) / (1 + Math.exp(-(proj - 3) / 1.5));
  parts.relation = sRel;
  return 0.75 * objects + 0.25 * sRel;
}

/** Crété-Roffet blur amount in [0, 1] along one axis (0: sharp), summed over the three channels. */
function blurAmount(img: Rgb01, axis: 'x' | 'y'): { blur: number; variation: number } {
  const { size } = img;
  let sI = 0, sV = 0;
  for (const plane of [img.r, img.g, img.b]) {
    const blurred = boxBlur1d(plane, size, 2, axis);
    for (let y = 0; y < size - (axis === 'y' ? 1 : 0); y++) {
      for (let x = 0; x < size - (axis === 'x' ? 1 : 0); x++) {
        const i = y * size + x, j = axis === 'x' ? i + 1 : i + size;
        const dI = Math.abs(plane[j] - plane[i]), dB = Math.abs(blurred[j] - blurred[i]);
        sI += dI;
        sV += Math.max(0, dI - dB);
      }
    }
  }
  return { blur: sI > 0 ? (sI - sV) / sI : 1, variation: sI };
}

/**
 * Speckle: `isolated` is the fraction of pixels farther than 0.15 (RGB distance) from all eight neighbours (salt-and-
 * pepper dots; an anti-aliased edge pixel has a like neighbour along the edge); `grain` is the median over pixels of the distance to the 3×3
 * median image (0 for any clean piecewise-flat picture, > 0 when low-amplitude noise covers it).
 */
function speckleStats(img: Rgb01): { isolated: number; grain: number } {
  const { size } = img;
  const meds = [img.r, img.g, img.b].map((p) => median3(p, size));
  const residuals = new Float32Array(size * size);
  let isolated = 0;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const i = y * size + x;
      residuals[i] = Math.hypot(img.r[i] - meds[0][i], img.g[i] - meds[1][i], img.b[i] - meds[2][i]);
      let nearest = Infinity;
      for (let dy = -1; dy <= 1; dy++) {
        for (let dx = -1; dx <= 1; dx++) {
          const nx = x + dx, ny = y + dy;
          if ((dx === 0 && dy === 0) || nx < 0 || ny < 0 || nx >= size || ny >= size) continue;
          const j = ny * size + nx;
          nearest = Math.min(nearest, Math.hypot(img.r[i] - img.r[j], img.g[i] - img.g[j], img.b[i] - img.b[j]));
        }
      }
      if (nearest > 0.15) isolated++;
    }
  }
  return { isolated: isolated / (size * size), grain: residuals.sort()[residuals.length >> 1] };
}

function detailScores(img: Rgb01, ideal: Rgb01, parts: Record<string, number>): number {
  const bx = blurAmount(img, 'x'), by = blurAmount(img, 'y');
  const blur = Math.max(bx.blur, by.blur);
  const variation = bx.variation + by.variation;
  // Calibrated on world renders: crisp 0.3–0.45, after one 3×3 box blur 0.65–0.75.
  const sSharp = variation < 1 ? 0 : clamp01((0.75 - blur) / 0.3);
  const { isolated, grain } = speckleStats(img);
  const sClean = 0.5 * Math.exp(-isolated / 0.02) + 0.5 * Math.exp(-grain / 0.01);
  // As much edge as the nominal picture has: none (a flat image) or everywhere (noise) is not detail.
  const want = blurAmount(ideal, 'x').variation + blurAmount(ideal, 'y').variation;
  const sEdges = Math.exp(-Math.abs(Math.log((variation + 1) / (want + 1))));
  Object.assign(parts, { blur, sharpness: sSharp, isolated, grain, clean: sClean, edges: sEdges });
  return sEdges * (0.5 * sSharp + 0.5 * sClean);
}

function imageStats(img: Rgb01, weights: (i: number) => number) {
  let w = 0, sat = 0, lum = 0, lum2 = 0, all = 0;
  const n = img.size * img.size;
  for (let i = 0; i < n; i++) {
    const l = (img.r[i] + img.g[i] + img.b[i]) / 3;
    lum += l; lum2 += l * l; all++;
    const wi = weights(i);
    if (wi > 0) (w += wi), (sat += wi * saturation(img.r[i], img.g[i], img.b[i]));
  }
  const m = lum / all;
  return { saturation: w > 0 ? sat / w : 0, contrast: Math.sqrt(Math.max(0, lum2 / all - m * m)) };
}

/** exp(−|log((a + 1)/(b + 1))|): 1 when two amounts agree, falling with their ratio. */
const ratioScore = (a: number, b: number) => Math.exp(-Math.abs(Math.log((a + 1) / (b + 1))));

/** Colour, on the 3×3-median image `smooth` and its segmentation (regions, not single pixels). */
function colourScores(smooth: Rgb01, ideal: Rgb01, seg: Segmentation, idealSeg: Segmentation, bg: Rgb, parts: Record<string, number>): number {
  const { size } = smooth;
  let off = 0, count = 0;
  for (let i = 0; i < seg.foreground.length; i++) if (seg.foreground[i]) (off += seg.residual[i]), count++;
  const sHue = count === 0 ? 0 : Math.exp(-((off / count / 0.2) ** 2));
  const ring: number[][] = [[], [], []];
  for (let i = 0; i < size * size; i++) {
    const x = i % size, y = Math.floor(i / size);
    if (x === 0 || y === 0 || x === size - 1 || y === size - 1) [smooth.r, smooth.g, smooth.b].forEach((p, c) => ring[c].push(p[i]));
  }
  const median = ring.map((v) => v.sort((a, b) => a - b)[v.length >> 1]);
  const sBackground = Math.exp(-((Math.hypot(median[0] - bg[0], median[1] - bg[1], median[2] - bg[2]) / 0.2) ** 2));
  // The amount of each object colour against the nominal scene's (same-coloured objects share one mask pool).
  const amount = (s: Segmentation) => s.masks.map((m) => m.reduce((a, b) => a + b, 0));
  const got = amount(seg), expected = amount(idealSeg);
  const sAmount = mean(got.map((g, k) => ratioScore(g, expected[k])));
  const fgOf = (im: Rgb01) => (i: number) => (distanceTo(im, i, bg) > FOREGROUND ? 1 : 0);
  const have = imageStats(smooth, fgOf(smooth)), want = imageStats(ideal, fgOf(ideal));
  const sSaturation = Math.exp(-Math.abs(have.saturation - want.saturation) / 0.2);
  const sContrast = Math.exp(-Math.abs(Math.log((have.contrast + 0.02) / (want.contrast + 0.02))));
  Object.assign(parts, { hue: sHue, background: sBackground, amount: sAmount, saturation: sSaturation, contrast: sContrast });
  return mean([sHue, sBackground, sAmount, sSaturation, sContrast]);
}

/** Foreground mass (object masks plus stray pixels) per pixel. */
function foregroundMass(seg: Segmentation): Float32Array {
  const mass = new Float32Array(seg.stray);
  seg.masks.forEach((m) => m.forEach((v, i) => (mass[i] += v)));
  return mass;
}

function blur2d(plane: Float32Array, size: number, k: number): Float32Array {
  return boxBlur1d(boxBlur1d(plane, size, k, 'x'), size, k, 'y');
}

/** Composition, on the 3×3-median image's segmentation: the low-frequency layout gates blobs, clutter and balance. */
function compositionScores(seg: Segmentation, idealSeg: Segmentation, spec: SceneSpec, size: number, parts: Record<string, number>): number {
  const blobs = componentSizes(seg.foreground, size).filter((s) => s >= 2).length;
  const sBlobs = Math.exp(-0.7 * Math.abs(blobs - spec.objects.length));
  let fg = 0, stray = 0;
  for (let i = 0; i < seg.foreground.length; i++) (fg += seg.foreground[i]), (stray += seg.stray[i]);
  const sClutter = fg === 0 ? 0 : clamp01(1 - (2 * stray) / fg);
  const mass = foregroundMass(seg);
  const got = centroid(mass, size);
  const idealMass = foregroundMass(idealSeg);
  const want = centroid(idealMass, size);
  const d = Math.hypot(got.x - want.x, got.y - want.y);
  const sBalance = got.area < 2 ? 0 : Math.exp(-(Math.max(0, d - 2) ** 2) / (2 * 3 ** 2));
  // Layout: the foreground and the nominal scene, each blurred by a 7×7 box (jitter of ±2 px costs little), overlap.
  const overlap = softIou(blur2d(mass.map((v) => Math.min(1, v)), size, 3), blur2d(idealMass.map((v) => Math.min(1, v)), size, 3));
  const sLayout = clamp01(overlap / LAYOUT_IOU_FULL);
  Object.assign(parts, { blobs, blobCount: sBlobs, clutter: sClutter, balance: sBalance, layout: sLayout });
  return sLayout * mean([sBlobs, sClutter, sBalance]);
}
const LAYOUT_IOU_FULL = 0.5;

function smoothed(img: Rgb01): Rgb01 {
  return { r: median3(img.r, img.size), g: median3(img.g, img.size), b: median3(img.b, img.size), size: img.size };
}

/** Scores one [3, S, S] image in [-1, 1] against the caption (or its parsed spec). */
export function scoreImage(image: Float32Array, caption: string | SceneSpec): RewardScores {
  const spec = typeof caption === 'string' ? parseCaption(caption) : caption;
  const img = toRgb01(image);
  const { size } = img;
  const nominal = layoutScene(spec);
  const bg = RGB[spec.background ?? 'black'];
  const colours = nominal.objects.map((o) => o.rgb), centres = nominal.objects.map((o): [number, number] => [o.cx, o.cy]);
  const seg = segment(img, bg, colours, centres);
  const smooth = smoothed(img);
  const smoothSeg = segment(smooth, bg, colours, centres);
  const parts: Record<string, number> = {};
  const ideal = toRgb01(renderScene(nominal, size));
  // The nominal picture goes through the same 3×3 median, so thin parts (a star's points) count the same on both sides.
  const idealSmooth = smoothed(ideal);
  const idealSeg = segment(idealSmooth, bg, colours, centres);
  const fidelity = fidelityScores(seg, spec, nominal, size, parts);
  const detail = detailScores(img, ideal, parts);
  const colour = colourScores(smooth, idealSmooth, smoothSeg, idealSeg, bg, parts);
  const composition = compositionScores(smoothSeg, idealSeg, spec, size, parts);
  const w = REWARD_WEIGHTS;
  const total = w.fidelity * fidelity + w.detail * detail + w.colour * colour + w.composition * composition;
  return { total, fidelity, detail, colour, composition, parts };
}

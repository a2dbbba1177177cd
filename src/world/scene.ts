// Scenes: where each object of a SceneSpec lands on the 32×32 canvas. `layoutScene` places objects at their nominal
// spots; `sampleScene` adds seeded jitter (position ±2 px, size ±8 %) so the model sees variety within one caption.
import type { SceneSpec } from './caption.ts';
import { IMAGE_SIZE, RGB, SIZE_PX, type Rgb, type Shape } from './vocabulary.ts';
import { uniform, type Rng } from './random.ts';

export interface SceneObject { shape: Shape; rgb: Rgb; cx: number; cy: number; r: number }
export interface Scene { background: Rgb; objects: SceneObject[] }

const MID = IMAGE_SIZE / 2;
const OFFSET = 7; // single object at top/bottom/left/right: this far from the center
const GAP = 2; // pixels between two objects' nominal extents

const POSITION_XY = { center: [0, 0], top: [0, -OFFSET], bottom: [0, OFFSET], left: [-OFFSET, 0], right: [OFFSET, 0] } as const;
/** Direction from the second object to the first for each relation (image y grows downwards). */
const RELATION_XY = { above: [0, -1], below: [0, 1], 'left of': [-1, 0], 'right of': [1, 0] } as const;

export function layoutScene(spec: SceneSpec, jitter?: Rng): Scene {
  const j = (amount: number) => (jitter ? uniform(jitter, -amount, amount) : 0);
  const scale = () => (jitter ? 1 + j(0.08) : 1);
  const background = RGB[spec.background ?? 'black'];
  const [a, b] = spec.objects;
  if (!b) {
    const [dx, dy] = POSITION_XY[spec.position ?? 'center'];
    return { background, objects: [{ shape: a.shape, rgb: RGB[a.colour], cx: MID + dx + j(2), cy: MID + dy + j(2), r: SIZE_PX[a.size] * scale() }] };
  }
  const [ux, uy] = RELATION_XY[spec.relation!];
  const ra = SIZE_PX[a.size] * scale();
  const rb = SIZE_PX[b.size] * scale();
  const half = (SIZE_PX[a.size] + SIZE_PX[b.size] + GAP) / 2;
  // Along the relation axis the pair is centred, with a little play; across it each object drifts on its own.
  const along = j(1);
  const across = () => j(2);
  const place = (sign: number) => [MID + ux * (sign * half + along), MID + uy * (sign * half + along)];
  const [ax, ay] = place(1);
  const [bx, by] = place(-1);
  return {
    background,
    objects: [
      { shape: a.shape, rgb: RGB[a.colour], cx: ax + (ux === 0 ? across() : 0), cy: ay + (uy === 0 ? across() : 0), r: ra },
      { shape: b.shape, rgb: RGB[b.colour], cx: bx + (ux === 0 ? across() : 0), cy: by + (uy === 0 ? across() : 0), r: rb },
    ],
  };
}

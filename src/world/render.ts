// Anti-aliased rasteriser for scenes: each pixel averages 4×4 sub-samples of an exact inside test per shape, so an
// edge pixel gets the covered fraction of the object's colour. Output: CHW Float32Array in [-1, 1] (the model's format).
import type { Scene } from './scene.ts';
import { IMAGE_SIZE, type Shape } from './vocabulary.ts';

const SUB = 4;

/** Star outline: 5 outer points (first one up) alternating with inner points at 0.45 of the radius. */
const STAR: [number, number][] = Array.from({ length: 10 }, (_, k) => {
  const radius = k % 2 === 0 ? 1 : 0.45;
  const angle = -Math.PI / 2 + (k * Math.PI) / 5;
  return [radius * Math.cos(angle), radius * Math.sin(angle) + 0.08];
});
const TRIANGLE: [number, number][] = [[0, -0.95], [1, 0.85], [-1, 0.85]];

/** Even-odd ray casting. */
function inPolygon(x: number, y: number, poly: [number, number][]): boolean {
  let inside = false;
  for (let i = 0, j = poly.length - 1; i < poly.length; j = i++) {
    const [xi, yi] = poly[i];
    const [xj, yj] = poly[j];
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

/** Is (u, v), in units of the object's half-extent relative to its centre, inside the unit shape? */
export function insideUnitShape(shape: Shape, u: number, v: number): boolean {
  switch (shape) {
    case 'circle': return u * u + v * v <= 0.95 * 0.95;
    case 'square': return Math.abs(u) <= 0.85 && Math.abs(v) <= 0.85;
    case 'diamond': return Math.abs(u) + Math.abs(v) <= 1.05;
    case 'triangle': return inPolygon(u, v, TRIANGLE);
    case 'star': return inPolygon(u, v, STAR);
  }
}

/** Fraction of pixel (px, py) covered by each object, in scene order: coverage[k][py·W + px]. */
export function coverage(scene: Scene, size = IMAGE_SIZE): Float32Array[] {
  return scene.objects.map((o) => {
    const out = new Float32Array(size * size);
    const x0 = Math.max(0, Math.floor(o.cx - o.r - 1)), x1 = Math.min(size - 1, Math.ceil(o.cx + o.r + 1));
    const y0 = Math.max(0, Math.floor(o.cy - o.r - 1)), y1 = Math.min(size - 1, Math.ceil(o.cy + o.r + 1));
    for (let py = y0; py <= y1; py++) {
      for (let px = x0; px <= x1; px++) {
        let hits = 0;
        for (let sy = 0; sy < SUB; sy++) {
          for (let sx = 0; sx < SUB; sx++) {
            const x = px + (sx + 0.5) / SUB, y = py + (sy + 0.5) / SUB;
            if (insideUnitShape(o.shape, (x - o.cx) / o.r, (y - o.cy) / o.r)) hits++;
          }
        }
        out[py * size + px] = hits / (SUB * SUB);
      }
    }
    return out;
  });
}

/** The scene as a [3, size, size] image in [-1, 1]; later objects are painted over earlier ones. */
export function renderScene(scene: Scene, size = IMAGE_SIZE): Float32Array {
  const plane = size * size;
  const rgb = new Float32Array(3 * plane);
  for (let c = 0; c < 3; c++) rgb.fill(scene.background[c], c * plane, (c + 1) * plane);
  coverage(scene, size).forEach((cov, k) => {
    const colour = scene.objects[k].rgb;
    for (let i = 0; i < plane; i++) {
      const a = cov[i];
      if (a > 0) for (let c = 0; c < 3; c++) rgb[c * plane + i] = (1 - a) * rgb[c * plane + i] + a * colour[c];
    }
  });
  for (let i = 0; i < rgb.length; i++) rgb[i] = rgb[i] * 2 - 1;
  return rgb;
}

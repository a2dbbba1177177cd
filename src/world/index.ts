// The embedded procedural world (issue 5, item 1): caption grammar, scene layout, anti-aliased rasteriser, seeded
// (caption, scene) sampler with a held-out split, and a PNG encoder for looking at images.
export * from './vocabulary.ts';
export * from './caption.ts';
export * from './scene.ts';
export * from './render.ts';
export * from './sampler.ts';
export * from './random.ts';
export * from './png.ts';

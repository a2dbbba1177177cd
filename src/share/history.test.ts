// History bounds and storage form (src/share/history.ts): eviction by count and by bytes (starred and newest kept),
// nearest-neighbour thumbnails against a direct per-pixel reference, and the deflated images coming back bit-exact.
import { describe, expect, it } from 'vitest';
import { evictions, makeRecord, thumbnail, unpackImages } from './history.ts';

const entry = (id: number, bytes: number, starred = false) => ({ id, time: id * 10, bytes, starred });

describe('history evictions', () => {
  it('keep the newest unstarred entries within the byte bound, counting starred bytes', () => {
    // Newest first: 6 (newest, kept), 5, 4, 3, 2; 1 is starred (3 MB counted, never evicted).
    const entries = [entry(1, 3, true), entry(2, 1), entry(3, 1), entry(4, 2), entry(5, 2), entry(6, 2)];
    expect(evictions(entries, 40, 9).sort()).toEqual([2, 3]); // 3 + 2 + 2 + 2 = 9; entry 3 would make 10
    expect(evictions(entries, 40, 10).sort()).toEqual([2]); // entry 3 fits exactly (10); entry 2 would make 11
    expect(evictions(entries, 2, Infinity).sort()).toEqual([2, 3, 4]);
  });
  it('never evict the newest entry or a starred one, even past the bound', () => {
    const entries = [entry(1, 50, true), entry(2, 50), entry(3, 50)];
    expect(evictions(entries, 40, 10)).toEqual([2]);
    expect(evictions([entry(7, 100)], 0, 1)).toEqual([]);
  });
  it('treat entries without a byte count (the count bound only) as before', () => {
    const entries = [1, 2, 3, 4, 5].map((id) => ({ id, time: id * 10, starred: id === 1 }));
    expect(evictions(entries, 2).sort()).toEqual([2, 3]);
  });
});

describe('history thumbnails', () => {
  const image = (w: number, h: number) => Uint8ClampedArray.from({ length: w * h * 4 }, (_, i) => (i * 7) % 256);
  it('sample the nearest source pixel of each thumbnail pixel centre', () => {
    const [w, h] = [200, 100];
    const src = image(w, h);
    const t = thumbnail(src, w, h, 64);
    expect([t.width, t.height]).toEqual([64, 32]);
    for (const [x, y] of [[0, 0], [63, 31], [17, 9]]) {
      const sx = Math.floor(((x + 0.5) * w) / 64), sy = Math.floor(((y + 0.5) * h) / 32);
      expect(Array.from(t.rgba.subarray((y * 64 + x) * 4, (y * 64 + x) * 4 + 4))).toEqual(Array.from(src.subarray((sy * w + sx) * 4, (sy * w + sx) * 4 + 4)));
    }
  });
  it('copy an image already small enough, and refuse a wrong byte count', () => {
    const src = image(32, 32);
    expect(thumbnail(src, 32, 32, 64).rgba).toEqual(src);
    expect(() => thumbnail(src, 33, 32)).toThrow(/33×32×4/);
  });
});

describe('history records', () => {
  it('store both images deflated, smaller, and give them back bit-exact', async () => {
    const [w, h] = [128, 96];
    // A smooth picture with noise in the low bits, like a generated image: compressible, not trivially.
    const picture = (k: number) => Uint8ClampedArray.from({ length: w * h * 4 }, (_, i) => (i % 4 === 3 ? 255 : ((i >> 2) % w) + k * ((i >> 2) / w) + ((i * 2654435761) >>> 29)));
    const [baseline, npo] = [picture(1), picture(2)];
    const record = await makeRecord({ time: 1, params: { prompt: 'p', negativePrompt: '', seed: 1, steps: 2, omega: 4, alpha: 1, beta: 1, scheduler: 'ddim' }, model: 'm', loras: {}, width: w, height: h, baseline, npo, starred: false });
    expect(record.images.encoding).toBe('deflate');
    expect(record.entry.bytes).toBe(record.images.baseline.length + record.images.npo.length + record.entry.thumb.baseline.length + record.entry.thumb.npo.length);
    expect(record.entry.bytes).toBeLessThan(baseline.length + npo.length);
    expect([record.entry.thumb.width, record.entry.thumb.height]).toEqual([64, 48]);
    const back = await unpackImages(record.images, w, h);
    expect(back.baseline).toEqual(baseline);
    expect(back.npo).toEqual(npo);
    await expect(unpackImages(record.images, w, h + 1)).rejects.toThrow(/128×97/);
  });
});

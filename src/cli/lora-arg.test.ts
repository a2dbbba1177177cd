// `path[:scale]` arguments of prepare-model and generate: a trailing number is a scale unless the whole text is a file.
import { describe, expect, it } from 'vitest';
import { parseLoraArg } from './lora-arg.ts';

const none = () => false;

describe('parseLoraArg', () => {
  it('reads path and scale; no scale is 1', () => {
    expect(parseLoraArg('npo.safetensors', 'delta-lora', none)).toEqual({ path: 'npo.safetensors', scale: 1 });
    expect(parseLoraArg('w/spo.safetensors:0.8', 'delta-lora', none)).toEqual({ path: 'w/spo.safetensors', scale: 0.8 });
    expect(parseLoraArg('a.safetensors:-1.5e-1', 'eta', none)).toEqual({ path: 'a.safetensors', scale: -0.15 });
    expect(parseLoraArg('C:\\w\\a.safetensors:.5', 'eta', none)).toEqual({ path: 'C:\\w\\a.safetensors', scale: 0.5 });
  });

  it('keeps a colon that is part of an existing file name, and a non-numeric tail', () => {
    expect(parseLoraArg('odd:2', 'eta', (p) => p === 'odd:2')).toEqual({ path: 'odd:2', scale: 1 });
    expect(parseLoraArg('C:\\w\\a.safetensors', 'eta', none)).toEqual({ path: 'C:\\w\\a.safetensors', scale: 1 });
    expect(parseLoraArg('x.safetensors:abc', 'eta', none)).toEqual({ path: 'x.safetensors:abc', scale: 1 });
  });
});

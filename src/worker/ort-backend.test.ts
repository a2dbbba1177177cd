// Which WebGPU adapters 'auto' refuses in favour of WASM: software renderers, by WebGPU's own flag or by name.
import { describe, expect, it } from 'vitest';
import { softwareAdapter } from './ort-backend.ts';

const info = (fields: Partial<GPUAdapterInfo>): GPUAdapterInfo => ({ vendor: '', architecture: '', device: '', description: '', isFallbackAdapter: false, subgroupMinSize: 4, subgroupMaxSize: 128, ...fields }) as GPUAdapterInfo;

describe('softwareAdapter', () => {
  it("names SwiftShader as Chromium 156 reports it without a GPU (measured: google / swiftshader, isFallbackAdapter)", () => {
    expect(softwareAdapter(info({ vendor: 'google', architecture: 'swiftshader', isFallbackAdapter: true }))).toBe('SwiftShader');
  });

  it('names software renderers by architecture or description, and a flagged adapter without a known name', () => {
    expect(softwareAdapter(info({ description: 'llvmpipe (LLVM 15.0.6, 256 bits)' }))).toBe('llvmpipe');
    expect(softwareAdapter(info({ description: 'Microsoft Basic Render Driver' }))).toBe('WARP');
    expect(softwareAdapter(info({ vendor: 'mesa', isFallbackAdapter: true }))).toBe('fallback adapter');
  });

  it('takes an unflagged, unnamed adapter for a GPU', () => {
    expect(softwareAdapter(info({ vendor: 'nvidia', architecture: 'ampere', description: 'NVIDIA GeForce RTX 3080' }))).toBeUndefined();
    expect(softwareAdapter(info({ vendor: 'apple', architecture: 'metal-3' }))).toBeUndefined();
    expect(softwareAdapter(info({ vendor: 'intel', architecture: 'gen-12lp', description: 'Intel(R) Iris(R) Xe Graphics' }))).toBeUndefined();
  });
});

// Element types of the GPU tensors our kernels read and write: float32, or IEEE binary16 ("float16") held two per u32
// word and converted with WGSL's core pack/unpack builtins (half.wgsl), so float16 models need no 'shader-f16'.
import halfSource from './half.wgsl?raw';

export type ElementType = 'f32' | 'f16';

export const bytesPerElement = (type: ElementType): 2 | 4 => (type === 'f16' ? 2 : 4);

/** Where a tensor lies in its buffer: its element type and the index of its first element. */
export interface Region {
  type: ElementType;
  offset: number;
}

/** A storage binding over part of a buffer: byte offset (storage-offset aligned) and byte size (whole u32 words). */
export interface Window {
  offset: number;
  size: number;
  /** Index, inside the window, of the range's first element. */
  index: number;
}

/** Bytes a buffer needs to hold `count` elements of `region` (whole u32 words: the kernels bind words). */
export const bytesToHold = (region: Region, count: number): number => Math.ceil(((region.offset + count) * bytesPerElement(region.type)) / 4) * 4;

/** The binding window over elements [first, first + count) of `region`, starting at an aligned byte offset. */
export function windowOf(region: Region, first: number, count: number, storageOffsetAlignment: number): Window {
  const bytes = bytesPerElement(region.type);
  const startByte = (region.offset + first) * bytes;
  const offset = Math.floor(startByte / storageOffsetAlignment) * storageOffsetAlignment;
  return { offset, size: Math.ceil((startByte + count * bytes - offset) / 4) * 4, index: (startByte - offset) / bytes };
}

/** u32 words that elements [offset, offset + count) of a `type` tensor touch: our kernels run one thread per word. */
export function wordsTouched(type: ElementType, offset: number, count: number): number {
  if (type === 'f32') return count;
  return Math.floor((offset + count - 1) / 2) - Math.floor(offset / 2) + 1;
}

/** Throws `<kernel>: <what> must be 'f32' or 'f16', got …` for anything else (a typo'd string from a manifest). */
export function checkElementType(type: unknown, kernel: string, what: string): asserts type is ElementType {
  if (type !== 'f32' && type !== 'f16') throw new Error(`${kernel}: ${what} must be 'f32' or 'f16', got ${String(type)}`);
}

/** A kernel's WGSL with half.wgsl's functions in front (WGSL has no #include). */
export const withHalfFunctions = (source: string): string => `${halfSource}\n${source}`;

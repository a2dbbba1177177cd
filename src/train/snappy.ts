// A strict decoder of Snappy's raw format, for the pages of Pick-a-Pic parquet shards (pair-sources.ts hands it to
// hyparquet as its SNAPPY decompressor). Why our own: hyparquet's built-in decoder reads a 4-byte literal length as a
// signed number, so a hostile page can move its read position backwards and loop for seconds (two fuzz inputs in
// src/fuzz/corpus/pair-parquet took 4-10 s), and it lets copies run past the output's end. Here every length and
// offset is checked before use, so a page costs O(its uncompressed size), which is itself bounded by the caller.
// Format: google/snappy format_description.txt: a varint of the uncompressed length, then elements whose tag's low
// two bits say literal (00), or copy with a 1-, 2- or 4-byte offset (01, 10, 11).

export class SnappyError extends Error {}

export function snappyDecode(input: Uint8Array, expectedLength: number, maxLength: number): Uint8Array {
  if (!Number.isSafeInteger(expectedLength) || expectedLength < 0 || expectedLength > maxLength) {
    throw new SnappyError(`a page claims ${expectedLength} bytes uncompressed; the limit is ${maxLength}`);
  }
  let pos = 0;
  let declared = 0;
  for (let shift = 0; ; shift += 7) {
    if (pos >= input.length || shift > 28) throw new SnappyError('the snappy length header is malformed');
    const byte = input[pos++];
    declared += (byte & 0x7f) * 2 ** shift;
    if (byte < 0x80) break;
  }
  if (declared !== expectedLength) throw new SnappyError(`the snappy data holds ${declared} bytes, the page header says ${expectedLength}`);

  const output = new Uint8Array(expectedLength);
  let out = 0;
  while (pos < input.length) {
    const tag = input[pos++];
    const kind = tag & 3;
    if (kind === 0) {
      let length = (tag >>> 2) + 1;
      if (length > 60) {
        const bytes = length - 60;
        if (pos + bytes > input.length) throw new SnappyError('a snappy literal length runs past the input');
        length = 1;
        for (let i = 0; i < bytes; i++) length += input[pos + i] * 2 ** (8 * i);
        pos += bytes;
      }
      if (pos + length > input.length || out + length > output.length) throw new SnappyError('a snappy literal runs past the input or the output');
      output.set(input.subarray(pos, pos + length), out);
      pos += length;
      out += length;
      continue;
    }
    const offsetBytes = kind === 1 ? 1 : kind === 2 ? 2 : 4;
    if (pos + offsetBytes > input.length) throw new SnappyError('a snappy copy runs past the input');
    const length = kind === 1 ? ((tag >>> 2) & 7) + 4 : (tag >>> 2) + 1;
    let offset = kind === 1 ? (tag >>> 5) * 256 : 0;
    for (let i = 0; i < offsetBytes; i++) offset += input[pos + i] * 2 ** (8 * i);
    pos += offsetBytes;
    if (offset === 0 || offset > out) throw new SnappyError(`a snappy copy reaches ${offset} bytes back from byte ${out}`);
    if (out + length > output.length) throw new SnappyError('a snappy copy runs past the output');
    for (let i = 0; i < length; i++, out++) output[out] = output[out - offset]; // forward: copies may overlap
  }
  if (out !== output.length) throw new SnappyError(`the snappy data ends after ${out} of ${output.length} bytes`);
  return output;
}

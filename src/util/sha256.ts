// Incremental SHA-256 (FIPS 180-4 §6.2), because WebCrypto's crypto.subtle.digest only hashes a whole buffer: model
// files are verified as their bytes stream past (src/model/source/), so a 1.7 GB shard never has to sit in memory
// whole to be checked. Plain TypeScript, the same in Node and in a browser; tested against node:crypto on random
// inputs split at random points (sha256.test.ts), speed in `npm run bench:sha256`.

/** H(0): the first 32 bits of the fractional parts of the square roots of the first 8 primes (§5.3.3). */
const INITIAL = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

/** K: the first 32 bits of the fractional parts of the cube roots of the first 64 primes (§4.2.2). */
const K = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

export interface Sha256 {
  /** Adds bytes to the message; any lengths, any number of calls. */
  update(bytes: Uint8Array): void;
  /** The digest of everything added, as 64 lowercase hex digits. The hasher is finished afterwards. */
  hex(): string;
}

export function createSha256(): Sha256 {
  const state = new Int32Array(INITIAL);
  const schedule = new Int32Array(64);
  const pending = new Uint8Array(64); // a partial block carried to the next update
  let pendingBytes = 0;
  let totalBytes = 0;
  let finished = false;

  function update(bytes: Uint8Array): void {
    if (finished) throw new Error('sha256: update after hex()');
    totalBytes += bytes.byteLength;
    let at = 0;
    if (pendingBytes > 0) {
      at = Math.min(64 - pendingBytes, bytes.byteLength);
      pending.set(bytes.subarray(0, at), pendingBytes);
      pendingBytes += at;
      if (pendingBytes < 64) return;
      compress(state, schedule, pending, 0, 1);
      pendingBytes = 0;
    }
    const blocks = (bytes.byteLength - at) >>> 6;
    compress(state, schedule, bytes, at, blocks);
    at += blocks * 64;
    pending.set(bytes.subarray(at));
    pendingBytes = bytes.byteLength - at;
  }

  function hex(): string {
    // Padding (§5.1.1): a 1 bit, zeros, and the message length in bits as a 64-bit big-endian number.
    const bits = totalBytes * 8;
    const tail = new Uint8Array(pendingBytes < 56 ? 64 : 128);
    tail.set(pending.subarray(0, pendingBytes));
    tail[pendingBytes] = 0x80;
    const view = new DataView(tail.buffer);
    view.setUint32(tail.length - 8, Math.floor(bits / 2 ** 32));
    view.setUint32(tail.length - 4, bits >>> 0);
    compress(state, schedule, tail, 0, tail.length / 64);
    finished = true;
    return [...state].map((word) => (word >>> 0).toString(16).padStart(8, '0')).join('');
  }

  return { update, hex };
}

/**
 * The compression function (§6.2.2) over `blocks` 64-byte blocks of `bytes` from `at`. The message schedule W is
 * computed inside the round loop and the state is kept in locals: in V8 this runs about twice as fast as a separate
 * schedule loop with the state destructured from the array.
 */
function compress(state: Int32Array, w: Int32Array, bytes: Uint8Array, at: number, blocks: number): void {
  let h0 = state[0], h1 = state[1], h2 = state[2], h3 = state[3], h4 = state[4], h5 = state[5], h6 = state[6], h7 = state[7];
  for (let block = 0; block < blocks; block++, at += 64) {
    let a = h0, b = h1, c = h2, d = h3, e = h4, f = h5, g = h6, h = h7;
    for (let t = 0; t < 64; t++) {
      let word: number;
      if (t < 16) {
        const i = at + 4 * t; // big-endian words of the block
        word = (bytes[i] << 24) | (bytes[i + 1] << 16) | (bytes[i + 2] << 8) | bytes[i + 3];
      } else {
        const x = w[t - 15];
        const y = w[t - 2];
        const sigma0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
        const sigma1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
        word = (w[t - 16] + sigma0 + w[t - 7] + sigma1) | 0;
      }
      w[t] = word;
      const sum1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const choose = (e & f) ^ (~e & g);
      const t1 = (h + sum1 + choose + K[t] + word) | 0;
      const sum0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const majority = (a & b) ^ (a & c) ^ (b & c);
      const t2 = (sum0 + majority) | 0;
      h = g;
      g = f;
      f = e;
      e = (d + t1) | 0;
      d = c;
      c = b;
      b = a;
      a = (t1 + t2) | 0;
    }
    h0 = (h0 + a) | 0; h1 = (h1 + b) | 0; h2 = (h2 + c) | 0; h3 = (h3 + d) | 0;
    h4 = (h4 + e) | 0; h5 = (h5 + f) | 0; h6 = (h6 + g) | 0; h7 = (h7 + h) | 0;
  }
  state[0] = h0; state[1] = h1; state[2] = h2; state[3] = h3; state[4] = h4; state[5] = h5; state[6] = h6; state[7] = h7;
}

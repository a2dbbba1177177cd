// The counters `npm run bench:fullsize -- --browser` puts into the page's own worker: this script's text is prepended
// to the built worker chunk (dist/assets/worker-*.js) as the bench server serves it, so it runs before the worker's
// first line, in the worker's global scope, and nothing of src/ changes. It counts, as src/gpu/traffic.ts does in
// Node but on the prototypes (every GPUDevice of the worker: ours and ORT's WebGPU EP alike):
// - GPUDevice.prototype.createBuffer / GPUBuffer.prototype.destroy: bytes of GPU buffers alive and their peak;
// - GPUQueue.prototype.writeBuffer and buffers created mappedAtCreation: bytes uploaded;
// - GPUBuffer.prototype.mapAsync(READ): read-backs;
// - WebAssembly.Memory (ORT's threaded build creates its shared heap with it) and WebAssembly.instantiate* results:
//   the WASM heaps, whose byteLength is ORT's heap size;
// - the worker's messages: requests in (addEventListener, beside the worker's own onmessage) and events out
//   (postMessage), so the bench knows when a job is done and reads the engine's own GenerationStats.
// Read from outside with `globalThis.__bench` (Playwright's Worker.evaluate).
export const WORKER_PROBE = `(() => {
  const s = globalThis.__bench = {
    installedAt: Date.now(), liveBytes: 0, peakBytes: 0, buffers: 0, liveBuffers: 0,
    uploads: 0, uploadBytes: 0, writeBufferBytes: 0, mappedAtCreationBytes: 0, readBacks: 0, readBackBytes: 0,
    memories: [], requests: [], events: [],
    wasmBytes() { return s.memories.map((m) => m.buffer.byteLength); },
    snapshot() {
      const { memories, requests, events, wasmBytes, snapshot, ...counts } = s;
      return { ...counts, wasmHeaps: wasmBytes(), requests: requests.slice(), events: events.slice() };
    },
  };
  if (typeof GPUDevice !== 'undefined') {
    const live = new WeakSet();
    const createBuffer = GPUDevice.prototype.createBuffer;
    GPUDevice.prototype.createBuffer = function (descriptor) {
      const buffer = createBuffer.call(this, descriptor);
      s.buffers++; s.liveBuffers++;
      s.liveBytes += descriptor.size;
      s.peakBytes = Math.max(s.peakBytes, s.liveBytes);
      live.add(buffer);
      if (descriptor.mappedAtCreation) { s.uploads++; s.uploadBytes += descriptor.size; s.mappedAtCreationBytes += descriptor.size; }
      return buffer;
    };
    const destroy = GPUBuffer.prototype.destroy;
    GPUBuffer.prototype.destroy = function () {
      if (live.has(this)) { live.delete(this); s.liveBytes -= this.size; s.liveBuffers--; }
      return destroy.call(this);
    };
    const writeBuffer = GPUQueue.prototype.writeBuffer;
    GPUQueue.prototype.writeBuffer = function (buffer, offset, data, dataOffset = 0, size) {
      const element = ArrayBuffer.isView(data) ? (data.BYTES_PER_ELEMENT ?? 1) : 1;
      const bytes = size !== undefined ? size * element : data.byteLength - dataOffset * element;
      s.uploads++; s.uploadBytes += bytes; s.writeBufferBytes += bytes;
      return writeBuffer.apply(this, arguments);
    };
    const mapAsync = GPUBuffer.prototype.mapAsync;
    GPUBuffer.prototype.mapAsync = function (mode, offset, size) {
      if (mode & 1) { s.readBacks++; s.readBackBytes += size ?? this.size - (offset ?? 0); }
      return mapAsync.apply(this, arguments);
    };
  }
  const Memory = WebAssembly.Memory;
  WebAssembly.Memory = new Proxy(Memory, { construct(target, args) { const m = Reflect.construct(target, args); s.memories.push(m); return m; } });
  const keep = (result) => {
    const instance = result instanceof WebAssembly.Instance ? result : result?.instance;
    for (const value of Object.values(instance?.exports ?? {})) if (value instanceof Memory && !s.memories.includes(value)) s.memories.push(value);
    return result;
  };
  for (const name of ['instantiate', 'instantiateStreaming']) {
    const original = WebAssembly[name];
    if (original) WebAssembly[name] = function () { return original.apply(this, arguments).then(keep); };
  }
  addEventListener('message', (message) => {
    const r = message.data;
    if (r && typeof r === 'object') s.requests.push({ type: r.type, id: r.id, at: Date.now(), params: r.params, role: r.role });
  });
  const post = globalThis.postMessage;
  globalThis.postMessage = function (event) {
    if (event && typeof event === 'object' && ['ready', 'done', 'error', 'cancelled', 'lora-used', 'image'].includes(event.type)) {
      const { rgba, ...rest } = event;
      s.events.push({ ...rest, at: Date.now() });
    }
    return post.apply(this, arguments);
  };
})();
`;

// Counts what crosses between the CPU and a GPUDevice, from outside the code that uses it: every upload
// (queue.writeBuffer, buffers created mappedAtCreation), every read-back (mapAsync of a MAP_READ buffer), the bytes
// of buffers alive and the compute dispatches, ours and ORT's alike (ORT's WebGPU EP calls the same device object's
// methods). For tests and benchmarks: the engine's own counters could only say what it meant to do.
const USAGE_MAP_READ = 0x1;

export interface GpuTraffic {
  uploads: number;
  uploadBytes: number;
  readBacks: number;
  readBackBytes: number;
  /** Bytes of buffers created and not yet destroyed since the watch began, and their highest value. */
  liveBytes: number;
  peakBytes: number;
  /** Compute dispatches recorded (kernels run), ours and ORT's. */
  dispatches: number;
  /** Zeroes the counters (live bytes stay: they are state, not traffic); the peak restarts from the live bytes. */
  reset(): void;
}

export function watchGpuTraffic(device: GPUDevice): GpuTraffic {
  const traffic: GpuTraffic = {
    uploads: 0, uploadBytes: 0, readBacks: 0, readBackBytes: 0, liveBytes: 0, peakBytes: 0, dispatches: 0,
    reset() {
      Object.assign(traffic, { uploads: 0, uploadBytes: 0, readBacks: 0, readBackBytes: 0, peakBytes: traffic.liveBytes, dispatches: 0 });
    },
  };
  const createCommandEncoder = device.createCommandEncoder.bind(device);
  device.createCommandEncoder = ((descriptor?: GPUCommandEncoderDescriptor) => {
    const encoder = createCommandEncoder(descriptor);
    const beginComputePass = encoder.beginComputePass.bind(encoder);
    encoder.beginComputePass = ((passDescriptor?: GPUComputePassDescriptor) => {
      const pass = beginComputePass(passDescriptor);
      const dispatch = pass.dispatchWorkgroups.bind(pass);
      pass.dispatchWorkgroups = ((x: number, y?: number, z?: number) => (traffic.dispatches++, dispatch(x, y, z))) as GPUComputePassEncoder['dispatchWorkgroups'];
      return pass;
    }) as GPUCommandEncoder['beginComputePass'];
    return encoder;
  }) as GPUDevice['createCommandEncoder'];
  const queue = device.queue;
  const writeBuffer = queue.writeBuffer.bind(queue);
  queue.writeBuffer = ((buffer: GPUBuffer, offset: number, data: BufferSource | SharedArrayBuffer, dataOffset = 0, size?: number) => {
    const elementBytes = ArrayBuffer.isView(data) ? ((data as unknown as { BYTES_PER_ELEMENT?: number }).BYTES_PER_ELEMENT ?? 1) : 1;
    traffic.uploads++;
    traffic.uploadBytes += size !== undefined ? size * elementBytes : data.byteLength - dataOffset * elementBytes;
    return writeBuffer(buffer, offset, data as BufferSource, dataOffset, size);
  }) as GPUQueue['writeBuffer'];
  const createBuffer = device.createBuffer.bind(device);
  device.createBuffer = ((descriptor: GPUBufferDescriptor) => {
    const buffer = createBuffer(descriptor);
    if (descriptor.mappedAtCreation) {
      traffic.uploads++;
      traffic.uploadBytes += descriptor.size;
    }
    traffic.liveBytes += descriptor.size;
    traffic.peakBytes = Math.max(traffic.peakBytes, traffic.liveBytes);
    let alive = true;
    const destroy = buffer.destroy.bind(buffer);
    buffer.destroy = () => {
      if (alive) traffic.liveBytes -= descriptor.size;
      alive = false;
      destroy();
    };
    if (descriptor.usage & USAGE_MAP_READ) {
      const mapAsync = buffer.mapAsync.bind(buffer);
      buffer.mapAsync = ((mode: number, offset?: number, size?: number) => {
        traffic.readBacks++;
        traffic.readBackBytes += size ?? descriptor.size - (offset ?? 0);
        return mapAsync(mode, offset, size);
      }) as GPUBuffer['mapAsync'];
    }
    return buffer;
  }) as GPUDevice['createBuffer'];
  return traffic;
}

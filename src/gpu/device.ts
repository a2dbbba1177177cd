// GPUDevice acquisition: one device for our WGSL kernels and onnxruntime-web's native WebGPU EP.
// Works with any `GPU` object: navigator.gpu in a page or worker, or `create([])` from the `webgpu` package in Node.
// The default device limits are WebGPU's portable minimums (e.g. 128 MiB per storage binding, 256 MiB per buffer),
// far below what most adapters offer, so we ask for the adapter's real values; `shader-f16` is requested when the
// adapter has it (SwiftShader has not: every kernel keeps an f32 path).

/** The limits our kernels plan with; also what ORT's WebGPU EP asks for when it makes its own device. */
export const REQUESTED_LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupsPerDimension',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxComputeWorkgroupStorageSize',
  'maxStorageBuffersPerShaderStage',
] as const;

export type RequestedLimit = (typeof REQUESTED_LIMITS)[number];

/** Limits as plain numbers (what the merge planner reads); alignments included because bindings must honour them. */
export type GpuLimits = Record<RequestedLimit, number> & {
  minStorageBufferOffsetAlignment: number;
  minUniformBufferOffsetAlignment: number;
};

export interface DeviceLostInfo {
  reason: GPUDeviceLostReason; // 'destroyed' after device.destroy(), 'unknown' for a real loss
  message: string;
}

export interface AcquireOptions {
  powerPreference?: GPUPowerPreference;
  /** Request shader-f16 when the adapter has it (default true). */
  f16?: boolean;
  /** Further features to request when present (e.g. ORT uses 'subgroups'; 'timestamp-query' for profiling). */
  optionalFeatures?: GPUFeatureName[];
  /** Called once when the device is lost, including reason 'destroyed' after our own destroy(). */
  onLost?: (info: DeviceLostInfo) => void;
  /** Called for every validation / out-of-memory / internal error no error scope caught. */
  onUncapturedError?: (error: GPUError) => void;
  label?: string;
}

export interface AcquiredDevice {
  device: GPUDevice;
  adapterInfo: GPUAdapterInfo;
  hasF16: boolean;
  limits: GpuLimits;
}

/**
 * Each device holds its GPU object. In Node (dawn.node) a collected `GPU` frees the Dawn instance under a live
 * device: the next event poll crashes (seen as SIGSEGV / "std::system_error" / a mutex assertion). V8 drops a
 * variable after its last use even inside a running async function, so a caller's `const gpu = create([])` is not
 * enough. Harmless in browsers, where navigator.gpu lives as long as the page.
 */
const keepAlive = new WeakMap<GPUDevice, GPU>();

export const DEFAULT_OPTIONAL_FEATURES: readonly GPUFeatureName[] = ['subgroups', 'timestamp-query'];

export async function acquireDevice(gpu: GPU, options: AcquireOptions = {}): Promise<AcquiredDevice> {
  const adapter = await gpu.requestAdapter(
    options.powerPreference ? { powerPreference: options.powerPreference } : undefined,
  );
  if (!adapter) throw new Error('WebGPU: no adapter available (requestAdapter returned null)');

  const wanted: GPUFeatureName[] = [...(options.optionalFeatures ?? DEFAULT_OPTIONAL_FEATURES)];
  if (options.f16 !== false) wanted.push('shader-f16');
  const requiredFeatures = [...new Set(wanted)].filter((f) => adapter.features.has(f));

  const requiredLimits: Record<string, number> = {};
  for (const key of REQUESTED_LIMITS) requiredLimits[key] = adapter.limits[key];

  const device = await adapter.requestDevice({
    label: options.label ?? 'npo-playground',
    requiredFeatures,
    requiredLimits,
  });
  watchDevice(device, options);
  keepAlive.set(device, gpu);
  return {
    device,
    adapterInfo: adapter.info,
    hasF16: device.features.has('shader-f16'),
    limits: readLimits(device),
  };
}

/** Snapshot of the device's limits that matter to our kernels. */
export function readLimits(device: GPUDevice): GpuLimits {
  const limits = {} as GpuLimits;
  for (const key of REQUESTED_LIMITS) limits[key] = device.limits[key];
  limits.minStorageBufferOffsetAlignment = device.limits.minStorageBufferOffsetAlignment;
  limits.minUniformBufferOffsetAlignment = device.limits.minUniformBufferOffsetAlignment;
  return limits;
}

function watchDevice(device: GPUDevice, options: AcquireOptions): void {
  const { onLost, onUncapturedError } = options;
  if (onLost) {
    void device.lost.then((info) => onLost({ reason: info.reason, message: info.message }));
  }
  if (onUncapturedError) {
    device.addEventListener('uncapturederror', (event) => {
      onUncapturedError((event as GPUUncapturedErrorEvent).error);
    });
  }
}

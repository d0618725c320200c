// Explicit pipeline layouts (a uniform at binding 0, optionally an aux uniform at binding 4, both
// with dynamic offsets), the bounded bind-group cache, and the uniform slots: the batch's ring and
// the write-once arena.
import { COMPUTE_STAGE, Usage } from './units.js';

/** An explicit pipeline layout (see Bindings.layout); `key` names it in cache keys. */
export interface PipelineLayout {
  layout: GPUPipelineLayout;
  group: GPUBindGroupLayout;
  key: string;
}

/** A range of the uniform arena (or any uniform buffer) bound with a dynamic offset. */
export interface UniformSlot {
  buffer: GPUBuffer;
  offset: number;
  size: number;
}

/** Bind groups kept for reuse (each keeps its buffers alive until evicted). */
const BIND_GROUP_CACHE = 64;
/** Size of each write-once uniform arena (256 dispatch slots at the usual 256-byte alignment). */
const UNIFORM_ARENA_BYTES = 64 * 1024;
/** The batch's uniform ring: its first size, and the most it grows to when a batch needs more. */
const UNIFORM_RING_BYTES = 64 * 1024;
const UNIFORM_RING_MAX_BYTES = 1024 * 1024;

export class Bindings {
  private readonly layouts = new Map<string, PipelineLayout>();
  /** Recently used bind groups, oldest first (a Map keeps insertion order). */
  private readonly groups = new Map<string, GPUBindGroup>();
  private readonly bufferIds = new WeakMap<GPUBuffer, number>();
  private nextBufferId = 1;
  private arena: { buffer: GPUBuffer; next: number } | null = null;
  /** Slots of the work recorded into the context's batch, written again once the batch is
   * submitted; `short` when a batch needed more than it holds (it grows at the next batch). */
  private ring: { buffer: GPUBuffer; next: number; short: boolean } | null = null;

  constructor(
    private readonly device: GPUDevice,
    private readonly validate: boolean,
  ) {}

  /**
   * The explicit layout (cached by shape) of a kernel with a uniform at binding 0, and at binding 4
   * when `withAux`, both with dynamic offsets into the uniform arena, and these storage bindings
   * (`true`: read_write). Pipelines compiled against it share bind groups from `group`.
   */
  layout(storage: readonly (readonly [binding: number, writes: boolean])[], withAux = false): PipelineLayout {
    const key = `p${storage.map(([b, w]) => `${b}${w ? 'w' : 'r'}`).join('')}${withAux ? 'a' : ''}`;
    let layout = this.layouts.get(key);
    if (!layout) {
      const uniform = (binding: number): GPUBindGroupLayoutEntry => ({
        binding,
        visibility: COMPUTE_STAGE,
        buffer: { type: 'uniform', hasDynamicOffset: true },
      });
      const entries: GPUBindGroupLayoutEntry[] = [uniform(0), ...(withAux ? [uniform(4)] : [])];
      for (const [b, w] of storage)
        entries.push({ binding: b, visibility: COMPUTE_STAGE, buffer: { type: w ? 'storage' : 'read-only-storage' } });
      const group = this.device.createBindGroupLayout({ label: `webgpu-dropout ${key}`, entries });
      layout = { layout: this.device.createPipelineLayout({ label: `webgpu-dropout ${key}`, bindGroupLayouts: [group] }), group, key };
      this.layouts.set(key, layout);
    }
    return layout;
  }

  /**
   * A bind group for these buffers and ranges under `layout`, from a bounded LRU cache: `params`
   * (binding 0) and `aux` (binding 4) are bound at offset 0 and placed by dynamic offsets. A new
   * group is made inside an error scope pushed onto `scopes` (when given and validating), which
   * the caller checks: a buffer of another device fails here.
   */
  group(
    layout: PipelineLayout,
    params: { buffer: GPUBuffer; size: number },
    aux: { buffer: GPUBuffer; size: number } | undefined,
    storage: readonly (readonly [binding: number, buffer: GPUBuffer, offset: number, size: number])[],
    scopes?: Promise<GPUError | null>[],
  ): GPUBindGroup {
    let key = `${layout.key}|${this.bufferId(params.buffer)}:${params.size}|${aux ? `${this.bufferId(aux.buffer)}:${aux.size}` : ''}`;
    for (const [b, buffer, offset, size] of storage) key += `|${b}:${this.bufferId(buffer)}:${offset}:${size}`;
    let group = this.groups.get(key);
    if (group) {
      this.groups.delete(key);
    } else {
      const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: params.buffer, offset: 0, size: params.size } }];
      if (aux) entries.push({ binding: 4, resource: { buffer: aux.buffer, offset: 0, size: aux.size } });
      for (const [binding, buffer, offset, size] of storage) entries.push({ binding, resource: { buffer, offset, size } });
      const scoped = scopes !== undefined && this.validate;
      if (scoped) this.device.pushErrorScope('validation');
      group = this.device.createBindGroup({ layout: layout.group, entries });
      if (scoped) scopes.push(this.device.popErrorScope());
      if (this.groups.size >= BIND_GROUP_CACHE) this.groups.delete(this.groups.keys().next().value!);
    }
    this.groups.set(key, group);
    return group;
  }

  /**
   * Slots holding `data`, for one dispatch. `batched`: the dispatch is recorded into the context's
   * batch, so its slots come from the uniform ring, which is written again from the start once the
   * batch is submitted: queue.writeBuffer runs in queue order, after the submitted batch has read
   * them. The ring is one buffer for the context's life, so bind groups that bind it stay in the
   * cache from batch to batch. Anything else (a caller's encoder, whose work may be submitted any
   * time later) gets write-once slots of an arena: never written again, a full arena is dropped to
   * the garbage collector, and WebGPU keeps it alive while work uses it.
   */
  uniformSlots(data: ArrayBuffer | ArrayBufferView, batched = false): UniformSlot {
    const align = this.device.limits.minUniformBufferOffsetAlignment;
    const size = Math.max(16, Math.ceil(data.byteLength / 16) * 16);
    const span = Math.ceil(size / align) * align;
    let target: { buffer: GPUBuffer; next: number } | undefined;
    if (batched) {
      this.ring ??= { buffer: this.uniformBuffer('webgpu-dropout batch uniforms', UNIFORM_RING_BYTES), next: 0, short: false };
      if (this.ring.next + span <= this.ring.buffer.size) target = this.ring;
      else this.ring.short = true;
    }
    if (!target) {
      if (!this.arena || this.arena.next + span > this.arena.buffer.size) {
        this.arena = { buffer: this.uniformBuffer('webgpu-dropout uniforms', Math.max(UNIFORM_ARENA_BYTES, span)), next: 0 };
      }
      target = this.arena;
    }
    const offset = target.next;
    target.next += span;
    const bytes = ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : new Uint8Array(data);
    this.device.queue.writeBuffer(target.buffer, offset, bytes.byteLength % 4 ? padTo4(bytes) : (bytes as Uint8Array<ArrayBuffer>));
    return { buffer: target.buffer, offset, size };
  }

  /** The batch was submitted: the ring's slots may be written again (grown first if it was short). */
  batchSubmitted(): void {
    const ring = this.ring;
    if (!ring) return;
    if (ring.short && ring.buffer.size < UNIFORM_RING_MAX_BYTES) {
      // The old ring goes to the garbage collector; the submitted batch keeps it alive while it runs.
      this.ring = {
        buffer: this.uniformBuffer('webgpu-dropout batch uniforms', Math.min(UNIFORM_RING_MAX_BYTES, ring.buffer.size * 2)),
        next: 0,
        short: false,
      };
      return;
    }
    ring.next = 0;
    ring.short = false;
  }

  private uniformBuffer(label: string, size: number): GPUBuffer {
    return this.device.createBuffer({ label, size, usage: Usage.UNIFORM | Usage.COPY_DST });
  }

  /** Empties the bind-group cache (after a refused group, which it may hold). */
  forgetGroups(): void {
    this.groups.clear();
  }

  /** Drops the arena, the ring and the cached groups (destroy). */
  clear(): void {
    this.arena = null;
    this.ring = null;
    this.groups.clear();
  }

  /** A small number naming `buffer` in bind-group cache keys. */
  private bufferId(buffer: GPUBuffer): number {
    let id = this.bufferIds.get(buffer);
    if (id === undefined) {
      id = this.nextBufferId++;
      this.bufferIds.set(buffer, id);
    }
    return id;
  }
}

function padTo4(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(Math.ceil(bytes.byteLength / 4) * 4);
  out.set(bytes);
  return out;
}

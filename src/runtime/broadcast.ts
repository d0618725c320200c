// What a 'broadcast' kernel's call needs besides its own buffers (docs/DESIGN.md section 2): the
// broadcast table compiled into the pipeline where the specialization budget allows, and its mask
// table, written first by the element-wise RNG kernel where one pays, or a placeholder bound in
// its place. One per context.
import { kernels } from '../kernels/elementwise.js';
import type { KernelRecord } from '../kernels/record.js';
import type { MaskTablePolicy } from './options.js';
import type { Constants, Pipelines } from './pipelines.js';
import type { Transfers } from './transfers.js';
import { type BoundBuffer, Usage } from './units.js';

/** Specialization answers kept per context, past which they are forgotten (endless new shapes
 * cannot grow the map; a forgotten grant is granted again, since grants are never taken back). */
const SPECIALIZATIONS_SEEN = 1024;
/** The variant of calls that read a mask table (frozen: pipelines key constants by identity first). */
const READS_TABLE: Constants = Object.freeze({ TABLE: 1 });

/** How the runtime carries out a 'broadcast' call. */
export interface BroadcastPlan {
  /** Pipeline constants that compile the call's shape in (undefined: the generic pipeline). */
  constants: Constants | undefined;
  /** The mask table binding: the table the writer fills, or the placeholder. */
  maskTable: BoundBuffer;
  /** The call that writes the table first (with `maskTable` taken from the pool), if one pays. */
  writer?: { kernel: KernelRecord; count: number };
  /** Constants the call cannot run without (it reads the table). */
  variant: Constants | undefined;
}

export class Broadcasts {
  private seen = new Map<string, Constants | null>();
  private placeholder: GPUBuffer | undefined;

  constructor(
    private readonly device: GPUDevice,
    private readonly policy: MaskTablePolicy,
    private readonly pipelines: Pipelines,
    private readonly transfers: Transfers,
  ) {}

  /**
   * The plan of a call of `kernel` over `count` elements with broadcast table `table`: `random`
   * says whether it draws words at all (a fill or copy with a broadcast kernel does not), and
   * `threshold` whether a table of words saves any (threshold 0 keeps everything). With
   * `tables` false (synchronous recording, which cannot give a temporary back) no mask table and
   * no specialization are used.
   */
  plan(
    kernel: KernelRecord,
    count: number,
    table: Uint32Array,
    random: boolean,
    threshold: number,
    opConstants: Constants | undefined,
    tables: boolean,
  ): BroadcastPlan {
    const writer = tables && random ? this.maskTableWriter(kernel, count, table, threshold) : undefined;
    const maskTable = writer
      ? { buffer: this.transfers.acquire(writer.count * 4, 'mask table'), argument: 'mask table' }
      : { buffer: this.placeholderBuffer(), argument: 'mask table' };
    return {
      constants: tables ? this.specialization(count, table, opConstants) : undefined,
      maskTable,
      writer,
      variant: writer ? READS_TABLE : undefined,
    };
  }

  /**
   * Pipeline constants that compile the call's shape into the kernel (shaders/structured.wgsl), if
   * the context grants one more specialization: the broadcast table (SPECIALIZED) for tables of
   * rank >= 2 (rank 1 is element-wise or a single decision, whose extent is the element count and
   * would cost a pipeline per tensor size; the outermost extent is left out, so batch sizes share
   * a pipeline), and the op's own constants (the fused bias kernel's COLUMNS).
   */
  private specialization(count: number, table: Uint32Array, opConstants: Constants | undefined): Constants | undefined {
    if (count === 0) return undefined;
    const rank = table[0]!;
    // The lookup key holds exactly what the constants would, so a call builds no object and no
    // JSON once its shape has been seen.
    let key = opConstants ? JSON.stringify(opConstants) : '';
    if (rank >= 2) for (let k = 0; k < rank; k++) key += `,${k + 1 < rank ? table[4 + 4 * k] : ''}/${table[5 + 4 * k]}`;
    if (this.seen.size >= SPECIALIZATIONS_SEEN) this.seen = new Map();
    let granted = this.seen.get(key);
    if (granted === undefined) {
      const constants: Record<string, number> = {};
      if (rank >= 2) {
        Object.assign(constants, { SPECIALIZED: 1, RANK: rank });
        for (let k = 0; k < rank; k++) {
          if (k + 1 < rank) constants[`EXTENT${k}`] = table[4 + 4 * k]!;
          constants[`STRIDE${k}`] = table[5 + 4 * k]!;
        }
      }
      Object.assign(constants, opConstants); // the op's own, last
      // Frozen, so the context keys its pipelines by this object's JSON once (constantsKey).
      granted =
        Object.keys(constants).length && this.pipelines.claimSpecialization(JSON.stringify(constants)) ? Object.freeze(constants) : null;
      this.seen.set(key, granted);
    }
    return granted ?? undefined;
  }

  /**
   * The kernel that writes the call's mask table (shaders/structured.wgsl, TABLE) and the table's
   * length (the mask's element count), where one pays (ContextOptions.maskTables): a large
   * enough call, a broadcast mask whose elements each serve enough elements, and RNG work to save
   * (a table of words where threshold 0 keeps everything without it; a table of normals always
   * saves Box-Muller).
   */
  private maskTableWriter(
    kernel: KernelRecord,
    count: number,
    table: Uint32Array,
    threshold: number,
  ): { kernel: KernelRecord; count: number } | undefined {
    if (kernel.mask !== 'broadcast' || count === 0) return undefined;
    if (kernel.maskTableHolds === 'words' && !threshold) return undefined;
    const maskCount = maskElements(table);
    const { minElements, minReuse } = this.policy;
    if (maskCount === count || count < minElements || maskCount * minReuse > count) return undefined;
    const { maxStorageBufferBindingSize, maxBufferSize } = this.device.limits;
    if (maskCount * 4 > Math.min(maxStorageBufferBindingSize, maxBufferSize)) return undefined;
    return { kernel: kernel.maskTableHolds === 'normals' ? kernels.normal : kernels.words, count: maskCount };
  }

  /** A 16-byte buffer bound as the mask table of calls that read none (the binding is declared anyway). */
  private placeholderBuffer(): GPUBuffer {
    this.placeholder ??= this.device.createBuffer({ label: 'webgpu-dropout no mask table', size: 16, usage: Usage.STORAGE });
    return this.placeholder;
  }
}

/** Elements of the mask a broadcast table describes: the product of its masked (stride > 0) extents. */
function maskElements(table: Uint32Array): number {
  let n = 1;
  for (let k = 0; k < table[0]!; k++) if (table[5 + 4 * k]! > 0) n *= table[4 + 4 * k]!;
  return n;
}

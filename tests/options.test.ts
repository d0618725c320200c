// Every call that takes an options object refuses a name it does not take, before any work: a
// misspelt option would otherwise be ignored and the call would quietly do something else. The
// error names the option and suggests the closest one the call takes; the output stays poisoned and
// the generator keeps its stream.
import { beforeAll, describe, expect, it } from 'vitest';
import {
  AlphaDropout,
  alphaDropout,
  alphaDropoutBackward,
  bernoulliMask,
  biasDropoutResidual,
  biasDropoutResidualBackward,
  DropConnect,
  Dropout,
  Dropout2d,
  DropoutContext,
  DropPath,
  dropConnect,
  dropConnectBackward,
  dropout,
  dropoutArray,
  dropoutBackward,
  dropPath,
  dropPathAdd,
  dropPathAddBackward,
  GaussianDropout,
  gaussianDropout,
  gaussianDropoutBackward,
  InvalidArgumentError,
  randomNormal,
  randomUniform,
  randomWords,
  requestDropoutDevice,
  SpatialDropout2D,
  type StructuredState,
  spatialDropout,
  structuredDropout,
  structuredDropoutBackward,
  structuredKeepMask,
  VariationalDropout,
  variationalDropout,
} from '../src/index.js';
import { MLP, mcDropout, mcSample, sampleDropout, uploadMatrix } from '../src/model.js';
import { requestNodeDevice } from '../src/node.js';
import { checkOptionNames, closestOption, optionNames } from '../src/options.js';
import { gpuContext, nodeDevice, POISON_WORD, poisoned, testData } from './gpu.js';

const N = 2048;
const SHAPE = [4, 8, 64];
let ctx: DropoutContext;
let x: GPUBuffer;
let residual: GPUBuffer;
let bias: GPUBuffer;
let state: StructuredState;
let biasState: StructuredState;
let gaussianState: StructuredState;
let alphaState: StructuredState;
let mlp: MLP;

beforeAll(async () => {
  ctx = await gpuContext();
  x = ctx.upload(testData(N));
  residual = ctx.upload(testData(N));
  bias = ctx.upload(testData(64));
  state = (await structuredDropout(ctx, x, { p: 0.5, seed: 1n, shape: SHAPE })).state;
  biasState = (await biasDropoutResidual(ctx, x, bias, residual, { p: 0.5, seed: 1n, shape: SHAPE })).state;
  gaussianState = (await gaussianDropout(ctx, x, { p: 0.5, seed: 1n })).state;
  alphaState = (await alphaDropout(ctx, x, { p: 0.5, seed: 1n })).state;
  mlp = new MLP(ctx, { sizes: [2, 4, 1], dropout: 0.5, seed: 1 });
});

type Extra = Record<string, unknown>;

/** Calls that write `out` when they run; each is given valid options plus `extra`, and no seed, so
 * that a refused call that had drawn from the context's generator would show. */
const outputOps: Record<string, (out: GPUBuffer, extra: Extra) => Promise<unknown>> = {
  dropout: (out, e) => dropout(ctx, x, { p: 0.5, out, ...e }),
  dropoutBackward: (out, e) =>
    dropoutBackward(ctx, x, { seed: 1n, stream: 0n, offset: 0n, p: 0.5, count: N, dtype: 'f32', training: true }, { out, ...e }),
  randomWords: (out, e) => randomWords(ctx, { count: N, out, ...e }),
  randomUniform: (out, e) => randomUniform(ctx, { count: N, out, ...e }),
  randomNormal: (out, e) => randomNormal(ctx, { count: N, out, ...e }),
  bernoulliMask: (out, e) => bernoulliMask(ctx, { count: N, p: 0.5, out, ...e }),
  structuredDropout: (out, e) => structuredDropout(ctx, x, { p: 0.5, shape: SHAPE, out, ...e }),
  structuredDropoutBackward: (out, e) => structuredDropoutBackward(ctx, x, state, { out, ...e }),
  spatialDropout: (out, e) => spatialDropout(ctx, x, { p: 0.5, shape: SHAPE, layout: 'channels-last', out, ...e }),
  dropPath: (out, e) => dropPath(ctx, x, { p: 0.5, shape: SHAPE, out, ...e }),
  dropPathAdd: (out, e) => dropPathAdd(ctx, residual, x, { p: 0.5, shape: SHAPE, out, ...e }),
  dropPathAddBackward: (out, e) => dropPathAddBackward(ctx, x, state, { out, ...e }),
  variationalDropout: (out, e) => variationalDropout(ctx, x, { p: 0.5, shape: SHAPE, out, ...e }),
  dropConnect: (out, e) => dropConnect(ctx, x, { p: 0.5, rows: 32, cols: 64, out, ...e }),
  dropConnectBackward: (out, e) => dropConnectBackward(ctx, x, state, { out, ...e }),
  structuredKeepMask: (out, e) => structuredKeepMask(ctx, { p: 0.5, shape: SHAPE, out, ...e }),
  gaussianDropout: (out, e) => gaussianDropout(ctx, x, { p: 0.5, out, ...e }),
  gaussianDropoutBackward: (out, e) => gaussianDropoutBackward(ctx, x, gaussianState, { out, ...e }),
  alphaDropout: (out, e) => alphaDropout(ctx, x, { p: 0.5, out, ...e }),
  alphaDropoutBackward: (out, e) => alphaDropoutBackward(ctx, x, alphaState, { out, ...e }),
  biasDropoutResidual: (out, e) => biasDropoutResidual(ctx, x, bias, residual, { p: 0.5, shape: SHAPE, out, ...e }),
  biasDropoutResidualBackward: (out, e) => biasDropoutResidualBackward(ctx, x, biasState, { outX: out, ...e }),
  'Dropout layer forward': (out, e) => new Dropout(ctx, { p: 0.5 }).forward(x, { out, ...e }),
  'SpatialDropout2D forward': (out, e) => new SpatialDropout2D(ctx, { p: 0.5 }).forward(x, { shape: [2, 4, 4, 64], out, ...e }),
  'DropPath forwardAdd': (out, e) => new DropPath(ctx, { p: 0.5 }).forwardAdd(residual, x, { shape: SHAPE, out, ...e }),
  'DropConnect forward': (out, e) => new DropConnect(ctx, 32, 64, { p: 0.5 }).forward(x, { out, ...e }),
};

async function expectRefused(call: () => unknown, argument: string, suggestion?: string): Promise<void> {
  let caught: unknown;
  try {
    await call();
  } catch (e) {
    caught = e;
  }
  expect(caught, `expected InvalidArgumentError for ${argument}`).toBeInstanceOf(InvalidArgumentError);
  const err = caught as InvalidArgumentError;
  expect(err.argument).toBe(argument);
  expect(err.message).toMatch(/expected one of the options .*, got an option this call does not take/);
  if (suggestion === undefined) expect(err.message).not.toMatch(/did you mean/);
  else expect(err.message).toMatch(new RegExp(`\\(did you mean ${suggestion}\\?\\)$`));
}

describe('an option a call does not take is refused', () => {
  for (const [name, call] of Object.entries(outputOps)) {
    it(`${name}: names the option, writes nothing, takes no stream`, async () => {
      const out = poisoned(ctx, N * 4);
      const stream = ctx.generator.stream;
      await expectRefused(() => call(out, { colour: 'blue' }), 'options.colour');
      expect(ctx.generator.stream).toBe(stream);
      const words = new Uint32Array(await ctx.readBytes(out, N * 4));
      expect(
        words.findIndex((w) => w !== POISON_WORD),
        'the output was written although the call was refused',
      ).toBe(-1);
      // The same call with the valid options alone runs (the harness itself is sound).
      await call(out, {});
    });
  }

  it('structured ops refuse the options of their neighbours (noiseShape to spatialDropout, layout to dropPath, timeAxis to a layer call)', async () => {
    await expectRefused(
      () => spatialDropout(ctx, x, { p: 0.5, shape: SHAPE, layout: 'channels-last', noiseShape: [4, 1, 64] } as never),
      'options.noiseShape',
    );
    await expectRefused(() => dropPath(ctx, x, { p: 0.5, shape: SHAPE, layout: 'channels-last' } as never), 'options.layout');
    await expectRefused(
      () => new VariationalDropout(ctx, { p: 0.5 }).forward(x, { shape: SHAPE, timeAxis: 0 } as never),
      'options.timeAxis',
    );
    await expectRefused(() => structuredDropout(ctx, x, { p: 0.5, shape: SHAPE, timeAxis: 0 } as never), 'options.timeAxis');
  });

  it('suggests the name meant: other spellings, other libraries, typos', async () => {
    await expectRefused(
      () => structuredDropout(ctx, x, { p: 0.5, shape: SHAPE, noise_shape: [4, 1, 64] } as never),
      'options.noise_shape',
      'noiseShape',
    );
    await expectRefused(
      () => structuredDropout(ctx, x, { p: 0.5, shape: SHAPE, noiseshape: [4, 1, 64] } as never),
      'options.noiseshape',
      'noiseShape',
    );
    await expectRefused(
      () => dropPath(ctx, x, { p: 0.5, shape: SHAPE, scale_by_keep: false } as never),
      'options.scale_by_keep',
      'scaleByKeep',
    );
    await expectRefused(
      () => dropPath(ctx, x, { p: 0.5, shape: SHAPE, scaleBykeep: false } as never),
      'options.scaleBykeep',
      'scaleByKeep',
    );
    await expectRefused(() => dropout(ctx, x, { p: 0.5, sede: 3n } as never), 'options.sede', 'seed');
    await expectRefused(() => dropout(ctx, x, { p: 0.5, rate: 0.1 } as never), 'options.rate', 'p');
    await expectRefused(() => dropout(ctx, x, { p: 0.5, drop_prob: 0.1 } as never), 'options.drop_prob', 'p');
    await expectRefused(() => dropout(ctx, x, { p: 0.5, inplace: true } as never), 'options.inplace');
    expect(() => new Dropout(ctx, { p: 0.5, inplace: true } as never)).toThrow(/options\.inplace: .*did you mean inPlace\?/);
  });

  it('an unknown name set to undefined asks for nothing and is let through', async () => {
    const { state: s } = await dropout(ctx, x, { p: 0.5, seed: 9n, colour: undefined } as never);
    expect(s.seed).toBe(9n);
  });

  it('layer constructors throw for their own options', () => {
    expect(() => new Dropout(ctx, { p: 0.5, shape: SHAPE } as never)).toThrow(InvalidArgumentError);
    expect(() => new Dropout2d(ctx, { p: 0.5, channelAxis: 1 } as never)).toThrow(
      /options\.channelAxis: expected one of the options p, dtype, generator, layout,/,
    );
    expect(() => new DropPath(ctx, { p: 0.5, timeAxis: 0 } as never)).toThrow(/options\.timeAxis/);
    expect(() => new VariationalDropout(ctx, { p: 0.5, time_axis: 0 } as never)).toThrow(/options\.time_axis: .*did you mean timeAxis\?/);
    expect(() => new GaussianDropout(ctx, { p: 0.5, sigma: 1 } as never)).toThrow(/options\.sigma/);
    expect(() => new AlphaDropout(ctx, { p: 0.5, layout: 'channels-last' } as never)).toThrow(/options\.layout/);
    expect(() => new DropConnect(ctx, 2, 2, { p: 0.5, rows: 2 } as never)).toThrow(/options\.rows/);
    // Their own names are taken.
    new DropPath(ctx, { p: 0.5, scaleByKeep: false });
    new VariationalDropout(ctx, { p: 0.5, timeAxis: 0 });
    new SpatialDropout2D(ctx, { p: 0.5, layout: 'channels-first' });
  });

  it('DropoutContext.create, its maskTables, and the device requests (before asking for an adapter)', async () => {
    const { device } = await nodeDevice();
    await expectRefused(() => DropoutContext.create(device, { workgroup_size: 64 } as never), 'options.workgroup_size', 'workgroupSize');
    await expectRefused(
      () => DropoutContext.create(device, { maskTables: { minElement: 4 } } as never),
      'options.maskTables.minElement',
      'minElements',
    );
    let asked = false;
    const gpu = {
      requestAdapter: async () => {
        asked = true;
        return null;
      },
    } as unknown as GPU;
    await expectRefused(
      () => requestDropoutDevice({ gpu, powerpreference: 'low-power' } as never),
      'options.powerpreference',
      'powerPreference',
    );
    await expectRefused(() => requestNodeDevice({ adaptor: 'lavapipe' } as never), 'options.adaptor', 'adapter');
    expect(asked).toBe(false);
  });

  it('the model kit: MLP, its methods, sampleDropout, mcDropout and mcSample', async () => {
    const xm = uploadMatrix(ctx, [0, 1, 1, 0], 2, 2);
    const ym = uploadMatrix(ctx, [1, 0], 2, 1);
    expect(() => new MLP(ctx, { sizes: [2, 1], learning_rate: 0.1 } as never)).toThrow(
      /options\.learning_rate: .*did you mean learningRate\?/,
    );
    expect(() => new MLP(ctx, { sizes: [2, 1], p: 0.1 } as never)).toThrow(/options\.p: /);
    const streams = mlp.generator.stream;
    await expectRefused(() => mlp.trainStep(xm, ym, { loss: 'mse', lr: 0.1 } as never), 'options.lr');
    expect(mlp.generator.stream).toBe(streams);
    await expectRefused(() => mlp.evaluate(xm, ym, { loss: 'mse', training: false } as never), 'options.training');
    await expectRefused(() => mlp.gradients(xm, ym, { loss: 'mse', encoder: undefined, readLoss: true } as never), 'options.readLoss');
    await expectRefused(() => mlp.forward(xm, { sample: 1 } as never), 'options.sample');
    // predict is eval mode: a `random` there would have turned dropout on.
    await expectRefused(() => mlp.predict(xm, { random: { seed: 1n, stream: 0n, samples: 1 } } as never), 'options.random');
    await expectRefused(
      () => sampleDropout(ctx, xm, { p: 0.5, random: { seed: 1n, stream: 0n, samples: 1 }, seed: 1n } as never),
      'options.seed',
    );
    await expectRefused(() => mcDropout(ctx, mlp, xm, { samples: 4, sample: 3 } as never), 'options.sample', 'samples');
    await expectRefused(
      () => mcSample(ctx, mlp, xm, { seed: 1n, stream: 0n, sample: 0, samples: 2 } as never),
      'options.samples',
      'sample',
    );
    await expectRefused(() => dropoutArray(ctx, testData(8), { p: 0.5, out: x } as never), 'options.out');
  });
});

describe('the option-name helpers', () => {
  it('optionNames lists every name; closestOption prefers a respelling, then an alias, then a near typo', () => {
    const names = optionNames<{ p: number; noiseShape?: number[]; seed?: bigint; stream?: bigint }>({
      p: true,
      noiseShape: true,
      seed: true,
      stream: true,
    });
    expect([...names]).toEqual(['p', 'noiseShape', 'seed', 'stream']);
    expect(closestOption('NOISE-SHAPE', names)).toBe('noiseShape');
    expect(closestOption('rate', names)).toBe('p');
    expect(closestOption('steam', names)).toBe('stream');
    expect(closestOption('sed', names)).toBeUndefined(); // too short to guess from
    expect(closestOption('colour', names)).toBeUndefined();
    expect(closestOption('rate', optionNames<{ count: number }>({ count: true }))).toBeUndefined(); // an alias only for a name the call takes
    expect(() => checkOptionNames({ p: 1, seed: 2n }, names)).not.toThrow();
    expect(() => checkOptionNames({ p: 1, colour: 2 }, names, 'opts')).toThrow(
      /^opts\.colour: expected one of the options p, noiseShape, seed, stream, got an option this call does not take$/,
    );
  });
});

// sbi 0.27's MAF (nflows 0.14's MaskedAffineAutoregressiveTransform, tanh MADEs with a context
// layer, a RandomPermutation after each) read into robustsbi's MAF in sbi's configuration. Used by
// the parity test of the model (test/unit/sbi/nflows-maf-parity.test.ts) and by the bench that
// starts robustsbi's training where sbi's starts (bench/sbi-same-start.ts).
import type { SerializedWeights } from '../sbi/types.js';

/** One nflows MADE as bench/torch dumps it: masks applied, rows in nflows' [out, in] layout. */
export interface NflowsMadeLayer {
  /** The RandomPermutation that follows this MADE. */
  perm: number[];
  W0: number[][];
  b0: number[];
  Wc: number[][];
  bc: number[];
  Wh: number[][][];
  bh: number[][];
  Wf: number[][];
  bf: number[];
}

export interface NflowsMaf {
  thetaDim: number;
  xDim: number;
  hidden: number;
  layers: NflowsMadeLayer[];
}

/** robustsbi's MAF configured as sbi's NPE() builds it: three tanh layers and nflows' pieces. */
export function sbiMadeConfig(hidden: number, transforms: number): Record<string, unknown> {
  return {
    hidden: [hidden, hidden, hidden],
    numTransforms: transforms,
    activation: 'tanh',
    affine: 'nflows',
    biasInit: 'torch',
    inputFanIn: 'separate',
    contextLayer: 'tanh',
    degrees: 'nflows',
  };
}

/**
 * nflows' MADE l reads its input in position order; a RandomPermutation after it reorders the
 * positions for the next. robustsbi keeps the coordinates fixed and gives each MADE an order: the
 * coordinate at position j of MADE l, c_l[j], with c_1 the identity and c_{l+1}[j] = c_l[perm_l[j]].
 */
export function ordersFromPermutations(perms: readonly number[][], dim: number): number[][] {
  const orders: number[][] = [];
  let c = Array.from({ length: dim }, (_, i) => i);
  for (const perm of perms) {
    orders.push([...c]);
    c = perm.map((p) => c[p]!);
  }
  return orders;
}

/** [rows][cols] in nflows' [out][in] layout, flattened as robustsbi's [in, out]. */
function transposed(m: number[][]): number[] {
  const out: number[] = [];
  for (let j = 0; j < m[0]!.length; j++) for (let i = 0; i < m.length; i++) out.push(m[i]![j]!);
  return out;
}

/** The flow's weights under robustsbi's names and layout, for the given orders. */
export function nflowsWeights(f: NflowsMaf, orders: readonly number[][]): SerializedWeights[] {
  const D = f.thetaDim;
  const H = f.hidden;
  if (orders.length !== f.layers.length)
    throw new Error(`${orders.length} orders for ${f.layers.length} MADEs`);
  const ws: SerializedWeights[] = [];
  f.layers.forEach((L, l) => {
    const c = orders[l]!;
    // The first layer's theta weights: row = coordinate, where nflows' column = position.
    const thetaW = new Array<number>(D * H).fill(0);
    for (let j = 0; j < D; j++) for (let h = 0; h < H; h++) thetaW[c[j]! * H + h] = L.W0[h]![j]!;
    ws.push({ name: `t${l}.in.theta`, shape: [D, H], values: thetaW });
    ws.push({ name: `t${l}.in.ctx`, shape: [f.xDim, H], values: transposed(L.Wc) });
    ws.push({ name: `t${l}.in.ctxBias`, shape: [H], values: L.bc });
    ws.push({ name: `t${l}.in.bias`, shape: [H], values: L.b0 });
    L.Wh.forEach((W, k) => {
      ws.push({ name: `t${l}.h${k + 1}.weight`, shape: [H, H], values: transposed(W) });
      ws.push({ name: `t${l}.h${k + 1}.bias`, shape: [H], values: L.bh[k]! });
    });
    // nflows interleaves (unconstrained scale, shift) per position; robustsbi's columns are
    // parameter-major over coordinates: shifts first, then unconstrained scales.
    const outW = new Array<number>(H * 2 * D).fill(0);
    const outB = new Array<number>(2 * D).fill(0);
    for (let j = 0; j < D; j++) {
      for (const [param, row] of [
        [0, 2 * j + 1],
        [1, 2 * j],
      ] as const) {
        const col = param * D + c[j]!;
        for (let h = 0; h < H; h++) outW[h * 2 * D + col] = L.Wf[row]![h]!;
        outB[col] = L.bf[row]!;
      }
    }
    ws.push({ name: `t${l}.out.weight`, shape: [H, 2 * D], values: outW });
    ws.push({ name: `t${l}.out.bias`, shape: [2 * D], values: outB });
  });
  return ws;
}

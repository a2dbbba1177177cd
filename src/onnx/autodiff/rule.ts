// The shape of a gradient rule: given a forward node, the gradients flowing into its outputs and which inputs need
// a gradient, emit nodes computing the gradients of its inputs (vector-Jacobian products).
import type { NodeProto } from '../proto.ts';
import type { Emitter } from './emitter.ts';

export interface RuleArgs {
  node: NodeProto;
  /** The node's input names ('' for an omitted optional input). */
  x: string[];
  /** The node's output names. */
  y: string[];
  /** Gradient of the loss with respect to each output; null where an output does not reach the loss. */
  dy: (string | null)[];
  /** Whether input i needs a gradient (it depends on a wrt value and is a float tensor). */
  needs: boolean[];
  e: Emitter;
}

/** Returns the gradient for each input; null/undefined where none is needed (or it is zero). */
export type GradRule = (args: RuleArgs) => (string | null | undefined)[];

/** The first output's gradient, which single-output rules can rely on (the driver skips nodes without one). */
export function dy0(a: RuleArgs): string {
  const g = a.dy[0];
  if (!g) a.e.fail('no gradient reaches the first output');
  return g;
}

// Reading ONNX node attributes with defaults (the autodiff rules and the shape inference both need them).
import { AttributeType, int, type NodeProto } from '../proto.ts';

function find(node: NodeProto, name: string) {
  return (node.attribute ?? []).find((a) => a.name === name);
}

export function attrInt(node: NodeProto, name: string, fallback: number): number {
  const a = find(node, name);
  return a ? int(a.i) : fallback;
}

export function attrFloat(node: NodeProto, name: string, fallback: number): number {
  const a = find(node, name);
  return a ? (a.f ?? 0) : fallback;
}

export function attrInts(node: NodeProto, name: string): number[] | undefined {
  const a = find(node, name);
  return a ? (a.ints ?? []).map(int) : undefined;
}

export function attrString(node: NodeProto, name: string, fallback: string): string {
  const a = find(node, name);
  return a?.s ? new TextDecoder().decode(a.s) : fallback;
}

export function hasAttr(node: NodeProto, name: string): boolean {
  return find(node, name) !== undefined;
}

export function hasSubgraph(node: NodeProto): boolean {
  return (node.attribute ?? []).some((a) => a.type === AttributeType.GRAPH || a.type === AttributeType.GRAPHS);
}

/** The node's name for error messages (ONNX allows unnamed nodes). */
export function describeNode(node: NodeProto): string {
  return `${node.opType} node "${node.name || node.output?.[0] || '?'}"`;
}

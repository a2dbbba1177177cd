// The caption grammar of the embedded world, both ways: a SceneSpec (what a caption says) ↔ its caption text.
//   single: "a {size} {colour} {shape}[ in the center| at the {top|bottom|left|right}][ on a {bg} background]"
//   pair:   "a {size} {colour} {shape} {above|below|left of|right of} a {size} {colour} {shape}[ on a {bg} background]"
// An omitted position means the center, an omitted background means black. parseCaption refuses anything else with a
// message naming the first word it could not place.
import { BACKGROUNDS, COLOURS, POSITIONS, RELATIONS, SHAPES, SIZES, type Background, type Colour, type Position, type Relation, type Shape, type Size } from './vocabulary.ts';

export interface ObjectSpec { size: Size; colour: Colour; shape: Shape }
export interface SceneSpec {
  objects: [ObjectSpec] | [ObjectSpec, ObjectSpec];
  /** Single object: where it is (undefined: not said, drawn at the center). */
  position?: Position;
  /** Two objects: where the first is relative to the second. */
  relation?: Relation;
  /** undefined: not said, drawn black. */
  background?: Background;
}

export class CaptionError extends Error {
  constructor(message: string, public readonly caption: string) {
    super(`${message} in "${caption}"`);
    this.name = 'CaptionError';
  }
}

const objectText = (o: ObjectSpec) => `a ${o.size} ${o.colour} ${o.shape}`;

export function captionOf(spec: SceneSpec): string {
  const [first, second] = spec.objects;
  let text = objectText(first);
  if (second) text += ` ${spec.relation} ${objectText(second)}`;
  else if (spec.position === 'center') text += ' in the center';
  else if (spec.position) text += ` at the ${spec.position}`;
  if (spec.background) text += ` on a ${spec.background} background`;
  return text;
}

export function parseCaption(caption: string): SceneSpec {
  const words = caption.toLowerCase().trim().split(/\s+/).filter(Boolean);
  let i = 0;
  const fail = (what: string): never => {
    throw new CaptionError(words[i] === undefined ? `expected ${what} at the end` : `expected ${what}, found "${words[i]}" (word ${i + 1})`, caption);
  };
  const word = <T extends string>(list: readonly T[], what: string): T => (list.includes(words[i] as T) ? (words[i++] as T) : fail(what));
  const literal = (w: string) => (words[i] === w ? i++ : fail(`"${w}"`));
  const object = (): ObjectSpec => {
    literal('a');
    return { size: word(SIZES, `a size (${SIZES.join(', ')})`), colour: word(COLOURS, `a colour (${COLOURS.join(', ')})`), shape: word(SHAPES, `a shape (${SHAPES.join(', ')})`) };
  };
  const first = object();
  const spec: SceneSpec = { objects: [first] };
  const relationWord = words[i] === 'left' || words[i] === 'right' ? `${words[i]} ${words[i + 1]}` : words[i];
  if (RELATIONS.includes(relationWord as Relation)) {
    i += relationWord.split(' ').length;
    spec.relation = relationWord as Relation;
    spec.objects = [first, object()];
  } else if (words[i] === 'in') {
    i++; literal('the'); literal('center');
    spec.position = 'center';
  } else if (words[i] === 'at') {
    i++; literal('the');
    spec.position = word(POSITIONS.filter((p) => p !== 'center'), 'top, bottom, left or right');
  }
  if (words[i] === 'on') {
    i++; literal('a');
    spec.background = word(BACKGROUNDS, `a background colour (${BACKGROUNDS.join(', ')})`);
    literal('background');
  }
  if (i < words.length) fail('the end of the caption');
  if (spec.background && spec.objects.some((o) => o.colour === spec.background)) {
    throw new CaptionError(`a ${spec.background} object on a ${spec.background} background cannot be seen`, caption);
  }
  return spec;
}

// The embedded world's closed vocabulary: shapes, colours (with their RGB), sizes, single-object positions, two-object
// relations and backgrounds. Every word here is in the embedded tokenizer's WORDS (src/embedded/tokenizer.ts).
export const SHAPES = ['circle', 'square', 'triangle', 'star', 'diamond'] as const;
export const COLOURS = ['red', 'green', 'blue', 'yellow', 'orange', 'purple', 'white'] as const;
export const BACKGROUNDS = ['black', 'gray', 'white', 'blue', 'green', 'yellow'] as const;
export const SIZES = ['small', 'large'] as const;
export const POSITIONS = ['center', 'top', 'bottom', 'left', 'right'] as const;
export const RELATIONS = ['above', 'below', 'left of', 'right of'] as const;

export type Shape = (typeof SHAPES)[number];
export type Colour = (typeof COLOURS)[number];
export type Background = (typeof BACKGROUNDS)[number];
export type Size = (typeof SIZES)[number];
export type Position = (typeof POSITIONS)[number];
export type Relation = (typeof RELATIONS)[number];
export type ColourName = Colour | Background;
export type Rgb = readonly [number, number, number];

/** Linear RGB in [0, 1]; hues chosen far apart so a colour can be told from its neighbours after blur or noise. */
export const RGB: Record<ColourName, Rgb> = {
  red: [0.9, 0.1, 0.1],
  green: [0.1, 0.7, 0.2],
  blue: [0.15, 0.3, 0.95],
  yellow: [0.95, 0.9, 0.1],
  orange: [1.0, 0.5, 0.0],
  purple: [0.6, 0.15, 0.8],
  white: [0.95, 0.95, 0.95],
  black: [0.05, 0.05, 0.05],
  gray: [0.5, 0.5, 0.5],
};

/** Half-extent in pixels of a 32×32 image (a large shape spans about half the image). */
export const SIZE_PX: Record<Size, number> = { small: 4.5, large: 7.5 };
export const IMAGE_SIZE = 32;

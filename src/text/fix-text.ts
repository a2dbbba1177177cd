// The part of ftfy.fix_text (ftfy 6.x, fixes.py / chardata.py) that changes how a typed prompt tokenizes. diffusers'
// pipelines use transformers' slow CLIPTokenizer, which runs ftfy.fix_text when ftfy is installed (as it is where
// CLIP's own tokenizer runs); the fast tokenizer.json has no such step. Without it a phone's curly apostrophe in
// "don’t" or a full-width "ＡＢＣ" would give other ids than diffusers gives.
// Done here, in ftfy's order: HTML entities (only the XML ones, &nbsp; and numeric references, where ftfy knows all of
// HTML5's; skipped on and after the first line holding "<", as ftfy does), C1 controls read as Windows-1252, Latin
// ligatures, character width, curly quotes, line breaks, terminal escapes, control characters, NFC; repeated until
// nothing changes. Not done: mojibake repair (text decoded in the wrong encoding), other named HTML entities.

const NAMED_ENTITIES: Record<string, string> = { '&amp;': '&', '&lt;': '<', '&gt;': '>', '&quot;': '"', '&apos;': "'", '&nbsp;': '\u00a0' };
// ftfy's HTML_ENTITY_RE: "&#?[0-9A-Za-z]{1,24};"
const ENTITY_RE = /&#?[0-9A-Za-z]{1,24};/g;
const LIGATURES: Record<string, string> = {
  'Ĳ': 'IJ', 'ĳ': 'ij', 'ŉ': 'ʼn', 'Ǳ': 'DZ', 'ǲ': 'Dz', 'ǳ': 'dz', 'Ǆ': 'DŽ', 'ǅ': 'Dž', 'ǆ': 'dž', 'Ǉ': 'LJ', 'ǈ': 'Lj',
  'ǉ': 'lj', 'Ǌ': 'NJ', 'ǋ': 'Nj', 'ǌ': 'nj', 'ﬀ': 'ff', 'ﬁ': 'fi', 'ﬂ': 'fl', 'ﬃ': 'ffi', 'ﬄ': 'ffl', 'ﬅ': 'ſt', 'ﬆ': 'st',
};
const LIGATURE_RE = new RegExp(`[${Object.keys(LIGATURES).join('')}]`, 'g');
// ftfy's WIDTH_MAP: U+3000 → space, and every U+FF01..U+FFEF whose NFKC form differs.
const WIDTH_RE = /[\u3000\uff01-\uffef]/g;
const C1_RE = /[\x80-\x9f]/g;
// Windows-1252's 0x80–0x9F (the five it leaves undefined stay themselves, as ftfy's "sloppy" codec keeps them). A table:
// Node's TextDecoder('windows-1252') decodes as Latin-1.
const WINDOWS_1252 = '€\x81‚ƒ„…†‡ˆ‰Š‹Œ\x8dŽ\x8f\x90‘’“”•–—˜™š›œ\x9džŸ';
const SINGLE_QUOTE_RE = /[\u02bc\u2018-\u201b]/g;
const DOUBLE_QUOTE_RE = /[\u201c-\u201f]/g;
const ANSI_RE = /\x1b\[((?:\d|;)*)([a-zA-Z])/g;
// ftfy's CONTROL_CHARS: U+0000–U+0008, U+000B, U+000E–U+001F, U+007F, U+206A–U+206F, U+FEFF, U+FFF9–U+FFFC.
const CONTROL_RE = /[\x00-\x08\x0b\x0e-\x1f\x7f\u206a-\u206f\ufeff\ufff9-\ufffc]/g;

function unescapeEntity(entity: string): string {
  const named = NAMED_ENTITIES[entity];
  if (named !== undefined) return named;
  const numeric = /^&#(?:[xX]([0-9a-fA-F]+)|([0-9]+));$/.exec(entity);
  if (!numeric) return entity;
  const code = numeric[1] !== undefined ? parseInt(numeric[1], 16) : parseInt(numeric[2], 10);
  const text = charRef(code);
  return text.includes(';') ? entity : text; // ftfy: a reference must consume its semicolon
}

/** A numeric character reference as Python's html.unescape reads it (html/__init__.py `_replace_charref`). */
function charRef(code: number): string {
  if (code === 0) return '\ufffd';
  if (code === 0x0d) return '\r';
  if (code >= 0x80 && code <= 0x9f) return WINDOWS_1252[code - 0x80];
  if ((code >= 0xd800 && code <= 0xdfff) || code > 0x10ffff) return '\ufffd';
  const invalid = (code >= 0x1 && code <= 0x8) || code === 0xb || (code >= 0xe && code <= 0x1f) || code === 0x7f
    || (code >= 0xfdd0 && code <= 0xfdef) || (code & 0xfffe) === 0xfffe;
  return invalid ? '' : String.fromCodePoint(code);
}

function fixSegment(segment: string, unescape: boolean): string {
  for (let pass = 0; pass < 16; pass++) {
    const before = segment;
    let text = unescape ? segment.replace(ENTITY_RE, unescapeEntity) : segment;
    text = text.replace(C1_RE, (c) => WINDOWS_1252[c.charCodeAt(0) - 0x80]);
    text = text.replace(LIGATURE_RE, (c) => LIGATURES[c]);
    text = text.replace(WIDTH_RE, (c) => (c === '\u3000' ? ' ' : c.normalize('NFKC')));
    text = text.replace(SINGLE_QUOTE_RE, "'").replace(DOUBLE_QUOTE_RE, '"');
    text = text.replace(/\r\n|[\r\u2028\u2029\u0085]/g, '\n');
    text = text.replace(ANSI_RE, '').replace(CONTROL_RE, '');
    segment = text.normalize('NFC');
    if (segment === before) break;
  }
  return segment;
}

/** ftfy.fix_text's prompt-relevant fixes (see the header for what is left out). */
export function fixTextLikeFtfy(text: string): string {
  // ftfy works line by line and stops unescaping HTML from the first line holding "<" on (it may be real HTML).
  const lines = text.match(/[^\n]*\n|[^\n]+$/g) ?? [];
  let unescape = true;
  return lines.map((line) => {
    if (line.includes('<')) unescape = false;
    return fixSegment(line, unescape);
  }).join('');
}

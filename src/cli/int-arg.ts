// A command-line flag that must be a positive integer (--shard-mb, --shard-rows, --eta-rank, …): undefined when not
// given, else the number, or an error naming the flag.
export function positiveInt(raw: string | undefined, flag: string): number | undefined {
  if (raw === undefined) return undefined;
  const v = Number(raw);
  if (!Number.isSafeInteger(v) || v <= 0) throw new Error(`--${flag} must be a positive integer, got ${raw}`);
  return v;
}

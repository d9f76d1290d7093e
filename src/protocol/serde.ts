import * as z from 'zod/mini';

/**
 * The reference server is written in Rust; its invalid-params errors are serde
 * messages. These helpers make zod failures read the same, in one place.
 */

/** Makes a schema's type errors read `expected <what>`, as serde words it. */
export const expecting = (what: string) => ({ error: () => what });

export const str = () => z.string(expecting('a string'));
export const bool = () => z.boolean(expecting('a boolean'));
export const struct = <S extends z.core.$ZodLooseShape>(name: string, shape: S) => z.object(shape, expecting(`struct ${name}`));

/** Serde's wording of a JSON value in `invalid type: <value>, expected …`. */
export function describeValue(value: unknown, quoteStrings = true): string {
  if (value === null) return 'null';
  if (!quoteStrings && typeof value === 'string') return 'string';
  if (Array.isArray(value)) return 'sequence';
  switch (typeof value) {
    case 'string':
      return `string ${JSON.stringify(value)}`;
    case 'boolean':
      return `boolean \`${value}\``;
    case 'number':
      // serde_json reads a literal that fits i64 or u64 as an integer, anything else as an f64.
      return Number.isInteger(value) && value >= -(2 ** 63) && value < 2 ** 64
        ? `integer \`${Number.isSafeInteger(value) ? value : BigInt(value)}\`` // written out in full, as serde does
        : `floating point \`${rustFloat(value)}\``;
    case 'object':
      return 'map';
    default:
      return String(value);
  }
}

/**
 * An f64 as Rust's `Display` writes it, with the `.0` serde's `Unexpected::Float` adds to whole
 * numbers: the shortest digits that read back the same, never an exponent (`1e30` →
 * `1000000000000000000000000000000.0`, `1e-7` → `0.0000001`).
 */
export function rustFloat(value: number): string {
  if (!Number.isFinite(value)) return String(value); // JSON has no NaN or infinity
  const [mantissa, exponent] = Math.abs(value).toExponential().split('e') as [string, string];
  const digits = mantissa.replace('.', '');
  const point = Number(exponent) + 1; // digits before the decimal point
  let text: string;
  if (point <= 0) text = `0.${'0'.repeat(-point)}${digits}`;
  else if (point >= digits.length) text = `${digits}${'0'.repeat(point - digits.length)}.0`;
  else text = `${digits.slice(0, point)}.${digits.slice(point)}`;
  return value < 0 ? `-${text}` : text;
}

/** Serde's list of variants: `` `a` ``, `` `a` or `b` ``, `` one of `a`, `b`, `c` ``. */
export function expectedVariants(values: readonly unknown[]): string {
  const names = values.map((v) => `\`${String(v)}\``);
  if (names.length === 1) return names[0]!;
  if (names.length === 2) return `${names[0]} or ${names[1]}`;
  return `one of ${names.join(', ')}`;
}

function isMissing(issue: z.core.$ZodIssue): boolean {
  // An absent enum field is an `invalid_value` to zod, a missing field to serde.
  return (issue.code === 'invalid_type' || issue.code === 'invalid_value') && (!('input' in issue) || issue.input === undefined);
}

function render(issue: z.core.$ZodIssue, quote = true): string {
  const input = (issue as { input?: unknown }).input;
  const describe = (value: unknown) => describeValue(value, quote);
  switch (issue.code) {
    case 'invalid_type':
      if (input === undefined) return `missing field \`${String(issue.path.at(-1) ?? 'params')}\``;
      return `invalid type: ${describe(input)}, expected ${issue.message}`;
    case 'invalid_value':
      if (input === undefined) return `missing field \`${String(issue.path.at(-1) ?? 'params')}\``;
      if (typeof input === 'string' && quote) return `unknown variant \`${input}\`, expected ${expectedVariants(issue.values)}`;
      return `invalid type: ${describe(input)}, expected ${issue.message}`;
    case 'invalid_union': {
      const discriminator = (issue as { discriminator?: string }).discriminator;
      const options = (issue as { options?: unknown[] }).options ?? [];
      if (discriminator === undefined) {
        // An untagged union (string or list): blame the element an option got furthest with.
        const nested = (issue as { errors?: z.core.$ZodIssue[][] }).errors?.flat().find((i) => i.path.length > 0);
        return nested ? render(nested, quote) : `invalid type: ${describe(input)}, expected ${issue.message}`;
      }
      if (typeof input !== 'object' || input === null || Array.isArray(input)) {
        return `invalid type: ${describe(input)}, expected ${issue.message}`;
      }
      const tag = (input as Record<string, unknown>)[discriminator];
      if (tag === undefined) return `missing field \`${discriminator}\``;
      if (typeof tag === 'string' && quote) return `unknown variant \`${tag}\`, expected ${expectedVariants(options)}`;
      return `invalid type: ${describe(tag)}, expected variant identifier`;
    }
    default:
      return issue.message;
  }
}

/**
 * One message for a failed parse, as serde would give it: it stops at the first
 * wrong value it meets, and reports missing fields only once the rest was fine.
 */
export function serdeMessage(error: z.core.$ZodError, { quoteStrings = true } = {}): string {
  const issue = serdeIssue(error);
  return issue ? render(issue, quoteStrings) : 'invalid params';
}

/** The issue `serdeMessage` words (a caller may want its `path`); `missing` if it is a missing field. */
export function serdeIssue(error: z.core.$ZodError): (z.core.$ZodIssue & { missing: boolean }) | undefined {
  const issue = error.issues.find((i) => !isMissing(i)) ?? error.issues[0];
  return issue && { ...issue, missing: isMissing(issue) };
}

// Command-line parsing with node:util parseArgs (strict): the global flags, which may
// stand before or after the verb, and each verb's own mdevctl-style flags. Every
// mistake becomes a UsageError with one short line.
import { parseArgs } from 'node:util';
import { UsageError } from './usage.js';

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
}
export type Options = Record<string, OptionSpec>;

export type Values = Record<string, string | boolean | undefined>;

export interface Parsed {
  values: Values;
  positionals: string[];
}

/** Flags every verb takes too (after the verb). */
export const globalOptions: Options = {
  root: { type: 'string' },
  socket: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
};

export interface GlobalArgs {
  root?: string;
  socket?: string;
  help: boolean;
  version: boolean;
  verb?: string;
  /** What follows the verb. */
  rest: string[];
}

/** The flags before the verb, the verb, and the rest (the verb's own to parse). */
export function splitGlobal(argv: string[]): GlobalArgs {
  const result: GlobalArgs = { help: false, version: false, rest: [] };
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i] as string;
    if (!token.startsWith('-')) {
      result.verb = token;
      result.rest = argv.slice(i + 1);
      return result;
    }
    const [name, inline] = token.startsWith('--') && token.includes('=') ? [token.slice(0, token.indexOf('=')), token.slice(token.indexOf('=') + 1)] : [token, undefined];
    if (name === '-h' || name === '--help') result.help = true;
    else if (name === '--version') result.version = true;
    else if (name === '--root' || name === '--socket') {
      const value = inline ?? argv[++i];
      if (value === undefined || value === '') throw new UsageError(`option ${name} needs a value`);
      if (name === '--root') result.root = value; else result.socket = value;
    } else {
      throw new UsageError(`unknown option '${token}' (global options: --root DIR, --socket PATH, --help, --version)`);
    }
  }
  return result;
}

/** Parses a verb's arguments: its options plus the global ones, and at most `maxPositionals`. */
export function parseVerbArgs(verb: string, args: string[], options: Options, maxPositionals = 0): Parsed {
  let parsed;
  try {
    parsed = parseArgs({ args, options: { ...globalOptions, ...options }, strict: true, allowPositionals: true, tokens: true });
  } catch (err) {
    throw new UsageError(parseArgsMessage(err), verb);
  }
  // parseArgs keeps the last of a repeated value (`stop -u a -u b` would stop b); mdevctl refuses it.
  const seen = new Set<string>();
  for (const token of parsed.tokens) {
    if (token.kind !== 'option' || token.value === undefined) continue;
    if (seen.has(token.name)) throw new UsageError(`option --${token.name} given more than once`, verb);
    seen.add(token.name);
  }
  if (parsed.positionals.length > maxPositionals) {
    const extra = parsed.positionals[maxPositionals] as string;
    throw new UsageError(`unexpected argument '${extra}'`, verb);
  }
  return { values: parsed.values as Values, positionals: parsed.positionals };
}

/** parseArgs' first sentence, in our style ("unknown option '--foo'"). */
function parseArgsMessage(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const first = (message.split('\n')[0] ?? message).replace(/\. .*$/, '').replace(/\.$/, '');
  const missing = /^Option '(?:-\w, )?(--[\w-]+) <value>' argument (missing|is ambiguous)/.exec(first);
  if (missing) return `option ${missing[1]} needs a value`;
  const ambiguous = /^Option '(--[\w-]+)' argument is ambiguous/.exec(first);
  if (ambiguous) return `option ${ambiguous[1]} needs a value (one starting with '-' is written ${ambiguous[1]}=VALUE)`;
  return first.charAt(0).toLowerCase() + first.slice(1);
}

export function stringValue(values: Values, name: string): string | undefined {
  const value = values[name];
  return typeof value === 'string' ? value : undefined;
}

export function flag(values: Values, name: string): boolean {
  return values[name] === true;
}

/** Options that must not be given together (mdevctl's conflicts). */
export function conflicts(verb: string, values: Values, a: string, others: string[]): void {
  if (values[a] === undefined) return;
  for (const b of others) {
    if (values[b] !== undefined) throw new UsageError(`--${a} cannot be used with --${b}`, verb);
  }
}

export function requireOption(verb: string, values: Values, name: string, why = ''): string {
  const value = stringValue(values, name);
  if (value === undefined) throw new UsageError(`${verb} needs --${name}${why}`, verb);
  return value;
}

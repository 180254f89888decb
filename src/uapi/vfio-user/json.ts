// A strict JSON (RFC 8259) reader for VERSION capabilities. JSON.parse cannot be used:
// pgsizes is a 64-bit bitmap and a double loses its low bits above 2^53, so numbers are
// kept as their source text here and converted exactly by the caller. Objects are Maps
// (no prototype keys), repeated keys and nesting deeper than a limit are refused.
import { invalid } from './invalid.js';

export class JsonNumber {
  constructor(readonly text: string) {}
}

export type JsonValue = null | boolean | string | JsonNumber | JsonValue[] | JsonObject;
export type JsonObject = Map<string, JsonValue>;

const numberPattern = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const simpleEscapes: Readonly<Record<string, string>> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

class Reader {
  private pos = 0;

  constructor(private readonly text: string, private readonly maxDepth: number, private readonly what: string) {}

  document(): JsonValue {
    const value = this.value(0);
    this.skipSpace();
    if (this.pos !== this.text.length) this.fail('has text after the value');
    return value;
  }

  private fail(reason: string): never {
    throw invalid(`${this.what} ${reason} at offset ${this.pos}`);
  }

  private skipSpace(): void {
    for (; this.pos < this.text.length; this.pos++) {
      const c = this.text.charCodeAt(this.pos);
      if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return;
    }
  }

  private expect(char: string, reason: string): void {
    this.skipSpace();
    if (this.text[this.pos] !== char) this.fail(reason);
    this.pos++;
  }

  private value(depth: number): JsonValue {
    this.skipSpace();
    const c = this.text[this.pos];
    if (c === '{') return this.object(depth + 1);
    if (c === '[') return this.array(depth + 1);
    if (c === '"') return this.string();
    if (c === 't') return this.literal('true', true);
    if (c === 'f') return this.literal('false', false);
    if (c === 'n') return this.literal('null', null);
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return this.number();
    return this.fail(c === undefined ? 'ends where a value should be' : 'has no value where one should be');
  }

  private literal<T extends boolean | null>(word: string, value: T): T {
    if (!this.text.startsWith(word, this.pos)) this.fail('has an unknown word');
    this.pos += word.length;
    return value;
  }

  private number(): JsonNumber {
    numberPattern.lastIndex = this.pos;
    const match = numberPattern.exec(this.text);
    if (match === null) return this.fail('has a malformed number');
    this.pos += match[0].length;
    return new JsonNumber(match[0]);
  }

  private string(): string {
    this.pos++; // the opening quote
    let out = '';
    let runStart = this.pos;
    for (;;) {
      const c = this.text.charCodeAt(this.pos);
      if (Number.isNaN(c)) this.fail('ends inside a string');
      if (c === 0x22) {
        out += this.text.slice(runStart, this.pos);
        this.pos++;
        return out;
      }
      if (c < 0x20) this.fail('has a control character inside a string');
      if (c !== 0x5c) { this.pos++; continue; }
      out += this.text.slice(runStart, this.pos);
      const escape = this.text[this.pos + 1];
      if (escape === 'u') {
        const hex = this.text.slice(this.pos + 2, this.pos + 6);
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.fail('has a malformed \\u escape');
        out += String.fromCharCode(parseInt(hex, 16));
        this.pos += 6;
      } else {
        const plain = escape === undefined ? undefined : simpleEscapes[escape];
        if (plain === undefined) this.fail('has an unknown escape');
        out += plain;
        this.pos += 2;
      }
      runStart = this.pos;
    }
  }

  private object(depth: number): JsonObject {
    if (depth > this.maxDepth) this.fail(`nests deeper than ${this.maxDepth}`);
    this.pos++;
    const out: JsonObject = new Map();
    this.skipSpace();
    if (this.text[this.pos] === '}') { this.pos++; return out; }
    for (;;) {
      this.skipSpace();
      if (this.text[this.pos] !== '"') this.fail('has no key where one should be');
      const key = this.string();
      if (out.has(key)) this.fail('repeats a key');
      this.expect(':', 'has no ":" after a key');
      out.set(key, this.value(depth));
      this.skipSpace();
      const next = this.text[this.pos];
      if (next !== ',' && next !== '}') this.fail('has no "," or "}" after a member');
      this.pos++;
      if (next === '}') return out;
    }
  }

  private array(depth: number): JsonValue[] {
    if (depth > this.maxDepth) this.fail(`nests deeper than ${this.maxDepth}`);
    this.pos++;
    const out: JsonValue[] = [];
    this.skipSpace();
    if (this.text[this.pos] === ']') { this.pos++; return out; }
    for (;;) {
      out.push(this.value(depth));
      this.skipSpace();
      const next = this.text[this.pos];
      if (next !== ',' && next !== ']') this.fail('has no "," or "]" after an element');
      this.pos++;
      if (next === ']') return out;
    }
  }
}

/**
 * Parses one JSON document. A syntax error throws EINVAL saying "<what> <reason> at
 * offset N": the offset, never the text, so a hostile peer's bytes stay out of logs.
 */
export function parseJson(text: string, maxDepth = 16, what = 'JSON'): JsonValue {
  return new Reader(text, maxDepth, what).document();
}

export function isJsonObject(value: JsonValue): value is JsonObject {
  return value instanceof Map;
}

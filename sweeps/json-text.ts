// Reading spec text safely: a size cap checked before any parsing, a syntax check that reports line,
// column and JSON path, refusal of duplicate keys and of keys that could reach an object's prototype
// (__proto__, constructor, prototype), and a nesting cap. Pure: no node built-ins.
import { SpecError, specPath } from './errors.js';
import { utf8Length } from './hash.js';
import { MAX_DEPTH, MAX_SPEC_BYTES } from './schema.js';

/** Keys refused anywhere in a spec: merged or spread carelessly, they rewrite prototypes. */
export const FORBIDDEN_KEYS: ReadonlySet<string> = new Set([
  '__proto__',
  'constructor',
  'prototype',
]);

export interface JsonTextLimits {
  maxBytes: number;
  maxDepth: number;
}

const DEFAULT_LIMITS: JsonTextLimits = { maxBytes: MAX_SPEC_BYTES, maxDepth: MAX_DEPTH };

/** 1-based line and column (in UTF-16 units) of offset `pos` of `text`. */
export function lineColumn(text: string, pos: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < pos && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: pos - lineStart + 1 };
}

function show(ch: string | undefined): string {
  if (ch === undefined) return 'the end of the text';
  const code = ch.charCodeAt(0);
  if (code < 0x20 || code === 0x7f)
    return `control character U+${code.toString(16).padStart(4, '0').toUpperCase()}`;
  return `'${ch}'`;
}

/**
 * A recursive-descent recognizer of RFC 8259 JSON that builds nothing: it only finds the first
 * problem, with its position and the JSON path around it. Depth is capped, so recursion is bounded.
 */
class Scanner {
  private pos = 0;
  private readonly path: (string | number)[] = [];

  constructor(
    private readonly text: string,
    private readonly maxDepth: number,
  ) {}

  private fail(problem: string, at = this.pos, what = 'malformed JSON'): never {
    const { line, column } = lineColumn(this.text, at);
    throw new SpecError(
      specPath(this.path),
      `${what} at line ${line}, column ${column}: ${problem}`,
    );
  }

  private ws(): void {
    for (;;) {
      const c = this.text.charCodeAt(this.pos);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) this.pos++;
      else return;
    }
  }

  scan(): void {
    this.ws();
    this.value(0);
    this.ws();
    if (this.pos < this.text.length)
      this.fail(`unexpected ${show(this.text[this.pos])} after the end of the JSON value`);
  }

  private value(depth: number): void {
    const ch = this.text[this.pos];
    switch (ch) {
      case '{':
        return this.object(depth + 1);
      case '[':
        return this.array(depth + 1);
      case '"':
        this.string();
        return;
      case 't':
        return this.literal('true');
      case 'f':
        return this.literal('false');
      case 'n':
        return this.literal('null');
      default:
        if (ch === '-' || (ch !== undefined && ch >= '0' && ch <= '9')) return this.number();
        if (ch === undefined) this.fail('unexpected end of the text where a value was expected');
        if (ch === "'") this.fail('strings must use double quotes, not single quotes');
        this.fail(`unexpected ${show(ch)} where a value was expected`);
    }
  }

  private literal(word: string): void {
    if (this.text.startsWith(word, this.pos)) this.pos += word.length;
    else this.fail(`unexpected ${show(this.text[this.pos])} where a value was expected`);
  }

  private number(): void {
    const start = this.pos;
    const m = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
    m.lastIndex = this.pos;
    const r = m.exec(this.text);
    if (!r || r[0] === '-' || r[0].length === 0) this.fail('invalid number', start);
    this.pos += r[0].length;
    const next = this.text[this.pos];
    if (next !== undefined && /[0-9.eE+\-a-zA-Z]/.test(next)) this.fail(`invalid number`, start);
    if (!Number.isFinite(Number(r[0]))) this.fail(`the number ${r[0]} is too large`, start);
  }

  /** Scans a string token and returns its decoded value. */
  private string(): string {
    const start = this.pos;
    this.pos++; // opening quote
    for (;;) {
      const c = this.text.charCodeAt(this.pos);
      if (Number.isNaN(c)) this.fail('unterminated string', start);
      if (c === 0x22) break;
      if (c < 0x20) this.fail(`${show(this.text[this.pos])} inside a string (escape it)`);
      if (c === 0x5c) {
        const e = this.text[this.pos + 1];
        if (e === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(this.text.slice(this.pos + 2, this.pos + 6)))
            this.fail('invalid \\u escape in a string');
          this.pos += 6;
          continue;
        }
        if (e === undefined || !'"\\/bfnrt'.includes(e))
          this.fail(`invalid escape \\${e ?? ''} in a string`);
        this.pos += 2;
        continue;
      }
      this.pos++;
    }
    this.pos++; // closing quote
    return JSON.parse(this.text.slice(start, this.pos)) as string;
  }

  private enter(depth: number): void {
    if (depth > this.maxDepth) this.fail(`nested deeper than ${this.maxDepth} levels`);
  }

  private object(depth: number): void {
    this.enter(depth);
    this.pos++; // {
    this.ws();
    if (this.text[this.pos] === '}') {
      this.pos++;
      return;
    }
    const seen = new Set<string>();
    for (;;) {
      this.ws();
      const keyAt = this.pos;
      if (this.text[this.pos] !== '"') {
        if (this.text[this.pos] === '}') this.fail("trailing comma before '}'");
        this.fail(`expected a property name in double quotes, found ${show(this.text[this.pos])}`);
      }
      const key = this.string();
      if (FORBIDDEN_KEYS.has(key)) {
        this.path.push(key);
        this.fail(`the key "${key}" is not allowed anywhere in a spec`, keyAt, 'refused key');
      }
      if (seen.has(key)) {
        this.path.push(key);
        this.fail(`"${key}" appears twice in one object`, keyAt, 'duplicate key');
      }
      seen.add(key);
      this.ws();
      if (this.text[this.pos] !== ':')
        this.fail(
          `expected ':' after the property name "${key}", found ${show(this.text[this.pos])}`,
        );
      this.pos++;
      this.ws();
      this.path.push(key);
      this.value(depth);
      this.path.pop();
      this.ws();
      const c = this.text[this.pos];
      if (c === ',') {
        this.pos++;
        continue;
      }
      if (c === '}') {
        this.pos++;
        return;
      }
      this.fail(`expected ',' or '}' after the value of "${key}", found ${show(c)}`);
    }
  }

  private array(depth: number): void {
    this.enter(depth);
    this.pos++; // [
    this.ws();
    if (this.text[this.pos] === ']') {
      this.pos++;
      return;
    }
    for (let i = 0; ; i++) {
      this.ws();
      if (this.text[this.pos] === ']') this.fail("trailing comma before ']'");
      this.path.push(i);
      this.value(depth);
      this.path.pop();
      this.ws();
      const c = this.text[this.pos];
      if (c === ',') {
        this.pos++;
        continue;
      }
      if (c === ']') {
        this.pos++;
        return;
      }
      this.fail(`expected ',' or ']' after item ${i}, found ${show(c)}`);
    }
  }
}

/**
 * Parses JSON spec text into plain data, or throws SpecError. The size cap is checked first, so a
 * huge text is refused without being scanned; a leading byte-order mark is ignored.
 */
export function parseJsonText(text: string, limits: Partial<JsonTextLimits> = {}): unknown {
  const { maxBytes, maxDepth } = { ...DEFAULT_LIMITS, ...limits };
  if (typeof text !== 'string')
    throw new SpecError('spec', `expected JSON text, got ${typeof text}`);
  // UTF-16 units never outnumber UTF-8 bytes, so the cheap test settles the common huge case.
  if (text.length > maxBytes)
    throw new SpecError('spec', `the spec is larger than ${maxBytes} bytes; nothing was parsed`);
  const bytes = utf8Length(text);
  if (bytes > maxBytes)
    throw new SpecError(
      'spec',
      `the spec is ${bytes} bytes, larger than ${maxBytes}; nothing was parsed`,
    );
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  if (body.trim() === '') throw new SpecError('spec', 'the spec is empty');
  new Scanner(body, maxDepth).scan();
  // The scanner has refused forbidden keys with their position already; the reviver is a second
  // guard that keeps them out even if the two ever disagree.
  return JSON.parse(body, (key: string, value: unknown) => {
    if (FORBIDDEN_KEYS.has(key))
      throw new SpecError('spec', `the key "${key}" is not allowed anywhere in a spec`);
    return value;
  });
}

// A reader for the subset of YAML that deploy/ is written in: block mappings and sequences, plain,
// single- and double-quoted scalars, flow sequences of scalars, comments and `---` documents. The
// project has no YAML package; anything outside the subset (anchors, aliases, tags, block scalars,
// flow mappings) is an error here, which keeps the deployment files readable by this checker.

export type Yaml = string | number | boolean | null | Yaml[] | { [k: string]: Yaml };

interface Line {
  indent: number;
  text: string;
  no: number;
}

export class YamlSubsetError extends Error {}

/** The text of a line without its comment (a # outside quotes, at the start or after a space). */
function stripComment(s: string): string {
  let q: '"' | "'" | undefined;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (q === "'") {
      if (c === "'") q = s[i + 1] === "'" ? (i++, q) : undefined;
    } else if (q === '"') {
      if (c === '\\') i++;
      else if (c === '"') q = undefined;
    } else if (c === "'" || c === '"') q = c;
    else if (c === '#' && (i === 0 || /\s/.test(s[i - 1]!))) return s.slice(0, i);
  }
  return s;
}

/** Index of the ":" that ends a mapping key (followed by a space or the end), outside quotes. */
function keyColon(s: string): number {
  let q: '"' | "'" | undefined;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (q === "'") {
      if (c === "'") q = s[i + 1] === "'" ? (i++, q) : undefined;
    } else if (q === '"') {
      if (c === '\\') i++;
      else if (c === '"') q = undefined;
    } else if ((c === "'" || c === '"') && i === 0) q = c;
    else if (c === ':' && (i === s.length - 1 || s[i + 1] === ' ')) return i;
  }
  return -1;
}

function splitFlow(inner: string, no: number): string[] {
  const out: string[] = [];
  let q: '"' | "'" | undefined;
  let cur = '';
  for (let i = 0; i < inner.length; i++) {
    const c = inner[i]!;
    if (q) {
      cur += c;
      if (q === '"' && c === '\\') cur += inner[++i] ?? '';
      else if (c === q) q = undefined;
    } else if (c === '"' || c === "'") {
      q = c;
      cur += c;
    } else if (c === ',') {
      out.push(cur.trim());
      cur = '';
    } else if (c === '[' || c === '{') {
      throw new YamlSubsetError(`line ${no}: nested flow collections are outside the subset`);
    } else cur += c;
  }
  if (q) throw new YamlSubsetError(`line ${no}: unterminated quote`);
  if (cur.trim() !== '') out.push(cur.trim());
  return out;
}

export function scalar(raw: string, no: number): Yaml {
  const s = raw.trim();
  if (s.startsWith("'")) {
    if (!s.endsWith("'") || s.length < 2) throw new YamlSubsetError(`line ${no}: unterminated '`);
    return s.slice(1, -1).replace(/''/g, "'");
  }
  if (s.startsWith('"')) {
    if (!s.endsWith('"') || s.length < 2) throw new YamlSubsetError(`line ${no}: unterminated "`);
    return s
      .slice(1, -1)
      .replace(/\\(.)/g, (_, c: string) => ({ n: '\n', t: '\t', '"': '"', '\\': '\\' })[c] ?? c);
  }
  if (s.startsWith('[')) {
    if (!s.endsWith(']')) throw new YamlSubsetError(`line ${no}: unterminated flow sequence`);
    return splitFlow(s.slice(1, -1), no).map((x) => scalar(x, no));
  }
  if (/^[&*!|>{]/.test(s) || s === '>-' || s === '|-')
    throw new YamlSubsetError(`line ${no}: "${s}" is outside the YAML subset of deploy/`);
  if (s === '' || s === '~' || s === 'null') return null;
  if (s === 'true') return true;
  if (s === 'false') return false;
  if (/^-?(0|[1-9][0-9]*)(\.[0-9]+)?$/.test(s)) return Number(s);
  return s;
}

const isItem = (t: string) => t === '-' || t.startsWith('- ');

function parseBlock(lines: Line[], i: number, indent: number): [Yaml, number] {
  const l = lines[i]!;
  if (isItem(l.text)) return parseSeq(lines, i, indent);
  // A value on the line after its key (prettier wraps long flow sequences so).
  if (l.text.startsWith('[') || keyColon(l.text) <= 0) return [scalar(l.text, l.no), i + 1];
  return parseMap(lines, i, indent);
}

function parseSeq(lines: Line[], i: number, indent: number): [Yaml[], number] {
  const out: Yaml[] = [];
  while (i < lines.length && lines[i]!.indent === indent && isItem(lines[i]!.text)) {
    const l = lines[i]!;
    const rest = l.text.slice(1);
    const body = rest.trimStart();
    if (body === '') {
      const next = lines[i + 1];
      if (!next || next.indent <= indent) {
        out.push(null);
        i++;
      } else {
        const [v, j] = parseBlock(lines, i + 1, next.indent);
        out.push(v);
        i = j;
      }
    } else if (isItem(body) || (keyColon(body) > 0 && !/^['"[]/.test(body))) {
      // "- key: value" or "- - x": a collection whose first entry sits on the item's line.
      const inner = indent + 1 + (rest.length - body.length);
      lines[i] = { indent: inner, text: body, no: l.no };
      const [v, j] = parseBlock(lines, i, inner);
      out.push(v);
      i = j;
    } else {
      out.push(scalar(body, l.no));
      i++;
    }
  }
  return [out, i];
}

function parseMap(lines: Line[], i: number, indent: number): [{ [k: string]: Yaml }, number] {
  const out: { [k: string]: Yaml } = {};
  while (i < lines.length && lines[i]!.indent === indent && !isItem(lines[i]!.text)) {
    const l = lines[i]!;
    const c = keyColon(l.text);
    if (c <= 0) throw new YamlSubsetError(`line ${l.no}: expected "key: value", got "${l.text}"`);
    const key = String(scalar(l.text.slice(0, c), l.no));
    if (key in out) throw new YamlSubsetError(`line ${l.no}: duplicate key "${key}"`);
    const rest = l.text.slice(c + 1).trim();
    i++;
    if (rest !== '') out[key] = scalar(rest, l.no);
    else {
      const next = lines[i];
      if (next && (next.indent > indent || (next.indent === indent && isItem(next.text)))) {
        const [v, j] = parseBlock(lines, i, next.indent);
        out[key] = v;
        i = j;
      } else out[key] = null;
    }
  }
  return [out, i];
}

/** The documents of `text`. */
export function parseYamlDocuments(text: string): Yaml[] {
  const docs: Line[][] = [[]];
  text.split('\n').forEach((raw, k) => {
    if (raw.includes('\t'))
      throw new YamlSubsetError(`line ${k + 1}: tabs are not YAML indentation`);
    if (/^---\s*$/.test(raw)) {
      docs.push([]);
      return;
    }
    const t = stripComment(raw).trimEnd();
    if (t.trim() === '') return;
    docs[docs.length - 1]!.push({
      indent: t.length - t.trimStart().length,
      text: t.trim(),
      no: k + 1,
    });
  });
  return docs
    .filter((d) => d.length > 0)
    .map((lines) => {
      const [v, j] = parseBlock(lines, 0, lines[0]!.indent);
      if (j < lines.length)
        throw new YamlSubsetError(`line ${lines[j]!.no}: unexpected indentation`);
      return v;
    });
}

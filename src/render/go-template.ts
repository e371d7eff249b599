/**
 * Go `text/template`, the subset matchbox data directories use, interpreted over JSON data.
 *
 * matchbox renders its templates with `template.New("").Option("missingkey=error")` and no
 * extra functions (matchbox/http/render.go), so what a matchbox file can say is: text,
 * `{{pipeline}}`, `{{if}}/{{else if}}/{{else}}/{{end}}`, `{{range}}` (with `$i, $e :=` and
 * `{{else}}`), `{{with}}`, `{{break}}`/`{{continue}}`, variables (`$`, `$x := …`, `$x = …`),
 * field chains (`.a.b`, `$x.a`, `(…).a`), literals, `|` pipelines, parentheses, trim markers
 * (`{{- ` and ` -}}`), comments, and the builtin functions (and, or, not, len, index, slice,
 * print, printf, println, eq, ne, lt, le, gt, ge, html, js, urlquery). `define`, `template`
 * and `block` are refused: a matchbox template is one file. Data is what `json.Unmarshal`
 * gives Go: strings, numbers (float64, so `{{.n}}` of 1000000 prints `1e+06`, as in Go),
 * booleans, null, arrays and objects; integer literals and `len` results are Go ints
 * (bigint here), and comparing an int with a float64 is an error, as in Go.
 *
 * One deliberate difference: Go's `index` of a missing map key yields the zero value, which
 * prints `<no value>`. Here it yields a missing value that tests false in `if`/`and`/`or`/
 * `not`/`with` (so `{{if index . "k"}}` works as in Go) but is an error when printed or used,
 * so no machine is ever handed a config with a silently empty or `<no value>` hole.
 *
 * Nothing here runs code or reads files: the interpreter walks a parsed tree over plain data.
 */

/** A value inside the interpreter: JSON data, Go ints (bigint), `undefined` for Go's invalid "no value". */
export type GoValue = string | number | bigint | boolean | null | undefined | GoValue[] | { [key: string]: GoValue } | MissingValue;

/** What `index` of a missing map key gives: false in conditions, an error anywhere else. */
class MissingValue {
  constructor(readonly key: string) {}
}

/** A function a caller adds beside the builtins (the appliance adds `base_url`). */
export type GoTemplateFunction = (...args: GoValue[]) => GoValue;

export interface GoTemplateOptions {
  functions?: Readonly<Record<string, GoTemplateFunction>>;
}

/** A template that does not parse or does not execute, with where and why. */
export class GoTemplateError extends Error {
  constructor(
    /** The template's name (its path in the data directory). */
    readonly template: string,
    readonly line: number,
    /** What went wrong, without the position. */
    readonly reason: string,
    /** The action being executed (`.etcd_name`), when executing. */
    readonly action?: string,
    /** The map key that had no entry, when that is the problem. */
    readonly key?: string,
  ) {
    super(`template ${template}:${line}: ${action !== undefined ? `executing {{${action}}}: ` : ''}${reason}`);
    this.name = 'GoTemplateError';
  }
}

// ---------------------------------------------------------------------------------------
// Lexing

type TokenKind = 'field' | 'variable' | 'dot' | 'ident' | 'string' | 'number' | 'char' | 'pipe' | 'lparen' | 'rparen' | 'declare' | 'assign' | 'comma';

interface Token {
  kind: TokenKind;
  text: string;
  /** No space between this token and the previous one (`.a.b` is one chain, `.a .b` two operands). */
  adjacent: boolean;
}

type Item = { kind: 'text'; text: string; line: number } | { kind: 'action'; tokens: Token[]; source: string; line: number };

const SPACE = /[ \t\r\n]/;
const NUMBER = /^[+-]?(?:0[xX][0-9a-fA-F_]+|0[oObB][0-7_]+|(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)(?:[eE][+-]?\d+)?)/;
/** Tried in order after numbers: `.field`, `$var`, an identifier. */
const WORDS: [TokenKind, RegExp][] = [
  ['field', /^\.[A-Za-z_][A-Za-z0-9_]*/],
  ['variable', /^\$[A-Za-z0-9_]*/],
  ['ident', /^[A-Za-z_][A-Za-z0-9_]*/],
];

function lineAt(text: string, pos: number): number {
  let line = 1;
  for (let i = 0; i < pos; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

function lex(name: string, src: string): Item[] {
  const items: Item[] = [];
  let pos = 0;
  let trimNextText = false;
  const pushText = (text: string, start: number) => {
    let t = text;
    if (trimNextText) t = t.replace(/^[ \t\r\n]+/, '');
    trimNextText = false;
    items.push({ kind: 'text', text: t, line: lineAt(src, start) });
  };
  while (pos < src.length) {
    const open = src.indexOf('{{', pos);
    if (open < 0) {
      pushText(src.slice(pos), pos);
      break;
    }
    let p = open + 2;
    const trimLeft = src[p] === '-' && SPACE.test(src[p + 1] ?? '');
    if (trimLeft) p += 2;
    let text = src.slice(pos, open);
    if (trimLeft) text = text.replace(/[ \t\r\n]+$/, '');
    pushText(text, pos);
    const line = lineAt(src, open);
    const fail = (reason: string): never => {
      throw new GoTemplateError(name, line, reason);
    };
    // A comment: `{{/*` … `*/}}`, the markers right against the delimiters (or the trim markers).
    let q = p;
    while (SPACE.test(src[q] ?? '') && trimLeft) q++;
    if (src.startsWith('/*', q)) {
      const close = src.indexOf('*/', q + 2);
      if (close < 0) fail('unclosed comment');
      let r = close + 2;
      let trimRight = false;
      if (SPACE.test(src[r] ?? '') && src[r + 1] === '-' && src.startsWith('}}', r + 2)) {
        trimRight = true;
        r += 2;
      }
      if (!src.startsWith('}}', r)) fail('comment ends before closing delimiter');
      pos = r + 2;
      trimNextText = trimRight;
      continue;
    }
    const tokens: Token[] = [];
    let adjacent = false;
    for (;;) {
      if (p >= src.length) fail('unclosed action');
      const ch = src[p]!;
      if (SPACE.test(ch)) {
        // ` -}}` closes with a trim; a space ends adjacency.
        if (src[p + 1] === '-' && src.startsWith('}}', p + 2)) {
          pos = p + 4;
          trimNextText = true;
          break;
        }
        p++;
        adjacent = false;
        continue;
      }
      if (src.startsWith('}}', p)) {
        pos = p + 2;
        break;
      }
      const push = (kind: TokenKind, text: string) => {
        tokens.push({ kind, text, adjacent });
        p += text.length;
        adjacent = true;
      };
      const rest = src.slice(p);
      let m: RegExpExecArray | null;
      if (ch === '|') push('pipe', '|');
      else if (ch === '(') push('lparen', '(');
      else if (ch === ')') push('rparen', ')');
      else if (ch === ',') push('comma', ',');
      else if (rest.startsWith(':=')) push('declare', ':=');
      else if (ch === '=') push('assign', '=');
      else if (ch === '"') {
        m = /^"(?:[^"\\\n]|\\.)*"/.exec(rest);
        if (!m) fail('unterminated quoted string');
        push('string', m![0]);
      } else if (ch === '`') {
        const end = src.indexOf('`', p + 1);
        if (end < 0) fail('unterminated raw quoted string');
        push('string', src.slice(p, end + 1));
      } else if (ch === "'") {
        m = /^'(?:[^'\\\n]|\\[^\n]+?)'/.exec(rest);
        if (!m) fail('unterminated character constant');
        push('char', m![0]);
      } else {
        const number = ch === '.' && !/^\.\d/.test(rest) ? null : NUMBER.exec(rest);
        const word = number ? undefined : WORDS.map(([kind, re]) => [kind, re.exec(rest)] as const).find(([, found]) => found);
        if (number) push('number', number[0]);
        else if (word) push(word[0], word[1]![0]);
        else if (ch === '.') push('dot', '.');
        else fail(`unexpected ${JSON.stringify(ch)} in action`);
      }
    }
    const source = tokens.map((t, i) => (i > 0 && !t.adjacent ? ` ${t.text}` : t.text)).join('');
    items.push({ kind: 'action', tokens, source, line });
  }
  return items;
}

// ---------------------------------------------------------------------------------------
// Parsing

type Operand =
  | { kind: 'dot' }
  | { kind: 'nil' }
  | { kind: 'literal'; value: GoValue }
  | { kind: 'field'; chain: string[] }
  | { kind: 'variable'; name: string; chain: string[] }
  | { kind: 'function'; name: string }
  | { kind: 'group'; pipeline: Pipeline; chain: string[] };

interface Command {
  operands: Operand[];
}

interface Pipeline {
  declare: string[];
  assign: boolean;
  commands: Command[];
}

type Node =
  | { kind: 'text'; text: string }
  | { kind: 'output'; pipeline: Pipeline; line: number; source: string }
  | { kind: 'if' | 'with'; pipeline: Pipeline; whenTrue: Node[]; otherwise: Node[]; line: number; source: string }
  | { kind: 'range'; pipeline: Pipeline; body: Node[]; otherwise: Node[]; line: number; source: string }
  | { kind: 'break' | 'continue'; line: number; source: string };

const BUILTINS = new Set(['and', 'or', 'not', 'len', 'index', 'slice', 'print', 'printf', 'println', 'eq', 'ne', 'lt', 'le', 'gt', 'ge', 'html', 'js', 'urlquery', 'call']);

function unquoteGo(text: string): string {
  if (text.startsWith('`')) return text.slice(1, -1).replaceAll('\r', '');
  const body = text.slice(1, -1);
  const bytes: number[] = [];
  const pushString = (s: string) => bytes.push(...Buffer.from(s, 'utf8'));
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c !== '\\') {
      const cp = body.codePointAt(i)!;
      pushString(String.fromCodePoint(cp));
      if (cp > 0xffff) i++;
      continue;
    }
    const e = body[++i];
    const simple: Record<string, string> = { a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '\\': '\\', '"': '"', "'": "'" };
    if (e !== undefined && e in simple) pushString(simple[e]!);
    else if (e === 'x' && /^[0-9a-fA-F]{2}$/.test(body.slice(i + 1, i + 3))) {
      bytes.push(Number.parseInt(body.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (e !== undefined && /[0-7]/.test(e) && /^[0-7]{3}$/.test(body.slice(i, i + 3))) {
      bytes.push(Number.parseInt(body.slice(i, i + 3), 8) & 0xff);
      i += 2;
    } else if (e === 'u' && /^[0-9a-fA-F]{4}$/.test(body.slice(i + 1, i + 5))) {
      pushString(String.fromCodePoint(Number.parseInt(body.slice(i + 1, i + 5), 16)));
      i += 4;
    } else if (e === 'U' && /^[0-9a-fA-F]{8}$/.test(body.slice(i + 1, i + 9))) {
      pushString(String.fromCodePoint(Number.parseInt(body.slice(i + 1, i + 9), 16)));
      i += 8;
    } else throw new Error(`invalid escape \\${e ?? ''} in ${text}`);
  }
  return Buffer.from(bytes).toString('utf8');
}

function parseNumber(text: string): GoValue {
  const t = text.replaceAll('_', '');
  const sign = t.startsWith('-') ? -1n : 1n;
  const digits = t.replace(/^[+-]/, '');
  if (/^0[xX][0-9a-fA-F]+$/.test(digits)) return sign * BigInt(digits);
  if (/^0[oO][0-7]+$/.test(digits)) return sign * BigInt(`0o${digits.slice(2)}`);
  if (/^0[bB][01]+$/.test(digits)) return sign * BigInt(`0b${digits.slice(2)}`);
  if (/^0[0-7]+$/.test(digits)) return sign * BigInt(`0o${digits.slice(1)}`);
  if (/^\d+$/.test(digits)) return sign * BigInt(digits);
  const value = Number(t);
  if (Number.isNaN(value)) throw new Error(`bad number syntax: ${JSON.stringify(text)}`);
  return value;
}

class Parser {
  private items: Item[];
  private index = 0;

  constructor(
    private readonly name: string,
    src: string,
    private readonly functions: ReadonlySet<string>,
  ) {
    this.items = lex(name, src);
  }

  parse(): Node[] {
    const { nodes, ended } = this.list(false);
    if (ended) throw new GoTemplateError(this.name, ended.line, `unexpected {{${ended.source}}}`);
    return nodes;
  }

  /** Nodes up to `{{end}}`/`{{else…}}` (returned as `ended`) or, at the top level, the end of input. */
  private list(nested: boolean, loopDepth = 0): { nodes: Node[]; ended?: Item & { kind: 'action' } } {
    const nodes: Node[] = [];
    while (this.index < this.items.length) {
      const item = this.items[this.index++]!;
      if (item.kind === 'text') {
        if (item.text) nodes.push({ kind: 'text', text: item.text });
        continue;
      }
      const first = item.tokens[0];
      if (!first) throw new GoTemplateError(this.name, item.line, 'missing value for command');
      const word = first.kind === 'ident' ? first.text : '';
      if (word === 'end' || word === 'else') {
        if (!nested) throw new GoTemplateError(this.name, item.line, `unexpected {{${word}}}`);
        return { nodes, ended: item };
      }
      if (word === 'if' || word === 'with') nodes.push(this.conditional(word, item, item.tokens.slice(1), loopDepth));
      else if (word === 'range') nodes.push(this.range(item, loopDepth));
      else if (word === 'break' || word === 'continue') {
        if (loopDepth === 0) throw new GoTemplateError(this.name, item.line, `{{${word}}} outside {{range}}`);
        if (item.tokens.length > 1) throw new GoTemplateError(this.name, item.line, `unexpected ${item.tokens[1]!.text} in {{${word}}}`);
        nodes.push({ kind: word, line: item.line, source: item.source });
      } else if (word === 'define' || word === 'template' || word === 'block') {
        throw new GoTemplateError(this.name, item.line, `{{${word}}} is not supported: a matchbox template is one file`);
      } else nodes.push({ kind: 'output', pipeline: this.pipeline(item, item.tokens, 'command'), line: item.line, source: item.source });
    }
    if (nested) throw new GoTemplateError(this.name, this.items.at(-1)?.line ?? 1, 'unexpected EOF: an {{if}}, {{range}} or {{with}} has no {{end}}');
    return { nodes };
  }

  private conditional(kind: 'if' | 'with', item: Item & { kind: 'action' }, tokens: Token[], loopDepth: number): Node {
    const pipeline = this.pipeline(item, tokens, kind);
    const then = this.list(true, loopDepth);
    let otherwise: Node[] = [];
    const ended = then.ended!;
    if (ended.tokens[0]!.text === 'else') {
      const next = ended.tokens[1];
      if (next?.kind === 'ident' && (next.text === 'if' || next.text === 'with')) {
        // `{{else if …}}` is `{{else}}{{if …}}…{{end}}{{end}}` sharing the one `{{end}}`.
        otherwise = [this.conditional(next.text, ended, ended.tokens.slice(2), loopDepth)];
      } else {
        if (next) throw new GoTemplateError(this.name, ended.line, `unexpected ${next.text} in {{else}}`);
        const rest = this.list(true, loopDepth);
        if (rest.ended!.tokens[0]!.text !== 'end') throw new GoTemplateError(this.name, rest.ended!.line, 'expected {{end}}');
        this.endOnly(rest.ended!);
        otherwise = rest.nodes;
      }
    } else this.endOnly(ended);
    return { kind, pipeline, whenTrue: then.nodes, otherwise, line: item.line, source: item.source };
  }

  private range(item: Item & { kind: 'action' }, loopDepth: number): Node {
    const pipeline = this.pipeline(item, item.tokens.slice(1), 'range');
    const body = this.list(true, loopDepth + 1);
    let otherwise: Node[] = [];
    const ended = body.ended!;
    if (ended.tokens[0]!.text === 'else') {
      if (ended.tokens.length > 1) throw new GoTemplateError(this.name, ended.line, `unexpected ${ended.tokens[1]!.text} in {{else}} of {{range}}`);
      const rest = this.list(true, loopDepth);
      if (rest.ended!.tokens[0]!.text !== 'end') throw new GoTemplateError(this.name, rest.ended!.line, 'expected {{end}}');
      this.endOnly(rest.ended!);
      otherwise = rest.nodes;
    } else this.endOnly(ended);
    return { kind: 'range', pipeline, body: body.nodes, otherwise, line: item.line, source: item.source };
  }

  private endOnly(item: Item & { kind: 'action' }): void {
    if (item.tokens.length > 1) throw new GoTemplateError(this.name, item.line, `unexpected ${item.tokens[1]!.text} in {{end}}`);
  }

  private pipeline(item: Item & { kind: 'action' }, tokens: Token[], context: 'command' | 'if' | 'with' | 'range'): Pipeline {
    const fail = (reason: string): never => {
      throw new GoTemplateError(this.name, item.line, reason);
    };
    let pos = 0;
    const declare: string[] = [];
    let assign = false;
    // `$x :=`, `$x =`, or (range only) `$i, $e :=`.
    const t0 = tokens[0];
    const t1 = tokens[1];
    if (t0?.kind === 'variable' && (t1?.kind === 'declare' || t1?.kind === 'assign')) {
      declare.push(t0.text);
      assign = t1.kind === 'assign';
      pos = 2;
    } else if (t0?.kind === 'variable' && t1?.kind === 'comma') {
      if (context !== 'range') fail('too many declarations in command');
      const t2 = tokens[2];
      const t3 = tokens[3];
      if (t2?.kind !== 'variable' || (t3?.kind !== 'declare' && t3?.kind !== 'assign')) fail('range can only initialize variables as $i, $e :=');
      declare.push(t0.text, t2!.text);
      assign = t3!.kind === 'assign';
      pos = 4;
    }
    const { pipeline, next } = this.commands(tokens, pos, fail);
    if (next < tokens.length) fail(`unexpected ${tokens[next]!.text} in ${context}`);
    if (!pipeline.commands.length) fail(`missing value for ${context}`);
    return { declare, assign, commands: pipeline.commands };
  }

  private commands(tokens: Token[], start: number, fail: (reason: string) => never): { pipeline: Pipeline; next: number } {
    const commands: Command[] = [];
    let pos = start;
    let operands: Operand[] = [];
    const endCommand = () => {
      if (!operands.length) fail('missing command in pipeline');
      commands.push({ operands });
      operands = [];
    };
    while (pos < tokens.length) {
      const t = tokens[pos]!;
      if (t.kind === 'rparen') break;
      if (t.kind === 'pipe') {
        endCommand();
        pos++;
        continue;
      }
      const { operand, next } = this.operand(tokens, pos, fail);
      if (commands.length && operands.length === 0 && operand.kind !== 'function' && !(operand.kind === 'field' || operand.kind === 'variable' || operand.kind === 'group')) {
        fail(`non executable command in pipeline stage ${commands.length + 1}`);
      }
      operands.push(operand);
      pos = next;
    }
    if (operands.length) endCommand();
    else if (commands.length) fail('missing command after |');
    return { pipeline: { declare: [], assign: false, commands }, next: pos };
  }

  private operand(tokens: Token[], pos: number, fail: (reason: string) => never): { operand: Operand; next: number } {
    const t = tokens[pos]!;
    let operand: Operand;
    let next = pos + 1;
    switch (t.kind) {
      case 'field':
        operand = { kind: 'field', chain: [t.text.slice(1)] };
        break;
      case 'variable':
        operand = { kind: 'variable', name: t.text, chain: [] };
        break;
      case 'dot':
        operand = { kind: 'dot' };
        break;
      case 'string':
        try {
          operand = { kind: 'literal', value: unquoteGo(t.text) };
        } catch (err) {
          return fail((err as Error).message);
        }
        break;
      case 'char': {
        const s = unquoteGo(`"${t.text.slice(1, -1).replaceAll('"', '\\"')}"`);
        if ([...s].length !== 1) fail(`malformed character constant: ${t.text}`);
        operand = { kind: 'literal', value: BigInt(s.codePointAt(0)!) };
        break;
      }
      case 'number':
        try {
          operand = { kind: 'literal', value: parseNumber(t.text) };
        } catch (err) {
          return fail((err as Error).message);
        }
        break;
      case 'ident':
        if (t.text === 'true' || t.text === 'false') operand = { kind: 'literal', value: t.text === 'true' };
        else if (t.text === 'nil') operand = { kind: 'nil' };
        else if (BUILTINS.has(t.text) || this.functions.has(t.text)) operand = { kind: 'function', name: t.text };
        else return fail(`function "${t.text}" not defined`);
        break;
      case 'lparen': {
        const inner = this.commands(tokens, pos + 1, fail);
        if (tokens[inner.next]?.kind !== 'rparen') fail('unclosed left paren');
        if (!inner.pipeline.commands.length) fail('missing value in parentheses');
        operand = { kind: 'group', pipeline: inner.pipeline, chain: [] };
        next = inner.next + 1;
        break;
      }
      default:
        return fail(`unexpected ${JSON.stringify(t.text)} in operand`);
    }
    // A field right after a field, variable or `)` continues its chain.
    while (tokens[next]?.kind === 'field' && tokens[next]!.adjacent) {
      const field = tokens[next]!.text.slice(1);
      if (operand.kind === 'field' || operand.kind === 'variable' || operand.kind === 'group') operand.chain.push(field);
      else fail(`unexpected . after term ${JSON.stringify(t.text)}`);
      next++;
    }
    return { operand, next };
  }
}

// ---------------------------------------------------------------------------------------
// Formatting values as Go's fmt does for what json.Unmarshal produces

/** Go compares strings bytewise (UTF-8); JavaScript compares UTF-16 code units. */
export function compareGoStrings(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function isMap(v: GoValue): v is { [key: string]: GoValue } {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof MissingValue);
}

function exponentForm(mantissa: string, exp: number): string {
  const sign = exp < 0 ? '-' : '+';
  return `${mantissa}e${sign}${String(Math.abs(exp)).padStart(2, '0')}`;
}

/**
 * fmt's `%v` of a float64 (strconv 'g', precision -1): the shortest digits that round-trip,
 * in %e form when the exponent is < -4 or >= 6 ("if precision was the shortest possible,
 * use precision 6 for this decision", strconv/ftoa.go). So a JSON 1000000 prints `1e+06`.
 */
export function formatGoFloat(f: number): string {
  if (Number.isNaN(f)) return 'NaN';
  if (f === Number.POSITIVE_INFINITY) return '+Inf';
  if (f === Number.NEGATIVE_INFINITY) return '-Inf';
  if (f === 0) return Object.is(f, -0) ? '-0' : '0';
  // toExponential() without an argument gives the shortest round-trip digits.
  const [mant, expText] = Math.abs(f).toExponential().split('e') as [string, string];
  const exp = Number(expText);
  const digits = mant.replace('.', '');
  const sign = f < 0 ? '-' : '';
  if (exp < -4 || exp >= 6) return sign + exponentForm(mant, exp);
  if (exp >= digits.length - 1) return sign + digits + '0'.repeat(exp - digits.length + 1);
  if (exp >= 0) return `${sign}${digits.slice(0, exp + 1)}.${digits.slice(exp + 1)}`;
  return `${sign}0.${'0'.repeat(-exp - 1)}${digits}`;
}

function goTypeName(v: GoValue): string {
  if (v === undefined || v === null) return '<nil>';
  if (v instanceof MissingValue) return '<missing>';
  if (typeof v === 'string') return 'string';
  if (typeof v === 'number') return 'float64';
  if (typeof v === 'bigint') return 'int';
  if (typeof v === 'boolean') return 'bool';
  if (Array.isArray(v)) return '[]interface {}';
  return 'map[string]interface {}';
}

/** fmt.Sprint of one value (`%v`); `nested` values print nil as `<nil>` as fmt does inside slices and maps. */
function formatValue(v: GoValue, verb: 'v' | 's' = 'v'): string {
  if (v === undefined || v === null) return '<nil>';
  if (v instanceof MissingValue) return '<missing>';
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return verb === 's' ? `%!s(float64=${formatGoFloat(v)})` : formatGoFloat(v);
  if (typeof v === 'bigint') return verb === 's' ? `%!s(int=${v})` : String(v);
  if (typeof v === 'boolean') return verb === 's' ? `%!s(bool=${v})` : String(v);
  if (Array.isArray(v)) return `[${v.map((e) => formatValue(e, verb)).join(' ')}]`;
  const keys = Object.keys(v).sort(compareGoStrings);
  return `map[${keys.map((k) => `${k}:${formatValue(v[k], verb)}`).join(' ')}]`;
}

/** fmt.Sprint: a space between operands when neither is a string. */
function goSprint(args: GoValue[]): string {
  let out = '';
  args.forEach((a, i) => {
    if (i > 0 && typeof a !== 'string' && typeof args[i - 1] !== 'string') out += ' ';
    out += formatValue(a);
  });
  return out;
}

function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    const named: Record<string, string> = { '\x07': '\\a', '\b': '\\b', '\f': '\\f', '\n': '\\n', '\r': '\\r', '\t': '\\t', '\v': '\\v', '\\': '\\\\', '"': '\\"' };
    if (named[ch]) out += named[ch];
    else if (cp < 0x20 || cp === 0x7f) out += `\\x${cp.toString(16).padStart(2, '0')}`;
    else if (cp === 0xfffd && ch !== '\ufffd') out += '\\ufffd';
    else if (/[\p{C}\p{Z}]/u.test(ch) && ch !== ' ') out += cp > 0xffff ? `\\U${cp.toString(16).padStart(8, '0')}` : `\\u${cp.toString(16).padStart(4, '0')}`;
    else out += ch;
  }
  return `${out}"`;
}

/** fmt.Sprintf with the verbs templates use: %v %s %d %q %t %f %e %g %x %X %c %%, flags `-+ 0#`, width and precision. */
function goSprintf(format: string, args: GoValue[]): string {
  let out = '';
  let argIndex = 0;
  const spec = /%([-+ 0#]*)(\d+|\*)?(?:\.(\d+|\*)?)?([a-zA-Z%])/y;
  let i = 0;
  while (i < format.length) {
    const pct = format.indexOf('%', i);
    if (pct < 0) {
      out += format.slice(i);
      break;
    }
    out += format.slice(i, pct);
    spec.lastIndex = pct;
    const m = spec.exec(format);
    if (!m) {
      out += '%!(NOVERB)';
      break;
    }
    i = spec.lastIndex;
    const [, flags = '', widthText, precText, verb] = m as unknown as [string, string, string | undefined, string | undefined, string];
    if (verb === '%') {
      out += '%';
      continue;
    }
    const takeInt = (text: string | undefined): number | undefined => {
      if (text === undefined) return undefined;
      if (text !== '*') return Number(text);
      const a = args[argIndex++];
      return typeof a === 'bigint' ? Number(a) : undefined;
    };
    const width = takeInt(widthText);
    const precision = m[0].includes('.') ? (takeInt(precText) ?? 0) : undefined;
    if (argIndex >= args.length) {
      out += `%!${verb}(MISSING)`;
      continue;
    }
    const arg = args[argIndex++];
    const bad = () => `%!${verb}(${goTypeName(arg)}=${formatValue(arg)})`;
    let text: string;
    let numeric = false;
    switch (verb) {
      case 'v':
        text = typeof arg === 'number' && precision !== undefined ? Number(arg.toPrecision(Math.max(precision, 1))).toString() : formatValue(arg);
        break;
      case 's':
        text = typeof arg === 'string' ? arg : formatValue(arg, 's');
        if (precision !== undefined && typeof arg === 'string') text = [...text].slice(0, precision).join('');
        break;
      case 'q':
        text = typeof arg === 'string' ? goQuote(arg) : typeof arg === 'bigint' ? `'${String.fromCodePoint(Number(arg))}'` : bad();
        break;
      case 'd':
        numeric = typeof arg === 'bigint';
        text = numeric ? String(arg) : bad();
        break;
      case 'c':
        text = typeof arg === 'bigint' ? String.fromCodePoint(Number(arg)) : bad();
        break;
      case 't':
        text = typeof arg === 'boolean' ? String(arg) : bad();
        break;
      case 'x':
      case 'X': {
        if (typeof arg === 'bigint') text = (arg < 0n ? '-' : '') + (arg < 0n ? -arg : arg).toString(16);
        else if (typeof arg === 'string') text = Buffer.from(arg, 'utf8').toString('hex');
        else text = bad();
        if (verb === 'X') text = text.toUpperCase();
        numeric = typeof arg === 'bigint';
        break;
      }
      case 'f':
      case 'F':
        numeric = typeof arg === 'number';
        text = numeric ? (arg as number).toFixed(precision ?? 6) : bad();
        break;
      case 'e':
      case 'E': {
        numeric = typeof arg === 'number';
        if (numeric) {
          const [mant, exp] = (arg as number).toExponential(precision ?? 6).split('e') as [string, string];
          text = exponentForm(mant, Number(exp));
          if (verb === 'E') text = text.toUpperCase();
        } else text = bad();
        break;
      }
      case 'g':
        numeric = typeof arg === 'number';
        text = numeric ? (precision === undefined ? formatGoFloat(arg as number) : Number((arg as number).toPrecision(Math.max(precision, 1))).toString()) : bad();
        break;
      default:
        text = bad();
    }
    if (numeric && flags.includes('+') && !text.startsWith('-')) text = `+${text}`;
    else if (numeric && flags.includes(' ') && !text.startsWith('-')) text = ` ${text}`;
    if (width !== undefined && [...text].length < width) {
      const pad = width - [...text].length;
      if (flags.includes('-')) text += ' '.repeat(pad);
      else if (flags.includes('0') && numeric) {
        const signed = /^[+ -]/.test(text) ? 1 : 0;
        text = text.slice(0, signed) + '0'.repeat(pad) + text.slice(signed);
      } else text = ' '.repeat(pad) + text;
    }
    out += text;
  }
  if (argIndex < args.length)
    out += `%!(EXTRA ${args
      .slice(argIndex)
      .map((a) => `${goTypeName(a)}=${formatValue(a)}`)
      .join(', ')})`;
  return out;
}

function htmlEscape(s: string): string {
  return s.replace(/[\0"'&<>]/g, (c) => ({ '\0': '\ufffd', '"': '&#34;', "'": '&#39;', '&': '&amp;', '<': '&lt;', '>': '&gt;' })[c]!);
}

function jsEscape(s: string): string {
  let out = '';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (ch === '\\') out += '\\\\';
    else if (ch === "'") out += "\\'";
    else if (ch === '"') out += '\\"';
    else if (ch === '<' || ch === '>' || ch === '&' || ch === '=') out += `\\u00${cp.toString(16).toUpperCase()}`;
    else if (cp < 0x20) out += `\\u${cp.toString(16).toUpperCase().padStart(4, '0')}`;
    else if (/[\p{C}]/u.test(ch)) out += cp > 0xffff ? `\\U${cp.toString(16).toUpperCase().padStart(8, '0')}` : `\\u${cp.toString(16).toUpperCase().padStart(4, '0')}`;
    else out += ch;
  }
  return out;
}

/** url.QueryEscape. */
function queryEscape(s: string): string {
  return encodeURIComponent(s)
    .replace(/[!'()*~]/g, (c) => (c === '~' ? '~' : `%${c.charCodeAt(0).toString(16).toUpperCase()}`))
    .replaceAll('%20', '+');
}

// ---------------------------------------------------------------------------------------
// Execution

class ExecError extends Error {
  constructor(
    readonly reason: string,
    readonly key?: string,
  ) {
    super(reason);
  }
}

class LoopSignal {
  constructor(readonly kind: 'break' | 'continue') {}
}

function truth(v: GoValue): boolean {
  if (v === undefined || v === null || v instanceof MissingValue) return false;
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string') return v.length > 0;
  if (typeof v === 'number') return v !== 0;
  if (typeof v === 'bigint') return v !== 0n;
  if (Array.isArray(v)) return v.length > 0;
  return Object.keys(v).length > 0;
}

/** Using a missing `index` result anywhere but a condition is the error Go would have hidden. */
function present(v: GoValue): Exclude<GoValue, MissingValue> {
  if (v instanceof MissingValue) throw new ExecError(`map has no entry for key ${JSON.stringify(v.key)} (from index)`, v.key);
  return v;
}

type BasicKind = 'bool' | 'int' | 'float' | 'string';

function basicKind(v: GoValue): BasicKind | undefined {
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'bigint') return 'int';
  if (typeof v === 'number') return 'float';
  if (typeof v === 'string') return 'string';
  return undefined;
}

function goEqual(a: GoValue, b: GoValue): boolean {
  const ka = basicKind(a);
  const kb = basicKind(b);
  if (a === null || a === undefined || b === null || b === undefined) {
    if ((a === null || a === undefined) && (b === null || b === undefined)) return true;
    if (ka === undefined || kb === undefined) return false;
  }
  if (!ka || !kb) throw new ExecError(`incompatible types for comparison: ${goTypeName(a)} and ${goTypeName(b)}`);
  if (ka !== kb) throw new ExecError(`incompatible types for comparison: ${goTypeName(a)} and ${goTypeName(b)}`);
  return a === b;
}

function goLess(a: GoValue, b: GoValue): boolean {
  const ka = basicKind(a);
  const kb = basicKind(b);
  if (!ka || !kb || ka === 'bool' || kb === 'bool') throw new ExecError(`invalid type for comparison: ${goTypeName(a)} and ${goTypeName(b)}`);
  if (ka !== kb) throw new ExecError(`incompatible types for comparison: ${goTypeName(a)} and ${goTypeName(b)}`);
  if (ka === 'string') return compareGoStrings(a as string, b as string) < 0;
  return (a as number | bigint) < (b as number | bigint);
}

function toIndex(v: GoValue, what: string): number {
  if (typeof v !== 'bigint') throw new ExecError(`cannot ${what} with type ${goTypeName(v)}`);
  return Number(v);
}

interface Scope {
  vars: { name: string; value: GoValue }[];
}

class Executor {
  private out: string[] = [];
  private action = '';
  private line = 1;

  constructor(
    private readonly name: string,
    private readonly functions: Readonly<Record<string, GoTemplateFunction>>,
  ) {}

  run(nodes: Node[], data: GoValue): string {
    const scope: Scope = { vars: [{ name: '$', value: data }] };
    this.walk(nodes, data, scope);
    return this.out.join('');
  }

  private fail(err: unknown): never {
    if (err instanceof GoTemplateError) throw err;
    if (err instanceof ExecError) throw new GoTemplateError(this.name, this.line, err.reason, this.action, err.key);
    throw err;
  }

  private walk(nodes: Node[], dot: GoValue, scope: Scope): void {
    for (const node of nodes) {
      if (node.kind === 'text') {
        this.out.push(node.text);
        continue;
      }
      this.line = node.line;
      this.action = node.source;
      const mark = scope.vars.length;
      try {
        switch (node.kind) {
          case 'output': {
            const value = this.pipeline(node.pipeline, dot, scope);
            // An assignment or declaration prints nothing, as in Go.
            if (!node.pipeline.declare.length) this.out.push(this.print(value));
            // Declarations in an output action last to the end of the enclosing block.
            continue;
          }
          case 'if':
          case 'with': {
            const value = this.pipeline(node.pipeline, dot, scope);
            if (truth(value)) this.walk(node.whenTrue, node.kind === 'with' ? present(value) : dot, scope);
            else this.walk(node.otherwise, dot, scope);
            break;
          }
          case 'range':
            this.range(node, dot, scope);
            break;
          case 'break':
          case 'continue':
            throw new LoopSignal(node.kind);
        }
      } catch (err) {
        if (err instanceof LoopSignal) throw err;
        this.fail(err);
      }
      scope.vars.length = mark;
    }
  }

  private range(node: Node & { kind: 'range' }, dot: GoValue, scope: Scope): void {
    const { declare } = node.pipeline;
    const value = present(this.pipeline({ ...node.pipeline, declare: [] }, dot, scope));
    const entries: [GoValue, GoValue][] = [];
    if (Array.isArray(value)) for (const [i, e] of value.entries()) entries.push([BigInt(i), e]);
    else if (isMap(value)) for (const k of Object.keys(value).sort(compareGoStrings)) entries.push([k, value[k]]);
    else if (typeof value === 'bigint') {
      if (declare.length > 1) throw new ExecError(`can't use ${value} to iterate over more than one variable`);
      for (let i = 0n; i < value; i++) entries.push([i, i]);
    } else if (value !== undefined && value !== null) throw new ExecError(`range can't iterate over ${formatValue(value)}`);
    if (!entries.length) {
      this.walk(node.otherwise, dot, scope);
      return;
    }
    for (const [key, element] of entries) {
      const mark = scope.vars.length;
      if (declare.length === 1) this.setVar(scope, declare[0]!, element, !node.pipeline.assign);
      if (declare.length === 2) {
        this.setVar(scope, declare[0]!, key, !node.pipeline.assign);
        this.setVar(scope, declare[1]!, element, !node.pipeline.assign);
      }
      try {
        this.walk(node.body, element, scope);
      } catch (err) {
        if (!(err instanceof LoopSignal)) throw err;
        if (err.kind === 'break') {
          scope.vars.length = mark;
          break;
        }
      }
      scope.vars.length = mark;
    }
  }

  private setVar(scope: Scope, name: string, value: GoValue, declare: boolean): void {
    if (declare) {
      scope.vars.push({ name, value });
      return;
    }
    for (let i = scope.vars.length - 1; i >= 0; i--) {
      if (scope.vars[i]!.name === name) {
        scope.vars[i]!.value = value;
        return;
      }
    }
    throw new ExecError(`undefined variable: ${name}`);
  }

  private print(value: GoValue): string {
    const v = present(value);
    // text/template prints an absent value (a JSON null) as `<no value>`.
    if (v === undefined || v === null) return '<no value>';
    return formatValue(v);
  }

  private pipeline(pipeline: Pipeline, dot: GoValue, scope: Scope): GoValue {
    let value: GoValue | typeof NO_FINAL = NO_FINAL;
    for (const command of pipeline.commands) value = this.command(command, dot, scope, value);
    const result = value === NO_FINAL ? undefined : value;
    for (const name of pipeline.declare) this.setVar(scope, name, result, !pipeline.assign);
    return result;
  }

  private command(command: Command, dot: GoValue, scope: Scope, final: GoValue | typeof NO_FINAL): GoValue {
    const [first, ...rest] = command.operands as [Operand, ...Operand[]];
    if (first.kind === 'function') {
      const args = rest.map((op) => () => this.operand(op, dot, scope));
      if (final !== NO_FINAL) args.push(() => final);
      return this.call(first.name, args);
    }
    if (rest.length || final !== NO_FINAL) {
      if (first.kind === 'field' || first.kind === 'variable' || first.kind === 'group') {
        const chain = first.chain.length ? first.chain : [];
        throw new ExecError(
          chain.length || first.kind === 'field' ? `${first.kind === 'field' ? `.${first.chain.join('.')}` : chain.at(-1)} is not a method but has arguments` : "can't give argument to non-function",
        );
      }
      throw new ExecError("can't give argument to non-function");
    }
    if (first.kind === 'nil') throw new ExecError('nil is not a command');
    return this.operand(first, dot, scope);
  }

  private operand(op: Operand, dot: GoValue, scope: Scope): GoValue {
    switch (op.kind) {
      case 'dot':
        return dot;
      case 'nil':
        return null;
      case 'literal':
        return op.value;
      case 'function':
        return this.call(op.name, []);
      case 'field':
        return this.chain(dot, op.chain, '');
      case 'variable': {
        const v = [...scope.vars].reverse().find((x) => x.name === op.name);
        if (!v) throw new ExecError(`undefined variable: ${op.name}`);
        return this.chain(v.value, op.chain, op.name);
      }
      case 'group':
        return this.chain(this.pipeline(op.pipeline, dot, scope), op.chain, '(…)');
    }
  }

  /** `.a.b.c` from a receiver; a missing key is an error (matchbox renders with missingkey=error). */
  private chain(receiver: GoValue, chain: string[], start: string): GoValue {
    let value = receiver;
    let path = start;
    for (const field of chain) {
      const v = present(value);
      if (isMap(v)) {
        if (!Object.hasOwn(v, field)) throw new ExecError(`map has no entry for key ${JSON.stringify(field)}${path ? ` in ${path}` : ''}`, field);
        value = v[field];
      } else if (v === undefined || v === null) throw new ExecError(`nil pointer evaluating ${path || '.'}.${field}`, field);
      else throw new ExecError(`can't evaluate field ${field} in type ${goTypeName(v)}`, field);
      path += `.${field}`;
    }
    return value;
  }

  private call(name: string, thunks: (() => GoValue)[]): GoValue {
    const args = () => thunks.map((t) => t());
    const arity = (n: number) => {
      if (thunks.length !== n) throw new ExecError(`wrong number of args for ${name}: want ${n} got ${thunks.length}`);
    };
    const extra = this.functions[name];
    if (extra) return extra(...args().map(present));
    switch (name) {
      case 'and':
      case 'or': {
        if (!thunks.length) throw new ExecError(`wrong number of args for ${name}: want at least 1 got 0`);
        let v: GoValue;
        for (const t of thunks) {
          v = t();
          if (truth(v) === (name === 'or')) return v;
        }
        return v;
      }
      case 'not':
        arity(1);
        return !truth(thunks[0]!());
      case 'len': {
        arity(1);
        const v = present(thunks[0]!());
        if (typeof v === 'string') return BigInt(Buffer.byteLength(v, 'utf8'));
        if (Array.isArray(v)) return BigInt(v.length);
        if (isMap(v)) return BigInt(Object.keys(v).length);
        throw new ExecError(`error calling len: len of type ${goTypeName(v)}`);
      }
      case 'index': {
        if (!thunks.length) throw new ExecError('wrong number of args for index: want at least 1 got 0');
        const [item, ...indexes] = args().map(present);
        let v: GoValue = item;
        for (const ix of indexes) {
          if (isMap(v)) {
            if (typeof ix !== 'string') throw new ExecError(`error calling index: value has type ${goTypeName(ix)}; should be string`);
            v = Object.hasOwn(v, ix) ? v[ix] : new MissingValue(ix);
          } else if (Array.isArray(v) || typeof v === 'string') {
            const i = toIndex(ix, 'index slice');
            const len = typeof v === 'string' ? Buffer.byteLength(v) : v.length;
            if (i < 0 || i >= len) throw new ExecError(`error calling index: index out of range: ${i}`);
            v = typeof v === 'string' ? BigInt(Buffer.from(v, 'utf8')[i]!) : v[i];
          } else if (v === undefined || v === null) throw new ExecError('error calling index: index of untyped nil');
          else throw new ExecError(`error calling index: can't index item of type ${goTypeName(v)}`);
          if (v instanceof MissingValue) break;
        }
        return v;
      }
      case 'slice': {
        if (!thunks.length) throw new ExecError('wrong number of args for slice: want at least 1 got 0');
        const [item, ...ix] = args().map(present);
        if (typeof item !== 'string' && !Array.isArray(item)) throw new ExecError(`error calling slice: can't slice item of type ${goTypeName(item)}`);
        if (ix.length > (typeof item === 'string' ? 2 : 3)) throw new ExecError(`error calling slice: too many slice indexes: ${ix.length}`);
        const bytes = typeof item === 'string' ? Buffer.from(item, 'utf8') : undefined;
        const len = bytes ? bytes.length : (item as GoValue[]).length;
        const from = ix[0] === undefined ? 0 : toIndex(ix[0], 'slice');
        const to = ix[1] === undefined ? len : toIndex(ix[1], 'slice');
        if (from < 0 || to < from || to > len) throw new ExecError(`error calling slice: index out of range: ${from}:${to}`);
        return bytes ? bytes.subarray(from, to).toString('utf8') : (item as GoValue[]).slice(from, to);
      }
      case 'print':
        return goSprint(args().map(present));
      case 'println':
        return `${args()
          .map((a) => formatValue(present(a)))
          .join(' ')}\n`;
      case 'printf': {
        const [format, ...rest] = args().map(present);
        if (typeof format !== 'string') throw new ExecError(`wrong type for value; expected string; got ${goTypeName(format)}`);
        return goSprintf(format, rest);
      }
      case 'eq': {
        if (thunks.length < 2) throw new ExecError('missing argument for comparison');
        const [a, ...rest] = args().map(present);
        return rest.some((b) => goEqual(a, b));
      }
      case 'ne': {
        arity(2);
        const [a, b] = args().map(present);
        return !goEqual(a, b);
      }
      case 'lt':
      case 'le':
      case 'gt':
      case 'ge': {
        arity(2);
        const [a, b] = args().map(present);
        if (name === 'lt') return goLess(a, b);
        if (name === 'ge') return !goLess(a, b);
        if (name === 'gt') return !goLess(a, b) && !goEqual(a, b);
        return goLess(a, b) || goEqual(a, b);
      }
      case 'html':
      case 'js':
      case 'urlquery': {
        const values = args().map(present);
        const s = values.length === 1 && typeof values[0] === 'string' ? values[0] : goSprint(values);
        return name === 'html' ? htmlEscape(s) : name === 'js' ? jsEscape(s) : queryEscape(s);
      }
      case 'call':
        throw new ExecError('error calling call: data holds no functions');
      default:
        throw new ExecError(`function "${name}" not defined`);
    }
  }
}

const NO_FINAL = Symbol('no final value');

/** A parsed template, ready to execute against data any number of times. */
export interface GoTemplate {
  readonly name: string;
  /** Executes against `data` (the value of `.` and `$`); throws GoTemplateError naming the action and, for a missing key, the key. */
  execute(data: unknown): string;
}

/** Parses a template; throws GoTemplateError (name and line) when it does not parse. */
export function parseGoTemplate(name: string, text: string, options: GoTemplateOptions = {}): GoTemplate {
  const functions = options.functions ?? {};
  const nodes = new Parser(name, text, new Set(Object.keys(functions))).parse();
  return {
    name,
    execute: (data: unknown) => new Executor(name, functions).run(nodes, data as GoValue),
  };
}

/** Why a template does not parse, or undefined when it does (for loading and `validate`). */
export function goTemplateProblem(name: string, text: string, options: GoTemplateOptions = {}): string | undefined {
  try {
    parseGoTemplate(name, text, options);
    return undefined;
  } catch (err) {
    if (err instanceof GoTemplateError) return err.message;
    throw err;
  }
}

/** Parses and executes in one go. */
export function renderGoTemplate(name: string, text: string, data: unknown, options: GoTemplateOptions = {}): string {
  return parseGoTemplate(name, text, options).execute(data);
}

/** Whether a file has any template action; one without is served exactly as written. */
export function hasGoTemplateActions(text: string): boolean {
  return text.includes('{{');
}

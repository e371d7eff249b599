import test from 'ava';
import { formatGoFloat, GoTemplateError, goTemplateProblem, renderGoTemplate } from '../../src/render/go-template.ts';

/** What json.Unmarshal would hand Go for a group's metadata, plus the request as matchbox adds it. */
const DATA = {
  etcd_name: 'node1',
  port: 2379,
  big: 1000000,
  ratio: 0.5,
  on: true,
  off: false,
  none: null,
  empty: '',
  peers: ['node2', 'node3'],
  nested: { domain: 'example.com', deeper: { x: 'y' } },
  labels: { zone: 'b', app: 'etcd' },
  request: { query: { mac: '52:54:00:89:d8:10', foo: 'bar' }, raw_query: 'mac=52-54-00-89-d8-10&foo=bar' },
};

/** Each row: template → what Go's text/template (missingkey=error) writes for DATA. */
const RENDERS: [string, string][] = [
  ['plain text', 'plain text'],
  ['{{.etcd_name}}', 'node1'],
  ['{{.nested.domain}} {{.nested.deeper.x}}', 'example.com y'],
  ['{{.request.query.mac}} {{.request.raw_query}}', '52:54:00:89:d8:10 mac=52-54-00-89-d8-10&foo=bar'],
  ['{{.port}} {{.big}} {{.ratio}} {{.on}} {{.off}}', '2379 1e+06 0.5 true false'],
  ['{{.none}}', '<no value>'],
  ['{{.peers}} {{.labels}}', '[node2 node3] map[app:etcd zone:b]'],
  ['{{if .on}}yes{{else}}no{{end}}', 'yes'],
  ['{{if .empty}}a{{else if .peers}}b{{else}}c{{end}}', 'b'],
  ['{{if not .off}}not off{{end}}', 'not off'],
  ['{{if and .on .empty}}x{{else}}{{or .empty "fallback"}}{{end}}', 'fallback'],
  ['{{range .peers}}[{{.}}@{{$.nested.domain}}]{{end}}', '[node2@example.com][node3@example.com]'],
  ['{{range $i, $p := .peers}}{{$i}}:{{$p}} {{end}}', '0:node2 1:node3 '],
  ['{{range $k, $v := .labels}}{{$k}}={{$v}};{{end}}', 'app=etcd;zone=b;'],
  ['{{range .missing_list_is_error_not_here}}{{end}}', 'ERR'],
  ['{{range .none}}x{{else}}empty{{end}}', 'empty'],
  ['{{range .peers}}{{if eq . "node2"}}{{continue}}{{end}}{{.}}{{end}}', 'node3'],
  ['{{range .peers}}{{.}}{{break}}{{end}}', 'node2'],
  ['{{with .nested}}{{.domain}}{{end}}{{with .empty}}x{{else}}none{{end}}', 'example.comnone'],
  ['{{index . "etcd_name"}} {{index .peers 1}} {{index .nested "deeper" "x"}}', 'node1 node3 y'],
  ['{{if index .labels "nope"}}has{{else}}has not{{end}}', 'has not'],
  ['{{len .peers}} {{len .labels}} {{len .etcd_name}} {{len "é"}}', '2 2 5 2'],
  ['{{printf "%s-%d-%v-%q" .etcd_name 7 .port .etcd_name}}', 'node1-7-2379-"node1"'],
  ['{{printf "%d" .port}}', '%!d(float64=2379)'],
  ['{{printf "%.1f|%5s|%-5s|%03d|%x|%t" .ratio "ab" "ab" 7 255 .on}}', '0.5|   ab|ab   |007|ff|true'],
  ['{{.etcd_name | printf "%s.example.com"}}', 'node1.example.com'],
  ['{{print "a" 1 2 "b"}}|{{println "x" 1}}', 'a1 2b|x 1\n'],
  ['{{eq .etcd_name "node1" "node2"}} {{ne .port 2379.0}} {{lt 1 2}} {{ge "b" "a"}}', 'true false true true'],
  ['{{$x := .nested.domain}}{{$x}}{{$x = "other"}}{{$x}}', 'example.comother'],
  ['{{(index .nested "deeper").x}}', 'y'],
  ['{{html "<a href=\'x\'>&"}} {{urlquery "a b&c"}} {{js "it\'s <b>"}}', "&lt;a href=&#39;x&#39;&gt;&amp; a+b%26c it\\'s \\u003Cb\\u003E"],
  ['{{slice .etcd_name 1 3}} {{slice .peers 1}}', 'od [node3]'],
  ['a  {{- .etcd_name -}}  b', 'anode1b'],
  ['a\n{{- /* a comment */ -}}\nb', 'ab'],
  ['{{/* nothing */}}x', 'x'],
  ['{{"quoted\\t\\u00e9"}} {{`raw\\n`}} {{\'a\'}} {{0x10}} {{-3}} {{1e3}}', 'quoted\té raw\\n 97 16 -3 1000'],
];

for (const [template, want] of RENDERS) {
  test(`renders ${JSON.stringify(template)}`, (t) => {
    if (want === 'ERR') {
      t.throws(() => renderGoTemplate('row', template, DATA), { instanceOf: GoTemplateError });
      return;
    }
    t.is(renderGoTemplate('row', template, DATA), want);
  });
}

/** Each row: template → the error, which names the template, line, action and key. */
const ERRORS: [string, RegExp, string | undefined][] = [
  ['{{.nope}}', /^template t\.ign:1: executing \{\{\.nope\}\}: map has no entry for key "nope"$/, 'nope'],
  ['line1\n{{.request.query.hostname}}', /^template t\.ign:2: executing \{\{\.request\.query\.hostname\}\}: map has no entry for key "hostname" in \.request\.query$/, 'hostname'],
  ['{{if .nope}}x{{end}}', /map has no entry for key "nope"/, 'nope'],
  ['{{index .labels "nope"}}', /map has no entry for key "nope" \(from index\)/, 'nope'],
  ['{{printf "%s" (index .labels "nope")}}', /map has no entry for key "nope"/, 'nope'],
  ['{{.etcd_name.first}}', /can't evaluate field first in type string/, 'first'],
  ['{{eq .port 2379}}', /incompatible types for comparison: float64 and int/, undefined],
  ['{{index .peers 5}}', /index out of range: 5/, undefined],
  ['{{range .etcd_name}}{{end}}', /range can't iterate over node1/, undefined],
  ['{{$nope}}', /undefined variable: \$nope/, undefined],
];

for (const [template, message, key] of ERRORS) {
  test(`fails ${JSON.stringify(template)}`, (t) => {
    const err = t.throws(() => renderGoTemplate('t.ign', template, DATA), { instanceOf: GoTemplateError });
    t.regex(err.message, message);
    t.is(err.template, 't.ign');
    t.is(err.key, key);
  });
}

/** Each row: template → why it does not parse. */
const PARSE_ERRORS: [string, RegExp][] = [
  ['{{.a', /unclosed action/],
  ['{{if .a}}x', /has no \{\{end\}\}/],
  ['{{end}}', /unexpected \{\{end\}\}/],
  ['{{else}}', /unexpected \{\{else\}\}/],
  ['{{nosuchfn .a}}', /function "nosuchfn" not defined/],
  ['{{template "x"}}', /not supported/],
  ['{{define "x"}}{{end}}', /not supported/],
  ['{{break}}', /outside \{\{range\}\}/],
  ['{{/* unclosed', /unclosed comment/],
  ['{{/* x */ .a}}', /comment ends before closing delimiter/],
  ['{{"unterminated}}', /unterminated quoted string/],
  ['{{.a | }}', /missing command/],
  ['{{if}}{{end}}', /missing value for if/],
];

for (const [template, message] of PARSE_ERRORS) {
  test(`does not parse ${JSON.stringify(template)}`, (t) => {
    t.regex(goTemplateProblem('bad.tmpl', template) ?? '', message);
    t.regex(goTemplateProblem('bad.tmpl', template) ?? '', /^template bad\.tmpl:\d+: /);
  });
}

test('floats print as Go %v prints a float64', (t) => {
  const rows: [number, string][] = [
    [0, '0'],
    [3, '3'],
    [-2.5, '-2.5'],
    [100000, '100000'],
    [123456, '123456'],
    [1000000, '1e+06'],
    [1234567, '1.234567e+06'],
    [0.0001, '0.0001'],
    [0.00001, '1e-05'],
    [1e21, '1e+21'],
    [0.1 + 0.2, '0.30000000000000004'],
  ];
  for (const [f, want] of rows) t.is(formatGoFloat(f), want, String(f));
});

test('extra functions are only what the caller adds; nothing reaches code or files', (t) => {
  t.is(renderGoTemplate('t', '{{base_url}}/ignition', {}, { functions: { base_url: () => 'http://10.0.0.1:8080' } }), 'http://10.0.0.1:8080/ignition');
  t.regex(goTemplateProblem('t', '{{base_url}}') ?? '', /function "base_url" not defined/);
  t.throws(() => renderGoTemplate('t', '{{call .f}}', { f: 'x' }), { message: /data holds no functions/ });
  // Field names that would reach JavaScript internals are plain map keys.
  t.throws(() => renderGoTemplate('t', '{{.constructor}}', {}), { message: /map has no entry for key "constructor"/ });
  t.throws(() => renderGoTemplate('t', '{{.__proto__}}', {}), { message: /map has no entry for key "__proto__"/ });
});

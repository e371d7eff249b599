/**
 * The import rules of src/ (docs/architecture.md "Import rules"), checked by `npm run lint`
 * and by test/layering.test.ts. Flow: cli → commands → appliance → services → leaves.
 */
const LEAVES = '^src/(net|util|boot|render)/';
module.exports = {
  forbidden: [
    {
      name: 'no-cycles',
      severity: 'error',
      comment: 'A cycle makes two modules one; cut it at an interface.',
      from: { path: '^src/' },
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
    {
      name: 'boot-is-pure',
      severity: 'error',
      comment: 'The boot decision knows no packets, sockets, HTTP, TFTP, store or files: it is handed facts.',
      from: { path: '^src/boot/' },
      to: { path: ['^src/(dhcp|http|tftp|store|events|firmware|commands)/', '^src/(appliance|cli|config|explain)\\.ts$', '^(node:)?(fs|fs/promises|dgram|net|http|child_process)$'] },
    },
    {
      name: 'net-is-a-leaf',
      severity: 'error',
      comment: 'Interfaces, sockets, MAC/IPv4 helpers know nothing of booting or of the appliance.',
      from: { path: '^src/net/' },
      to: { path: ['^src/(boot|events|store|dhcp|http|tftp|render|firmware|commands)/', '^src/(appliance|cli|config|explain|metrics)\\.ts$'] },
    },
    {
      name: 'util-is-a-leaf',
      severity: 'error',
      from: { path: '^src/util/' },
      to: { path: '^src/(?!util/)' },
    },
    {
      name: 'render-is-pure',
      severity: 'error',
      comment: 'Renderers turn a config into text: no I/O, no services; they may read the store’s data types.',
      from: { path: '^src/render/' },
      to: { path: ['^src/(dhcp|http|tftp|events|firmware|commands|net)/', '^src/store/(?!boot-config\\.ts$)', '^src/(appliance|cli|config|explain)\\.ts$', '^(node:)?(fs|fs/promises|dgram|net|http|child_process)$'] },
    },
    {
      name: 'store-only-stores',
      severity: 'error',
      comment: 'The store loads and looks up; rendering and serving are other modules’ jobs.',
      from: { path: '^src/store/' },
      to: { path: ['^src/(dhcp|http|tftp|render|events|boot|firmware|commands)/', '^src/(appliance|cli|config|explain)\\.ts$'] },
    },
    {
      name: 'services-take-options',
      severity: 'error',
      comment: 'Services are handed what they use by the wiring (appliance.ts); they never reach back for the config, the wiring or the CLI.',
      from: { path: '^src/(dhcp|tftp|http|events|store|firmware|render|boot|net|util|images)/' },
      to: { path: ['^src/(appliance|cli|config)\\.ts$', '^src/commands/'] },
    },
    {
      name: 'protocols-apart',
      severity: 'error',
      comment: 'DHCP, TFTP and HTTP do not import each other; what they share lives in a leaf.',
      from: { path: '^src/(dhcp|tftp|http)/' },
      to: { path: '^src/(dhcp|tftp|http)/', pathNot: '^src/$1/' },
    },
    {
      name: 'codecs-know-bytes',
      severity: 'error',
      comment: 'A packet codec knows bytes: not sockets, not booting, not the appliance.',
      from: { path: '^src/(dhcp/(packet|options)|tftp/packet)\\.ts$' },
      to: { path: ['^src/(?!net/ipv4\\.ts$)', '^(node:)?(dgram|net|fs|fs/promises)$'], pathNot: '^src/(dhcp/(packet|options)|tftp/packet)\\.ts$' },
    },
    {
      name: 'events-are-observers',
      severity: 'error',
      comment: 'The timeline and its readers do not depend on the protocols that feed them.',
      from: { path: '^src/events/' },
      to: { path: '^src/(dhcp|tftp|http|store|firmware|commands)/' },
    },
    {
      name: 'cli-is-the-top',
      severity: 'error',
      comment: 'Nothing imports the CLI except main.ts.',
      from: { path: '^src/', pathNot: '^src/main\\.ts$' },
      to: { path: '^src/cli\\.ts$' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(test|bench|scripts|dist)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};

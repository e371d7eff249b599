import test from 'ava';
import { renderIpxeScript } from '../../src/render/ipxe-script.ts';
import { ProfileBootError, renderMatchboxTemplate, renderMetadataEnv, renderProfileBoot } from '../../src/render/matchbox.ts';
import { templateData } from '../../src/store/matchbox.ts';
import { ETCD_CLOUD, ETCD_GENERIC } from '../store/matchbox-fixture.ts';

const BASE = 'http://10.0.0.1:8080';
const node1 = {
  selector: { mac: '52:54:00:89:d8:10' },
  metadata: { etcd_name: 'node1', etcd_initial_cluster: 'node1=http://node1:2380', peers: ['node2', 'node3'], network: { domain: 'example.com' } },
};
const data = templateData(node1, { mac: '52:54:00:89:d8:10', foo: 'bar' }, 'mac=52-54-00-89-d8-10&foo=bar');

test('/metadata env file: matchbox metadata_test.go case, keys upper-cased, nested joined by _, sorted', (t) => {
  const d = templateData(
    { selector: { mac: '52:54:00:a1:9c:ae' }, metadata: { meta: 'data', etcd: { name: 'node1' }, some: { nested: { data: 'some-value' } } } },
    { mac: '52:54:00:a1:9c:ae', foo: 'bar', count: '3', gate: 'true' },
    'mac=52-54-00-a1-9c-ae&foo=bar&count=3&gate=true',
  );
  t.is(
    renderMetadataEnv(d),
    [
      'ETCD_NAME=node1',
      'MAC=52:54:00:a1:9c:ae',
      'META=data',
      'REQUEST_QUERY_COUNT=3',
      'REQUEST_QUERY_FOO=bar',
      'REQUEST_QUERY_GATE=true',
      'REQUEST_QUERY_MAC=52:54:00:a1:9c:ae',
      'REQUEST_RAW_QUERY=mac=52-54-00-a1-9c-ae&foo=bar&count=3&gate=true',
      'SOME_NESTED_DATA=some-value',
      '',
    ].join('\n'),
  );
  // The edge cases matchbox tests, and what renderAsEnvFile skips: arrays and nulls.
  t.is(renderMetadataEnv({ num: 3, yes: true, no: false, big: 1000000, list: [1], none: null }), 'BIG=1e+06\nNO=false\nNUM=3\nYES=true\n');
});

test('golden: the generic and cloud templates for node1', (t) => {
  t.is(
    renderMatchboxTemplate('generic/etcd.env.tmpl', ETCD_GENERIC, data, BASE),
    '# etcd member node1\nETCD_NAME=node1\nPEER_0=node2\nPEER_1=node3\nMAC=52:54:00:89:d8:10\nQUERY_MAC=52:54:00:89:d8:10\nRAW_QUERY=mac=52-54-00-89-d8-10&foo=bar\nFIRST=yes\n',
  );
  t.is(
    renderMatchboxTemplate('cloud/etcd.yaml', ETCD_CLOUD, data, BASE),
    '#cloud-config\nhostname: node1\nwrite_files:\n  - path: /etc/etcd.env\n    content: |\n      ETCD_INITIAL_CLUSTER=node1=http://node1:2380\n',
  );
  const plain = '{"ignition":{"version":"3.4.0"}} ${not} {a template}';
  t.is(renderMatchboxTemplate('ignition/x.ign', plain, {}, BASE), plain, 'text without {{ is served exactly as written');
});

test('a profile boot as a BootConfig: args templated, --name initrds renamed for the iPXE renderer, iPXE settings kept', (t) => {
  const config = renderProfileBoot(
    'profiles/etcd.json',
    {
      kernel: '/images/fcos/kernel',
      initrd: ['--name main /images/fcos/initramfs.img', '/images/fcos/extra.img'],
      args: ['initrd=main', 'initrd=extra.img', 'hostname={{.etcd_name}}.{{.network.domain}}', 'ignition.config.url={{base_url}}/ignition?uuid=${uuid}&mac=${mac:hexhyp}'],
    },
    data,
    BASE,
  );
  t.deepEqual(config, {
    kernel: '/images/fcos/kernel',
    initrd: ['/images/fcos/initramfs.img', '/images/fcos/extra.img'],
    cmdline: 'initrd=initrd0 initrd=initrd1 hostname=node1.example.com ignition.config.url=http://10.0.0.1:8080/ignition?uuid=${uuid}&mac=${mac:hexhyp}',
  });
  t.is(
    renderIpxeScript(config, BASE),
    '#!ipxe\nkernel http://10.0.0.1:8080/images/fcos/kernel initrd=initrd0 initrd=initrd1 hostname=node1.example.com ignition.config.url=http://10.0.0.1:8080/ignition?uuid=${uuid}&mac=${mac:hexhyp}\ninitrd --name initrd0 http://10.0.0.1:8080/images/fcos/initramfs.img\ninitrd --name initrd1 http://10.0.0.1:8080/images/fcos/extra.img\nboot\n',
  );
});

test('a profile boot that cannot be a BootConfig says why', (t) => {
  const fails = (boot: { kernel: string; initrd: string[]; args: string[] }, message: RegExp) => t.throws(() => renderProfileBoot('profiles/p.json', boot, data, BASE), { message });
  fails({ kernel: '', initrd: [], args: [] }, /boot\.kernel is empty/);
  fails({ kernel: '/k', initrd: ['--timeout 5 /i'], args: [] }, /iPXE option --timeout is not supported/);
  fails({ kernel: '/k', initrd: ['/a /b'], args: [] }, /expected one URL/);
  fails({ kernel: '/k', initrd: [], args: ['a\nb'] }, /cmdline must not contain line breaks/);
  t.throws(() => renderProfileBoot('profiles/p.json', { kernel: '/k', initrd: [], args: ['x={{.nope}}'] }, data, BASE), {
    message: /template profiles\/p\.json boot\.args\[0\]:1: executing \{\{\.nope\}\}: map has no entry for key "nope"/,
  });
  t.true(new ProfileBootError('p', 'r') instanceof Error);
});

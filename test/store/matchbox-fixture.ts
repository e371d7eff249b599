/**
 * A matchbox-layout data directory: a 3-node etcd cluster (groups with mac selectors written
 * in three MAC forms, per-node metadata), one profile with templated args, a templated
 * Ignition config, a generic template, a cloud-config template, a default (selector-less)
 * group with an untemplated Ignition config, and the seed layout beside them.
 * Paths are relative to a scratch root (see fixtures.ts dataDir).
 */
const CLUSTER = 'node1=http://node1.example.com:2380,node2=http://node2.example.com:2380,node3=http://node3.example.com:2380';

export const NODE_MACS = ['52:54:00:89:d8:10', '52:54:00:89:d8:11', '52:54:00:89:d8:12'] as const;

export const PROXY_IGNITION = '{"ignition":{"version":"3.4.0"},"passwd":{"users":[{"name":"core"}]}}\n';

export const ETCD_IGNITION = `{
  "ignition": { "version": "3.4.0" },
  "storage": {
    "files": [{ "path": "/etc/hostname", "mode": 420, "contents": { "source": "data:,{{.etcd_name}}" } }]
  },
  "systemd": {
    "units": [{
      "name": "etcd-member.service",
      "enabled": true,
      "contents": "[Service]\\nEnvironment=ETCD_NAME={{.etcd_name}}\\nEnvironment=ETCD_INITIAL_CLUSTER={{.etcd_initial_cluster}}\\nEnvironment=ETCD_ADVERTISE_CLIENT_URLS=http://{{.etcd_name}}.{{.network.domain}}:{{.network.client_port}}\\n"
    }]
  }
}
`;

export const ETCD_GENERIC = `# etcd member {{.etcd_name}}
ETCD_NAME={{.etcd_name}}
{{- range $i, $peer := .peers}}
PEER_{{$i}}={{$peer}}
{{- end}}
MAC={{.mac}}
QUERY_MAC={{.request.query.mac}}
RAW_QUERY={{.request.raw_query}}
{{if eq .etcd_name "node1"}}FIRST=yes{{else}}FIRST=no{{end}}
`;

export const ETCD_CLOUD = `#cloud-config
hostname: {{.etcd_name}}
{{/* peers come from the group's metadata */ -}}
write_files:
  - path: /etc/etcd.env
    content: |
      ETCD_INITIAL_CLUSTER={{.etcd_initial_cluster}}
`;

function node(n: 1 | 2 | 3, macForm: string, extra: Record<string, unknown> = {}) {
  return {
    id: `node${n}`,
    name: `etcd node ${n}`,
    profile: 'etcd',
    selector: { mac: macForm },
    metadata: {
      etcd_name: `node${n}`,
      etcd_initial_cluster: CLUSTER,
      network: { domain: 'example.com', client_port: 2379 },
      ...extra,
    },
  };
}

export const MATCHBOX_FILES: Record<string, string | object> = {
  'data/profiles/etcd.json': {
    id: 'etcd',
    name: 'etcd member',
    boot: {
      kernel: '/images/fcos/kernel',
      initrd: ['--name main /images/fcos/initramfs.img'],
      args: ['initrd=main', 'console=ttyS0', 'hostname={{.etcd_name}}', 'ignition.config.url={{base_url}}/ignition?uuid=${uuid}&mac=${mac:hexhyp}'],
    },
    ignition_id: 'etcd.ign',
    generic_id: 'etcd.env.tmpl',
    cloud_id: 'etcd.yaml',
  },
  'data/profiles/etcd-proxy.json': {
    id: 'etcd-proxy',
    name: 'etcd proxy',
    boot: { kernel: '/images/fcos/kernel', initrd: ['/images/fcos/initramfs.img'], args: ['initrd=initramfs.img', 'console=ttyS0'] },
    ignition_id: 'proxy.ign',
  },
  // Three MAC forms: matchbox normalises selectors, so all three match `mac=…` in any form.
  'data/groups/node1.json': node(1, '52-54-00-89-D8-10', { peers: ['node2', 'node3'] }),
  'data/groups/node2.json': node(2, '5254.0089.d811', { peers: ['node1', 'node3'] }),
  // node3 has no `peers`: its generic template names a key its data lacks.
  'data/groups/node3.json': node(3, '52:54:00:89:d8:12'),
  'data/groups/proxy.json': { id: 'proxy', name: 'etcd proxy (default)', profile: 'etcd-proxy', metadata: { etcd_initial_cluster: CLUSTER } },
  'data/ignition/etcd.ign': ETCD_IGNITION,
  'data/ignition/proxy.ign': PROXY_IGNITION,
  'data/generic/etcd.env.tmpl': ETCD_GENERIC,
  'data/cloud/etcd.yaml': ETCD_CLOUD,
  // The seed layout beside it: its cloud files are not matchbox templates (this one would not parse as one).
  'data/boot/default.json': { kernel: '/images/debian/linux' },
  'data/cloud/default.cfg': 'd-i preseed {{ not a template\n',
};

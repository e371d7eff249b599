/**
 * What `validate` says of a matchbox data directory beyond each file parsing: the links
 * between files and the ambiguities matchbox itself would resolve silently.
 */
import path from 'node:path';
import type { Logger } from '../log.ts';
import { MatchboxStore, type MatchboxStoreOptions, TEMPLATE_DIRS } from './matchbox-store.ts';

export interface MatchboxCheck {
  groups: number;
  profiles: number;
  problems: { path: string; reason: string }[];
}

/** Query names a request carries (matchbox's labels), and a plausible shape for any other. */
const KNOWN_LABELS = new Set(['mac', 'uuid', 'hostname', 'serial', 'arch', 'domain', 'os']);
const PLAUSIBLE_LABEL = /^[a-z][a-z0-9_.-]{0,63}$/;

const TEMPLATE_FIELD = { ignition: 'ignition_id', cloud: 'cloud_id', generic: 'generic_id' } as const;

export async function checkMatchbox(dataPath: string, opts: { log: Logger; checkTemplate: MatchboxStoreOptions['checkTemplate'] }): Promise<MatchboxCheck | undefined> {
  const store = new MatchboxStore(dataPath, { log: opts.log, checkTemplate: opts.checkTemplate });
  await store.reload();
  try {
    if (!store.hasData()) return undefined;
    const problems = store.problems().map((p) => ({ path: p.path, reason: p.reason }));
    const groups = store.groups();
    const groupPath = (id: string) => path.join(dataPath, 'groups', `${id}.json`);
    const bySelectors = new Map<string, string>();
    const profiles = new Set<string>();
    for (const g of groups) {
      const keys = Object.keys(g.selector).sort();
      const signature = keys.map((k) => `${k}=${g.selector[k]}`).join(',');
      const twin = bySelectors.get(signature);
      if (twin) {
        problems.push({
          path: groupPath(g.id),
          reason: keys.length
            ? `same selectors as groups/${twin} (${signature}): which one a machine gets is not defined`
            : `a second default group (no selectors), beside groups/${twin}: which one a machine gets is not defined`,
        });
      } else bySelectors.set(signature, g.id);
      for (const k of keys) {
        if (!KNOWN_LABELS.has(k) && !PLAUSIBLE_LABEL.test(k))
          problems.push({ path: groupPath(g.id), reason: `selector "${k}" is not a label a request can carry (query parameter names are like hostname, serial, os)` });
      }
      if (!g.profile) {
        problems.push({ path: groupPath(g.id), reason: 'names no profile' });
        continue;
      }
      const found = store.profile(g.profile);
      if (found.state === 'missing') {
        problems.push({ path: groupPath(g.id), reason: `names profile "${g.profile}", and there is no ${found.path}` });
        continue;
      }
      if (found.state !== 'ok' || profiles.has(g.profile)) continue;
      profiles.add(g.profile);
      for (const dir of TEMPLATE_DIRS) {
        const name = found.value[TEMPLATE_FIELD[dir]];
        if (name && store.template(dir, name).state === 'missing') problems.push({ path: found.path, reason: `${TEMPLATE_FIELD[dir]} names ${dir}/${name}, which does not exist` });
      }
    }
    return { groups: groups.length, profiles: profiles.size, problems };
  } finally {
    await store.close();
  }
}

/**
 * Which boot config a machine gets when --data-path holds both layouts: the seed's
 * boot/{uuid,mac,default} files and matchbox's groups and profiles. One precedence, from the
 * most specific answer to the least, used by /ipxe, /grub, GRUB over TFTP, the Pixiecore API,
 * the DHCP decision and explain alike:
 *
 *   1. boot/uuid/<uuid>, then boot/mac/<mac> (a file written for this one machine);
 *   2. the matchbox group whose selectors match, most selectors first (matchbox's order);
 *   3. boot/default;
 *   4. the matchbox group without selectors (matchbox's default).
 *
 * A broken file at any step stops the lookup there (500), as the seed layout always did.
 */
import type { MatchboxStore } from './store/matchbox-store.ts';
import type { BootConfig } from './store/boot-config.ts';
import type { CloudConfig, LookupResult, LookupStep, MachineQuery, Store } from './store/store.ts';
import { profileBootConfig, profileTemplate, type MatchboxAnswer } from './http/matchbox.ts';

export type BootLookupStore = Pick<Store, 'boot' | 'cloud' | 'problems' | 'dataPath'>;

function labelsOf(query: MachineQuery): Record<string, string> {
  if (query.labels) return { ...query.labels };
  const labels: Record<string, string> = {};
  if (query.mac) labels.mac = query.mac;
  if (query.uuid) labels.uuid = query.uuid;
  return labels;
}

/**
 * One lookup in the precedence above: the seed's answer, or the group's. `fromGroup` renders the
 * winning group's answer (its profile's boot, or its cloud template).
 */
function precedence<T>(seed: LookupResult<T>, query: MachineQuery, dataPath: string, fromGroup: (labels: Record<string, string>, rawQuery: string) => MatchboxAnswer<T>): LookupResult<T> {
  // A machine's own file, or a broken one, decides before any group (step 1).
  if (seed.decidedBy && (seed.decidedBy.key !== 'default' || seed.decidedBy.outcome === 'broken')) return seed;
  const labels = labelsOf(query);
  const answer = fromGroup(labels, query.rawQuery ?? new URLSearchParams(labels).toString());
  const group = answer.ok ? answer.group : answer.selection.group;
  // boot/default beats matchbox's default group (steps 3 and 4).
  if (!group || (seed.value !== undefined && Object.keys(group.selector).length === 0)) return seed;
  const key = `group/${group.id}`;
  const path = `${dataPath}/groups/${group.id}.json`;
  const step: LookupStep = answer.ok ? { key, outcome: 'hit', path } : { key, outcome: answer.status === 500 ? 'broken' : 'miss', path, problem: answer.reason };
  if (!answer.ok && answer.status !== 500) return { ...seed, steps: [...seed.steps, step] };
  return { kind: seed.kind, query, value: answer.ok ? answer.value : undefined, decidedBy: step, steps: [...seed.steps.filter((s) => s.key !== 'default' || seed.value === undefined), step] };
}

/** The store as every boot lookup should see it: seed files and matchbox groups, in the precedence above. */
export function combinedBootStore(store: BootLookupStore, matchbox: Pick<MatchboxStore, 'selectGroup' | 'hasData' | 'template'> | undefined, baseUrl: string): BootLookupStore {
  if (!matchbox) return store;
  const { dataPath } = store;
  const boot = (query: MachineQuery): LookupResult<BootConfig> => {
    const seed = store.boot(query);
    if (!matchbox.hasData()) return seed;
    return precedence(seed, query, dataPath, (labels, rawQuery) => profileBootConfig(matchbox, { labels, rawQuery }, baseUrl));
  };
  const cloud = (query: MachineQuery): LookupResult<CloudConfig> => {
    const seed = store.cloud(query);
    if (!matchbox.hasData()) return seed;
    return precedence(seed, query, dataPath, (labels, rawQuery) => {
      const answer = profileTemplate(matchbox, 'cloud', { labels, rawQuery }, baseUrl);
      return answer.ok ? { ...answer, value: { text: answer.value.text } } : answer;
    });
  };
  return { dataPath, boot, cloud, problems: () => store.problems() };
}

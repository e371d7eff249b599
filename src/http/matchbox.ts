/**
 * matchbox's HTTP API over the matchbox layout of --data-path: /ignition, /generic and
 * /metadata, each selecting the machine's group by its labels (every query parameter) as
 * matchbox does; and profileBootConfig, the winning profile as a BootConfig for /ipxe and
 * /grub, and profileTemplate for /cloud.
 *
 * Where matchbox answers every failure 404, this answers 404 when nothing is there for the
 * machine (no group, no profile, no template) and 500 when something is there but broken (a
 * file that never parsed, a template that names a key the machine's data lacks), with a
 * body naming the file, the key and the machine.
 */
import Router from '@koa/router';
import type Koa from 'koa';
import { z } from 'zod';
import { GoTemplateError } from '../render/go-template.ts';
import { ProfileBootError, renderMatchboxTemplate, renderMetadataEnv, renderProfileBoot } from '../render/matchbox.ts';
import type { BootConfig } from '../store/boot-config.ts';
import { describeLabels, describeLoser, ignitionProblem, isIgnitionJsonName, labelsFromQuery, type MatchboxGroup, type MatchboxLabels, type MatchboxProfile, templateData } from '../store/matchbox.ts';
import type { GroupSelection, MatchboxStore, MatchboxTemplate, TemplateDir } from '../store/matchbox-store.ts';
import { fail } from './errors.ts';
import { named, requestInfo } from './request-info.ts';

/** What a machine's request says about it: its labels and the query string as sent (`.request.raw_query`). */
export interface MatchboxRequest {
  labels: MatchboxLabels;
  rawQuery: string;
}

/** Query parameters as Koa parses them: bounded, so a request cannot make selection or templates work on megabytes. */
const QuerySchema = z
  .record(z.string().max(128, 'a parameter name is longer than 128 characters'), z.union([z.string(), z.array(z.string())]))
  .refine((q) => Object.keys(q).length <= 64, 'more than 64 parameters')
  .refine((q) => Object.values(q).every((v) => (typeof v === 'string' ? v.length : v.reduce((n, s) => n + s.length, 0)) <= 1024), 'a parameter value is longer than 1024 characters');

/** The machine's labels from the query, validated at the edge; a bad query ends the request with 400. */
export function matchboxRequest(c: Koa.Context): MatchboxRequest {
  const parsed = QuerySchema.safeParse(c.query);
  if (!parsed.success) {
    const reason = parsed.error.issues[0]!.message;
    fail(c, 400, `bad request: ${reason}`, reason);
  }
  const { labels } = labelsFromQuery(parsed.data);
  return { labels, rawQuery: c.querystring };
}

/** Why an answer could not be made, as the route answers it. */
export interface MatchboxMiss {
  ok: false;
  status: 404 | 500;
  /** One line naming what was looked up or what is broken, and the machine. */
  reason: string;
  selection: GroupSelection;
}

export interface MatchboxHit<T> {
  ok: true;
  value: T;
  selection: GroupSelection;
  group: MatchboxGroup;
  /** The template data (metadata, selectors, request) the answer was rendered with. */
  data: ReturnType<typeof templateData>;
}

export type MatchboxAnswer<T> = MatchboxHit<T> | MatchboxMiss;

type Selector = Pick<MatchboxStore, 'selectGroup'>;

function miss(selection: GroupSelection, status: 404 | 500, reason: string): MatchboxMiss {
  return { ok: false, status, reason, selection };
}

/** The machine's group, or why none answers; `needProfile` also requires its profile. */
function selectFor(store: Selector, request: MatchboxRequest, needProfile: boolean): MatchboxAnswer<MatchboxProfile | undefined> {
  const selection = store.selectGroup(request.labels);
  const machine = describeLabels(request.labels);
  const { group } = selection;
  if (!group) {
    const tried = selection.losers.map(describeLoser).join('; ');
    return miss(selection, 404, `no matchbox group matches ${machine}${tried ? ` (${tried})` : ' (no groups)'}`);
  }
  // A group file that never parsed may have been this machine's: do not hand it the default instead.
  if (!Object.keys(group.selector).length && selection.unparsedGroups.length) {
    const broken = selection.unparsedGroups.map((g) => `${g.path}: ${g.reason}`).join('; ');
    return miss(selection, 500, `only the default group groups/${group.id} matches ${machine}, and broken group files may be meant for it: ${broken}`);
  }
  const data = templateData(group, request.labels, request.rawQuery);
  if (!needProfile) return { ok: true, value: undefined, selection, group, data };
  const found = selection.profile;
  if (!group.profile || !found) return miss(selection, 404, `group groups/${group.id} (for ${machine}) names no profile`);
  if (found.state === 'missing') return miss(selection, 404, `group groups/${group.id} (for ${machine}) names profile ${group.profile}, and there is no ${found.path}`);
  if (found.state === 'broken') return miss(selection, 500, `profile ${found.path} (group groups/${group.id}, for ${machine}) is broken: ${found.problem}`);
  return { ok: true, value: found.value, selection, group, data };
}

/** A template error as the body says it: which template, which key, which machine. */
function renderFailure(err: unknown, machine: string): string {
  // Its message names the template, the line, the action and (for a missing key) the key.
  if (err instanceof GoTemplateError) return `${err.message}, rendering for ${machine}`;
  if (err instanceof ProfileBootError) return `profile ${err.message}, for ${machine}`;
  throw err;
}

/**
 * The winning group's profile as a BootConfig (kernel, initrds, args rendered with the
 * group's data), ready for render/ipxe-script.ts renderBoot and render/grub-config.ts.
 * 404 when no group (or profile) answers, 500 when one is broken or does not render.
 */
export function profileBootConfig(store: Selector, request: MatchboxRequest, baseUrl: string): MatchboxAnswer<BootConfig> & { profile?: MatchboxProfile } {
  const selected = selectFor(store, request, true);
  if (!selected.ok) return selected;
  const profile = selected.value!;
  const profileName = `profiles/${selected.group.profile}.json`;
  try {
    return { ...selected, value: renderProfileBoot(profileName, profile.boot, selected.data, baseUrl), profile };
  } catch (err) {
    return miss(selected.selection, 500, renderFailure(err, describeLabels(request.labels)));
  }
}

const TEMPLATE_FIELD = { ignition: 'ignition_id', cloud: 'cloud_id', generic: 'generic_id' } as const satisfies Record<TemplateDir, keyof MatchboxProfile>;

/** The template the winning profile names in `dir` (ignition_id, cloud_id, generic_id), rendered with the group's data. */
export function profileTemplate(
  store: Selector & Pick<MatchboxStore, 'template'>,
  dir: TemplateDir,
  request: MatchboxRequest,
  baseUrl: string,
): MatchboxAnswer<{ text: string; template: MatchboxTemplate }> {
  const selected = selectFor(store, request, true);
  if (!selected.ok) return selected;
  const machine = describeLabels(request.labels);
  const profile = selected.value!;
  const name = profile[TEMPLATE_FIELD[dir]];
  const where = `profile profiles/${selected.group.profile}.json (group groups/${selected.group.id}, for ${machine})`;
  if (!name) return miss(selected.selection, 404, `${where} names no ${TEMPLATE_FIELD[dir]}`);
  const found = store.template(dir, name);
  if (found.state === 'missing') return miss(selected.selection, 404, `${where} names ${dir} template ${name}, and there is no ${found.path}`);
  if (found.state === 'broken') return miss(selected.selection, 500, `${dir} template ${found.path} (named by ${where}) is broken: ${found.problem}`);
  const template = found.value;
  try {
    return { ...selected, value: { text: renderMatchboxTemplate(`${dir}/${template.name}`, template.text, selected.data, baseUrl), template } };
  } catch (err) {
    return miss(selected.selection, 500, renderFailure(err, machine));
  }
}

export interface MatchboxRoutesDeps {
  matchbox: Pick<MatchboxStore, 'selectGroup' | 'template'>;
  /** What `{{base_url}}` names in templates (--base-url). */
  baseUrl: string;
}

function note(c: Koa.Context, answer: MatchboxAnswer<unknown>, file?: string): void {
  const info = requestInfo(c);
  info.key = answer.selection.group ? `groups/${answer.selection.group.id}` : undefined;
  info.file = file;
}

function answerMiss(c: Koa.Context, answer: MatchboxMiss): never {
  fail(c, answer.status, `${answer.reason}\n`, answer.reason);
}

/** /ignition, /generic, /metadata as matchbox serves them. */
export function matchboxRouter({ matchbox, baseUrl }: MatchboxRoutesDeps): Router {
  const router = new Router();

  router.get(
    '/ignition',
    named('ignition', (c) => {
      const request = matchboxRequest(c);
      const answer = profileTemplate(matchbox, 'ignition', request, baseUrl);
      note(c, answer, answer.ok ? answer.value.template.path : undefined);
      if (!answer.ok) answerMiss(c, answer);
      const { text, template } = answer.value;
      const machine = describeLabels(request.labels);
      // matchbox translates Butane (YAML) to Ignition with a Go library that has no JavaScript counterpart.
      if (!isIgnitionJsonName(template.name))
        fail(c, 500, `ignition/${template.name} is not Ignition JSON (.ign, .ignition or .json): Butane configs are not translated here; run butane and serve the .ign (for ${machine})\n`);
      const problem = ignitionProblem(text);
      if (problem) fail(c, 500, `ignition/${template.name} rendered for ${machine} is not an Ignition config: ${problem}\n`);
      c.type = 'application/json';
      c.body = text;
    }),
  );

  router.get(
    '/generic',
    named('generic', (c) => {
      const request = matchboxRequest(c);
      const answer = profileTemplate(matchbox, 'generic', request, baseUrl);
      note(c, answer, answer.ok ? answer.value.template.path : undefined);
      if (!answer.ok) answerMiss(c, answer);
      c.type = 'text/plain; charset=utf-8';
      c.body = answer.value.text;
    }),
  );

  router.get(
    '/metadata',
    named('metadata', (c) => {
      const request = matchboxRequest(c);
      const answer = selectFor(matchbox, request, false);
      note(c, answer);
      if (!answer.ok) answerMiss(c, answer);
      c.type = 'text/plain';
      c.body = renderMetadataEnv(answer.data);
    }),
  );

  return router;
}

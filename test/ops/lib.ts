/** An in-process appliance HTTP server on 127.0.0.1 whose timeline clock the test controls. */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createBootCounter, createHttpService, createParts, type ApplianceParts } from '../../src/appliance.ts';
import { resolveConfig } from '../../src/config.ts';
import { BootTimeline } from '../../src/events/timeline.ts';
import { createLogger } from '../../src/log.ts';
import { PROJECT_ROOT } from '../helpers/appliance.ts';

export interface OpsServer {
  ctx: ApplianceParts;
  url: string;
  dataPath: string;
  /** Moves the timeline's clock: events recorded after this carry the shifted time. */
  setClockOffset(ms: number): void;
  stop(): Promise<void>;
}

export async function startOpsServer(files: Record<string, string> = {}): Promise<OpsServer> {
  const dir = await mkdtemp(path.join(tmpdir(), 'bca-ops-'));
  const dataPath = path.join(dir, 'data');
  for (const [rel, text] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dataPath, rel)), { recursive: true });
    await writeFile(path.join(dataPath, rel), text);
  }
  await mkdir(dataPath, { recursive: true });
  const config = resolveConfig(
    {
      address: '127.0.0.1:0',
      'data-path': dataPath,
      'images-path': path.join(dir, 'images'),
      'firmware-path': path.join(PROJECT_ROOT, 'firmware'),
      // Named, never started (the ops server runs HTTP only): DHCP hands out TFTP files only when TFTP is on port 69.
      'tftp-address': '127.0.0.1:69',
      'log-level': 'silent',
      'log-format': 'json',
    },
    {
      lookupInterface: () => {
        throw new Error('no interface in this test');
      },
      isTty: false,
    },
  );
  let offset = 0;
  const ctx = { ...(await createParts(config, createLogger(config.log))), timeline: new BootTimeline(undefined, () => Date.now() + offset) };
  await ctx.store.open();
  const counter = createBootCounter(ctx);
  await counter.start();
  const http = createHttpService(ctx);
  await http.start();
  return {
    ctx,
    url: `http://127.0.0.1:${http.port}`,
    dataPath,
    setClockOffset: (ms) => {
      offset = ms;
    },
    async stop() {
      await http.stop();
      await counter.stop();
      await ctx.store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

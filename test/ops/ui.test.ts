import test from 'ava';
import { steps } from '../helpers/steps.ts';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import type { Mac } from '../../src/net/mac.ts';
import { startOpsServer, type OpsServer } from './lib.ts';
import { countColour, dataAttrs, launchChromium, waitForTimeline, type BrowserGlobals } from './browser.ts';

const BOOTED = '52:54:00:cc:00:01' as Mac;
const STALLED = '52:54:00:cc:00:02' as Mac;
const HOSTILE = '52:54:00:cc:00:03' as Mac;

let browser: Browser;
test.before(async () => {
  browser = await launchChromium();
});
test.after.always(async () => {
  await browser?.close();
});

async function feed(server: OpsServer): Promise<void> {
  const images = server.ctx.config.imagesPath;
  await mkdir(images, { recursive: true });
  await writeFile(path.join(images, 'vmlinuz'), Buffer.alloc(1024, 1));
  await writeFile(path.join(images, 'initrd.img'), Buffer.alloc(1024, 2));
  const t = server.ctx.timeline;
  // Stalled: answered by DHCP three minutes ago, never fetched its firmware.
  server.setClockOffset(-3 * 60_000);
  t.record(steps.dhcpRequest({ mac: STALLED }, { arch: 'efi-x64' }));
  t.record(steps.dhcpReply({ mac: STALLED }, 'ipxe.efi'));
  // A machine whose reported hostname tries to inject markup into the page.
  t.record(steps.dhcpRequest({ mac: HOSTILE }, { hostname: '<img src=x onerror="document.body.dataset.pwned=1">' }));
  server.setClockOffset(0);
  // Booted: a whole BIOS boot, the HTTP half through the real server.
  t.record(steps.dhcpRequest({ mac: BOOTED }, { arch: 'bios' }));
  t.record(steps.dhcpReply({ mac: BOOTED, ip: '127.0.0.1' }, 'undionly.kpxe'));
  t.record(steps.tftpStart({ ip: '127.0.0.1' }, 'undionly.kpxe'));
  t.record(steps.tftpEnd({ ip: '127.0.0.1' }, 'undionly.kpxe'));
  for (const p of ['/boot.ipxe', `/ipxe?mac=${BOOTED}`, '/images/vmlinuz', '/images/initrd.img']) {
    const res = await fetch(server.url + p);
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`${p}: ${res.status}`);
  }
}

test('the machines page lists machines, flags the stalled boot and shows a timeline (headless Chromium)', async (t) => {
  const server = await startOpsServer({ 'boot/default.json': JSON.stringify({ kernel: '/images/vmlinuz', initrd: ['/images/initrd.img'] }) });
  t.teardown(() => server.stop());
  await feed(server);

  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  t.teardown(() => context.close());
  const page = await context.newPage();
  const consoleErrors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => consoleErrors.push(e.message));

  await page.goto(`${server.url}/ui`);
  await page.waitForSelector('body[data-loaded="true"]');

  const rows = page.locator('#machines tbody tr');
  t.is(await rows.count(), 3);
  t.deepEqual(await dataAttrs(rows, 'data-mac'), [BOOTED, HOSTILE, STALLED]);

  const stalledRow = page.locator(`#machines tr[data-mac="${STALLED}"]`);
  t.is(await stalledRow.locator('[data-state]').innerText(), 'stalled');
  t.regex(await stalledRow.innerText(), /DHCP answered with ipxe\.efi, but no TFTP or HTTP request followed/);
  t.regex(await stalledRow.innerText(), /3 min \d+ s ago/);
  const bootedRow = page.locator(`#machines tr[data-mac="${BOOTED}"]`);
  t.is(await bootedRow.locator('[data-state]').innerText(), 'booted');
  t.regex(await bootedRow.innerText(), /http\.image/);
  t.regex(await page.locator('#summary').innerText(), /3 machines · 2 stalled · 1 booted/);

  // The filter box narrows the list as one types.
  await page.fill('#filter', 'STALLED 5254.00cc.0002');
  t.deepEqual(await dataAttrs(rows, 'data-mac'), [STALLED]);
  await page.fill('#filter', '');
  t.is(await rows.count(), 3);

  // The booted machine's timeline, opened by clicking its row.
  await bootedRow.click();
  await page.waitForSelector('#timeline-section:not([hidden]) #timeline tbody tr');
  t.is(await page.locator('#timeline-mac').innerText(), BOOTED);
  t.deepEqual(await dataAttrs(page.locator('#timeline tbody tr'), 'data-step'), ['dhcp.request', 'dhcp.reply', 'tftp.start', 'tftp.end', 'http.boot-script', 'http.ipxe', 'http.image', 'http.image']);
  t.regex(await page.locator('#timeline').innerText(), /path=\/images\/initrd\.img/);
  t.true(page.url().endsWith(`#${BOOTED}`));

  // Network-supplied text is shown as text, never run.
  // Same document, new hash: wait until the page has rendered the other machine's timeline.
  await page.goto(`${server.url}/ui#${HOSTILE}`);
  await waitForTimeline(page, HOSTILE);
  t.regex(await page.locator('#timeline').innerText(), /hostname=<img src=x onerror=/);
  t.is(await page.evaluate(() => (globalThis as unknown as BrowserGlobals).document.body.dataset.pwned), undefined);

  // The screenshot really shows the machines: the stalled row's amber and the booted badge's green are painted.
  await page.goto(`${server.url}/ui`);
  await page.waitForSelector('body[data-loaded="true"]');
  const png = await page.screenshot({ fullPage: true });
  const blank = await context.newPage();
  const stalledBg = await countColour(blank, png, [0xff, 0xf8, 0xe6]);
  const bootedBadge = await countColour(blank, png, [0xd5, 0xf2, 0xdc]);
  t.is(stalledBg.width, 1280);
  t.true(stalledBg.count > 5_000, `stalled row background pixels: ${stalledBg.count}`);
  t.true(bootedBadge.count > 100, `booted badge pixels: ${bootedBadge.count}`);
  if (process.env.BOOTCFG_SCREENSHOT) await writeFile(process.env.BOOTCFG_SCREENSHOT, png);

  t.deepEqual(consoleErrors, []);
});

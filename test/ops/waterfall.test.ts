/** The machines page draws a machine's boot as a waterfall on one time axis; a stalled boot's wait is in the warning colour (headless Chromium, screenshot). */
import test from 'ava';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import type { Mac } from '../../src/net/mac.ts';
import { steps } from '../helpers/steps.ts';
import { countColour, dataAttrs, launchChromium, waitForTimeline } from './browser.ts';
import { startOpsServer } from './lib.ts';

const BOOTED = '52:54:00:dd:00:01' as Mac;
const STALLED = '52:54:00:dd:00:02' as Mac;

let browser: Browser;
test.before(async () => {
  browser = await launchChromium();
});
test.after.always(async () => {
  await browser?.close();
});

test('the waterfall: DHCP, TFTP, the script, kernel and initrd as bars with durations; the stalled step in amber', async (t) => {
  const server = await startOpsServer({ 'boot/default.json': JSON.stringify({ kernel: '/images/vmlinuz', initrd: ['/images/initrd.img'] }) });
  t.teardown(() => server.stop());
  const images = server.ctx.config.imagesPath;
  await mkdir(images, { recursive: true });
  await writeFile(path.join(images, 'vmlinuz'), Buffer.alloc(4096, 1));
  await writeFile(path.join(images, 'initrd.img'), Buffer.alloc(4096, 2));
  const tl = server.ctx.timeline;
  server.setClockOffset(-3 * 60_000);
  tl.record(steps.dhcpRequest({ mac: STALLED }, { arch: 'efi-x64' }));
  tl.record(steps.dhcpReply({ mac: STALLED, ip: '10.9.0.7' }, 'ipxe.efi'));
  tl.record(steps.tftpStart({ ip: '10.9.0.7' }, 'ipxe.efi'));
  tl.record(steps.tftpEnd({ ip: '10.9.0.7' }, 'ipxe.efi', { ms: 140 }));
  server.setClockOffset(0);
  tl.record(steps.dhcpRequest({ mac: BOOTED }, { arch: 'bios' }));
  tl.record(steps.dhcpReply({ mac: BOOTED, ip: '127.0.0.1' }, 'undionly.kpxe'));
  tl.record(steps.tftpStart({ ip: '127.0.0.1' }, 'undionly.kpxe'));
  tl.record(steps.tftpEnd({ ip: '127.0.0.1' }, 'undionly.kpxe', { ms: 80 }));
  for (const p of ['/boot.ipxe', `/ipxe?mac=${BOOTED}`, '/images/vmlinuz', '/images/initrd.img']) await (await fetch(server.url + p)).arrayBuffer();

  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  t.teardown(() => context.close());
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });

  await page.goto(`${server.url}/ui#${BOOTED}`);
  await waitForTimeline(page, BOOTED);
  await page.waitForSelector('#waterfall .wf-row');
  t.deepEqual(await dataAttrs(page.locator('#waterfall .wf-row'), 'data-phase'), ['DHCP', 'TFTP undionly.kpxe', 'boot script', 'kernel /images/vmlinuz', 'initrd /images/initrd.img']);
  t.is(await page.locator('#waterfall [data-stalled="true"]').count(), 0);
  t.is(await page.locator('#waterfall .wf-row[data-phase="TFTP undionly.kpxe"]').getAttribute('data-ms'), '80');

  await page.goto(`${server.url}/ui#${STALLED}`);
  await waitForTimeline(page, STALLED);
  await page.waitForSelector('#waterfall [data-stalled="true"]');
  const stalled = page.locator('#waterfall [data-stalled="true"]');
  t.regex((await stalled.getAttribute('data-phase')) ?? '', /^waiting: /);
  t.true(Number(await stalled.getAttribute('data-ms')) > 170_000, 'the wait runs from the last step to now');
  const png = await page.screenshot({ fullPage: true });
  if (process.env.BOOTCFG_SCREENSHOT) await writeFile(process.env.BOOTCFG_SCREENSHOT, png);
  const amber = await countColour(await context.newPage(), png, [0xf0, 0xa0, 0x20]);
  t.true(amber.count > 2_000, `the stalled wait is painted amber: ${amber.count} px`);
  t.deepEqual(errors, []);
});

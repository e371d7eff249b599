/**
 * Opens the machines page in headless Chromium and prints what it shows, as one JSON line:
 *   node --import tsx test/ops/page-probe.ts <base-url> <mac>
 * Run inside a test's network namespace (ip netns exec …) when the appliance is only
 * reachable there; the browser then lives in that namespace too.
 */
import { countColour, dataAttrs, launchChromium, waitForTimeline } from './browser.ts';

export interface PageProbe {
  rows: { mac: string; state: string; lastStep: string }[];
  timelineMac: string;
  steps: string[];
  /** Pixels of the booted badge's green in a full-page screenshot. */
  bootedBadgePixels: number;
  screenshotWidth: number;
  errors: string[];
}

async function main(): Promise<void> {
  const [base, mac] = process.argv.slice(2);
  if (!base || !mac) throw new Error('usage: page-probe.ts <base-url> <mac>');
  const browser = await launchChromium();
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    await page.goto(`${base}/ui#${mac}`);
    await waitForTimeline(page, mac);
    const rows = await page.locator('#machines tbody tr').evaluateAll((trs) =>
      trs.map((tr) => {
        const cells = Array.from((tr as { querySelectorAll(s: string): ArrayLike<{ textContent: string | null }> }).querySelectorAll('td'), (td) => td.textContent ?? '');
        return { mac: cells[1] ?? '', state: cells[0] ?? '', lastStep: cells[4] ?? '' };
      }),
    );
    const steps = (await dataAttrs(page.locator('#timeline tbody tr'), 'data-step')).map((s) => s ?? '');
    const timelineMac = (await page.locator('#timeline-mac').textContent()) ?? '';
    const png = await page.screenshot({ fullPage: true });
    const counted = await countColour(await browser.newPage(), png, [0xd5, 0xf2, 0xdc]);
    const out: PageProbe = { rows, timelineMac, steps, bootedBadgePixels: counted.count, screenshotWidth: counted.width, errors };
    process.stdout.write(`${JSON.stringify(out)}\n`);
  } finally {
    await browser.close();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`page-probe: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});

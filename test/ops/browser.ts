/** Debian's chromium, driven headless by playwright-core (which downloads no browser of its own). */
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
export const hasChromium = existsSync(CHROMIUM);

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    // --no-sandbox: CI runs as root, where chromium's sandbox refuses to start.
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

interface Canvas {
  width: number;
  height: number;
  getContext(kind: '2d'): { drawImage(img: unknown, x: number, y: number): void; getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } } | null;
}

/**
 * The few browser globals the page.evaluate callbacks touch. The project compiles without
 * the DOM lib (it is a Node program); callbacks cast globalThis to this instead.
 */
export interface BrowserGlobals {
  document: {
    querySelector(selector: string): { textContent: string | null } | null;
    createElement(tag: 'canvas'): Canvas;
    body: { dataset: Record<string, string | undefined> };
  };
  Image: new () => { src: string; width: number; height: number; decode(): Promise<void> };
}

/** Whether the page shows `mac`'s timeline (the page renders asynchronously after a hash change). */
export function waitForTimeline(page: Page, mac: string): Promise<unknown> {
  return page.waitForFunction((m) => {
    const { document } = globalThis as unknown as BrowserGlobals;
    return document.querySelector('#timeline-mac')?.textContent === m && document.querySelector('#timeline tbody tr') !== null;
  }, mac);
}

/** Counts the pixels of one colour in a PNG, decoded by the browser itself (on a blank page: the UI's CSP forbids data: images). */
export async function countColour(browserPage: Page, png: Buffer, rgb: [number, number, number]): Promise<{ width: number; count: number }> {
  return browserPage.evaluate(
    async ({ data, rgb }) => {
      const { document, Image } = globalThis as unknown as BrowserGlobals;
      const img = new Image();
      img.src = `data:image/png;base64,${data}`;
      await img.decode();
      const canvas = document.createElement('canvas');
      canvas.width = img.width;
      canvas.height = img.height;
      const g = canvas.getContext('2d')!;
      g.drawImage(img, 0, 0);
      const px = g.getImageData(0, 0, img.width, img.height).data;
      let count = 0;
      for (let i = 0; i < px.length; i += 4) if (px[i] === rgb[0] && px[i + 1] === rgb[1] && px[i + 2] === rgb[2]) count++;
      return { width: img.width, count };
    },
    { data: png.toString('base64'), rgb },
  );
}

/** A `data-*` attribute of every element a locator matches (passed as an argument: callbacks run in the page, without their closure). */
export function dataAttrs(locator: Locator, attr: string): Promise<(string | null)[]> {
  return locator.evaluateAll((els, name) => els.map((el) => (el as { getAttribute(n: string): string | null }).getAttribute(name)), attr);
}

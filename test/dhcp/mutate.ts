/**
 * Deterministic mutation of real-shaped DHCP packets for robustness tests: truncations,
 * flipped bytes, lying option lengths, bad overload values, hostile header fields and
 * plain garbage. Same seed, same packets, so a failure can be replayed.
 */

/** xorshift32: small, fast, seedable. */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 0x9e3779b9;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x100000000;
  };
}

/** Offsets of option code bytes in the options field (after the cookie), following lengths. */
function optionOffsets(p: Buffer): number[] {
  const out: number[] = [];
  let i = 240;
  while (i < p.length) {
    const code = p[i]!;
    if (code === 0) {
      i += 1;
      continue;
    }
    if (code === 255) break;
    out.push(i);
    i += 2 + (p[i + 1] ?? 0);
  }
  return out;
}

const STRATEGIES = 9;

/** One mutated packet from `seed` (a real-shaped packet). */
export function mutate(seed: Buffer, rand: () => number): Buffer {
  const int = (n: number) => Math.floor(rand() * n);
  const p = Buffer.from(seed);
  switch (int(STRATEGIES)) {
    case 0: // truncated anywhere, including inside the header and the cookie
      return p.subarray(0, int(p.length));
    case 1: {
      // a few random bytes changed
      const n = 1 + int(8);
      for (let k = 0; k < n; k++) p[int(p.length)] = int(256);
      return p;
    }
    case 2: {
      // an option claims a length that runs past the end (or anywhere)
      const offs = optionOffsets(p);
      if (offs.length) p[offs[int(offs.length)]! + 1] = int(256);
      return p;
    }
    case 3: {
      // the End option removed and the packet cut inside the last option
      const offs = optionOffsets(p);
      const at = offs.length ? offs[int(offs.length)]! : 240;
      return p.subarray(0, at + 1 + int(3));
    }
    case 4: {
      // overload (52) with a random value, file/sname fields filled with junk option runs
      const extra = Buffer.from([52, 1, int(256)]);
      const q = Buffer.concat([p.subarray(0, 240), extra, p.subarray(240)]);
      for (let i = 44; i < 236; i++) if (rand() < 0.3) q[i] = int(256);
      return q;
    }
    case 5: {
      // hostile header: op, htype, hlen, hops
      p[0] = int(256);
      p[1] = int(256);
      p[2] = int(256);
      p[3] = int(256);
      return p;
    }
    case 6: {
      // encapsulated options (43, 175, 93, 97) with broken contents
      const bad = Buffer.from([43, 3, 6, 9, 1, 175, 2, 19, 7, 93, 1, 0, 97, 5, 0, 1, 2, 3, 4, 94, 0, 77, 0, 60, 0, 53, 0]);
      const q = Buffer.concat([p.subarray(0, 240), bad.subarray(int(bad.length)), p.subarray(240)]);
      return q;
    }
    case 7: // pure garbage of a plausible size
      return Buffer.from(Array.from({ length: int(600) }, () => int(256)));
    default: {
      // bytes inserted at a random place (shifts every later option)
      const at = 236 + int(p.length - 236);
      const junk = Buffer.from(Array.from({ length: 1 + int(4) }, () => int(256)));
      return Buffer.concat([p.subarray(0, at), junk, p.subarray(at)]);
    }
  }
}

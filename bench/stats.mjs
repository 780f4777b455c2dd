// Small statistics the bench scripts share.

/** Percentiles of `xs` (nearest rank): n, p50, p99 and the largest. */
export function stats(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const at = (p) => s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)];
  return { n: s.length, p50: at(0.5), p99: at(0.99), max: s[s.length - 1] };
}

/** The middle value of `xs` (the lower of the two middle ones for an even count). */
export function median(xs) {
  return [...xs].sort((a, b) => a - b)[(xs.length - 1) >> 1];
}

/** `fn()` awaited, with the milliseconds it took: `[ms, result]`. */
export async function timed(fn) {
  const t = performance.now();
  const r = await fn();
  return [performance.now() - t, r];
}

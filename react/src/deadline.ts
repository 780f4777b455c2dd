// Time limits on what tollgate-react waits for: the worker's answers (the provider's
// snapshot fetch, the server helpers' calls, `useUsage`) and the proxy's catalog load and
// `subject` function. One implementation, so each waits the same way: a request is
// aborted at its deadline, and a wait that ignores the abort (a `fetch` that does not
// honour its signal, a body that stalls, a promise that never settles) ends then too.

/** A deadline `ms` from now: its signal aborts then (or on `abort()`), and `bound` ends
 * any wait at that moment. `done()` clears the timer once the work is over. */
export interface Deadline {
  readonly signal: AbortSignal;
  /** True once the deadline itself (not `abort()`) ended the wait. */
  readonly timedOut: boolean;
  /** `p`, or a rejection when the deadline passes or `abort()` is called first. */
  bound<T>(p: Promise<T>): Promise<T>;
  abort(): void;
  done(): void;
}

export function deadline(ms: number): Deadline {
  const ctrl = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    ctrl.abort();
  }, Math.max(0, ms));
  const aborted = new Promise<never>((_, reject) => {
    ctrl.signal.addEventListener('abort', () => reject(new Error(timedOut ? `no answer within ${ms} ms` : 'aborted')));
  });
  aborted.catch(() => {});
  return {
    signal: ctrl.signal,
    get timedOut() {
      return timedOut;
    },
    bound: <T>(p: Promise<T>) => Promise.race([p, aborted]),
    abort: () => ctrl.abort(),
    done: () => clearTimeout(timer),
  };
}

/** `p`, or an Error `no answer within {ms} ms` once `ms` pass (calling `onTimeout` first). */
export async function within<T>(p: Promise<T>, ms: number, onTimeout?: () => void): Promise<T> {
  const d = deadline(ms);
  try {
    return await d.bound(p);
  } catch (e) {
    if (d.timedOut) onTimeout?.();
    throw e;
  } finally {
    d.done();
  }
}

// The worker's routes, called with the user's access token (from the browser, as the
// generate page calls /v1/track): checkout, the customer portal, cancel at period end and
// resume, and organizations' members, invites and seats. The worker decides everything
// (which offers may be bought, by whom, with which clouds; whose subscription this is; who
// may invite or give a seat) and talks to the provider; this only sends the request, goes
// where the answer says, and shows a refusal as text.
// Access changes when the provider's webhook reaches the worker, never on these answers.

export type Refusal = { ok: false; status: number; error: string; message: string };
export type Answer<T> = { ok: true; body: T } | Refusal;

/** `POST <worker><path>` with the user's token; a refusal's code and message kept whole. */
export function postWorker<T>(workerUrl: string, accessToken: string, path: string, body: object, idempotencyKey?: string): Promise<Answer<T>> {
  return callWorker<T>('POST', workerUrl, accessToken, path, body, idempotencyKey);
}

/** `<method> <worker><path>` with the user's token (and a JSON body, if any); a refusal's
 * code and message kept whole. */
export async function callWorker<T>(
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
  workerUrl: string,
  accessToken: string,
  path: string,
  body?: object,
  idempotencyKey?: string,
): Promise<Answer<T>> {
  let r: Response;
  try {
    r = await fetch(`${workerUrl.replace(/\/+$/, '')}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${accessToken}`,
        ...(body ? { 'content-type': 'application/json' } : {}),
        ...(idempotencyKey ? { 'idempotency-key': idempotencyKey } : {}),
      },
      ...(body ? { body: JSON.stringify(body) } : {}),
      cache: 'no-store',
    });
  } catch (e) {
    return { ok: false, status: 0, error: 'unreachable', message: `The service could not be reached: ${(e as Error).message}` };
  }
  const json = (await r.json().catch(() => null)) as (T & { error?: { code?: unknown; message?: unknown } }) | null;
  if (!r.ok) {
    // The worker's refusals: {"error": {"code", "message"}}.
    const error = typeof json?.error?.code === 'string' ? json.error.code : `http_${r.status}`;
    const message = typeof json?.error?.message === 'string' ? json.error.message : `The service answered ${r.status}.`;
    return { ok: false, status: r.status, error, message };
  }
  if (json === null) return { ok: false, status: r.status, error: 'bad_response', message: 'The service answered something other than JSON.' };
  return { ok: true, body: json };
}

export interface CheckoutAnswer {
  provider: 'stripe' | 'razorpay';
  id: string;
  url: string | null;
  order?: { id: string; amount: number; currency: string } | null;
}

/** Query parameters the app adds to its own URL for the provider to send the buyer back to. */
export const RETURN = { state: 'checkout', offer: 'checkout_offer' } as const;

/** The current page with `checkout=<state>&checkout_offer=<offer>`. */
export function returnUrl(state: 'success' | 'canceled', offer: string): string {
  const u = new URL(window.location.href);
  u.searchParams.set(RETURN.state, state);
  u.searchParams.set(RETURN.offer, offer);
  return u.toString();
}

/** `req` without an empty `clouds` (a bundle names them; other offers take none). */
function withClouds<R extends { clouds?: string[] }>(req: R): R {
  return req.clouds && req.clouds.length ? req : { ...req, clouds: undefined };
}

export interface CheckoutRequest {
  offer: string;
  clouds?: string[];
  quantity?: number;
  organization_id?: string;
}

/**
 * Starts a checkout at the worker and leaves for the provider's page. Answers only when
 * it could not: the refusal, as text. `orderPage`: where a Razorpay order (a one-time
 * payment, `url: null`) is paid; Razorpay's checkout.js opens it in a real app, the local
 * stand-in's page in the demo (null: not available here).
 */
export async function startCheckout(
  workerUrl: string,
  accessToken: string,
  req: CheckoutRequest,
  orderPage: ((orderId: string) => string) | null,
): Promise<Refusal> {
  const body = {
    ...withClouds(req),
    success_url: returnUrl('success', req.offer),
    cancel_url: returnUrl('canceled', req.offer),
  };
  // One key per click: a retried request gets the same session, never a second one.
  const a = await postWorker<CheckoutAnswer>(workerUrl, accessToken, '/v1/checkout', body, crypto.randomUUID());
  if (!a.ok) return a;
  if (a.body.url) {
    window.location.assign(a.body.url);
  } else if (a.body.provider === 'razorpay' && a.body.order && orderPage) {
    window.location.assign(orderPage(a.body.order.id));
  } else {
    return { ok: false, status: 200, error: 'no_checkout_page', message: `The ${a.body.provider} checkout ${a.body.id} has no page to open here (Razorpay orders are paid with Razorpay's checkout.js).` };
  }
  // Leaving the page: nothing more to say.
  return new Promise<Refusal>(() => {});
}

export interface ChangeRequest {
  offer: string;
  clouds?: string[];
  /** The provider's id of the subscription that moves. */
  subscription: string;
}

/**
 * Moves a running subscription to another offer (`POST /v1/subscriptions/change`): a
 * higher price now, prorated; anything else at the period's end. Access follows when the
 * provider's webhook reaches the worker. Answers when it effects, or the refusal.
 */
export async function changePlan(workerUrl: string, accessToken: string, req: ChangeRequest): Promise<Answer<{ effective: 'now' | 'period_end' }>> {
  const body = withClouds(req);
  return postWorker<{ effective: 'now' | 'period_end' }>(workerUrl, accessToken, '/v1/subscriptions/change', body);
}

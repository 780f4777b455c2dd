// LOCAL STAND-IN FOR STRIPE'S AND RAZORPAY'S APIs (development and tests only; enabled by
// TOLLGATE_DEV_AUTH=1, never in production). What the stand-in keeps, and for which app.
//
// Each app worker is pointed at its own base (`STRIPE_API_BASE` =
// `<www>/api/dev/stripe/<app>`, `RAZORPAY_API_BASE` = `<www>/api/dev/razorpay/<app>`), so
// the stand-in knows which worker its webhooks go to. Everything it creates (checkout
// sessions, customers, subscriptions, orders) lives in this server process, on
// `globalThis`: `next start` serves every route from one process, and route bundles that
// each import this module still share one store. A restart forgets it all, as a new
// Stripe test account would. Customers belong to the one account (the apps share one
// database, so one app's worker may name the customer another's checkout created);
// sessions, subscriptions and prices belong to the app whose worker made them.

import { randomBytes } from 'node:crypto';

import type { CatalogDoc } from 'tollgate-react/server';

import { orgCatalog, razorpayCatalog, studioCatalog, suiteCatalog } from '../catalog';
import { devStandInsEnabled, orgWorkerUrl, razorpayWorkerUrl, studioWorkerUrl, workerUrl } from '../config';

export const APPS = ['vcm-suite', 'video-studio', 'razorpay-ai', 'org-seats'] as const;
export type App = (typeof APPS)[number];

export const APP_NAMES: Record<App, string> = {
  'vcm-suite': 'VCM Suite',
  'video-studio': 'Video Studio',
  'razorpay-ai': 'Razorpay AI app',
  'org-seats': 'Org Seats',
};

export function appOf(s: string): App | null {
  return (APPS as readonly string[]).includes(s) ? (s as App) : null;
}

/** The worker an app's webhooks go to. */
export function workerOf(app: App): string {
  const url = { 'vcm-suite': workerUrl, 'video-studio': studioWorkerUrl, 'razorpay-ai': razorpayWorkerUrl, 'org-seats': orgWorkerUrl }[app]();
  return url.replace(/\/+$/, '');
}

/** The app's catalog as its worker enforces it (the app's own copy when it is down): the
 * stand-in's "account" has a product and price for each offer, as `tollgate stripe
 * fixtures` creates them in a real one. */
export async function catalogOf(app: App): Promise<CatalogDoc> {
  const r = await { 'vcm-suite': suiteCatalog, 'video-studio': studioCatalog, 'razorpay-ai': razorpayCatalog, 'org-seats': orgCatalog }[app]();
  return r.doc;
}

/** A provider-style id: `cs_test_...`, `sub_...`, `order_...`. */
export function newId(prefix: string, n = 14): string {
  return `${prefix}_${randomBytes(n).toString('base64url').replace(/[-_]/g, 'x').slice(0, n + 4)}`;
}

export function nowSecs(): number {
  return Math.floor(Date.now() / 1000);
}

/** `at` plus `count` months or years, the day clamped to the month's last, as Stripe and
 * Razorpay bill: Jan 31 + 1 month = Feb 28 (or 29). */
export function addInterval(at: number, interval: string, count = 1): number {
  const d = new Date(at * 1000);
  const day = d.getUTCDate();
  const months = interval === 'year' ? 12 * count : interval === 'month' ? count : 0;
  if (interval === 'week') return at + 7 * 86_400 * count;
  if (interval === 'day') return at + 86_400 * count;
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth() + months;
  const last = new Date(Date.UTC(y, m + 1, 0)).getUTCDate();
  const out = new Date(Date.UTC(y, m, Math.min(day, last), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds()));
  return Math.floor(out.getTime() / 1000);
}

/** One webhook delivery, kept for the checkout and portal pages to show. */
export interface Delivery {
  type: string;
  event: string;
  status: number;
  body: string;
  at: number;
}

// Records hold the provider's own objects (plain JSON, as its API answers them).
export type Obj = Record<string, unknown>;

export interface StripeSession {
  app: App;
  session: Obj;
  /** The session's line items: the price object and the quantity. */
  lines: { price: Obj; quantity: number }[];
  subscriptionData: { metadata: Record<string, string>; trial_period_days: number | null };
  paymentIntentData: { metadata: Record<string, string> };
  deliveries: Delivery[];
}

export interface StripeSubscription {
  app: App;
  subscription: Obj;
  deliveries: Delivery[];
}

export interface RazorpayRecord {
  app: App;
  /** The subscription or order entity. */
  entity: Obj;
  deliveries: Delivery[];
  /** The app page the buyer came from (Razorpay's own pages end on a confirmation). */
  returnTo?: string;
  /** A plan change waiting for the cycle end. */
  scheduled?: { plan_id: string; quantity: number };
}

interface Store {
  stripe: {
    sessions: Map<string, StripeSession>;
    subscriptions: Map<string, StripeSubscription>;
    customers: Map<string, { app: App; customer: Obj }>;
    portal: Map<string, { app: App; session: Obj }>;
    prices: Map<string, { app: App; price: Obj }>;
    products: Map<string, { app: App; product: Obj }>;
    schedules: Map<string, { app: App; schedule: Obj }>;
    idempotent: Map<string, { status: number; body: unknown }>;
  };
  razorpay: {
    subscriptions: Map<string, RazorpayRecord>;
    orders: Map<string, RazorpayRecord>;
  };
}

const KEY = '__tollgateProviderStandIn';

export function store(): Store {
  const g = globalThis as unknown as Record<string, Store | undefined>;
  g[KEY] ??= {
    stripe: {
      sessions: new Map(),
      subscriptions: new Map(),
      customers: new Map(),
      portal: new Map(),
      prices: new Map(),
      products: new Map(),
      schedules: new Map(),
      idempotent: new Map(),
    },
    razorpay: { subscriptions: new Map(), orders: new Map() },
  };
  return g[KEY]!;
}

/** The origin the request came to (the browser is sent to pages of this same origin). */
export function originOf(req: Request): string {
  const host = req.headers.get('x-forwarded-host') ?? req.headers.get('host');
  const proto = req.headers.get('x-forwarded-proto') ?? 'http';
  return host ? `${proto}://${host}` : new URL(req.url).origin;
}

/** What a stand-in API answers: a status and a JSON body. */
export interface Answer {
  status: number;
  body: unknown;
}

type RouteCtx = { params: Promise<{ app: string; path: string[] }> };

/**
 * The route handler of a provider stand-in's API under `/api/dev/<provider>/<app>/v1/...`:
 * 404 with the provider's own error shape (`off`) unless the stand-ins are on and `<app>`
 * is one of the apps, else the API's answer as JSON (with `headers`).
 */
export function standInRoute(
  off: unknown,
  api: (app: App, req: Request, path: string[]) => Promise<Answer>,
  headers: Record<string, string> = {},
) {
  return async (req: Request, ctx: RouteCtx): Promise<Response> => {
    const { app: name, path } = await ctx.params;
    const app = appOf(name);
    if (!devStandInsEnabled() || !app) return Response.json(off, { status: 404 });
    const a = await api(app, req, path);
    return Response.json(a.body, { status: a.status, headers });
  };
}

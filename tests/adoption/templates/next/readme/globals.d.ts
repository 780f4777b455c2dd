// The names the READMEs' fragments use without defining them (an app's own values and
// components), declared so that the fragments compile under `strict` as written. A
// script, not a module: these are globals, and a block that defines a name shadows them.
declare const session: { access_token: string } | null;
declare const catalogDoc: import('tollgate').CatalogDoc;
declare const studioCatalog: import('tollgate').CatalogDoc;
declare const workerUrl: string;
declare const accessToken: string;
declare function Upsell(props: { decision: import('tollgate').Decision }): import('react').ReactNode;
declare function ProTool(): import('react').ReactNode;
declare function getSession(): Promise<{ accessToken: string }>;
declare function userIdFromSessionCookie(req: import('next/server').NextRequest): string | null;

// How the browser and adoption tests launch Debian's Chromium with playwright-core (each
// suite has its own playwright-core; this file has no dependencies).

/** Options for `chromium.launch`: headless, no sandbox, no network but 127.0.0.1. */
export function chromiumOptions() {
  return {
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
    ],
  };
}

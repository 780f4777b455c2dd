import Link from 'next/link';

export default function Home() {
  return (
    <>
      <h1>VCM Suite on tollgate</h1>
      <div className="card">
        <p>A walkthrough of entitlement gating with one catalog and one Rust core, running here as WebAssembly:</p>
        <ol>
          <li>
            <Link href="/signin">Sign in</Link> with any email (local stand-in for Supabase Auth).
          </li>
          <li>
            Open <Link href="/tools">Tools</Link>: locked tools say why; click one for the offers that unlock it.
          </li>
          <li>
            Open the <Link href="/tools/demo">demo tool</Link> and press Upgrade: the worker creates the checkout, you pay
            on the local stand-in of Stripe&apos;s page, which sends Stripe-signed events to the worker, and the pro part
            appears when you are back.
          </li>
          <li>
            <Link href="/generate">Generate video</Link>: a live price from the core; the worker holds the seconds, then captures or releases them.
          </li>
          <li>
            <Link href="/drafts">Drafts</Link>: the Razorpay AI app&apos;s free drafts, then AI credits, spent by the worker.
          </li>
          <li>
            <Link href="/account">Account</Link>: your subscriptions (cancel at period end, resume, manage billing) and
            your entitlements over time.
          </li>
        </ol>
      </div>
    </>
  );
}

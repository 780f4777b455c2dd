import { BuyOffers } from '@/components/BuyOffers';
import { DraftWriter } from '@/components/DraftWriter';
import { razorpayCatalog } from '@/lib/catalog';
import { razorpayWorkerUrl } from '@/lib/config';
import { draftBalances } from '@/lib/drafts';
import { getSession } from '@/lib/session';

export default async function DraftsPage() {
  const session = await getSession();
  // The balances come from the worker on the server, so the first paint already shows them.
  const got = session ? await draftBalances(session.accessToken) : null;
  const { doc } = await razorpayCatalog();
  return (
    <>
      <h1>Drafts</h1>
      <p className="status-line">
        The Razorpay AI app: everyone signed in gets free drafts; after them each draft spends one AI credit (Premium plans
        and top-ups add credits). The worker spends the draft before the model is called, so its count holds whatever the
        page shows.
      </p>
      {session ? (
        <>
          <DraftWriter initial={got?.ok ? got.balances : null} error={got && !got.ok ? got.message : null} />
          {/* Sold by the Razorpay AI app's worker, through Razorpay. */}
          <BuyOffers offers={doc.offers} workerUrl={razorpayWorkerUrl()} title="Premium and AI credits" />
        </>
      ) : (
        <p className="card">Sign in to write drafts.</p>
      )}
    </>
  );
}

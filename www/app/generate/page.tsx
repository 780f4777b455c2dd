import { BalanceWidget } from '@/components/BalanceWidget';
import { GenerateVideo } from '@/components/GenerateVideo';
import { OveragePreferences } from '@/components/OveragePreferences';
import { studioCatalog } from '@/lib/catalog';
import { studioWorkerUrl } from '@/lib/config';
import { getSession } from '@/lib/session';

export default async function GeneratePage() {
  const session = await getSession();
  const { doc } = await studioCatalog();
  return (
    <>
      <h1>Generate video</h1>
      <p className="status-line">
        Video Studio: prices per second by model and quality ({doc.catalog.name} {doc.catalog.version}). The quote below is
        computed in your browser by the same core function the worker charges with; the worker re-checks every request.
      </p>
      <div className="two">
        <GenerateVideo catalog={doc} workerUrl={studioWorkerUrl()} accessToken={session?.accessToken ?? null} />
        {session ? <BalanceWidget catalog={doc} workerUrl={studioWorkerUrl()} /> : <p className="card">Sign in to see your balance.</p>}
      </div>
      {session ? <OveragePreferences workerUrl={studioWorkerUrl()} accessToken={session.accessToken} /> : null}
    </>
  );
}

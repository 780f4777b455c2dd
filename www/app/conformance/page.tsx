import { ConformanceRunner } from '@/components/ConformanceRunner';

// The shared conformance fixtures (tests/fixtures/*.json), evaluated by the tollgate
// package inside this page: the browser tests hand each fixture in and compare the
// answers with the fixture's expectations, under the same rules as Rust and Node.
export default function ConformancePage() {
  return (
    <>
      <h1>Conformance</h1>
      <ConformanceRunner />
    </>
  );
}

// The free part of the demo tool: shown to everyone, signed in or not.
export function FreeToolComponent() {
  return (
    <section className="card free" data-testid="free-tool">
      <h2>Thumbnail text</h2>
      <p>Write a title, pick a template, export a thumbnail. Free for everyone.</p>
      <label>
        Title
        <input defaultValue="My first video" />
      </label>
    </section>
  );
}

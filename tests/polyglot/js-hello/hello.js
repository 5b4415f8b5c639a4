// A wasi:http component in JavaScript, built by componentize-js (StarlingMonkey): the fetch
// event, as a Cloudflare or Fastly worker is written.
addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  event.respondWith(
    new Response(`hello from javascript at ${url.pathname}${url.search}\n`, {
      headers: { "content-type": "text/plain" },
    }),
  );
});

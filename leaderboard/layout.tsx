/** @jsxImportSource hono/jsx */
/** The page shell shared by every HTML page: head, navigation, styles, optional script. */

import { raw } from 'hono/html';
import type { Child } from 'hono/jsx';

const CSS = `
:root{color-scheme:light}
*{box-sizing:border-box}
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#111;background:#fff}
a{color:#1a4fa0}
a:focus-visible,button:focus-visible,select:focus-visible,input:focus-visible,textarea:focus-visible,summary:focus-visible{outline:3px solid #f9a825;outline-offset:2px}
header.site{background:#1a237e;color:#fff}
header.site nav{max-width:1240px;margin:0 auto;padding:10px 16px;display:flex;flex-wrap:wrap;gap:4px 18px;align-items:center}
header.site a{color:#fff;text-decoration:none;font-weight:600}
header.site a:hover{text-decoration:underline}
header.site .brand{font-size:1.1em;margin-right:auto}
main{max-width:1240px;margin:0 auto;padding:12px 16px 40px}
h1{font-size:1.45em;margin:.4em 0 .5em;overflow-wrap:anywhere}
h2{font-size:1.15em;margin:1.6em 0 .5em;border-bottom:1px solid #ddd;padding-bottom:.2em}
h3{font-size:1em;margin:1.2em 0 .4em}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch;max-width:100%}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #e3e3e3;vertical-align:top}
thead th{background:#f1f3f9;font-weight:600}
thead th a{white-space:nowrap}
td.num,th.num{text-align:right}
tbody tr:hover{background:#fafbff}
caption{text-align:left;color:#444;padding:4px 0;caption-side:top}
table.kv th{width:14em;font-weight:600;color:#333}
table.kv td{overflow-wrap:anywhere}
code{overflow-wrap:anywhere}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.88em}
pre{background:#f6f8fa;border:1px solid #e1e4e8;border-radius:6px;padding:10px;overflow-x:auto}
.muted{color:#555}
.level{display:inline-block;min-width:2.4em;text-align:center;border-radius:4px;padding:0 6px;font-weight:700;color:#111;border:1px solid #888}
.l0{background:#f8d7d0}.l1{background:#ffe0c7}.l2{background:#fff1b8}.l3{background:#e6ecb0}.l4{background:#d4efb0}.l5{background:#c7f0c0}
.pass{color:#1b5e20;font-weight:600}.fail{color:#b71c1c;font-weight:600}.notrun{color:#555}
.flag{display:inline-block;white-space:nowrap;background:#fff4e5;border:1px solid #b26a00;color:#6d3f00;border-radius:4px;padding:0 6px;font-size:.85em;font-weight:600}
.note{background:#fff4e5;border-left:4px solid #b26a00;padding:8px 12px;margin:.8em 0}
.ok{background:#eef7ee;border-left:4px solid #2e7d32;padding:8px 12px;margin:.8em 0}
form.filters{display:flex;flex-wrap:wrap;gap:10px 16px;align-items:flex-end;background:#f6f7fb;border:1px solid #e1e4ee;border-radius:6px;padding:10px 12px}
form.filters label{display:flex;flex-direction:column;font-size:.9em;font-weight:600;gap:2px}
select,input,button,textarea{font:inherit}
select{max-width:100%}
#f-target{max-width:20em}
table.board time{white-space:nowrap}
table.board td.recipe{min-width:11em;overflow-wrap:anywhere}
form.filters label{max-width:100%}
select,input{padding:4px 6px;border:1px solid #767676;border-radius:4px;background:#fff;color:#111;min-height:2.2em}
button{padding:5px 12px;border:1px solid #1a237e;background:#1a237e;color:#fff;border-radius:4px;cursor:pointer;min-height:2.2em}
button.secondary{background:#fff;color:#1a237e}
.exports{margin:.6em 0}
figure{margin:1em 0}
figcaption{color:#444;font-size:.9em;max-width:70ch}
svg{max-width:100%;height:auto}
.snippet{margin:.6em 0 1em}
.snippet label{display:block;font-weight:600;margin-bottom:2px}
.snippet textarea{width:100%;max-width:760px;font-family:ui-monospace,monospace;font-size:.85em;padding:6px;border:1px solid #767676;border-radius:4px;resize:vertical}
.status{min-height:1.4em;color:#1b5e20;font-weight:600}
progress{width:10em;height:1em;vertical-align:middle}
details.layer{border:1px solid #ddd;border-radius:6px;margin:6px 0}
details.layer.above{border-color:#1a237e;border-width:2px}
details.layer summary{cursor:pointer;padding:8px 10px}
details.layer .body{padding:0 10px 8px}
.badge{display:inline-block;padding:0 6px;border-radius:3px;border:1px solid #bbb}
.idx{color:#555}.name{font-weight:600;overflow-wrap:anywhere}.sub,.meta{color:#555;font-size:.9em}
.checks td.value{max-width:16em;overflow-wrap:anywhere}.checks td.threshold,.checks td.why{min-width:11em}.checks td.evidence{min-width:16em;overflow-wrap:anywhere}
.prose{max-width:80ch}.prose table{display:block;overflow-x:auto}
footer.site{max-width:1240px;margin:0 auto;padding:16px;color:#555;font-size:.85em;border-top:1px solid #eee}
@media (max-width:640px){body{font-size:14px}th,td{padding:5px 6px}table.kv th{width:auto}}
`;

/** The full document. `script` is inline module code (kept minimal). */
export function Layout(props: { title: string; children: Child; script?: string }) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{`${props.title} · cann-quant`}</title>
        <link rel="icon" href="/favicon.ico" type="image/svg+xml" />
        <style>{raw(CSS)}</style>
      </head>
      <body>
        <header class="site">
          <nav aria-label="Site">
            <a class="brand" href="/">
              cann-quant
            </a>
            <a href="/">Leaderboard</a>
            <a href="/tasks">Tasks</a>
            <a href="/challenges">Challenges</a>
            <a href="/standard">Standard</a>
            <a href="/api/v1/openapi.json">API</a>
          </nav>
        </header>
        <main id="main">{props.children}</main>
        <footer class="site">
          INT8 quantization benchmarking. Every figure comes from a run the service executed; see{' '}
          <a href="/standard">the standard</a>.
        </footer>
        {props.script ? <script type="module">{raw(props.script)}</script> : ''}
      </body>
    </html>
  );
}

/** Renders a page element to a complete HTML document string. */
export function documentHtml(el: unknown): string {
  return `<!doctype html>${String(el)}`;
}

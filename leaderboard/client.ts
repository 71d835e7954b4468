/**
 * The only client script of the pages, inline on the submission page: copy buttons for the badge
 * snippets, and (while a submission is queued or running) polling of the submission API to update
 * the progress table, reloading the page once the submission is scored or failed.
 */

/** Copy-to-clipboard for every `button[data-copy]` (the id of the textarea to copy). */
export const COPY_SCRIPT = `
for (const b of document.querySelectorAll('button[data-copy]')) {
  b.addEventListener('click', async () => {
    const t = document.getElementById(b.dataset.copy);
    const out = document.getElementById(b.dataset.status);
    let ok = false;
    try { await navigator.clipboard.writeText(t.value); ok = true; }
    catch { t.select(); ok = document.execCommand('copy'); }
    if (out) out.textContent = ok ? 'Copied to the clipboard.' : 'Copy failed: select the text and copy it.';
  });
}
`;

/**
 * Progress polling: reads `/api/v1/submissions/:id` (SubmissionView: status, runs[].phases[] with
 * done/total) every few seconds; fills `[data-progress="<runId>/<phase>"]` cells; reloads when
 * the status changes.
 */
export const PROGRESS_SCRIPT = `
const root = document.querySelector('[data-poll]');
if (root) {
  const url = root.dataset.poll;
  const initial = root.dataset.status;
  const live = document.getElementById('progress-live');
  let delay = 2000;
  const tick = async () => {
    try {
      const res = await fetch(url, { headers: { accept: 'application/json' } });
      if (res.ok) {
        const s = await res.json();
        if (s.status !== initial) { location.reload(); return; }
        for (const run of s.runs ?? []) for (const p of run.phases ?? []) {
          const key = run.id + '/' + p.phase;
          let row = root.querySelector('[data-progress="' + CSS.escape(key) + '"]');
          if (!row) {
            row = document.createElement('tr');
            row.dataset.progress = key;
            row.innerHTML = '<td></td><td></td><td class="num"></td><td><progress max="1" value="0"></progress></td>';
            row.children[0].textContent = run.role;
            row.children[1].textContent = p.phase;
            root.querySelector('tbody').appendChild(row);
          }
          row.children[2].textContent = p.done + ' / ' + p.total;
          const bar = row.querySelector('progress');
          bar.max = p.total; bar.value = p.done;
        }
        if (live) live.textContent = 'Updated ' + new Date().toLocaleTimeString() + ' (status ' + s.status + ').';
        delay = 2000;
      } else delay = Math.min(delay * 2, 30000);
    } catch { delay = Math.min(delay * 2, 30000); }
    setTimeout(tick, delay);
  };
  setTimeout(tick, delay);
}
`;

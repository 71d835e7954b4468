/**
 * docs/STANDARD.md as HTML (marked), with GitHub-style heading ids so that sections can be
 * linked (`/standard#5-maturity-checks-corescorechecksts`).
 */
import { Marked } from 'marked';

/** GitHub-style slug of a heading's text. */
export function slug(text: string): string {
  return text
    .toLowerCase()
    .replace(/<[^>]+>/g, '')
    .replace(/[^\p{L}\p{N}\s-]/gu, '')
    .trim()
    .replace(/\s+/g, '-');
}

const marked = new Marked({
  gfm: true,
  renderer: {
    heading({ tokens, depth, text }) {
      const id = slug(text);
      return `<h${depth} id="${id}">${this.parser.parseInline(tokens)}</h${depth}>\n`;
    },
  },
});

/** Renders Markdown to HTML. */
export function renderMarkdown(md: string): string {
  return marked.parse(md, { async: false }) as string;
}

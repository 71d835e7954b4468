// wrangler.toml `[[rules]] type = "Text"` for `*.md`: the file's text as a string module.
declare module '*.md' {
  const text: string;
  export default text;
}

// Escaping for everything the report and the dashboard put into HTML: strings from the database
// (sweep names, defense names, task names) must render as text, never as markup or script.

const HTML_ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Text safe inside an HTML element or a quoted attribute. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
}

/**
 * JSON safe inside <script type="application/json">: no '<' (so no "</script>" and no "<!--"),
 * no '>' or '&', and no U+2028/2029 (line terminators in older JS parsers). JSON.parse reads the
 * \u escapes back as the original characters.
 */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

/**
 * A third-party script's source made safe to inline in a <script> element: "</script" would end
 * the element and "<!--" changes how the parser looks for its end. Both only occur inside string
 * literals in minified bundles, where "<\/" and "<\!" read as the same characters.
 */
export function inlineScriptSource(source: string): string {
  return source.replace(/<\/(script)/gi, '<\\/$1').replace(/<!--/g, '<\\!--');
}

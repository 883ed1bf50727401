// Passwords in Redis URLs never reach a message, a log line or the CLI's output: the one rule
// for finding them, shared by the API and the CLI (the core's redact_redis_url, in
// native/core/redis_url.cpp, follows the same rule).

/**
 * The URL with its password replaced by `***`, for messages and output. Any text is accepted,
 * not only URLs that parse: the userinfo is what lies between `://` (or the start) and the last
 * `@`, so a password holding `@`, `/` or `:` is hidden whole and a URL with a typo is shown
 * without its password too. The core's redact_redis_url (native/core/redis_url.cpp) follows
 * the same rule.
 */
export function redact(url: string): string {
  const span = passwordSpan(url);
  return span ? `${url.slice(0, span[0])}***${url.slice(span[1])}` : url;
}

// Where the password of `url` is, as [start, end), or undefined when it has none (see redact).
function passwordSpan(url: string): [number, number] | undefined {
  const schemeEnd = url.indexOf('://');
  const start = schemeEnd < 0 ? 0 : schemeEnd + 3;
  const at = url.lastIndexOf('@');
  if (at < start) return undefined;
  const colon = url.indexOf(':', start);
  if (colon < 0 || colon > at) return undefined; // a user name only
  return [colon + 1, at];
}

/**
 * The passwords of the URLs among `texts` (command-line arguments: only those with a `://`),
 * as written and percent-decoded.
 */
export function passwordsIn(texts: readonly string[]): string[] {
  const found = new Set<string>();
  for (const text of texts) {
    const span = text.includes('://') ? passwordSpan(text) : undefined;
    if (!span) continue;
    const raw = text.slice(span[0], span[1]);
    found.add(raw);
    try {
      found.add(decodeURIComponent(raw));
    } catch {
      // not percent-encoded: the raw form is the password
    }
  }
  found.delete('');
  return [...found].sort((a, b) => b.length - a.length); // one inside another: the longer first
}

/** `text` with each of `secrets` replaced by `***`. */
export function hideSecrets(text: string, secrets: readonly string[]): string {
  return secrets.reduce((t, secret) => t.split(secret).join('***'), text);
}

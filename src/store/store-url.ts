/**
 * The store URL with its password replaced by `***`, for logs, banners and
 * `print-config`. Works on malformed URLs too: everything between the user's
 * `:` and the last `@` is hidden, so a stray `/` or `@` in the password cannot
 * leak it. Pure and import-free, so the config loader can use it without
 * loading a database driver.
 */
export function redactStoreUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@?#]*:).*@/is, '$1***@');
}

/* Text that came from hardware or users (product strings, serials, the controller's messages),
 * made visible: React renders every string as text, never as markup, and these helpers also turn
 * control and invisible formatting characters into escapes, as the web UI does
 * (src/kubevirt_usb/web/views.py: printable). Pure functions, no I/O. */

// Unicode categories Cc, Cf, Cs, Co, Zl, Zp: control, format, surrogate, private use, separators.
const HIDDEN = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Zl}\p{Zp}]/u;

const escape = (char: string): string => {
  const code = char.codePointAt(0) ?? 0;
  return code < 0x100
    ? `\\x${code.toString(16).padStart(2, '0')}`
    : `\\u${code.toString(16).padStart(4, '0')}`;
};

/** `value` as visible characters, cut to `limit` characters (with an ellipsis). */
export const printable = (value: unknown, limit = 256): string => {
  if (value === null || value === undefined) {
    return '';
  }
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  const chars = Array.from(text);
  const shown = chars
    .slice(0, limit)
    .map((c) => (HIDDEN.test(c) ? escape(c) : c))
    .join('');
  return chars.length > limit ? `${shown}…` : shown;
};

/** A byte count for people: 512 B, 1.5 KiB, 12.0 MiB. */
export const formatBytes = (count: unknown): string => {
  let value = typeof count === 'number' && Number.isFinite(count) && count > 0 ? count : 0;
  for (const unit of ['B', 'KiB', 'MiB', 'GiB']) {
    if (value < 1024 || unit === 'GiB') {
      return unit === 'B' ? `${String(Math.floor(value))} B` : `${value.toFixed(1)} ${unit}`;
    }
    value /= 1024;
  }
  return `${value.toFixed(1)} GiB`;
};

/** How long ago, the way kubectl says it (12s, 5m, 3h, 2d); empty when unknown. */
export const age = (value: unknown, now: Date): string => {
  if (typeof value !== 'string' || !value) {
    return '';
  }
  const then = Date.parse(value);
  if (Number.isNaN(then)) {
    return '';
  }
  const seconds = Math.max(0, Math.floor((now.getTime() - then) / 1000));
  for (const [unit, size] of [
    ['d', 86400],
    ['h', 3600],
    ['m', 60],
  ] as const) {
    if (seconds >= size) {
      return `${String(Math.floor(seconds / size))}${unit}`;
    }
  }
  return `${String(seconds)}s`;
};

/** A count from the API, or 0 when it is missing or not a count. */
export const count = (value: unknown): number =>
  typeof value === 'number' && Number.isInteger(value) && value >= 0 ? value : 0;

/** The API's reason for refusing a request (the Status message the console's fetch carries). */
export const apiMessage = (error: unknown): string => {
  if (error instanceof Error) {
    return printable(error.message, 2048);
  }
  if (typeof error === 'string') {
    return printable(error, 2048);
  }
  return 'the API server gave no reason';
};
